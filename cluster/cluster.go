package cluster

import "errors"

// Member is one node of the cluster.
type Member struct {
	// Name is the node's stable, cluster-unique name. Placement depends on
	// names only, so a node restarted under the same name at a new address
	// takes back exactly the partitions it had.
	Name string
	// Addr is the "host:port" of the node's gossip and data port.
	Addr string
}

// String returns the member's name.
func (m Member) String() string { return m.Name }

// ErrNameTaken reports that a live member at another address already has
// this node's name: Engine.Start fails with it (wrapped, naming the holder's
// address) and leaves the holder undisturbed.
var ErrNameTaken = errors.New("cluster: node name taken")

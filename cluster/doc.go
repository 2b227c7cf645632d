// Package cluster holds what the engine's API says about the nodes of a
// distcache cluster: a [Member] (returned by Engine.Members and Engine.Owner)
// and [ErrNameTaken] (returned by Engine.Start when a live member already
// has this node's name).
//
// Membership itself (memberlist gossip, the ring that places keys, the
// admission of peers) is run by the engine from an internal package; tune it
// with engine.WithClusterTuning.
package cluster

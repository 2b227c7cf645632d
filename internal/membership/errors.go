package membership

import (
	"errors"

	"github.com/distcache/distcache/cluster"
)

// Sentinel errors. Errors returned by this package wrap one of them (test
// with errors.Is) and add the details.
var (
	// ErrInvalidConfig reports a Config or RingConfig that fails validation.
	ErrInvalidConfig = errors.New("cluster: invalid config")
	// ErrInvalidRing reports a member set that cannot form a ring (empty or
	// duplicate names, or an internal failure of the partitioner).
	ErrInvalidRing = errors.New("cluster: invalid ring")
	// ErrTooManyMembers reports more members than the partitions can hold
	// under the configured Load. Raise PartitionCount (or Load).
	ErrTooManyMembers = errors.New("cluster: too many members for the partition count")
	// ErrClosed is returned by methods called after [Cluster.Shutdown].
	ErrClosed = errors.New("cluster: closed")
	// ErrJoinFailed wraps the failure of joining through one address.
	ErrJoinFailed = errors.New("cluster: join failed")
	// ErrIncompatibleMember reports a peer whose protocol version or
	// placement config fingerprint differs from ours; such a peer is never
	// admitted, so the rings of both sides stay consistent.
	ErrIncompatibleMember = errors.New("cluster: incompatible member")
	// ErrNameTaken reports that a live member at another address already
	// has this node's name (see [Cluster.NameConflict]); it is the public
	// cluster.ErrNameTaken.
	ErrNameTaken = cluster.ErrNameTaken
)

package engine

import (
	"errors"

	"github.com/distcache/distcache/keyspace"
)

// Sentinel errors. Every outcome a caller may branch on is one of these
// (possibly wrapped; use errors.Is). They survive a forwarded hop: an error
// on the owner node is the same sentinel on the calling node.
var (
	// ErrNotFound is keyspace.ErrNotFound: the DataSource has no such key.
	ErrNotFound = keyspace.ErrNotFound
	// ErrKeySpaceNotFound: no keyspace of that name on this node.
	ErrKeySpaceNotFound = errors.New("distcache: keyspace not found")
	// ErrEngineNotStarted: Start has not completed yet.
	ErrEngineNotStarted = errors.New("distcache: engine not started")
	// ErrEngineStopped: the engine is stopping or stopped.
	ErrEngineStopped = errors.New("distcache: engine stopped")
	// ErrEngineStarted: Start was called twice.
	ErrEngineStarted = errors.New("distcache: engine already started")
	// ErrEmptyKey: keys must be non-empty.
	ErrEmptyKey = errors.New("distcache: empty key")
	// ErrKeyTooLarge: the key is longer than Config.MaxKeyBytes.
	ErrKeyTooLarge = errors.New("distcache: key too large")
	// ErrValueTooLarge: the value is longer than Config.MaxValueBytes.
	ErrValueTooLarge = errors.New("distcache: value too large")
	// ErrRejected: the owner's store is at its byte budget and its admission
	// policy refused the entry (or the entry alone exceeds the budget).
	ErrRejected = errors.New("distcache: entry rejected by the owner's store (keyspace full)")
	// ErrClusterQuorum: Start could not gather MinimumPeersQuorum members
	// within BootstrapTimeout; or a write reached an owner that lost
	// contact with half of its cluster (see the package doc, "trust").
	ErrClusterQuorum = errors.New("distcache: cluster quorum not reached")
	// ErrDataSourceRateLimited: the keyspace rate limiter denied the fetch.
	ErrDataSourceRateLimited = errors.New("distcache: datasource rate limited")
	// ErrDataSourceCircuitOpen: the keyspace circuit breaker is open (or
	// half-open with its probe quota in use).
	ErrDataSourceCircuitOpen = errors.New("distcache: datasource circuit open")
	// ErrPeerUnavailable: a write's owner node could not be reached.
	ErrPeerUnavailable = errors.New("distcache: peer unavailable")
	// ErrInvalidConfig wraps every configuration error from New.
	ErrInvalidConfig = errors.New("distcache: invalid config")
)

// RemoteError is an error that happened on another node and has no sentinel;
// it carries the peer's name and the remote message.
type RemoteError struct {
	Peer    string
	Message string
}

func (e *RemoteError) Error() string { return "distcache: peer " + e.Peer + ": " + e.Message }

// KeyError names the key a failure of a batch operation (GetMany, PutMany,
// DeleteMany) belongs to. errors.Is and errors.As see through it.
type KeyError struct {
	Key string
	Err error
}

func (e *KeyError) Error() string { return "key " + quoteKey(e.Key) + ": " + e.Err.Error() }
func (e *KeyError) Unwrap() error { return e.Err }

func quoteKey(k string) string {
	const max = 64
	if len(k) > max {
		k = k[:max] + "..."
	}
	return `"` + k + `"`
}

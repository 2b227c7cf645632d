package keyspace

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is what a DataSource returns (wrapped or not) for a key that
// does not exist. The engine returns it to every caller, on every node, so
// errors.Is(err, ErrNotFound) holds across a forwarded hop.
var ErrNotFound = errors.New("distcache: key not found")

// DataSource loads the value of a key on a cache miss.
//
// Fetch is called by the key's owner node, at most once per key at a time on
// that node (concurrent misses are coalesced), under the keyspace read
// timeout carried by ctx. It may be called concurrently for different keys and
// must be safe for that. It must not call back into the engine for the same
// key (that would wait for itself). Return ErrNotFound (or an error wrapping
// it) for a key that does not exist. The returned slice is owned by the cache
// afterwards: do not modify it.
type DataSource interface {
	Fetch(ctx context.Context, key string) ([]byte, error)
}

// DataSourceFunc adapts a function to the DataSource interface.
type DataSourceFunc func(ctx context.Context, key string) ([]byte, error)

// Fetch calls f(ctx, key).
func (f DataSourceFunc) Fetch(ctx context.Context, key string) ([]byte, error) { return f(ctx, key) }

// KeySpace is a named cache namespace with its own byte budget and DataSource.
//
// Every node of a cluster must register the same keyspaces (same names and
// equivalent data sources): a request forwarded to a node that lacks the
// keyspace fails there with the engine's ErrKeySpaceNotFound.
type KeySpace interface {
	// Name identifies the keyspace; it must be non-empty and unique in an engine.
	Name() string
	// MaxBytes is the local store's budget on each node, in bytes of key, value
	// and per-entry overhead. An engine option may override it.
	MaxBytes() int64
	// DataSource loads missing keys.
	DataSource() DataSource
	// ExpiresAt gives the absolute expiry of a freshly loaded or written key.
	// The zero time means "no expiry from the keyspace": the keyspace default
	// TTL then applies (and no expiry at all when that is zero too). It is
	// called on the owner, right after a successful Fetch or a Put whose Entry
	// has no Expiry; keep it cheap. A panic fails that load or Put (the error
	// names the keyspace, the log has the stack) and never the process: the
	// value is then neither stored nor returned.
	ExpiresAt(ctx context.Context, key string) time.Time
}

// New returns a KeySpace with a fixed name, byte budget and DataSource, and no
// per-key expiry (the keyspace default TTL applies). It is the shortest way to
// build a keyspace; implement KeySpace yourself for per-key expiry.
func New(name string, maxBytes int64, source DataSource) KeySpace {
	return &simple{name: name, maxBytes: maxBytes, source: source}
}

type simple struct {
	name     string
	maxBytes int64
	source   DataSource
}

func (s *simple) Name() string                                { return s.name }
func (s *simple) MaxBytes() int64                             { return s.maxBytes }
func (s *simple) DataSource() DataSource                      { return s.source }
func (s *simple) ExpiresAt(context.Context, string) time.Time { return time.Time{} }

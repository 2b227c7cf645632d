package sut

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// ErrNodeDown is returned by a System for an operation routed to a node that
// is stopped.
var ErrNodeDown = errors.New("sut: node is stopped")

// ErrNodeIndex is returned for a node index outside [0, nodes).
var ErrNodeIndex = errors.New("sut: node index out of range")

// System is one cache cluster under test. Nodes are numbered 0..n-1; every
// method is safe for concurrent use, except Start and Close.
type System interface {
	// Name is the short name used in tables and charts.
	Name() string
	// Start brings up n nodes on loopback, all reading misses from src, and
	// returns once every node sees the whole cluster.
	Start(ctx context.Context, n int, src *Source) error
	// Get returns key's value through node, loading it from the Source on a
	// miss (read-through, or the cache-aside emulation described in Notes).
	Get(ctx context.Context, node int, key string) ([]byte, error)
	// Put stores value under key through node. value is never modified by
	// the harness afterwards, but may be shared between calls.
	Put(ctx context.Context, node int, key string, value []byte) error
	// GetMany fetches keys through node and returns how many were found.
	GetMany(ctx context.Context, node int, keys []string) (int, error)
	// StopNode makes node leave the cluster gracefully and stops it.
	StopNode(ctx context.Context, node int) error
	// RestartNode starts a stopped node again (empty cache) and returns once
	// every live node sees it.
	RestartNode(ctx context.Context, node int) error
	// Close stops every node and releases everything Start acquired.
	Close(ctx context.Context) error
	// Notes says how each operation maps onto the system's API, and which
	// ones are emulated.
	Notes() []string
}

// RemoteCounter is implemented by systems that count how often a node went
// to another node for a value (a forwarded Get, a peer load). The count
// only grows: nodes that stopped keep contributing what they counted.
type RemoteCounter interface {
	RemoteFetches() int64
}

// Source is the DataSource behind every system: each Fetch is counted, can
// be delayed by a configurable latency, and returns a value of a fixed size
// that starts with the key. It implements distcache's keyspace.DataSource.
type Source struct {
	valueSize int
	latency   atomic.Int64 // time.Duration
	calls     atomic.Int64

	tracking atomic.Bool
	mu       sync.Mutex // guards perKey
	perKey   map[string]int
}

// NewSource returns a Source whose values are valueSize bytes long.
func NewSource(valueSize int) *Source {
	return &Source{valueSize: max(valueSize, 1), perKey: map[string]int{}}
}

// SetLatency sets how long every later Fetch takes (0: returns at once).
func (s *Source) SetLatency(d time.Duration) { s.latency.Store(int64(d)) }

// Calls is the number of Fetch calls so far.
func (s *Source) Calls() int64 { return s.calls.Load() }

// TrackKeys resets the per-key call counts and turns their collection on or
// off (it costs a mutex per Fetch, so it is off by default).
func (s *Source) TrackKeys(on bool) {
	s.mu.Lock()
	s.perKey = map[string]int{}
	s.mu.Unlock()
	s.tracking.Store(on)
}

// KeyCalls returns a copy of the per-key call counts collected since the
// last TrackKeys(true).
func (s *Source) KeyCalls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.perKey))
	for k, v := range s.perKey {
		out[k] = v
	}
	return out
}

// Value is the value Fetch returns for key.
func (s *Source) Value(key string) []byte {
	v := make([]byte, s.valueSize)
	copy(v, key)
	return v
}

// Fetch loads key: it counts the call, waits the configured latency (or
// until ctx ends) and returns Value(key).
func (s *Source) Fetch(ctx context.Context, key string) ([]byte, error) {
	s.calls.Add(1)
	if s.tracking.Load() {
		s.mu.Lock()
		s.perKey[key]++
		s.mu.Unlock()
	}
	if d := time.Duration(s.latency.Load()); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
	return s.Value(key), nil
}

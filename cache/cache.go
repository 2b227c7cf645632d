package cache

import (
	"time"

	"github.com/distcache/distcache/internal/cache"
)

// ErrRejected reports that the admission policy refused an entry because the
// store is at its byte budget and the entry was judged less valuable than the
// entries it would evict, or because the entry alone exceeds the budget.
var ErrRejected = cache.ErrRejected

// ErrClosed is returned by Set after Close.
var ErrClosed = cache.ErrClosed

// Config sizes a Store.
type Config struct {
	// MaxBytes is the budget in bytes of keys, values and a per-entry
	// overhead of about 100 bytes. Must be > 0.
	MaxBytes int64
	// NumCounters is the number of TinyLFU frequency counters (about 3 bytes
	// each); ristretto advises 10x the expected number of entries. Zero derives
	// it from MaxBytes assuming 256-byte entries, clamped to [1024, 4M].
	NumCounters int64
	// RetainExpired keeps entries this long past their expiry, so that Get
	// can still return them (with Fresh false) for a caller that prefers a
	// stale value to none. Zero drops entries at expiry. Must be >= 0.
	RetainExpired time.Duration
}

func (c Config) internal() cache.Config {
	return cache.Config{MaxBytes: c.MaxBytes, NumCounters: c.NumCounters, RetainExpired: c.RetainExpired}
}

// Validate reports the first invalid field.
func (c Config) Validate() error { return c.internal().Validate() }

// Entry is what the store keeps for a key.
type Entry struct {
	// Value is the cached bytes.
	Value []byte
	// ExpiresAt is the absolute expiry; zero means never.
	ExpiresAt time.Time
}

// Fresh reports whether e has not expired yet.
func (e Entry) Fresh() bool {
	return e.ExpiresAt.IsZero() || time.Now().Before(e.ExpiresAt)
}

// Stats is a point-in-time snapshot of a store.
type Stats struct {
	Hits, Misses   int64 // Get outcomes
	Sets, Rejected int64 // acknowledged and refused Sets
	Deletes        int64
	Entries        int64 // entries currently held (O(n) to count)
	UsedBytes      int64 // budget in use, overhead included
	MaxBytes       int64
}

// Store is an in-memory store. All methods are safe for concurrent use, and
// safe (no-ops, or ErrClosed) after Close.
type Store struct {
	s *cache.Store
}

// New builds a store; it starts ristretto's background goroutines, which
// Close stops.
func New(cfg Config) (*Store, error) {
	s, err := cache.New(cfg.internal())
	if err != nil {
		return nil, err
	}
	return &Store{s: s}, nil
}

// Get returns the entry for key, expired or not (entries are kept for
// RetainExpired past expiry): check Entry.Fresh. The returned Value aliases
// the store's memory and must not be modified.
func (s *Store) Get(key string) (Entry, bool) {
	e, ok := s.s.Get(key)
	return Entry{Value: e.Value, ExpiresAt: e.ExpiresAt}, ok
}

// Set stores e under key and returns once the entry is readable by Get, or
// ErrRejected when the admission policy refused it. An entry whose retention
// window (expiry plus RetainExpired) has already passed deletes the key
// instead. The store keeps e.Value as given: do not modify it afterwards.
func (s *Store) Set(key string, e Entry) error {
	return s.s.Set(key, cache.Entry{Value: e.Value, ExpiresAt: e.ExpiresAt})
}

// Delete removes key at once.
func (s *Store) Delete(key string) { s.s.Delete(key) }

// Stats returns a snapshot of the counters. It counts the entries, which
// takes time proportional to their number.
func (s *Store) Stats() Stats {
	st := s.s.Stats()
	return Stats{
		Hits: st.Hits, Misses: st.Misses, Sets: st.Sets, Rejected: st.Rejected,
		Deletes: st.Deletes, Entries: st.Entries, UsedBytes: st.UsedBytes, MaxBytes: st.MaxBytes,
	}
}

// Close releases the store and stops ristretto's goroutines. It waits for
// calls in progress; later calls are no-ops. It is idempotent.
func (s *Store) Close() { s.s.Close() }

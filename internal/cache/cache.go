package cache

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"
)

// ErrRejected reports that the admission policy refused an entry because the
// store is at its byte budget and the entry was judged less valuable than the
// entries it would evict, or because the entry alone exceeds the budget.
var ErrRejected = errors.New("cache: entry rejected by the admission policy (store full or entry too large)")

// ErrClosed is returned by Set after Close.
var ErrClosed = errors.New("cache: store closed")

// EntryOverheadBytes is charged against the budget for each entry on top of
// len(key)+len(value): our item header plus ristretto's internal bookkeeping
// (which ristretto adds itself, about 56 bytes). It makes MaxBytes a budget of
// memory, not only of payload.
const EntryOverheadBytes = 48

// setAttempts bounds the retries of a Set that ristretto dropped from its
// buffer or that lost a race inside it.
const setAttempts = 4

// Config sizes a Store.
type Config struct {
	// MaxBytes is the budget in bytes of keys, values and per-entry overhead.
	// Must be > 0.
	MaxBytes int64
	// NumCounters is the number of TinyLFU frequency counters (about 3 bytes
	// each); ristretto advises 10x the expected number of entries. Zero derives
	// it from MaxBytes assuming 256-byte entries, clamped to [1024, 4M].
	NumCounters int64
	// RetainExpired keeps entries this long past their expiry so that the
	// engine can serve them stale when a refetch fails. Zero drops entries at
	// expiry. Must be >= 0.
	RetainExpired time.Duration
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.MaxBytes <= 0:
		return fmt.Errorf("cache: MaxBytes must be > 0, got %d", c.MaxBytes)
	case c.NumCounters < 0:
		return fmt.Errorf("cache: NumCounters must be >= 0, got %d", c.NumCounters)
	case c.RetainExpired < 0:
		return fmt.Errorf("cache: RetainExpired must be >= 0, got %v", c.RetainExpired)
	}
	return nil
}

func (c Config) numCounters() int64 {
	if c.NumCounters > 0 {
		return c.NumCounters
	}
	n := c.MaxBytes / 256 * 10
	return min(max(n, 1024), 4<<20)
}

// Entry is what the store keeps for a key.
type Entry struct {
	// Value is the cached bytes; nil for a negative entry.
	Value []byte
	// ExpiresAt is the absolute expiry; zero means never.
	ExpiresAt time.Time
	// Negative marks a remembered "not found" from the DataSource.
	Negative bool
}

// Fresh reports whether e has not expired yet. It reads the clock only for
// entries that have an expiry.
func (e Entry) Fresh() bool {
	return e.ExpiresAt.IsZero() || time.Now().Before(e.ExpiresAt)
}

// item is stored by value, inline in ristretto's map slot: a pointer would
// cost every hit one more cache miss.
type item struct {
	Entry
	key     string // kept so that Range can list keys (ristretto stores only hashes)
	version uint64
}

// Store is one keyspace's local store. All methods are safe for concurrent
// use, and safe (no-ops, or ErrClosed) after Close.
type Store struct {
	cfg Config

	c *ristretto.Cache[string, item]
	// guard keeps Close from running concurrently with any other call.
	guard closeGuard

	closeOnce sync.Once
	version   atomic.Uint64
	stats     counters
}

type counters struct {
	sets, rejected, deletes atomic.Int64
}

// Stats is a point-in-time snapshot of a store.
type Stats struct {
	Hits, Misses   int64 // Get outcomes (Peek is not counted)
	Sets, Rejected int64 // acknowledged and refused Sets
	Deletes        int64
	Entries        int64 // entries currently held (O(n) to count)
	UsedBytes      int64 // budget in use, overhead included
	MaxBytes       int64
}

// New builds a store; it starts ristretto's background goroutines, which
// Close stops.
func New(cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c, err := ristretto.NewCache(&ristretto.Config[string, item]{
		NumCounters: cfg.numCounters(),
		MaxCost:     cfg.MaxBytes,
		BufferItems: 64,
		// A write never replaces a newer one (see package doc, guarantee 2).
		ShouldUpdate: func(cur, prev item) bool { return cur.version > prev.version },
	})
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	return &Store{cfg: cfg, c: c}, nil
}

// Get returns the entry for key, expired or not (entries are kept for
// RetainExpired past expiry): check Entry.Fresh. The returned Value aliases
// the store's memory and must not be modified; copy it before handing it out.
// Get counts a hit or a miss (see Stats); use Peek for lookups that should
// not count.
func (s *Store) Get(key string) (Entry, bool) {
	return s.get(key, true)
}

// Peek is Get without counting.
func (s *Store) Peek(key string) (Entry, bool) {
	return s.get(key, false)
}

// Version returns the version the store gave its latest write: every write
// after this call gets a larger one.
func (s *Store) Version() uint64 { return s.version.Load() }

// PeekVersion is Peek that also returns the version of the write that
// stored the entry (see Version).
func (s *Store) PeekVersion(key string) (Entry, uint64, bool) {
	slot, ok := s.guard.enter()
	if !ok {
		return Entry{}, 0, false
	}
	defer s.guard.exit(slot)
	it, found := s.c.Get(key)
	if !found {
		return Entry{}, 0, false
	}
	return it.Entry, it.version, true
}

func (s *Store) get(key string, count bool) (Entry, bool) {
	slot, ok := s.guard.enter()
	if !ok {
		return Entry{}, false
	}
	it, found := s.c.Get(key)
	if count {
		// The slot's cache line is already ours (enter just wrote it), so
		// counting here is far cheaper than a shared counter.
		s.guard.count(slot, found)
	}
	s.guard.exit(slot)
	if !found {
		return Entry{}, false
	}
	return it.Entry, true
}

// Set stores e under key and returns once the entry is readable by Get, or
// ErrRejected when the admission policy refused it. An entry whose retention
// window (expiry plus RetainExpired) has already passed deletes the key
// instead. The store keeps e.Value as given: do not modify it afterwards.
func (s *Store) Set(key string, e Entry) error {
	slot, ok := s.guard.enter()
	if !ok {
		return ErrClosed
	}
	defer s.guard.exit(slot)
	var ttl time.Duration
	if !e.ExpiresAt.IsZero() {
		ttl = time.Until(e.ExpiresAt.Add(s.cfg.RetainExpired))
		if ttl <= 0 {
			s.c.Del(key)
			return nil
		}
	}
	it := item{Entry: e, key: key, version: s.version.Add(1)}
	cost := int64(len(key)+len(e.Value)) + EntryOverheadBytes
	stored := func() bool {
		cur, ok := s.c.Get(key)
		return ok && cur.version >= it.version
	}
	for range setAttempts {
		s.c.SetWithTTL(key, it, cost, ttl)
		// ristretto updates a key it holds in place, at once; only a new
		// key goes through its buffer, which Wait drains. An update then
		// costs no hand-off to ristretto's goroutine.
		done := stored()
		if !done {
			s.c.Wait()
			done = stored()
		}
		if done {
			s.stats.sets.Add(1)
			return nil
		}
		// Dropped from the set buffer, refused because an older admission of
		// the same key was still queued, or rejected by the policy: retry.
		// A retry of a key that is now present is an in-place update.
	}
	s.stats.rejected.Add(1)
	return ErrRejected
}

// SetAsync stores e under key without waiting for ristretto's admission:
// the entry becomes readable shortly after, or never (dropped when
// ristretto's buffer is full, or refused by the admission policy). A Delete
// issued after SetAsync returns is applied after it (ristretto passes both
// through one ordered buffer), so an entry removed by a later Delete never
// reappears. For best-effort copies (the engine's near cache) on paths
// where Set's wait would cost more than a lost copy.
func (s *Store) SetAsync(key string, e Entry) {
	slot, ok := s.guard.enter()
	if !ok {
		return
	}
	defer s.guard.exit(slot)
	var ttl time.Duration
	if !e.ExpiresAt.IsZero() {
		if ttl = time.Until(e.ExpiresAt.Add(s.cfg.RetainExpired)); ttl <= 0 {
			return
		}
	}
	it := item{Entry: e, key: key, version: s.version.Add(1)}
	s.c.SetWithTTL(key, it, int64(len(key)+len(e.Value))+EntryOverheadBytes, ttl)
}

// Delete removes key at once.
func (s *Store) Delete(key string) {
	slot, ok := s.guard.enter()
	if !ok {
		return
	}
	defer s.guard.exit(slot)
	s.c.Del(key)
	s.stats.deletes.Add(1)
}

// Settle returns once every SetAsync and Delete issued before it has been
// applied. ristretto removes a key at once but applies queued sets later,
// so an earlier SetAsync could reinsert a deleted key until the delete
// queued behind it is applied: after Deletes, one Settle rules that out
// for them all.
func (s *Store) Settle() {
	slot, ok := s.guard.enter()
	if !ok {
		return
	}
	defer s.guard.exit(slot)
	s.c.Wait()
}

// Stats returns a snapshot of the counters, Entries included: O(entries),
// see Counters.
func (s *Store) Stats() Stats {
	st := s.Counters()
	slot, ok := s.guard.enter()
	if !ok {
		return st
	}
	defer s.guard.exit(slot)
	s.c.IterValues(func(item) bool { st.Entries++; return false })
	return st
}

// Counters is Stats without Entries (left 0): O(1), for callers that poll
// (diagnostics endpoints), since counting entries walks the store.
func (s *Store) Counters() Stats {
	hits, misses := s.guard.counts()
	st := Stats{
		Hits:     hits,
		Misses:   misses,
		Sets:     s.stats.sets.Load(),
		Rejected: s.stats.rejected.Load(),
		Deletes:  s.stats.deletes.Load(),
		MaxBytes: s.cfg.MaxBytes,
	}
	slot, ok := s.guard.enter()
	if !ok {
		return st
	}
	defer s.guard.exit(slot)
	st.UsedBytes = s.c.MaxCost() - s.c.RemainingCost()
	return st
}

// Range calls fn for each entry held (in no particular order) until fn
// returns false. Entries past their retention window are skipped. It holds a
// ristretto shard lock while calling fn: fn must not call back into the store.
// It is O(entries): for diagnostics, warmup and hand-off, not the hot path.
func (s *Store) Range(fn func(key string, e Entry) bool) {
	slot, ok := s.guard.enter()
	if !ok {
		return
	}
	defer s.guard.exit(slot)
	s.c.IterValues(func(it item) bool { return !fn(it.key, it.Entry) })
}

// Close releases the store and stops ristretto's goroutines. It waits for
// calls in progress; later calls are no-ops. It is idempotent.
func (s *Store) Close() {
	s.closeOnce.Do(func() {
		s.guard.close()
		s.c.Close()
	})
}

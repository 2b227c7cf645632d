package prefetch

import (
	"cmp"
	"hash/maphash"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"

	"github.com/distcache/distcache/warmup"
)

const (
	trackerShards = 16 // power of two
	// minShardCap keeps small trackers from evicting candidates that merely
	// hashed into the same shard.
	minShardCap = 16
	// evictionSamples is how many random slots a full shard looks at to
	// pick the one to replace (the least counted of them).
	evictionSamples = 5
	// admitOneIn: a full shard admits a new key on one access in
	// admitOneIn, so a stream of one-off keys mostly costs a lookup, while
	// a key that keeps coming back gets in after a few accesses.
	admitOneIn = 8
)

// Tracker counts the accesses of keys and reports the most requested ones
// recently. It keeps a bounded number of candidates in sharded tables. A
// full shard admits a new key only on some of its accesses and then
// replaces the least counted of a few randomly sampled entries, so one-off
// keys cannot push out hot ones (the idea of sampled LFU eviction). Decay
// halves every count, so keys nobody asks for any more age out.
//
// A nil *Tracker is valid and records nothing. All methods are safe for
// concurrent use.
type Tracker struct {
	seed        maphash.Seed
	shardCap    int
	sampleEvery uint32
	shards      [trackerShards]trackerShard
}

// trackerShard indexes its slots by the key's 64-bit hash (the key itself
// is compared on a hit), so the map never hashes strings.
type trackerShard struct {
	mu    sync.Mutex // guards index and slots
	index map[uint64]int32
	slots []slot
	_     [24]byte // keep shards on separate cache lines
}

type slot struct {
	hash  uint64
	key   string
	count uint32
}

// NewTracker returns a tracker sized for cfg.MaxHotKeys (after defaults),
// or nil when cfg.MaxHotKeys is negative (tracking off).
func NewTracker(cfg warmup.Config) *Tracker {
	cfg = cfg.WithDefaults()
	if cfg.MaxHotKeys < 0 {
		return nil
	}
	t := &Tracker{
		seed:        maphash.MakeSeed(),
		shardCap:    max(4*cfg.MaxHotKeys/trackerShards, minShardCap),
		sampleEvery: uint32(max(cfg.SampleEvery, 1)),
	}
	for i := range t.shards {
		t.shards[i].index = make(map[uint64]int32, t.shardCap)
		t.shards[i].slots = make([]slot, 0, t.shardCap)
	}
	return t
}

// Record counts one access of key. It hashes the key once and takes one
// shard lock; it allocates only when a new key enters the tracker (the
// string is copied, so the caller's bytes are never retained).
func (t *Tracker) Record(key string) {
	if t == nil {
		return
	}
	if t.sampleEvery > 1 && rand.Uint32N(t.sampleEvery) != 0 {
		return
	}
	h := maphash.String(t.seed, key)
	s := &t.shards[h>>60] // top bits pick the shard; trackerShards == 16
	s.mu.Lock()
	defer s.mu.Unlock()
	if i, ok := s.index[h]; ok {
		sl := &s.slots[i]
		if sl.key == key {
			if sl.count < ^uint32(0) {
				sl.count++
			}
			return
		}
		// A 64-bit hash collision: the newcomer takes the slot.
		*sl = slot{hash: h, key: strings.Clone(key), count: 1}
		return
	}
	if len(s.slots) < t.shardCap {
		s.index[h] = int32(len(s.slots))
		s.slots = append(s.slots, slot{hash: h, key: strings.Clone(key), count: 1})
		return
	}
	if rand.Uint32N(admitOneIn) != 0 {
		return
	}
	victim := rand.IntN(len(s.slots))
	for range evictionSamples - 1 {
		if j := rand.IntN(len(s.slots)); s.slots[j].count < s.slots[victim].count {
			victim = j
		}
	}
	delete(s.index, s.slots[victim].hash)
	s.slots[victim] = slot{hash: h, key: strings.Clone(key), count: 1}
	s.index[h] = int32(victim)
}

// Decay halves every count and forgets keys whose count reaches zero.
func (t *Tracker) Decay() {
	if t == nil {
		return
	}
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for j := 0; j < len(s.slots); {
			sl := &s.slots[j]
			if sl.count >>= 1; sl.count > 0 {
				j++
				continue
			}
			// Swap-remove: the last slot moves into j.
			delete(s.index, sl.hash)
			last := len(s.slots) - 1
			if j != last {
				s.slots[j] = s.slots[last]
				s.index[s.slots[j].hash] = int32(j)
			}
			s.slots[last] = slot{}
			s.slots = s.slots[:last]
		}
		s.mu.Unlock()
	}
}

// Hot returns up to n keys whose estimated hits are at least minHits, most
// requested first (ties by key). n <= 0 returns nil.
func (t *Tracker) Hot(n, minHits int) []warmup.HotKey {
	if t == nil || n <= 0 {
		return nil
	}
	var out []warmup.HotKey
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for _, sl := range s.slots {
			if hits := int64(sl.count) * int64(t.sampleEvery); hits >= int64(minHits) {
				out = append(out, warmup.HotKey{Key: sl.key, Hits: hits})
			}
		}
		s.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b warmup.HotKey) int {
		if c := cmp.Compare(b.Hits, a.Hits); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	if len(out) > n {
		out = out[:n:n]
	}
	return out
}

// Len returns the number of keys tracked.
func (t *Tracker) Len() int {
	if t == nil {
		return 0
	}
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += len(s.slots)
		s.mu.Unlock()
	}
	return n
}

// Keys returns the keys of hot, in order.
func Keys(hot []warmup.HotKey) []string {
	out := make([]string, len(hot))
	for i, h := range hot {
		out[i] = h.Key
	}
	return out
}

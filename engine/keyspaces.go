package engine

import (
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
	"github.com/distcache/distcache/cache"
	"github.com/distcache/distcache/keyspace"
)

// ksState is one keyspace on this node: its definition, resolved settings,
// local store, in-flight loads and DataSource protection. It is immutable
// except for the store contents, the flight tables and the counters; replacing
// a keyspace (UpdateKeySpace) builds a new ksState.
type ksState struct {
	name     string
	ks       keyspace.KeySpace
	settings keyspace.Settings
	store    *cache.Store
	protect  *protection
	// near holds values fetched from their owners (nil: near cache off); see
	// near.go.
	near *cache.Store

	// loads coalesces DataSource fetches per key (owner side); forwards
	// coalesces forwarded Gets per key (caller side).
	loads    flightTable
	forwards flightTable

	// pending holds the keys whose write this node is applying as their
	// owner (see applyAsOwner).
	pending pendingWrites

	// recent guards hand-offs against resurrecting values (handoff.go).
	recent recentWrites

	// flushFrom is the store version at the latest partition-flush decision:
	// while that flush is pending, only entries with a larger version
	// (written after it) may answer reads, and the flush spares them.
	flushFrom atomic.Uint64

	stats ksCounters
	// adminEntries is the entry count the admin endpoints report.
	adminEntries entryCount
}

func newKSState(ks keyspace.KeySpace, s keyspace.Settings, log *slog.Logger) (*ksState, error) {
	store, err := cache.New(cache.Config{MaxBytes: s.MaxBytes, RetainExpired: s.MaxStale})
	if err != nil {
		return nil, err
	}
	st := &ksState{
		name:     ks.Name(),
		ks:       ks,
		settings: s,
		store:    store,
		protect:  newProtection(ks.Name(), s, log),
	}
	if s.NearCacheMaxBytes > 0 {
		if st.near, err = cache.New(cache.Config{MaxBytes: s.NearCacheMaxBytes}); err != nil {
			store.Close()
			return nil, err
		}
	}
	st.loads.init()
	st.forwards.init()
	return st, nil
}

// close releases the stores.
func (st *ksState) close() {
	st.store.Close()
	if st.near != nil {
		st.near.Close()
	}
}

// ksTable is an immutable snapshot of the keyspaces, swapped atomically.
type ksTable map[string]*ksState

func (t ksTable) names() []string {
	out := make([]string, 0, len(t))
	for n := range t {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// flightTable holds the in-flight operations of one kind, per key, behind
// striped locks. The stripe lock also orders a key's writes: Put and Delete
// take it, supersede the key's in-flight load, and change the store while
// holding it, and a finishing load stores its value under it only if it was
// not superseded. So a load that started before a Put can never overwrite it.
type flightTable struct {
	stripes [flightStripes]flightStripe
}

const flightStripes = 64

type flightStripe struct {
	mu      sync.Mutex // guards flights
	flights map[string]*flight
	_       [40]byte
}

func (t *flightTable) init() {
	for i := range t.stripes {
		t.stripes[i].flights = map[string]*flight{}
	}
}

func (t *flightTable) stripe(key string) *flightStripe {
	return &t.stripes[xxhash.Sum64String(key)%flightStripes]
}

// flight is one in-flight load or forward of a key. Waiters block on done;
// val and err are written once before done is closed.
type flight struct {
	done chan struct{}
	val  []byte // shared by all waiters: each copies before returning it
	err  error
	// superseded is set (under the stripe lock) by a Put or Delete of the key
	// while the flight runs: its result must not be stored.
	superseded bool
	// gen is the flush generation the flight began under (see trust.go):
	// after a flush decision its result is not stored.
	gen uint64
	// finished and abandoned (loads only, under the stripe lock): the load
	// published its result, or its context ended first and its result is
	// dropped (see loads.go). Exactly one of the two publishes.
	finished, abandoned bool
	waiters             atomic.Int32
}

// ksCounters are the per-keyspace statistics of this node.
type ksCounters struct {
	// Hits and misses are counted by the store (cheaply, on its reader
	// slots). remoteGets counts keys asked for here and owned elsewhere;
	// served counts keys looked up here for peers (see snapshot).
	remoteGets, negativeHits, nearHits        atomic.Int64
	fetches, fetchErrors, loadsDeduped        atomic.Int64
	forwarded, forwardsDeduped, forwardErrors atomic.Int64
	served, degraded, staleServed             atomic.Int64
	puts, deletes, rejected                   atomic.Int64
	rateLimited, circuitOpen                  atomic.Int64
	handedOff, handoffsTaken                  atomic.Int64
}

package engine

import (
	"log/slog"
	"sort"
	"sync/atomic"

	"github.com/distcache/distcache/internal/cache"
	"github.com/distcache/distcache/internal/flight"
	"github.com/distcache/distcache/keyspace"
)

// ksState is one keyspace on this node: its definition, resolved settings,
// local store, in-flight loads and DataSource protection. It is immutable
// except for the store contents, the flight tables and the counters; replacing
// a keyspace (UpdateKeySpace) builds a new ksState.
type ksState struct {
	name     string
	ks       keyspace.KeySpace
	settings ksSettings
	store    *cache.Store
	protect  *protection
	// near holds values fetched from their owners (nil: near cache off); see
	// near.go.
	near *cache.Store
	// renewQuietUntil is when near copies may be renewed again after a
	// renewal failed (unix ns; near_renew.go).
	renewQuietUntil atomic.Int64

	// loads coalesces DataSource fetches per key (owner side); forwards
	// coalesces forwarded Gets per key (caller side).
	loads    flight.Table
	forwards flight.Table

	// pending holds the keys whose write this node is applying as their
	// owner (see applyAsOwner).
	pending pendingWrites

	// holders records the peers that may hold a copy of the keys this node
	// answered for (holders.go); shared with the ksState that replaces this
	// one (UpdateKeySpace), since the peers' copies outlive the swap.
	holders *holderTable

	// recent guards hand-offs against resurrecting values (handoff.go).
	recent recentWrites
	// parked holds hand-offs that arrived while a load of their key was in
	// flight here (takeover.go).
	parked parkedHandoffs
	// moved holds entries recently handed to their new owner (takeover.go).
	moved movedEntries
	// rep is the keyspace's replication (replicas.go); nil with one copy.
	rep *replicaState

	// flushFrom is the store version at the latest partition-flush decision:
	// while that flush is pending, only entries with a larger version
	// (written after it) may answer reads, and the flush spares them.
	flushFrom atomic.Uint64

	stats ksCounters
	// tel holds call counts and the Get latency histogram (instruments.go).
	tel ksTelemetry
	// adminEntries is the entry count the admin endpoints report.
	adminEntries entryCount
}

func newKSState(ks keyspace.KeySpace, s ksSettings, replicas int, log *slog.Logger) (*ksState, error) {
	owned, copies := replicaBudget(s.MaxBytes, replicas)
	store, err := cache.New(cache.Config{MaxBytes: owned, RetainExpired: s.MaxStale})
	if err != nil {
		return nil, err
	}
	st := &ksState{
		name:     ks.Name(),
		ks:       ks,
		settings: s,
		store:    store,
		protect:  newProtection(ks.Name(), s, log),
		holders:  newHolderTable(),
	}
	if s.NearCacheMaxBytes > 0 {
		if st.near, err = cache.New(cache.Config{MaxBytes: s.NearCacheMaxBytes}); err != nil {
			store.Close()
			return nil, err
		}
	}
	if replicas > 1 {
		st.rep = &replicaState{n: replicas}
		if st.rep.store, err = cache.New(cache.Config{MaxBytes: copies}); err != nil {
			st.close()
			return nil, err
		}
	}
	return st, nil
}

// close releases the stores.
func (st *ksState) close() {
	st.store.Close()
	if st.near != nil {
		st.near.Close()
	}
	if st.rep != nil && st.rep.store != nil {
		st.rep.store.Close()
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

func (t ksTable) close() {
	for _, st := range t {
		st.close()
	}
}

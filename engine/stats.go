package engine

import (
	"sort"
	"sync/atomic"
	"time"

	"github.com/distcache/distcache/internal/cache"
)

// Stats is a point-in-time snapshot of this node's counters.
type Stats struct {
	Node      string
	Members   int
	KeySpaces []KeySpaceStats
	// EventsDropped counts membership events lost by Events subscribers
	// whose buffer was full.
	EventsDropped int64
}

// KeySpaceStats are one keyspace's counters on this node.
type KeySpaceStats struct {
	Name string
	// Gets counts keys asked for through Get and GetMany on this node; Hits
	// and Misses count this node's store lookups as owner (including those
	// made for peers); NegativeHits are hits on remembered misses.
	Gets, Hits, Misses, NegativeHits int64
	// Fetches counts DataSource calls made by this node (after coalescing);
	// FetchErrors those that failed (not-found excluded); FetchesCoalesced
	// the callers that joined an in-flight fetch instead of starting one.
	Fetches, FetchErrors, FetchesCoalesced int64
	// Forwarded counts requests sent to owners; ForwardsCoalesced callers
	// that joined an in-flight forward; ForwardErrors forwards that failed to
	// reach the owner; Served keys looked up for peers; Degraded local loads
	// made because the owner could not serve.
	Forwarded, ForwardsCoalesced, ForwardErrors, Served, Degraded int64
	// StaleServed counts expired values returned because the refetch failed.
	StaleServed int64
	// NearHits counts Gets of keys owned elsewhere served from this node's
	// near cache (included in Gets; see WithKeySpaceNearCache); NearEntries
	// and NearUsedBytes describe the near cache (zero when it is off).
	NearHits, NearEntries, NearUsedBytes int64
	// Puts and Deletes applied on this node; Rejected writes refused by a
	// full store.
	Puts, Deletes, Rejected int64
	// InvalidationsSent counts the requests this node sent, as the owner of
	// written keys, to drop copies elsewhere (one per node and write batch;
	// concurrent writes to one node may share one: see
	// WithKeySpaceNearCache). HolderRecords is the number of (key, node)
	// copies it tracks for that.
	InvalidationsSent, HolderRecords int64
	// PushesSent counts written values this node, as their owner, sent to
	// nodes whose near copies the write dropped; PushesTaken those this
	// node received and kept in its near cache in place of the dropped copy.
	PushesSent, PushesTaken int64
	// NearRenewals counts the forwards this node sent in the background to
	// renew near copies that were read often (they are not in Forwarded).
	NearRenewals int64
	// RateLimited and CircuitOpen count fetches refused by the protections.
	RateLimited, CircuitOpen int64
	// HandedOff counts entries sent to their new owner on a ring change or a
	// graceful leave; HandoffsTaken those received and stored here.
	HandedOff, HandoffsTaken int64
	// With replicas (WithReplicas): ReplicaEntries and ReplicaUsedBytes
	// describe the copies this node holds for other owners (within its
	// budget, see the package doc); ReplicaWrites counts writes applied to
	// them, ReplicaFills loaded values received from owners, ReplicaReads
	// Gets served from a copy (the owner was unreachable), Repairs entries
	// pushed to replicas by repair (as owner).
	ReplicaEntries, ReplicaUsedBytes                   int64
	ReplicaWrites, ReplicaFills, ReplicaReads, Repairs int64
	// BreakerState is "closed", "half-open", "open", or "" without a breaker.
	BreakerState string
	// Entries and UsedBytes describe the local store; MaxBytes its budget.
	Entries, UsedBytes, MaxBytes int64
	// GetP99 is the 99th percentile duration of Get calls on this node over
	// the last minute or so: since the newest of the earlier readings (Stats,
	// the admin endpoints, a metrics collection) that is at least a minute
	// old, or over the keyspace's lifetime on this node when there is none.
	// Read every few seconds, that is a window of one to about 1.2 minutes;
	// read rarely, the time since the previous reading. It comes from a
	// fixed-bucket histogram (bounds from 10 µs to 10 s), interpolated
	// within a bucket; Gets answered from memory (local and near hits) are
	// not timed and count as under 10 µs. Zero without Gets in the window.
	GetP99 time.Duration
}

// Stats returns this node's counters, keyspaces sorted by name.
func (e *Engine) Stats() Stats {
	s := Stats{EventsDropped: e.events.dropped.Load()}
	if e.checkState() == nil {
		s.Node = e.cl.Self().Name
		s.Members = e.cl.Ring().Len()
	}
	for _, st := range *e.keyspaces.Load() {
		s.KeySpaces = append(s.KeySpaces, st.snapshot())
	}
	sort.Slice(s.KeySpaces, func(i, j int) bool { return s.KeySpaces[i].Name < s.KeySpaces[j].Name })
	return s
}

// KeySpace returns the stats of one keyspace (false if unknown).
func (s Stats) KeySpace(name string) (KeySpaceStats, bool) {
	for _, k := range s.KeySpaces {
		if k.Name == name {
			return k, true
		}
	}
	return KeySpaceStats{}, false
}

// snapshot returns the keyspace's counters and the entry counts of its
// stores, which walks them.
func (st *ksState) snapshot() KeySpaceStats { return st.snapshotOf((*cache.Store).Stats) }

// counters is snapshot in O(1): the entry counts are left 0.
func (st *ksState) counters() KeySpaceStats { return st.snapshotOf((*cache.Store).Counters) }

// snapshotOf builds the snapshot with stats reading each store.
func (st *ksState) snapshotOf(stats func(*cache.Store) cache.Stats) KeySpaceStats {
	c := &st.stats
	cs := stats(st.store)
	cs.Hits -= c.relookedHits.Load()
	cs.Misses -= c.relookedMisses.Load()
	var ns cache.Stats
	if st.near != nil {
		ns = stats(st.near)
	}
	var rs cache.Stats
	var rep struct{ writes, fills, reads, repairs int64 }
	if st.rep != nil {
		rs = stats(st.rep.store)
		rep.writes, rep.fills = st.rep.writes.Load(), st.rep.fills.Load()
		rep.reads, rep.repairs = st.rep.reads.Load(), st.rep.repairs.Load()
	}
	out := KeySpaceStats{
		ReplicaEntries: rs.Entries, ReplicaUsedBytes: rs.UsedBytes,
		ReplicaWrites: rep.writes, ReplicaFills: rep.fills, ReplicaReads: rep.reads, Repairs: rep.repairs,
		Name: st.name,
		// Every owner-side lookup is a store Get; those made for peers are
		// not this node's Gets, keys forwarded from here are.
		Gets: cs.Hits + cs.Misses + st.tel.uncountedLookups.Load() - c.served.Load() + c.remoteGets.Load(),
		Hits: cs.Hits, Misses: cs.Misses, NegativeHits: c.negativeHits.Load(),
		Fetches: c.fetches.Load(), FetchErrors: c.fetchErrors.Load(), FetchesCoalesced: c.fetchesCoalesced.Load(),
		Forwarded: c.forwarded.Load(), ForwardsCoalesced: c.forwardsCoalesced.Load(), ForwardErrors: c.forwardErrors.Load(),
		Served: c.served.Load(), Degraded: c.degraded.Load(), StaleServed: c.staleServed.Load(),
		NearHits: c.nearHits.Load(), NearEntries: ns.Entries, NearUsedBytes: ns.UsedBytes,
		Puts: c.puts.Load(), Deletes: c.deletes.Load(), Rejected: c.rejected.Load(),
		InvalidationsSent: c.invalidationsSent.Load(), HolderRecords: st.holders.records(),
		PushesSent: c.pushesSent.Load(), PushesTaken: c.pushesTaken.Load(), NearRenewals: c.nearRenewals.Load(),
		RateLimited: c.rateLimited.Load(), CircuitOpen: c.circuitOpen.Load(),
		HandedOff: c.handedOff.Load(), HandoffsTaken: c.handoffsTaken.Load(),
		BreakerState: st.protect.breakerState(),
		Entries:      cs.Entries, UsedBytes: cs.UsedBytes, MaxBytes: cs.MaxBytes,
	}
	h := &st.tel.getLatency
	out.GetP99 = h.p99(time.Now(), h.counts(st.getCalls(&out)-h.timed()))
	return out
}

// ksCounters are the per-keyspace statistics of this node.
type ksCounters struct {
	// Hits and misses are counted by the store (cheaply, on its reader
	// slots). remoteGets counts keys asked for here and owned elsewhere;
	// served counts keys looked up here for peers (see snapshot).
	remoteGets, negativeHits, nearHits          atomic.Int64
	fetches, fetchErrors, fetchesCoalesced      atomic.Int64
	forwarded, forwardsCoalesced, forwardErrors atomic.Int64
	served, degraded, staleServed               atomic.Int64
	puts, deletes, rejected                     atomic.Int64
	invalidationsSent, pushesSent, pushesTaken  atomic.Int64
	nearRenewals                                atomic.Int64
	rateLimited, circuitOpen                    atomic.Int64
	handedOff, handoffsTaken                    atomic.Int64
	// relookedHits and relookedMisses are store lookups of the inline
	// serving path that did not answer (a stale entry, a miss): the request
	// goes on to a second, counted lookup, so these are taken back out.
	relookedHits, relookedMisses atomic.Int64
}

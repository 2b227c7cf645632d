package engine

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
)

// Who may hold a copy of a key, as its owner sees it.
//
// A write's owner invalidates only the nodes that can hold a copy of the
// key (see invalidateCopies), so it must know them. Other nodes get a
// key's value only by asking its owner (opGet), and the owner records each
// asker, before reading the value it answers with, as a holder of the key
// for a lease:
//   - every Get: the asker's forward in flight, which later Gets on that
//     node may join, for forwardJoinWindow (the asker lets Gets join a
//     forward only that long after it started, before the request left);
//   - a Get for a near cache (getFlagExpiry) also for the near lease
//     (nearLease), which the answer carries: the asker keeps its copy at
//     most that long, counted from before it sent the request, so the copy
//     lapses before the owner's record does.
//
// A write claims its keys first (pendingWrites) and then takes their
// records: a Get served before the claim was recorded before it, and one
// served after it waits for the write. So every node that may hold the
// value a write replaces is invalidated.
//
// A holder that the write cannot reach (cut off, crashed, paused) keeps its
// copy, so the write waits until that holder's lease has lapsed before it
// is acknowledged (invalidateCopies): the holder counts the lease from
// before it asked, so its copy, and its forward's join window, have lapsed
// by then whatever the clocks say. The lease thus bounds both how long a
// copy lives and how long an unreachable holder can hold up a write.
//
// Memory is bounded: at most maxHolderRecords records per keyspace. A Get
// that finds the table full is not recorded; instead the table asks for a
// broadcast (every write invalidates every member, as if nothing were
// tracked) until that Get's lease has lapsed.

// maxHolderRecords bounds the (key, holder) records of one keyspace (about
// 100 bytes each, keys included).
const maxHolderRecords = 1 << 17

const holderStripes = 64

// holderTable is one keyspace's records, striped by key. The zero value is
// not usable: see newHolderTable.
type holderTable struct {
	t0 time.Time // monotonic origin of the until fields
	n  atomic.Int64
	// broadcastUntil (ns since t0): until then writes must invalidate every
	// member, because a Get was answered without being recorded.
	broadcastUntil atomic.Int64
	stripes        [holderStripes]holderStripe
}

type holderStripe struct {
	mu      sync.Mutex
	keys    map[string][]holderRecord
	sweptAt int64 // ns since t0 of the last sweep for room
}

type holderRecord struct {
	node  string
	until int64 // ns since t0
}

func newHolderTable() *holderTable { return &holderTable{t0: time.Now()} }

func (t *holderTable) now() int64 { return int64(time.Since(t.t0)) }

// record notes node as a holder of key for d from now. An empty node name
// (a peer that did not name itself) or a full table makes writes broadcast
// for d instead.
func (t *holderTable) record(key, node string, d time.Duration) {
	now := t.now()
	t.recordUntil(key, node, now, now+int64(d))
}

// restore records node as a holder of key until until again: a write that
// took the record failed before it reached the node.
func (t *holderTable) restore(key, node string, until time.Time) {
	t.recordUntil(key, node, t.now(), int64(until.Sub(t.t0)))
}

// recordUntil is record with the lease's end (both ns since t0).
func (t *holderTable) recordUntil(key, node string, now, until int64) {
	if until <= now {
		return
	}
	if node == "" {
		t.broadcastFor(until)
		return
	}
	s := &t.stripes[xxhash.Sum64String(key)%holderStripes]
	s.mu.Lock()
	defer s.mu.Unlock()
	ls := s.keys[key]
	for i := range ls {
		if ls[i].node == node {
			ls[i].until = max(ls[i].until, until)
			return
		}
	}
	if t.n.Load() >= maxHolderRecords && !t.sweepLocked(s, now) {
		t.broadcastFor(until)
		return
	}
	if s.keys == nil {
		s.keys = map[string][]holderRecord{}
	}
	s.keys[key] = append(ls, holderRecord{node: node, until: until})
	t.n.Add(1)
}

// sweepLocked drops the stripe's lapsed records, at most every 10 ms (a
// full table of live leases would otherwise be scanned on every Get), and
// reports whether the table has room now.
func (t *holderTable) sweepLocked(s *holderStripe, now int64) bool {
	if now-s.sweptAt >= int64(10*time.Millisecond) {
		s.sweptAt = now
		for k, ls := range s.keys {
			live := ls[:0]
			for _, l := range ls {
				if l.until > now {
					live = append(live, l)
				}
			}
			t.n.Add(int64(len(live) - len(ls)))
			if len(live) == 0 {
				delete(s.keys, k)
			} else {
				s.keys[k] = live
			}
		}
	}
	return t.n.Load() < maxHolderRecords
}

// broadcastFor makes writes broadcast until until (ns since t0).
func (t *holderTable) broadcastFor(until int64) {
	for {
		cur := t.broadcastUntil.Load()
		if cur >= until || t.broadcastUntil.CompareAndSwap(cur, until) {
			return
		}
	}
}

// broadcasting reports whether a write must invalidate every member: a Get
// answered without a record may still be held.
func (t *holderTable) broadcasting() bool { return t.now() < t.broadcastUntil.Load() }

// heldCopy is a node that may hold a copy of a key, and until when: the
// end of the lease its owner granted (monotonic).
type heldCopy struct {
	node  string
	until time.Time
}

// take removes key's records and appends the nodes whose lease is live to
// dst, once each, with the latest end of their leases.
func (t *holderTable) take(key string, dst []heldCopy) []heldCopy {
	s := &t.stripes[xxhash.Sum64String(key)%holderStripes]
	s.mu.Lock()
	ls, ok := s.keys[key]
	if ok {
		delete(s.keys, key)
	}
	s.mu.Unlock()
	if !ok {
		return dst
	}
	t.n.Add(-int64(len(ls)))
	now := t.now()
	for _, l := range ls {
		if l.until <= now {
			continue
		}
		until := t.t0.Add(time.Duration(l.until))
		if i := slices.IndexFunc(dst, func(h heldCopy) bool { return h.node == l.node }); i >= 0 {
			dst[i].until = later(dst[i].until, until)
		} else {
			dst = append(dst, heldCopy{l.node, until})
		}
	}
	return dst
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// records returns the number of records held (lapsed ones included until
// a write or a sweep drops them).
func (t *holderTable) records() int64 { return t.n.Load() }

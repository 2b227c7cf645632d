package engine

import (
	"time"

	"github.com/distcache/distcache/internal/cache"
	"github.com/distcache/distcache/internal/membership"
)

// leftGracefully reports whether name announced a graceful leave recently.
func (e *Engine) leftGracefully(name string) bool {
	e.leavingMu.Lock()
	defer e.leavingMu.Unlock()
	at, ok := e.leaving[name]
	return ok && time.Since(at) < time.Minute
}

func (e *Engine) forgetLeaving(name string) {
	e.leavingMu.Lock()
	defer e.leavingMu.Unlock()
	delete(e.leaving, name)
}

// noteLeaving records a peer's announcement (opLeaving), and opens the
// hand-off window: the leaver is about to hand us its entries, and writes
// from now on must be noted to guard them.
func (e *Engine) noteLeaving(name string) {
	e.ringChangedAt.Store(time.Now().UnixNano())
	e.leavingMu.Lock()
	defer e.leavingMu.Unlock()
	if e.leaving == nil || len(e.leaving) > 1024 {
		e.leaving = map[string]time.Time{}
	}
	e.leaving[name] = time.Now()
}

// judgeRingChange runs on the cluster's rebuild goroutine just before each
// swap, so that a Get reading the new ring already sees its verdict.
//
// A node that lost contact with at least half of the cluster it knew (it
// was cut off, or most peers failed) may be on the minority side of a
// partition, where the majority goes on writing: it stops trusting its
// store and caches nothing (see inMinority). When it reconnects it drops
// everything rather than serve values that were overwritten or deleted
// meanwhile. The majority side keeps its entries; it heard every write it
// owns. Members that left gracefully shrink the cluster on purpose and do
// not count as lost contact (scaling down and up again keeps the caches).
func (e *Engine) judgeRingChange(prev, next *membership.Ring) {
	if !next.Contains(e.selfName) {
		return // we left (Stop)
	}
	e.peakMembers = max(e.peakMembers, prev.Len(), next.Len())
	for _, m := range prev.Members() {
		if !next.Contains(m.Name) && e.leftGracefully(m.Name) {
			e.peakMembers = max(e.peakMembers-1, next.Len())
		}
	}
	if next.Len()*2 <= e.peakMembers && next.Len() < prev.Len() && !e.missedWrites {
		e.missedWrites = true
		e.minoritySince.Store(time.Now().UnixNano())
		e.markUntrusted("lost contact with half of the cluster: serving from the DataSource, refusing writes")
	}
	// Back in contact with a majority of the cluster it knew (not merely
	// one more member: around a heal the rings grow one admitted member at
	// a time, and the two sides still disagree on owners until then).
	if e.missedWrites && next.Len() > prev.Len() && next.Len()*2 > e.peakMembers {
		e.missedWrites = false
		e.minoritySince.Store(0)
		e.peakMembers = next.Len()
		e.markUntrusted("reconnected after losing contact with half of the cluster")
	}
}

// onRingChange runs on the cluster's rebuild goroutine after each swap; it
// must return quickly, so the purge runs on an engine goroutine.
func (e *Engine) onRingChange(prev, next *membership.Ring) {
	if !next.Contains(e.selfName) {
		// We left (Stop): keep the entries for handoffOnLeave.
		e.announceRingChange(nil, next)
		return
	}
	e.noteDeparted(prev, next)
	// Open a hand-off window: writes from now on are remembered to guard
	// against stale hand-offs (see handoff.go).
	e.prevRing.Store(prev)
	e.ringChangedAt.Store(time.Now().UnixNano())
	var changes []memberChange
	for _, m := range prev.Members() {
		switch {
		case next.Contains(m.Name):
		case e.leftGracefully(m.Name):
			changes = append(changes, memberChange{MemberLeft, m})
		default:
			e.noteFailed(m.Name)
			changes = append(changes, memberChange{MemberFailed, m})
		}
	}
	for _, m := range next.Members() {
		if !prev.Contains(m.Name) {
			e.forgetLeaving(m.Name) // back: a later disappearance is news
			changes = append(changes, memberChange{MemberJoined, m})
		}
	}
	e.announceRingChange(changes, next)
	e.noteReturning(prev, next)
	e.warmOnRingChange(prev, next)
	e.schedulePurge()
}

// schedulePurge runs purgeNotOwned on an engine goroutine, or asks the
// running one for one more round.
func (e *Engine) schedulePurge() {
	e.purgePending.Store(true)
	if e.purging.CompareAndSwap(false, true) {
		if !e.spawn(e.purgeNotOwned) {
			e.purging.Store(false)
		}
	}
}

// purgeNotOwned drops the local entries of keys this node no longer owns,
// repeating while ring changes keep arriving. It keeps the invariant that
// only a key's owner holds it (so a key whose ownership comes back later is
// not served from an old copy), and frees the memory for the keys the node
// now owns. With hand-off on, the values go to their new owners first (see
// handoff.go).
func (e *Engine) purgeNotOwned() {
	for {
		e.purgeRounds()
		e.purging.Store(false)
		// A ring change between the last round and the Store above found
		// purging set and left its purge to us.
		if !e.purgePending.Load() || !e.purging.CompareAndSwap(false, true) {
			return
		}
	}
}

func (e *Engine) purgeRounds() {
	for e.purgePending.Swap(false) {
		ring := e.cl.Ring()
		self := e.cl.Self().Name
		req := e.flushReq.Load()
		all := req != e.flushDone.Load()
		for _, st := range *e.keyspaces.Load() {
			e.rebalanceCopies(st, ring, all)
			var moved []string
			st.store.Range(func(key string, _ cache.Entry) bool {
				if all || ring.Owner(key).Name != self {
					moved = append(moved, key)
				}
				return e.base.Err() == nil
			})
			// A flushing node's entries may be stale: never hand those off.
			if !all && e.cfg.Handoff && len(moved) > 0 {
				e.handoff(e.base, st, ring, moved)
			}
			upTo := st.flushFrom.Load()
			for _, k := range moved {
				if all {
					e.flushLocal(st, k, upTo)
				} else {
					e.demote(st, ring, k)
					e.dropMoved(st, k)
				}
			}
			if !all {
				e.pushNewHolders(st, ring)
			}
			if len(moved) > 0 {
				e.log.Debug("dropped entries of keys now owned elsewhere", "keyspace", st.name, "entries", len(moved))
			}
			if st.near != nil {
				purgeNear(st, ring, req)
			}
		}
		if all && e.base.Err() == nil {
			e.flushDone.Store(req) // a later request makes another round
		}
	}
}

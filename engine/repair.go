package engine

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/distcache/distcache/cluster"
	"github.com/distcache/distcache/internal/cache"
	"github.com/distcache/distcache/internal/membership"
)

// Repair keeps each key's copies on its holders (replicas.go):
//
//   - After every ring change (purgeRounds, on the purge goroutine), each
//     node first takes over the copies of keys it now owns (promote: the
//     copy becomes an owned entry, unless it holds one or a load or write
//     of the key is under way), drops the copies of keys it no longer
//     holds, and keeps as a copy each owned entry whose key moved to another
//     owner but still has this node among its holders (demote). Then, as
//     owner, it pushes each entry to the holders that were not holders in
//     the ring it last repaired for.
//   - A write that a replica did not take queues its keys for that member
//     (missedReplicas); repairLoop pushes the owner's state of them (value,
//     or a delete) until the member takes it or leaves the ring.
//
// Pushes are writes in the replica protocol: sent under the keys' claim,
// with a fresh tag, so they order with the owner's writes and loads like a
// write does.

// repairEvery is how often repairLoop retries missed replications.
const repairEvery = 200 * time.Millisecond

// maxMissedKeys bounds the keys queued per member; past it the member's
// copies are re-established by the next ring change only.
const maxMissedKeys = 1 << 16

// missedReplicas are the keys, per member, whose replication failed.
type missedReplicas struct {
	mu   sync.Mutex // guards keys
	keys map[string]map[string]struct{}
}

func (m *missedReplicas) add(member string, keys []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.keys == nil {
		m.keys = map[string]map[string]struct{}{}
	}
	set := m.keys[member]
	if set == nil {
		set = map[string]struct{}{}
		m.keys[member] = set
	}
	for _, k := range keys {
		if len(set) >= maxMissedKeys {
			return
		}
		set[k] = struct{}{}
	}
}

// has reports whether key is queued for member.
func (m *missedReplicas) has(member, key string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.keys[member][key]
	return ok
}

// takeAll removes and returns the queue.
func (m *missedReplicas) takeAll() map[string][]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string][]string, len(m.keys))
	for member, set := range m.keys {
		for k := range set {
			out[member] = append(out[member], k)
		}
	}
	m.keys = nil
	return out
}

// repairLoop retries missed replications every repairEvery.
func (e *Engine) repairLoop() {
	every(e.base, repairEvery, func() {
		ring := e.cl.Ring()
		for _, st := range *e.keyspaces.Load() {
			if st.rep == nil {
				continue
			}
			for name, keys := range st.rep.missed.takeAll() {
				m, ok := ring.Member(name)
				if !ok {
					continue // gone: the ring change re-establishes its keys' copies
				}
				if e.missed.pending(name) {
					// It is to flush first (it missed an invalidation too):
					// a copy pushed before its flush decision would be
					// dropped with the rest.
					st.rep.missed.add(name, keys)
					continue
				}
				var mine []string
				for _, k := range keys {
					if ring.Owner(k).Name == e.selfName && st.holds(ring, k, name) {
						mine = append(mine, k)
					}
				}
				if failed := e.pushCopies(st, m, mine); len(failed) > 0 {
					st.rep.missed.add(name, failed)
				}
			}
		}
	})
}

// pushCopies sends member m this node's state of keys (as their owner):
// the value held, or a delete when it holds none. It returns the keys that
// were not taken.
func (e *Engine) pushCopies(st *ksState, m cluster.Member, keys []string) (failed []string) {
	for batch := range slices.Chunk(keys, maxKeysPerRequest) {
		ctx, cancel := context.WithTimeout(e.base, replicaMsgTTL)
		release, err := st.pending.claim(ctx, batch)
		if err != nil {
			cancel()
			failed = append(failed, batch...)
			continue
		}
		tag := e.replicaTag()
		items := make([]replicaItem, 0, len(batch))
		now := time.Now()
		for _, k := range batch {
			it := replicaItem{Entry: Entry{Key: k}, tag: tag, del: true}
			if ent, ok := st.store.Peek(k); ok && !ent.Negative && (ent.ExpiresAt.IsZero() || ent.ExpiresAt.After(now)) {
				it.Value, it.Expiry, it.del = ent.Value, ent.ExpiresAt, false
			}
			items = append(items, it)
		}
		deadline, _ := ctx.Deadline()
		err = e.peers.replicate(ctx, m, encodeReplicate(st.name, e.selfName, replicaWrite, items), deadline)
		release()
		cancel()
		if err != nil {
			failed = append(failed, batch...)
			continue
		}
		st.rep.repairs.Add(int64(len(batch)))
	}
	return failed
}

// rebalanceCopies re-establishes st's copies after a ring change (see the
// file comment). With all (a flush: this node may have missed writes) it
// drops every copy instead.
func (e *Engine) rebalanceCopies(st *ksState, ring *membership.Ring, all bool) {
	if st.rep == nil {
		return
	}
	var promote, drop []string
	upTo := st.rep.flushFrom.Load()
	st.rep.store.Range(func(k string, _ cache.Entry) bool {
		if all {
			// Copies stored since the flush decision are kept (see
			// replicaState.flushFrom).
			if _, v, ok := st.rep.store.PeekVersion(k); ok && v <= upTo {
				drop = append(drop, k)
			}
			return e.base.Err() == nil
		}
		switch {
		case !st.holds(ring, k, e.selfName):
			drop = append(drop, k)
		case ring.Owner(k).Name == e.selfName:
			promote = append(promote, k)
		}
		return e.base.Err() == nil
	})
	for _, k := range drop {
		st.rep.store.Delete(k)
	}
	if all {
		return
	}
	for _, k := range promote {
		e.promote(st, k)
	}
}

// promote makes this node's copy of key an owned entry.
func (e *Engine) promote(st *ksState, key string) {
	if st.pending.busy(key) {
		return // a write as owner drops the copy itself
	}
	l := st.loads.Lock(key)
	defer l.Unlock()
	if l.Current() != nil {
		// The load in flight, or the next one, takes the copy over
		// (takeOver); it must still find it.
		return
	}
	from, _, ent, ok := st.rep.copyOf(key, true)
	st.rep.store.Delete(key)
	if !ok {
		return
	}
	if _, present := st.store.Peek(key); present {
		return
	}
	if by, noted := st.recent.lastBy(key, time.Now()); noted && by != from {
		return
	}
	_ = st.store.Set(key, cache.Entry{Value: ent.Value, ExpiresAt: ent.ExpiresAt})
}

// demote keeps an owned entry whose key moved to another owner as a copy,
// when this node is still one of its holders.
func (e *Engine) demote(st *ksState, ring *membership.Ring, key string) {
	if st.rep == nil || !st.holds(ring, key, e.selfName) {
		return
	}
	ent, ok := st.store.Peek(key)
	if !ok || ent.Negative || !ent.Fresh() {
		return
	}
	_ = st.rep.store.Set(key, cache.Entry{Value: encodeCopy(e.selfName, e.replicaTag(), ent.Value), ExpiresAt: ent.ExpiresAt})
}

// pushNewHolders sends each entry this node owns in ring to the holders
// that were not holders in the ring last repaired for.
func (e *Engine) pushNewHolders(st *ksState, ring *membership.Ring) {
	if st.rep == nil {
		return
	}
	last := st.rep.lastRing.Swap(ring)
	byMember := map[cluster.Member][]string{}
	st.store.Range(func(k string, _ cache.Entry) bool {
		hs := ring.Replicas(k, st.rep.n)
		if hs[0].Name != e.selfName {
			return true
		}
		for _, m := range hs[1:] {
			if last == nil || !st.holds(last, k, m.Name) {
				byMember[m] = append(byMember[m], k)
			}
		}
		return e.base.Err() == nil
	})
	var wg sync.WaitGroup
	for m, keys := range byMember {
		wg.Go(func() {
			if failed := e.pushCopies(st, m, keys); len(failed) > 0 {
				st.rep.missed.add(m.Name, failed)
			}
		})
	}
	wg.Wait()
}

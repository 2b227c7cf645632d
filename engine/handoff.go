package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/distcache/distcache/cluster"
	"github.com/distcache/distcache/internal/cache"
	"github.com/distcache/distcache/internal/membership"
	"github.com/distcache/distcache/internal/transport"
)

// Hand-off: when keys move to another owner (a node joined, or this node is
// leaving), their entries are sent to the new owner instead of only being
// dropped, so a topology change does not empty the cache.
//
// The danger is resurrection: a hand-off still in flight when a Delete (or
// a Put, then an eviction) of the key completes on the new owner would bring
// back a value the cluster already replaced. So the receiver accepts a
// handed-off entry only when it has no entry and no load in flight for the
// key, and has not written or deleted the key itself since its last ring
// change (recentWrites, kept for handoffWindow); and it accepts hand-offs
// only within handoffWindow of its own last ring change or of its start,
// when it records those writes.

// handoffWindow is how long after a ring change a node accepts hand-offs
// (and records its own writes to guard them).
const handoffWindow = 10 * time.Second

// handoffBatch bounds the entries per hand-off request.
const handoffBatch = 256

// recentWrites remembers the last write of each key seen by this node, for
// handoffWindow, while hand-offs may arrive.
type recentWrites struct {
	mu       sync.Mutex // guards the fields below
	keys     map[string]writeNote
	full     bool  // more than maxRecentWrites keys within the window: refuse all
	prunedAt int64 // unix ns of the last prune
}

// writeNote is a write of a key seen by this node: applied here as the
// key's owner (by empty), or applied by the owner by, which invalidated
// this node's copies when its store was at version ver (opInvalidate).
type writeNote struct {
	at  int64 // unix ns
	by  string
	ver uint64
}

// pruneEvery rate-limits pruning of a full set: a prune walks the whole
// map, and pruning on every write of a burst would make each write
// O(set size).
const pruneEvery = time.Second

// maxRecentWrites bounds the set; past it the receiver refuses hand-offs
// until the window passes (safe, only less effective).
const maxRecentWrites = 1 << 16

func (r *recentWrites) add(key string, n writeNote) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Unix(0, n.at)
	if r.keys == nil {
		r.keys = map[string]writeNote{}
	}
	if _, ok := r.keys[key]; !ok && len(r.keys) >= maxRecentWrites {
		if r.full && now.UnixNano()-r.prunedAt < int64(pruneEvery) {
			return // refusing every hand-off already; prune later
		}
		r.pruneLocked(now)
		if len(r.keys) >= maxRecentWrites {
			r.full = true
			return
		}
	}
	r.keys[key] = n
}

func (r *recentWrites) pruneLocked(now time.Time) {
	cutoff := now.Add(-handoffWindow).UnixNano()
	for k, n := range r.keys {
		if n.at < cutoff {
			delete(r.keys, k)
		}
	}
	r.full = false
	r.prunedAt = now.UnixNano()
}

// refuses reports whether a hand-off of key from node from, whose entry
// had store version ver there, may be older than a write this node saw
// within handoffWindow of now. It may not only when the last write seen was
// applied by from itself before that entry was stored (from invalidated
// us at a version below ver): the entry then carries that write or a later
// one. Always true while the set is full (a full set is pruned again once
// its writes may have aged out, so that it does not refuse forever).
func (r *recentWrites) refuses(key string, now time.Time, from string, ver uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.full && now.UnixNano()-r.prunedAt >= int64(handoffWindow) {
		r.pruneLocked(now)
		r.full = len(r.keys) >= maxRecentWrites
	}
	if r.full {
		return true
	}
	n, ok := r.keys[key]
	if !ok || n.at < now.Add(-handoffWindow).UnixNano() {
		return false
	}
	return n.by == "" || n.by != from || ver <= n.ver
}

// handoffOpen reports whether this node is within handoffWindow of its last
// ring change.
func (e *Engine) handoffOpen() bool {
	return time.Since(time.Unix(0, e.ringChangedAt.Load())) < handoffWindow
}

// noteWrite records a write of key seen by this node while hand-offs may
// arrive (called under the key's stripe lock); see writeNote.
func (e *Engine) noteWrite(st *ksState, key string, n writeNote) {
	if e.cfg.Handoff && e.handoffOpen() {
		n.at = time.Now().UnixNano()
		st.recent.add(key, n)
	}
}

// handoff sends entries to their owners in ring, in batches, best effort:
// a failed batch only means the new owner reloads those keys.
//
// Each entry travels with its store version here, and a key with a write
// in progress here (pending) is skipped: the receiver compares the version
// with the invalidations it got from this node (see recentWrites.refuses),
// so a hand-off older than a write this node applied is refused.
func (e *Engine) handoff(ctx context.Context, st *ksState, ring *membership.Ring, keys []string) {
	byOwner := map[cluster.Member][]handoffEntry{}
	now := time.Now()
	for _, k := range keys {
		o := ring.Owner(k)
		if o.Name == e.selfName || st.pending.busy(k) {
			continue
		}
		if en, ok := handoffEntryOf(st, k, now); ok {
			byOwner[o] = append(byOwner[o], en)
		}
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex // guards results
		results = make([]handoffResult, 0, len(byOwner))
	)
	for owner, list := range byOwner {
		wg.Go(func() {
			r := handoffResult{to: owner, entries: len(list)}
			r.sent, r.err = e.sendHandoff(ctx, st, owner, list, 2*time.Second)
			mu.Lock()
			results = append(results, r)
			mu.Unlock()
		})
	}
	wg.Wait()
	e.logHandoff(st.name, results)
}

// handoffEntryOf is key's entry in st as a hand-off carries it (with its
// store version), if this node holds a live value of it.
func handoffEntryOf(st *ksState, key string, now time.Time) (handoffEntry, bool) {
	ent, ver, ok := st.store.PeekVersion(key)
	if !ok || ent.Negative || !ent.Fresh() || (!ent.ExpiresAt.IsZero() && !ent.ExpiresAt.After(now)) {
		return handoffEntry{}, false
	}
	return handoffEntry{Entry{Key: key, Value: ent.Value, Expiry: ent.ExpiresAt}, ver}, true
}

// sendHandoff sends list to owner in batches, each within batchTimeout (0:
// ctx alone), up to the first failure; it returns how many were sent.
func (e *Engine) sendHandoff(ctx context.Context, st *ksState, owner cluster.Member, list []handoffEntry, batchTimeout time.Duration) (sent int, err error) {
	for batch := range slices.Chunk(list, handoffBatch) {
		bctx, cancel := timeoutUnlessZero(ctx, batchTimeout)
		err = e.peers.handoff(bctx, owner, st.name, e.selfName, batch)
		cancel()
		if err != nil {
			return sent, err
		}
		st.stats.handedOff.Add(int64(len(batch)))
		sent += len(batch)
	}
	return sent, nil
}

// handoffWritten hands the entries of keys this node has just written as
// owner, although its ring gives them to other members (a peer forwarded
// the write under another ring, around a membership change), to those
// members: their own entries were invalidated by the write, and this
// node's copy goes when its purge drops keys it does not own, so without
// it the write would live nowhere. Called under the keys' claim (so not
// through handoff, which skips keys with a write pending); best effort
// (the owner's takeover asks this node too). The receiver's hand-off rules
// apply: it refuses an entry older than a write it saw.
func (e *Engine) handoffWritten(ctx context.Context, st *ksState, ring *membership.Ring, keys []string) {
	if !e.cfg.Handoff {
		return
	}
	byOwner := map[cluster.Member][]handoffEntry{}
	now := time.Now()
	for _, k := range keys {
		if o := ring.Owner(k); o.Name != e.selfName {
			if en, ok := handoffEntryOf(st, k, now); ok {
				byOwner[o] = append(byOwner[o], en)
			}
		}
	}
	for owner, list := range byOwner {
		if _, err := e.sendHandoff(ctx, st, owner, list, 0); err != nil {
			e.log.Debug("hand-off of a write made outside this node's ring failed", "keyspace", st.name, "peer", owner.Name, "err", err)
		}
	}
}

// handoffResult is what one hand-off sent to one new owner.
type handoffResult struct {
	to            cluster.Member
	entries, sent int
	err           error // why the rest was not sent
}

// logHandoff summarises one hand-off of a keyspace in one INFO line: how
// many entries went to whom (name and address), and what failed (the new
// owner then loads those keys itself).
func (e *Engine) logHandoff(ks string, results []handoffResult) {
	if len(results) == 0 {
		return
	}
	slices.SortFunc(results, func(a, b handoffResult) int { return strings.Compare(a.to.Name, b.to.Name) })
	var (
		to     []string
		sent   int
		failed []error
	)
	for _, r := range results {
		sent += r.sent
		to = append(to, fmt.Sprintf("%s (%s): %d", r.to.Name, r.to.Addr, r.sent))
		if r.err != nil {
			failed = append(failed, fmt.Errorf("%s: %d entries not sent: %w", r.to.Name, r.entries-r.sent, r.err))
		}
	}
	if len(failed) == 0 {
		e.log.Info("handed off entries to their new owners", "keyspace", ks, "entries", sent, "to", strings.Join(to, ", "))
		return
	}
	e.log.Info("handed off entries to their new owners, some failed (they reload)", "keyspace", ks, "entries", sent,
		"to", strings.Join(to, ", "), "err", errors.Join(failed...))
}

// serveHandoff stores handed-off entries that are safe to take (see the
// file comment).
func (e *Engine) serveHandoff(st *ksState, r handoffRequest) transport.Response {
	if !e.cfg.Handoff || !e.handoffOpen() || e.cachingPaused() {
		return transport.Response{Status: statusOK}
	}
	// Entries are taken even if this node's ring does not give it the key
	// yet (rings converge at slightly different moments); the fast path
	// serves only owned keys, and the purge after the next ring change
	// drops what this node does not own.
	now := time.Now()
	for _, en := range r.entries {
		if e.checkKey(en.Key) != nil || len(en.Value) > e.cfg.MaxValueBytes {
			continue
		}
		l := st.loads.Lock(en.Key)
		_, present := st.store.Peek(en.Key)
		switch {
		case present || st.recent.refuses(en.Key, now, r.from, en.ver):
		case l.Current() != nil:
			// A load of the key is in flight here: it takes the entry
			// rather than fetch (takeover.go).
			st.parked.park(r.from, en, now)
		default:
			val := append([]byte{}, en.Value...)
			if st.store.Set(en.Key, cache.Entry{Value: val, ExpiresAt: en.Expiry}) == nil {
				st.stats.handoffsTaken.Add(1)
			}
		}
		l.Unlock()
	}
	return transport.Response{Status: statusOK}
}

// handoffOnLeave pushes every entry of this node to its owner in the ring
// cur without this node, so that a graceful leave does not empty its share.
func (e *Engine) handoffOnLeave(ctx context.Context, cur *membership.Ring) {
	if !e.cfg.Handoff {
		return
	}
	var others []cluster.Member
	for _, m := range cur.Members() {
		if m.Name != e.selfName {
			others = append(others, m)
		}
	}
	if len(others) == 0 {
		return
	}
	ring, err := membership.NewRing(others, cur.Config())
	if err != nil {
		e.log.Warn("hand-off on leave skipped", "err", err)
		return
	}
	for _, st := range *e.keyspaces.Load() {
		var keys []string
		st.store.Range(func(k string, _ cache.Entry) bool {
			keys = append(keys, k)
			return ctx.Err() == nil
		})
		e.handoff(ctx, st, ring, keys)
	}
}

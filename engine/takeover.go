package engine

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/distcache/distcache/cluster"
	"github.com/distcache/distcache/internal/membership"
)

// Taking a key over. When keys move (a member joined, left gracefully or
// failed), the new owner must not answer from the DataSource while a member
// still holds a newer value: a Put acknowledged before the move would seem
// lost. Hand-off pushes entries to their new owner, but it races the new
// owner's first Gets. So a load on the owner, before it fetches, looks for
// the key where it lived (takeOver, inside the load's flight, so once per
// key):
//
//  1. its own copy, if this node was a replica (replicas.go);
//  2. a hand-off that arrived while the load was in flight (parked);
//  3. within handoffWindow of a ring change, the members that held the key
//     before (the previous ring's holders) and those that would hold it
//     without this node (a node that just joined took the key from them),
//     asked in that order with opHeld, which never loads.
//
// What it takes obeys the hand-off rules (recentWrites): not if this node
// wrote or deleted the key since the ring change, nor if another member's
// write of it may be newer. The load's flight still applies, so a write
// during the takeover supersedes it as it would a fetch.

// takeoverAskTimeout bounds each opHeld of a takeover: a holder that does
// not answer at once is gone, and the load falls back to the DataSource.
const takeoverAskTimeout = 300 * time.Millisecond

// maxTakeoverAsks bounds the members asked per key.
const maxTakeoverAsks = 4

// takeOver returns the value of key held by this node's copy or by the
// members that held it before (see the file comment); ok is false when the
// load must fetch.
func (e *Engine) takeOver(ctx context.Context, st *ksState, key string) (val []byte, exp time.Time, ok bool, err error) {
	now := time.Now()
	if st.rep != nil {
		// The copy stays until the load stores the value as owned
		// (runLoad): a load that does not keep it (this node is not the
		// owner in its ring yet, or a write superseded the load) must not
		// take away the copy from which this node takes the key over.
		if from, _, ent, held := st.rep.copyOf(key, e.storeTrusted()); held {
			if by, noted := st.recent.lastBy(key, now); !noted || by == from {
				return ent.Value, ent.ExpiresAt, true, nil
			}
		}
	}
	ring := e.cl.Ring()
	if v, x, took, err := e.fromReplicas(ctx, st, ring, key); took || err != nil {
		return v, x, took, err
	}
	if !e.cfg.Handoff {
		return nil, time.Time{}, false, nil
	}
	if v, x, took := st.parked.take(st, key, now); took {
		return v, x, true, nil
	}
	if a := e.held(st, key); a.found { // handed on from here a moment ago
		return a.value, a.expiry, true, nil
	}
	if !e.handoffOpen() {
		return nil, time.Time{}, false, nil
	}
	var ask []string
	seen := map[string]bool{e.selfName: true}
	add := func(name string) {
		if !seen[name] && len(ask) < maxTakeoverAsks {
			seen[name] = true
			ask = append(ask, name)
		}
	}
	prev := e.prevRing.Load()
	if prev != nil {
		for _, m := range st.placement(prev, key) {
			add(m.Name)
		}
	}
	n := 1
	if st.rep != nil {
		n = st.rep.n
	}
	for _, m := range ring.Replicas(key, n+1) {
		add(m.Name)
	}
	// While this node's ring is still growing (it is joining: peers
	// forward to it before its ring holds them all), the members that
	// held the key are those of the ring gossip gives without this node.
	if others := e.othersRing(ring); others != nil {
		for _, m := range st.placement(others, key) {
			add(m.Name)
		}
	}
	for _, name := range ask {
		m, known := ring.Member(name)
		if !known && prev != nil {
			m, known = prev.Member(name)
		}
		if !known {
			m, known = e.gossipMember(name)
		}
		if !known {
			continue
		}
		a, found, allowed := e.askHeld(ctx, st, m, key)
		if a.busy {
			return nil, time.Time{}, false, errWriteInProgress(ctx, m)
		}
		if !found {
			continue
		}
		if !allowed {
			break
		}
		st.stats.handoffsTaken.Add(1)
		return a.value, a.expiry, true, nil
	}
	v, x, took := st.parked.take(st, key, time.Now())
	return v, x, took, nil
}

// heldPastWrites asks m what it holds of key (opHeld), each ask within
// perAsk (0: ctx alone), and asks again while m answers busy (it waits for
// its write before each answer) until ctx ends: the answer is busy only if
// m still was then.
func (e *Engine) heldPastWrites(ctx context.Context, st *ksState, m cluster.Member, key string, perAsk time.Duration) (heldAnswer, error) {
	for {
		actx, cancel := timeoutUnlessZero(ctx, perAsk)
		a, err := e.peers.held(actx, m, st.name, key)
		cancel()
		if err != nil || !a.busy || ctx.Err() != nil {
			return a, err
		}
	}
}

// timeoutUnlessZero is context.WithTimeout(ctx, d), or ctx itself when d
// is not positive.
func timeoutUnlessZero(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}

// errWriteInProgress is a takeover's error when a holder of the key was
// still writing it as the load's time ran out: the DataSource's value may
// be older than that write, so the load fails instead of fetching.
func errWriteInProgress(ctx context.Context, m cluster.Member) error {
	return fmt.Errorf("taking the key over: %s is still writing it: %w", m.Name, context.Cause(ctx))
}

// movedEntries remember, for handoffWindow, the entries this node dropped
// after handing them to their new owner (purgeRounds): while rings
// converge, the member a takeover asks may have handed a key on and
// dropped it a moment before, and opHeld still answers with it (unless a
// write of the key was noted since, see held). At most maxMoved entries,
// each at most maxMovedValueBytes; the memory is held only for the window.
type movedEntries struct {
	mu      sync.Mutex // guards entries
	entries map[string]movedEntry
}

type movedEntry struct {
	val []byte
	exp time.Time
	ver uint64
	at  time.Time
}

const (
	maxMoved           = 1 << 16
	maxMovedValueBytes = 64 << 10
)

func (m *movedEntries) add(key string, ent movedEntry) {
	if len(ent.val) > maxMovedValueBytes {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.entries == nil {
		m.entries = map[string]movedEntry{}
	}
	if len(m.entries) >= maxMoved {
		for k, me := range m.entries {
			if ent.at.Sub(me.at) > handoffWindow {
				delete(m.entries, k)
			}
		}
		if len(m.entries) >= maxMoved {
			return
		}
	}
	m.entries[key] = ent
}

func (m *movedEntries) get(key string, now time.Time) (movedEntry, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	me, ok := m.entries[key]
	if ok && (now.Sub(me.at) > handoffWindow || (!me.exp.IsZero() && !me.exp.After(now))) {
		delete(m.entries, key)
		return movedEntry{}, false
	}
	return me, ok
}

// noteSince reports whether a write of key was noted at or after t.
func (r *recentWrites) noteSince(key string, t time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.full {
		return true
	}
	n, ok := r.keys[key]
	return ok && n.at >= t.UnixNano()
}

// lastBy reports who made the last write of key noted within
// handoffWindow ("" for this node), if any.
func (r *recentWrites) lastBy(key string, now time.Time) (by string, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.full {
		return "", true
	}
	n, ok := r.keys[key]
	if !ok || n.at < now.Add(-handoffWindow).UnixNano() {
		return "", false
	}
	return n.by, true
}

// parkedHandoffs are hand-offs that arrived while a load of their key was
// in flight on this node: the load takes them (takeOver) instead of
// fetching, since serveHandoff cannot store an entry a flight may
// overwrite. Kept for handoffWindow, at most maxParked.
type parkedHandoffs struct {
	mu      sync.Mutex // guards entries
	entries map[string]parkedEntry
}

type parkedEntry struct {
	handoffEntry
	from string
	at   time.Time
}

const maxParked = 4096

func (p *parkedHandoffs) park(from string, en handoffEntry, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.entries == nil {
		p.entries = map[string]parkedEntry{}
	}
	if len(p.entries) >= maxParked {
		for k, pe := range p.entries {
			if now.Sub(pe.at) > handoffWindow {
				delete(p.entries, k)
			}
		}
		if len(p.entries) >= maxParked {
			return
		}
	}
	en.Value = append([]byte{}, en.Value...) // the request buffer is not ours
	p.entries[en.Key] = parkedEntry{handoffEntry: en, from: from, at: now}
}

// take removes key's parked hand-off and returns it if the hand-off rules
// allow it.
func (p *parkedHandoffs) take(st *ksState, key string, now time.Time) ([]byte, time.Time, bool) {
	p.mu.Lock()
	pe, ok := p.entries[key]
	delete(p.entries, key)
	p.mu.Unlock()
	if !ok || now.Sub(pe.at) > handoffWindow || (!pe.Expiry.IsZero() && !pe.Expiry.After(now)) ||
		st.recent.refuses(key, now, pe.from, pe.ver) {
		return nil, time.Time{}, false
	}
	st.stats.handoffsTaken.Add(1)
	return pe.Value, pe.Expiry, true
}

// dropMoved is dropNotOwned for a key handed to its new owner: the entry
// is remembered in st.moved for takeovers (see movedEntries).
func (e *Engine) dropMoved(st *ksState, key string) {
	if e.cfg.Handoff {
		if ent, ver, ok := st.store.PeekVersion(key); ok && !ent.Negative && ent.Fresh() && !st.pending.busy(key) {
			// Noted before the drop: a write of the key noted from now on
			// (noteSince) hides it.
			st.moved.add(key, movedEntry{val: ent.Value, exp: ent.ExpiresAt, ver: ver, at: time.Now()})
		}
	}
	e.dropNotOwned(st, key)
}

// othersRing returns the ring of the members gossip knows, this node left
// out, when this node's ring lacks some of them (nil otherwise); built once
// per member set.
func (e *Engine) othersRing(ring *membership.Ring) *membership.Ring {
	var others []cluster.Member
	missing := false
	for _, m := range e.cl.Members() {
		if m.Name == e.selfName {
			continue
		}
		others = append(others, m)
		missing = missing || !ring.Contains(m.Name)
	}
	if !missing || len(others) == 0 {
		return nil
	}
	if c := e.othersCache.Load(); c != nil && c.Len() == len(others) &&
		!slices.ContainsFunc(others, func(m cluster.Member) bool { return !c.Contains(m.Name) }) {
		return c
	}
	r, err := membership.NewRing(others, ring.Config())
	if err != nil {
		return nil
	}
	e.othersCache.Store(r)
	return r
}

// gossipMember returns the member gossip knows by name.
func (e *Engine) gossipMember(name string) (cluster.Member, bool) {
	for _, m := range e.cl.Members() {
		if m.Name == name {
			return m, true
		}
	}
	return cluster.Member{}, false
}

// fromReplicas asks the key's replicas for their copy before this node,
// its owner, fetches it: the owner lost its entry (evicted, or dropped by a
// flush) but a replica got every write the owner acknowledged, or has the
// key queued for repair (then it is not asked). A copy is not taken while
// a write of the key by another member may be newer (recentWrites).
func (e *Engine) fromReplicas(ctx context.Context, st *ksState, ring *membership.Ring, key string) ([]byte, time.Time, bool, error) {
	if st.rep == nil {
		return nil, time.Time{}, false, nil
	}
	hs := ring.Replicas(key, st.rep.n)
	if len(hs) < 2 || hs[0].Name != e.selfName {
		return nil, time.Time{}, false, nil
	}
	for _, m := range hs[1:] {
		if st.rep.missed.has(m.Name, key) {
			continue
		}
		a, found, allowed := e.askHeld(ctx, st, m, key)
		if a.busy {
			return nil, time.Time{}, false, errWriteInProgress(ctx, m)
		}
		if !found {
			continue
		}
		if !allowed {
			return nil, time.Time{}, false, nil
		}
		st.rep.reads.Add(1)
		return a.value, a.expiry, true, nil
	}
	return nil, time.Time{}, false, nil
}

// askHeld asks m for its entry of key, each ask within takeoverAskTimeout
// (heldPastWrites). found reports that m answered with one; allowed, that
// the hand-off guards let this node take it. An answer from m's store
// counts as a hand-off from m at its version; a replica copy counts as from
// nobody, taken only if no write of the key was noted. a is busy if m was
// still writing the key when ctx ended: the caller must not take the key
// as absent, since the write may be the key's newest value.
func (e *Engine) askHeld(ctx context.Context, st *ksState, m cluster.Member, key string) (a heldAnswer, found, allowed bool) {
	a, err := e.heldPastWrites(ctx, st, m, key, takeoverAskTimeout)
	if err != nil || !a.found {
		return a, false, false
	}
	from, ver := m.Name, a.ver
	if !a.fromStore {
		from, ver = "", 0
	}
	return a, true, !st.recent.refuses(key, time.Now(), from, ver)
}

package engine

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distcache/distcache/cluster"
	"github.com/distcache/distcache/internal/cache"
	"github.com/distcache/distcache/internal/membership"
)

// When this node may serve what it cached.
//
// A node stops trusting its entries (markUntrusted) when it may have missed
// writes:
//   - it reconnects after losing contact with at least half of the cluster
//     (the partition rule, onRingChange);
//   - its process did not run for longer than the pause limit (SIGSTOP, a
//     VM pause, starvation): peers may have declared it dead, taken over its
//     keys and accepted writes meanwhile. A watchdog notices the gap, and so
//     does every read (checkPause), so that no read served right after the
//     process resumes slips past it;
//   - a peer tells it to (opFlush): the owner of a write could not reach it
//     to invalidate its copies, or it came back after peers had declared it
//     failed.
//
// Untrusted means: every entry stored before the decision is ignored by
// reads (lookupSinceFlush; near copies are tagged with the flush generation
// they were filled under) until the background purge has dropped them; a
// load or forward that began before the decision does not store its
// result. Entries written after the decision are served and kept.

// pauseWatch detects gaps in this process's execution on the monotonic
// clock.
type pauseWatch struct {
	t0    time.Time     // monotonic origin
	limit time.Duration // 0: off (before Start)
	beat  atomic.Int64  // time.Since(t0) at the last beat, ns
}

// checkPause marks the stores untrusted if the process did not run for
// longer than the pause limit since the last beat (by the watchdog or a
// read), and beats. One clock read; no lock.
func (e *Engine) checkPause() {
	if e.pause.limit == 0 {
		return
	}
	now := int64(time.Since(e.pause.t0))
	last := e.pause.beat.Load()
	if now-last > int64(e.pause.limit) && e.pause.beat.CompareAndSwap(last, now) {
		e.markUntrusted("process paused for " + time.Duration(now-last).Round(time.Millisecond).String())
	}
}

// pauseWatchdog beats every quarter of the pause limit, so that a gap
// longer than the limit means the process itself did not run.
func (e *Engine) pauseWatchdog() {
	every(e.base, max(e.pause.limit/4, 10*time.Millisecond), func() {
		e.checkPause()
		e.pause.beat.Store(int64(time.Since(e.pause.t0)))
		e.checkReachability()
	})
}

// checkReachability enters or leaves the cut-off state from the failure
// detector's health score and the sampled pings (reachWatchdog). A node on
// the small side of a partition keeps its peers as suspect members, its
// ring unchanged, for up to tens of seconds (few peers can confirm the
// suspicion), while the other side declares it dead and writes its keys;
// so the ring alone cannot tell it that it is cut off. While cut off it
// distrusts what it cached and caches nothing (see cachingPaused), so that
// when the network heals it has nothing stale to serve before the flush
// notices arrive; and it refuses writes as owner, whose invalidations
// could not reach the other side.
func (e *Engine) checkReachability() {
	score := e.cl.HealthScore()
	far := e.farLost.Load()
	switch {
	case (score >= e.cl.CutOffScore() || far) && !e.cutOff.Load():
		e.cutOff.Store(true)
		reason := "most probes of peers fail (health score " + strconv.Itoa(score) + "): caching paused"
		if far {
			reason = "direct pings reach at most half of the members: caching paused"
		}
		e.markUntrusted(reason)
	case score == 0 && !far && e.cutOff.Load():
		e.cutOff.Store(false)
		e.log.Info("probes of peers succeed again: caching resumed")
	}
}

// reachSample bounds the members one round of reachWatchdog pings.
const reachSample = 8

// reachWatchdog pings a sample of the members directly, once per probe
// interval, whenever the failure detector has seen a probe fail (health
// score above 0) or the node is cut off. farLost is set once two rounds in
// a row reached at most half of them, this node counted (two, so that one
// slow round on a loaded host does not flush the cache), and cleared only
// by a round that reached every member it asked: as the far side of a
// partition is declared dead one by one, the live members a round samples
// shrink to the near side, and a partial answer must not end the cut-off
// before the ring's minority mode begins. The health score alone misses a
// partition's small side of two nodes or more (see
// membership.Cluster.Reach). A CutOffScore above the score's range (8)
// turns the cut-off state off, pings included.
func (e *Engine) reachWatchdog() {
	if e.cl.CutOffScore() > 8 {
		return
	}
	lostRounds, lost := 0, false
	every(e.base, max(e.cl.ProbeInterval(), 10*time.Millisecond), func() {
		if e.cl.HealthScore() == 0 && !e.cutOff.Load() && !lost && lostRounds == 0 {
			return
		}
		answered, asked := e.cl.Reach(reachSample)
		switch {
		case (answered+1)*2 <= asked+1:
			lostRounds++
			lost = lost || lostRounds >= 2
		case answered == asked:
			lostRounds, lost = 0, false
		default:
			lostRounds = 0
		}
		e.farLost.Store(lost)
	})
}

// cachingPaused reports whether this node must not keep what it loads or
// is handed: it is in minority mode or cut off (checkReachability).
func (e *Engine) cachingPaused() bool { return e.cutOff.Load() || e.inMinority() }

// startPauseWatch arms the watchdog with the cluster's pause limit.
func (e *Engine) startPauseWatch() {
	e.pause.limit = e.cl.PauseLimit()
	e.pause.beat.Store(int64(time.Since(e.pause.t0)))
	e.spawn(e.pauseWatchdog)
	e.spawn(e.reachWatchdog)
}

// markUntrusted makes reads ignore every entry stored so far until the
// purge has dropped them (see the file comment), and starts the purge.
func (e *Engine) markUntrusted(reason string) {
	e.flushMu.Lock()
	for _, st := range *e.keyspaces.Load() {
		st.flushFrom.Store(st.store.Version())
		if st.rep != nil {
			st.rep.flushFrom.Store(st.rep.store.Version())
		}
	}
	e.flushReq.Add(1)
	e.flushMu.Unlock()
	e.log.Warn("local cache no longer trusted; flushing it", "reason", reason)
	if e.cl != nil {
		e.schedulePurge()
	}
}

// storeTrusted reports whether the local stores may answer reads: false from
// a flush decision until that flush has run. Meanwhile reads go through
// lookupSinceFlush (see lookup).
func (e *Engine) storeTrusted() bool {
	e.checkPause()
	return e.flushReq.Load() == e.flushDone.Load()
}

// flushGen is the flush generation: loads, forwards and near copies that
// began under another generation are not stored or served.
func (e *Engine) flushGen() uint64 { return e.flushReq.Load() }

// lookup reads key from st's store for serving it, counted as a hit or a
// miss: while a flush is pending, only entries written after the flush
// decision count.
func (e *Engine) lookup(st *ksState, key string) (cache.Entry, bool) {
	if !e.storeTrusted() {
		st.tel.uncountedLookups.Add(1)
		return lookupSinceFlush(st, key)
	}
	return st.store.Get(key)
}

// peek is lookup without counting, for rechecks of a key already counted.
func (e *Engine) peek(st *ksState, key string) (cache.Entry, bool) {
	if !e.storeTrusted() {
		return lookupSinceFlush(st, key)
	}
	return st.store.Peek(key)
}

// lookupSinceFlush is the store lookup while a flush is pending: only
// entries written after the flush decision count.
func lookupSinceFlush(st *ksState, key string) (cache.Entry, bool) {
	ent, v, ok := st.store.PeekVersion(key)
	if !ok || v <= st.flushFrom.Load() {
		return cache.Entry{}, false
	}
	return ent, true
}

// missedPeers are members to be told to flush (opFlush), with when they
// were added; flushNotifier delivers the notices.
type missedPeers struct {
	n     atomic.Int32 // len(peers): 0 lets the forward path skip the lock
	mu    sync.Mutex
	peers map[string]time.Time
	kick  chan struct{} // capacity 1
}

// pending reports whether name has a flush notice outstanding: it may
// serve entries older than writes it missed, so Gets must not be
// forwarded to it meanwhile (they load locally, see forwardOnce).
func (m *missedPeers) pending(name string) bool {
	if m.n.Load() == 0 {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.peers[name]
	return ok
}

// missedKeep bounds how long a notice is retried for a member that stays
// unreachable; missedMax bounds the set.
const (
	missedKeep = 10 * time.Minute
	missedMax  = 4096
)

func (m *missedPeers) add(name string) { m.addAt(name, time.Now()) }

// addAt records that name missed a write at at (its failure, for a member
// seen failed: it may have missed any write since). A member keeps the
// latest time recorded.
func (m *missedPeers) addAt(name string, at time.Time) {
	m.mu.Lock()
	if m.peers == nil {
		m.peers = map[string]time.Time{}
	}
	if cur, ok := m.peers[name]; ok && cur.After(at) {
		at = cur
	}
	if len(m.peers) < missedMax {
		m.peers[name] = at
	}
	m.n.Store(int32(len(m.peers)))
	m.mu.Unlock()
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

func (m *missedPeers) snapshot() map[string]time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]time.Time, len(m.peers))
	for k, v := range m.peers {
		out[k] = v
	}
	return out
}

// done removes name if it was added no later than at.
func (m *missedPeers) done(name string, at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t, ok := m.peers[name]; ok && !t.After(at) {
		delete(m.peers, name)
		m.n.Store(int32(len(m.peers)))
	}
}

// missedInvalidation records that the owner of a write could not
// invalidate m's copies: m must flush before it serves them again.
func (e *Engine) missedInvalidation(m cluster.Member, err error, at time.Time) {
	if !e.missed.pending(m.Name) {
		// Once per notice: while m stays unreachable every write misses it.
		e.log.Warn("write: could not invalidate copies on peer; it will be told to flush", "peer", m.Name, "addr", m.Addr, "err", err)
	}
	e.missed.addAt(m.Name, at)
}

// noteReturning records members that are back in the ring after this node
// saw them disappear without a graceful leave: they may have been cut off
// or paused, and missed writes while they were out.
func (e *Engine) noteReturning(prev, next *membership.Ring) {
	for _, m := range next.Members() {
		if m.Name != e.selfName && !prev.Contains(m.Name) {
			e.noteBack(m.Name)
		}
	}
}

// flushNotifier tells the members in e.missed to flush, retrying those not
// reachable yet (or not back in the ring) every retry interval.
func (e *Engine) flushNotifier() {
	const retry = 50 * time.Millisecond
	t := time.NewTicker(retry)
	defer t.Stop()
	for {
		select {
		case <-e.base.Done():
			return
		case <-t.C:
		case <-e.missed.kick:
		}
		e.noticeReturningGossip()
		ring := e.cl.Ring()
		gossip := e.cl.Members()
		for name, at := range e.missed.snapshot() {
			m, ok := ring.Member(name)
			if !ok {
				if i := slices.IndexFunc(gossip, func(g cluster.Member) bool { return g.Name == name }); i >= 0 {
					m, ok = gossip[i], true
				}
			}
			if !ok {
				if time.Since(at) > missedKeep {
					e.missed.done(name, at)
				}
				continue
			}
			ctx, cancel := context.WithTimeout(e.base, time.Second)
			err := e.peers.flush(ctx, m, encodeFlush(e.selfName, at))
			cancel()
			if err == nil {
				e.missed.done(name, at)
			}
		}
	}
}

// flushClockSkew is how far apart two nodes' clocks may be for serveFlush
// to compare a peer's time with this node's; writes and expiries assume
// as much already.
const flushClockSkew = time.Second

// serveFlush acts on a peer's flush notice: the peer could not invalidate
// this node's copies of a write at missedAt (its last such miss). A notice
// whose last miss predates this engine concerns an earlier process under
// the same name (it crashed or left, and was restarted): nothing here is
// older than the write, so nothing is flushed. The notices that follow a
// restart are many (every peer that wrote meanwhile sends one), and each
// flush would drop the hand-offs and replica copies the node received
// since it joined.
func (e *Engine) serveFlush(from string, missedAt time.Time) {
	if missedAt.Before(e.created.Add(-flushClockSkew)) {
		e.log.Debug("flush notice predates this process; nothing to flush", "peer", from, "missed_at", missedAt)
		return
	}
	e.markUntrusted("peer " + from + " may have missed invalidating this node")
}

// failedKeep bounds how long a failed member is remembered; failedMax bounds
// the set.
const (
	failedKeep = time.Hour
	failedMax  = 4096
)

// noteFailed records that name left the ring without a graceful leave.
func (e *Engine) noteFailed(name string) {
	e.failedMu.Lock()
	defer e.failedMu.Unlock()
	if e.failed == nil || len(e.failed) >= failedMax {
		e.failed = map[string]time.Time{}
	}
	e.failed[name] = time.Now()
}

// noteBack records that name, if noteFailed recorded it within failedKeep,
// is back and is to be told to flush, as of its failure (it may have missed
// any write since); it forgets the failure.
func (e *Engine) noteBack(name string) {
	e.failedMu.Lock()
	at, ok := e.failed[name]
	delete(e.failed, name)
	e.failedMu.Unlock()
	if ok && time.Since(at) < failedKeep {
		e.missed.addAt(name, at)
	}
}

// noticeReturningGossip sends flush notices to members that gossip shows
// alive again after this node saw them fail, without waiting for them to
// re-enter the ring (an admission probe and a debounce later): a member
// cut off by a partition must learn that it missed writes in the moments
// after the network heals, and Gets must not be forwarded to it before it
// has (see missedPeers.pending).
func (e *Engine) noticeReturningGossip() {
	ring := e.cl.Ring()
	for _, m := range e.cl.Members() {
		if m.Name != e.selfName && !ring.Contains(m.Name) {
			e.noteBack(m.Name)
		}
	}
}

// minorityHold bounds minority mode: a node cut off from half of its
// cluster for longer assumes the others are gone for good (crashed, scaled
// down without a graceful leave) and resumes caching and writes; the flush
// when it reconnects still applies.
const minorityHold = 30 * time.Second

// inMinority reports whether this node lost contact with at least half of
// the cluster it knew, within minorityHold. It may be on the minority side
// of a partition, where the majority goes on writing: it then caches
// nothing (loads answer their callers and are not stored, no near copy, no
// hand-off taken) and refuses writes as owner (ErrClusterQuorum). So when
// the network heals, it holds nothing stale to serve in the moments before
// it notices (its ring grows only after gossip, admission and a debounce).
func (e *Engine) inMinority() bool {
	since := e.minoritySince.Load()
	return since != 0 && time.Since(time.Unix(0, since)) < minorityHold
}

package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distcache/distcache/internal/membership"
	"github.com/distcache/distcache/internal/prefetch"
	"github.com/distcache/distcache/keyspace"
	"github.com/distcache/distcache/warmup"
)

// WithWarmup turns on hot-key tracking and prefetching on join and leave
// events (see package warmup). Without it nothing is tracked or prefetched,
// and WithKeySpaceWarmKeys has no effect. Zero numeric fields take the
// warmup defaults; WarmOnJoin and WarmOnLeave must be set explicitly (or
// start from warmup.DefaultConfig()).
func WithWarmup(cfg warmup.Config) Option {
	return func(c *Config) { c.extras.warmup, c.extras.warmupSet = cfg, true }
}

// WarmupStats are this node's warmup counters, summed over keyspaces.
type WarmupStats struct {
	// Enabled is true while warmup runs (WithWarmup, between Start and Stop).
	Enabled bool
	// Rounds counts finished warmup rounds; Busy is true while one is
	// running or scheduled.
	Rounds int64
	Busy   bool
	// Loaded counts keys this node loaded for itself; Requested keys it
	// asked their new owner to load; Cached prefetches skipped because the
	// key was already stored here; Failed prefetches that failed (a key the
	// DataSource does not have is not a failure).
	Loaded, Requested, Cached, Failed int64
	// Refreshed counts refresh-ahead fetches of hot keys this node owns
	// (warmup.Config.RefreshInterval), Changed those that found a new
	// value or a deleted row, RefreshFailed those that failed (the value
	// was kept).
	Refreshed, Changed, RefreshFailed int64
}

// WarmupStats returns this node's warmup counters.
func (e *Engine) WarmupStats() WarmupStats {
	w := e.ext.warm.Load()
	if w == nil {
		return WarmupStats{}
	}
	s := WarmupStats{Enabled: true, Rounds: w.rounds.Load()}
	w.mu.Lock()
	s.Busy = w.running
	w.mu.Unlock()
	for _, c := range w.counters {
		s.Loaded += c.loaded.Load()
		s.Requested += c.requested.Load()
		s.Cached += c.cached.Load()
		s.Failed += c.failed.Load()
		s.Refreshed += c.refreshed.Load()
		s.Changed += c.changed.Load()
		s.RefreshFailed += c.refreshFailed.Load()
	}
	return s
}

// HotKeys returns up to n of the keys of keyspace ks most requested on this
// node recently (as caller or as owner), most requested first, with their
// estimated hits. Nil when warmup is off or ks is unknown.
func (e *Engine) HotKeys(ks string, n int) []warmup.HotKey {
	w := e.ext.warm.Load()
	if w == nil {
		return nil
	}
	return w.trackers[ks].Hot(n, 1)
}

// warmer runs warmup rounds on this node.
type warmer struct {
	e   *Engine
	cfg warmup.Config // defaults applied
	ctx context.Context
	// trackers and counters are per keyspace name, fixed at Start.
	trackers map[string]*prefetch.Tracker
	counters map[string]*warmCounters
	rounds   atomic.Int64

	mu      sync.Mutex // guards running, pending, prev
	running bool
	pending bool
	// prev is the ring before the earliest change not yet warmed for (nil:
	// none, only a start round is pending).
	prev *membership.Ring
}

type warmCounters struct {
	loaded, requested, cached, failed atomic.Int64
	refreshed, changed, refreshFailed atomic.Int64
}

// ringSettleWait bounds how long a round waits for the ring to reflect
// the member list (a rebuild is debounced) before planning anyway.
const ringSettleWait = time.Second

func newWarmer(e *Engine, ctx context.Context) *warmer {
	w := &warmer{
		e:        e,
		cfg:      e.cfg.extras.warmup.WithDefaults(),
		ctx:      ctx,
		trackers: map[string]*prefetch.Tracker{},
		counters: map[string]*warmCounters{},
	}
	for _, name := range e.keyspaces.Load().names() {
		w.trackers[name] = prefetch.NewTracker(w.cfg)
		w.counters[name] = &warmCounters{}
	}
	return w
}

// schedule asks for a round; prev is the ring before the change (nil for
// the start round). Rounds never overlap: a change during a round is
// warmed for by one more round, planned against the oldest prev.
func (w *warmer) schedule(prev *membership.Ring) {
	w.mu.Lock()
	if w.prev == nil {
		w.prev = prev
	}
	w.pending = true
	start := !w.running
	w.running = true
	w.mu.Unlock()
	if start && !w.e.goExtra(w.loop) {
		w.mu.Lock()
		w.running = false
		w.mu.Unlock()
	}
}

func (w *warmer) loop() {
	for {
		w.mu.Lock()
		if !w.pending || w.ctx.Err() != nil {
			w.running = false
			w.mu.Unlock()
			return
		}
		prev := w.prev
		w.prev, w.pending = nil, false
		w.mu.Unlock()
		w.waitRingSettled()
		w.round(prev)
	}
}

// waitRingSettled waits, up to ringSettleWait, until the ring holds
// exactly the live members, so that a round does not plan on a ring that
// is about to change (a node that has just joined still has a ring of
// itself alone, and would prefetch every warm key).
func (w *warmer) waitRingSettled() {
	deadline := time.Now().Add(ringSettleWait)
	t := time.NewTimer(0)
	defer t.Stop()
	for !ringMatchesMembers(w.e.cl) && time.Now().Before(deadline) {
		t.Reset(10 * time.Millisecond)
		select {
		case <-w.ctx.Done():
			return
		case <-t.C:
		}
	}
}

func ringMatchesMembers(cl *membership.Cluster) bool {
	ring, members := cl.Ring(), cl.Members()
	if ring.Len() != len(members) {
		return false
	}
	for _, m := range members {
		if !ring.Contains(m.Name) {
			return false
		}
	}
	return true
}

// round plans and runs one warmup round against the current ring.
func (w *warmer) round(prev *membership.Ring) {
	defer w.rounds.Add(1)
	e := w.e
	next := e.cl.Ring()
	self := e.cl.Self().Name
	var prevView prefetch.Ring
	if prev != nil {
		prevView = ringView{prev}
	}
	table := *e.keyspaces.Load()
	var tasks []prefetch.Task
	for _, name := range table.names() {
		st := table[name]
		hot := prefetch.Keys(w.trackers[name].Hot(w.cfg.MaxHotKeys, w.cfg.MinHits))
		plan := prefetch.PlanFor(self, prevView, ringView{next}, st.settings.WarmKeys, hot)
		timeout := min(w.cfg.Timeout, st.settings.ReadTimeout)
		for _, k := range plan.Local {
			tasks = append(tasks, prefetch.Task{KeySpace: name, Key: k, Timeout: timeout})
		}
		owners := make([]string, 0, len(plan.Push))
		for o := range plan.Push {
			owners = append(owners, o)
		}
		slices.Sort(owners)
		for _, o := range owners {
			for _, k := range plan.Push[o] {
				tasks = append(tasks, prefetch.Task{KeySpace: name, Key: k, Owner: o, Timeout: timeout})
			}
		}
	}
	if len(tasks) == 0 {
		return
	}
	start := time.Now()
	res := prefetch.Run(w.ctx, tasks, w.cfg.Concurrency, func(ctx context.Context, t prefetch.Task) error {
		return w.prefetch(ctx, next, t)
	})
	e.log.Debug("warmup round", "tasks", len(tasks), "ok", res.Succeeded, "failed", res.Failed,
		"skipped", res.Skipped, "took", time.Since(start), "first_err", res.FirstErr)
}

// prefetch loads one key through the normal read path: on this node
// (getLocal: store, then a coalesced, protected fetch) or by asking its
// owner, which does the same there. Never a second hop, never a degraded
// local load: warming must not fetch a key twice.
func (w *warmer) prefetch(ctx context.Context, ring *membership.Ring, t prefetch.Task) error {
	e := w.e
	c := w.counters[t.KeySpace]
	if c == nil {
		c = &warmCounters{} // a keyspace unknown at Start: not counted
	}
	st, err := e.keyspace(t.KeySpace)
	if err != nil {
		return err // deleted meanwhile
	}
	count := &c.loaded
	if t.Owner == "" {
		if ent, ok := st.store.Peek(t.Key); ok && ent.Fresh() {
			c.cached.Add(1)
			return nil
		}
		_, err = e.getLocal(ctx, st, t.Key)
	} else {
		count = &c.requested
		m, ok := ring.Member(t.Owner)
		if !ok {
			err = fmt.Errorf("%w: %s left", ErrPeerUnavailable, t.Owner)
		} else {
			_, err = e.peers.get(ctx, m, st.name, t.Key, false, time.Time{})
		}
	}
	if err != nil && !errors.Is(err, keyspace.ErrNotFound) {
		c.failed.Add(1)
		return fmt.Errorf("distcache: warmup of %q in %q: %w", t.Key, t.KeySpace, err)
	}
	count.Add(1)
	return nil
}

// decayLoop halves the trackers' counts every DecayInterval.
func (w *warmer) decayLoop() {
	every(w.ctx, w.cfg.DecayInterval, func() {
		for _, tr := range w.trackers {
			tr.Decay()
		}
	})
}

// ringView adapts a ring to prefetch.Ring.
type ringView struct{ r *membership.Ring }

func (v ringView) Owner(key string) string { return v.r.Owner(key).Name }

func (v ringView) Contains(member string) bool { return v.r.Contains(member) }

// membershipDiff reports whether next has members prev lacks (a join) and
// prev members next lacks (a leave or failure).
func membershipDiff(prev, next *membership.Ring) (joined, left bool) {
	for _, m := range next.Members() {
		if !prev.Contains(m.Name) {
			joined = true
			break
		}
	}
	for _, m := range prev.Members() {
		if !next.Contains(m.Name) {
			left = true
			break
		}
	}
	return joined, left
}

// recordAccess is called on every Get of key in st, on the caller and on
// the owner serving a forwarded Get. With warmup off it is one atomic load
// and a nil check; with it on, one tracker update (see prefetch.Tracker).
func (e *Engine) recordAccess(st *ksState, key string) {
	if w := e.ext.warm.Load(); w != nil {
		w.trackers[st.name].Record(key)
	}
}

// warmReplacedKeySpace runs after UpdateKeySpace swapped in a new definition
// (whose store is empty): when warmup prefetches at all (WarmOnJoin or
// WarmOnLeave), a round reloads this node's warm and hot keys through the
// new DataSource. It runs under e.ksMu: return quickly.
func (e *Engine) warmReplacedKeySpace(name string) {
	if w := e.ext.warm.Load(); w != nil && (w.cfg.WarmOnJoin || w.cfg.WarmOnLeave) {
		e.log.Debug("warming a replaced keyspace", "keyspace", name)
		w.schedule(nil)
	}
}

// warmOnRingChange runs after each ring change (on the cluster's rebuild
// goroutine): it schedules a warmup round when a member joined (WarmOnJoin)
// or left (WarmOnLeave); the round runs on an engine goroutine.
func (e *Engine) warmOnRingChange(prev, next *membership.Ring) {
	w := e.ext.warm.Load()
	if w == nil {
		return
	}
	joined, left := membershipDiff(prev, next)
	if (joined && w.cfg.WarmOnJoin) || (left && w.cfg.WarmOnLeave) {
		w.schedule(prev)
	}
}

package engine

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distcache/distcache/admin"
	"github.com/distcache/distcache/cache"
	"github.com/distcache/distcache/cluster"
	"github.com/distcache/distcache/internal/transport"
	"github.com/distcache/distcache/keyspace"
	"github.com/distcache/distcache/warmup"
)

// The optional subsystems: the admin endpoints (package admin) and warmup
// (package warmup). Neither package imports the engine: the engine
// implements admin.Source and adapts its ring to warmup.Ring. The engine
// calls the hooks at the bottom of this file from one place each.

// WithAdminServer starts an admin HTTP server on addr ("host:port"; port 0
// picks a free one, see AdminAddr) when the engine starts, with the other
// admin settings at their defaults or as set by WithAdminConfig. An empty
// addr starts no server. See package admin for the endpoints.
func WithAdminServer(addr string) Option {
	return func(c *Config) {
		if !c.extras.adminSet {
			c.extras.admin, c.extras.adminSet = admin.DefaultConfig(), true
		}
		c.extras.admin.ListenAddr = addr
	}
}

// WithAdminConfig sets every admin setting (base path, TLS, timeouts); a
// server is started when cfg.ListenAddr is set. It replaces an earlier
// WithAdminServer's address; a later WithAdminServer replaces its.
func WithAdminConfig(cfg admin.Config) Option {
	return func(c *Config) { c.extras.admin, c.extras.adminSet = cfg, true }
}

// WithWarmup turns on hot-key tracking and prefetching on join and leave
// events (see package warmup). Without it nothing is tracked or prefetched,
// and WithKeySpaceWarmKeys has no effect. Zero numeric fields take the
// warmup defaults; WarmOnJoin and WarmOnLeave must be set explicitly (or
// start from warmup.DefaultConfig()).
func WithWarmup(cfg warmup.Config) Option {
	return func(c *Config) { c.extras.warmup, c.extras.warmupSet = cfg, true }
}

// extrasConfig holds the options of the optional subsystems (Config.extras).
// Values, not pointers: New's copy of the Config shares nothing with it.
type extrasConfig struct {
	admin     admin.Config
	adminSet  bool
	warmup    warmup.Config
	warmupSet bool
}

func (x *extrasConfig) validate() []error {
	var errs []error
	if x.adminSet {
		if err := x.admin.Validate(); err != nil {
			//lint:ignore ST1005 validation errors start with the Config field they name
			errs = append(errs, fmt.Errorf("Admin: %w", err))
		}
	}
	if x.warmupSet {
		if err := x.warmup.Validate(); err != nil {
			//lint:ignore ST1005 validation errors start with the Config field they name
			errs = append(errs, fmt.Errorf("Warmup: %w", err))
		}
	}
	return errs
}

// extras is the engine's state of the optional subsystems (Engine.ext).
type extras struct {
	handlerOnce sync.Once
	handler     http.Handler

	server atomic.Pointer[admin.Server]
	// warm is set while warmup runs; recordAccess reads it on every Get.
	warm atomic.Pointer[warmer]

	// mu orders startExtras and the goroutines started by goExtra against
	// stopExtras.
	mu      sync.Mutex
	stopped bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// goExtraLocked runs fn on an engine goroutine that stopExtras waits for.
// Callers hold e.ext.mu.
func (e *Engine) goExtraLocked(fn func()) bool {
	x := &e.ext
	if x.stopped {
		return false
	}
	x.wg.Add(1)
	if !e.spawn(func() { defer x.wg.Done(); fn() }) {
		x.wg.Done()
		return false
	}
	return true
}

func (e *Engine) goExtra(fn func()) bool {
	e.ext.mu.Lock()
	defer e.ext.mu.Unlock()
	return e.goExtraLocked(fn)
}

// AdminHandler returns the admin endpoints of this engine (see package
// admin) under the configured base path (default admin.DefaultBasePath),
// for mounting on your own mux: mux.Handle(admin.DefaultBasePath+"/",
// e.AdminHandler()). It works with or without WithAdminServer, before
// Start (reporting "not started") and after Stop.
func (e *Engine) AdminHandler() http.Handler {
	e.ext.handlerOnce.Do(func() {
		base := admin.DefaultBasePath
		if e.cfg.extras.adminSet {
			base = e.cfg.extras.admin.BasePath
		}
		e.ext.handler = admin.NewHandler(adminSource{e}, base)
	})
	return e.ext.handler
}

// AdminAddr returns the admin server's bound address, or "" when no server
// runs (none configured, not started yet, or stopped).
func (e *Engine) AdminAddr() string {
	if srv := e.ext.server.Load(); srv != nil {
		return srv.Addr()
	}
	return ""
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
	trackers map[string]*warmup.Tracker
	counters map[string]*warmCounters
	rounds   atomic.Int64

	mu      sync.Mutex // guards running, pending, prev
	running bool
	pending bool
	// prev is the ring before the earliest change not yet warmed for (nil:
	// none, only a start round is pending).
	prev *cluster.Ring
}

type warmCounters struct {
	loaded, requested, cached, failed atomic.Int64
}

// ringSettleWait bounds how long a round waits for the ring to reflect
// the member list (a rebuild is debounced) before planning anyway.
const ringSettleWait = time.Second

func newWarmer(e *Engine, ctx context.Context) *warmer {
	w := &warmer{
		e:        e,
		cfg:      e.cfg.extras.warmup.WithDefaults(),
		ctx:      ctx,
		trackers: map[string]*warmup.Tracker{},
		counters: map[string]*warmCounters{},
	}
	for _, name := range e.keyspaces.Load().names() {
		w.trackers[name] = warmup.NewTracker(w.cfg)
		w.counters[name] = &warmCounters{}
	}
	return w
}

// schedule asks for a round; prev is the ring before the change (nil for
// the start round). Rounds never overlap: a change during a round is
// warmed for by one more round, planned against the oldest prev.
func (w *warmer) schedule(prev *cluster.Ring) {
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

func ringMatchesMembers(cl *cluster.Cluster) bool {
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
func (w *warmer) round(prev *cluster.Ring) {
	defer w.rounds.Add(1)
	e := w.e
	next := e.cl.Ring()
	self := e.cl.Self().Name
	var prevView warmup.Ring
	if prev != nil {
		prevView = ringView{prev}
	}
	table := *e.keyspaces.Load()
	var tasks []warmup.Task
	for _, name := range table.names() {
		st := table[name]
		hot := warmup.Keys(w.trackers[name].Hot(w.cfg.MaxHotKeys, w.cfg.MinHits))
		plan := warmup.PlanFor(self, prevView, ringView{next}, st.settings.WarmKeys, hot)
		timeout := min(w.cfg.Timeout, st.settings.ReadTimeout)
		for _, k := range plan.Local {
			tasks = append(tasks, warmup.Task{KeySpace: name, Key: k, Timeout: timeout})
		}
		owners := make([]string, 0, len(plan.Push))
		for o := range plan.Push {
			owners = append(owners, o)
		}
		slices.Sort(owners)
		for _, o := range owners {
			for _, k := range plan.Push[o] {
				tasks = append(tasks, warmup.Task{KeySpace: name, Key: k, Owner: o, Timeout: timeout})
			}
		}
	}
	if len(tasks) == 0 {
		return
	}
	start := time.Now()
	res := warmup.Prefetch(w.ctx, tasks, w.cfg.Concurrency, func(ctx context.Context, t warmup.Task) error {
		return w.prefetch(ctx, next, t)
	})
	e.log.Debug("warmup round", "tasks", len(tasks), "ok", res.Succeeded, "failed", res.Failed,
		"skipped", res.Skipped, "took", time.Since(start), "first_err", res.FirstErr)
}

// prefetch loads one key through the normal read path: on this node
// (getLocal: store, then a coalesced, protected fetch) or by asking its
// owner, which does the same there. Never a second hop, never a degraded
// local load: warming must not fetch a key twice.
func (w *warmer) prefetch(ctx context.Context, ring *cluster.Ring, t warmup.Task) error {
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
			var resp transport.Response
			resp, err = e.cl.Call(ctx, m, transport.Request{Op: opGet, Payload: encodeKeys(st.name, []string{t.Key})})
			if err == nil {
				err = errorOf(m.Name, resp.Status, resp.Payload)
			}
		}
	}
	if err != nil && !errors.Is(err, keyspace.ErrNotFound) {
		c.failed.Add(1)
		return fmt.Errorf("distcache: warmup of %q in %q: %w", t.Key, t.KeySpace, err)
	}
	count.Add(1)
	return nil
}

func (w *warmer) decayLoop() {
	t := time.NewTicker(w.cfg.DecayInterval)
	defer t.Stop()
	for {
		select {
		case <-w.ctx.Done():
			return
		case <-t.C:
			for _, tr := range w.trackers {
				tr.Decay()
			}
		}
	}
}

// ringView adapts a ring to warmup.Ring.
type ringView struct{ r *cluster.Ring }

func (v ringView) Owner(key string) string     { return v.r.Owner(key).Name }
func (v ringView) Contains(member string) bool { return v.r.Contains(member) }

// membershipDiff reports whether next has members prev lacks (a join) and
// prev members next lacks (a leave or failure).
func membershipDiff(prev, next *cluster.Ring) (joined, left bool) {
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

// adminSource implements admin.Source for an engine.
type adminSource struct{ e *Engine }

var _ admin.Source = adminSource{}

// adminHotKeys is how many hot keys the admin endpoints show per keyspace.
const adminHotKeys = 20

// startedCluster returns the cluster once Start has created it (reading
// e.cl only after the state moved past starting keeps it race-free).
func (e *Engine) startedCluster() *cluster.Cluster {
	if s := e.state.Load(); s == stateNew || s == stateStarting {
		return nil
	}
	return e.cl
}

// Peers lists the members of this node's ring.
func (s adminSource) Peers() []admin.Peer {
	cl := s.e.startedCluster()
	if cl == nil {
		return nil
	}
	ring := cl.Ring()
	dist := ring.Distribution()
	self := cl.Self().Name
	members := ring.Members()
	out := make([]admin.Peer, 0, len(members))
	for _, m := range members {
		out = append(out, admin.Peer{Name: m.Name, Addr: m.Addr, IsSelf: m.Name == self, Partitions: dist[m.Name]})
	}
	return out
}

// KeySpaces reports every keyspace's settings and counters on this node.
func (s adminSource) KeySpaces() []admin.KeySpace {
	table := *s.e.keyspaces.Load()
	w := s.e.ext.warm.Load()
	out := make([]admin.KeySpace, 0, len(table))
	for _, name := range table.names() {
		st := table[name]
		// Counters only: this endpoint is polled, and counting entries
		// walks the store (8 pollers once took a node's Get p50 from
		// 124 µs to 76 ms). Entries comes from a count at most
		// adminEntriesEvery old.
		snap := st.snapshotWith(false)
		snap.Entries = st.adminEntries.get(st.store)
		set := st.settings
		ks := admin.KeySpace{
			Name:           name,
			MaxBytes:       set.MaxBytes,
			DefaultTTL:     admin.Duration(set.DefaultTTL),
			ReadTimeout:    admin.Duration(set.ReadTimeout),
			WriteTimeout:   admin.Duration(set.WriteTimeout),
			WarmKeys:       append([]string{}, set.WarmKeys...),
			MainCacheBytes: snap.UsedBytes,
			HotCacheBytes:  snap.NearUsedBytes,
			Stats:          adminStats(snap),
			Entries:        snap.Entries,
			NegativeTTL:    admin.Duration(set.NegativeTTL),
			MaxStale:       admin.Duration(set.MaxStale),
			NearCacheTTL:   admin.Duration(set.NearCacheTTL),
		}
		if w != nil {
			for _, h := range w.trackers[name].Hot(adminHotKeys, 1) {
				ks.HotKeys = append(ks.HotKeys, admin.HotKey{Key: h.Key, Hits: h.Hits})
			}
			if c := w.counters[name]; c != nil {
				ks.Warmup = &admin.WarmupStats{Loaded: c.loaded.Load(), Requested: c.requested.Load(), Cached: c.cached.Load(), Failed: c.failed.Load()}
			}
		}
		out = append(out, ks)
	}
	return out
}

// adminStats maps the engine's counters to the reference (groupcache)
// names, plus the finer ones. See admin.KeySpaceStats for each meaning.
func adminStats(s KeySpaceStats) *admin.KeySpaceStats {
	gets := s.Gets + s.Served
	localErrs := s.FetchErrors + s.RateLimited + s.CircuitOpen
	return &admin.KeySpaceStats{
		Gets:               gets,
		CacheHits:          s.Hits + s.NearHits,
		PeerLoads:          max(s.Forwarded-s.ForwardErrors, 0),
		PeerErrors:         s.ForwardErrors,
		Loads:              max(gets-s.Hits-s.NearHits, 0),
		LoadsDeduped:       s.Fetches + s.Forwarded,
		LocalLoads:         max(s.Fetches-localErrs, 0),
		LocalLoadErrs:      localErrs,
		RemoveKeysRequests: s.Deletes,
		RemovedKeys:        s.Deletes,
		ServerRequests:     s.Served,
		Misses:             s.Misses,
		NegativeHits:       s.NegativeHits,
		Fetches:            s.Fetches,
		FetchErrors:        s.FetchErrors,
		Coalesced:          s.LoadsDeduped,
		Forwarded:          s.Forwarded,
		ForwardsDeduped:    s.ForwardsDeduped,
		Degraded:           s.Degraded,
		StaleServed:        s.StaleServed,
		NearHits:           s.NearHits,
		Puts:               s.Puts,
		Deletes:            s.Deletes,
		Rejected:           s.Rejected,
		RateLimited:        s.RateLimited,
		CircuitOpen:        s.CircuitOpen,
		BreakerState:       s.BreakerState,
	}
}

// Health is nil until Stop begins.
func (s adminSource) Health() error {
	if st := s.e.state.Load(); st == stateStopping || st == stateStopped {
		return ErrEngineStopped
	}
	return nil
}

// Ready is nil while the engine is running, on its own ring (it has not
// begun to leave) and with at least MinimumPeersQuorum members.
func (s adminSource) Ready() error {
	if err := s.e.checkState(); err != nil {
		return err
	}
	ring, self := s.e.cl.Ring(), s.e.cl.Self().Name
	if !ring.Contains(self) {
		return fmt.Errorf("distcache: %s is not on its ring (leaving)", self)
	}
	if n, q := ring.Len(), s.e.cfg.MinimumPeersQuorum; n < q {
		return fmt.Errorf("%w: %d of %d members", ErrClusterQuorum, n, q)
	}
	return nil
}

// Hooks for the optional subsystems. Each is called from one place in the
// engine.

// recordAccess is called on every Get of key in st, on the caller and on
// the owner serving a forwarded Get. With warmup off it is one atomic load
// and a nil check; with it on, one tracker update (see warmup.Tracker).
func (e *Engine) recordAccess(st *ksState, key string) {
	if w := e.ext.warm.Load(); w != nil {
		w.trackers[st.name].Record(key)
	}
}

// startExtras runs at the end of a successful Start (the engine is
// running): it starts the admin server and warmup.
func (e *Engine) startExtras() error {
	x := &e.ext
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.stopped {
		return nil // Stop began meanwhile
	}
	ctx, cancel := context.WithCancel(e.base)
	x.cancel = cancel
	cfg := &e.cfg.extras
	if cfg.adminSet && cfg.admin.ListenAddr != "" {
		srv, err := admin.NewServer(cfg.admin, e.AdminHandler())
		if err != nil {
			return fmt.Errorf("distcache: admin server: %w", err)
		}
		if err := srv.Start(); err != nil {
			return fmt.Errorf("distcache: admin server: %w", err)
		}
		x.server.Store(srv)
		e.log.Info("admin server listening", "addr", srv.Addr())
	}
	if !cfg.warmupSet {
		for _, st := range *e.keyspaces.Load() {
			if len(st.settings.WarmKeys) > 0 {
				e.log.Warn("warm keys are configured but warmup is off (use WithWarmup)", "keyspace", st.name)
			}
		}
		return nil
	}
	w := newWarmer(e, ctx)
	e.goExtraLocked(w.decayLoop)
	if w.cfg.WarmOnJoin {
		// Warm the keys this node owns now; the round waits for the ring to
		// include the members Start joined. No other goroutine sees w yet.
		w.pending, w.running = true, true
		if !e.goExtraLocked(w.loop) {
			w.running = false
		}
	}
	// Published last: from here on Gets are tracked and ring changes
	// schedule rounds (which never overlap the start round).
	x.warm.Store(w)
	return nil
}

// stopExtras runs first in Stop: it stops the admin server and warmup and
// waits for their goroutines.
func (e *Engine) stopExtras() error {
	x := &e.ext
	x.mu.Lock()
	x.stopped = true
	cancel := x.cancel
	x.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	var err error
	if srv := x.server.Swap(nil); srv != nil {
		err = srv.Shutdown(context.Background()) // bounded by admin ShutdownTimeout
	}
	x.wg.Wait()
	return err
}

// keySpaceReplaced runs after UpdateKeySpace swapped in a new definition
// (whose store is empty): when warmup prefetches at all (WarmOnJoin or
// WarmOnLeave), a round reloads this node's warm and hot keys through the
// new DataSource. It runs under e.ksMu: return quickly.
func (e *Engine) keySpaceReplaced(name string) {
	if w := e.ext.warm.Load(); w != nil && (w.cfg.WarmOnJoin || w.cfg.WarmOnLeave) {
		e.log.Debug("warming a replaced keyspace", "keyspace", name)
		w.schedule(nil)
	}
}

// topologyChanged runs after each ring change (on the cluster's rebuild
// goroutine): it schedules a warmup round when a member joined (WarmOnJoin)
// or left (WarmOnLeave); the round runs on an engine goroutine.
func (e *Engine) topologyChanged(prev, next *cluster.Ring) {
	w := e.ext.warm.Load()
	if w == nil {
		return
	}
	joined, left := membershipDiff(prev, next)
	if (joined && w.cfg.WarmOnJoin) || (left && w.cfg.WarmOnLeave) {
		w.schedule(prev)
	}
}

// adminEntriesEvery bounds how often the admin endpoints count a store's
// entries (a walk of the store): at most once per period per keyspace,
// however often they are polled.
const adminEntriesEvery = time.Second

// entryCount caches a store's entry count for the admin endpoints.
type entryCount struct {
	mu sync.Mutex // guards the fields below; one walk at a time
	at time.Time
	n  int64
}

func (c *entryCount) get(s *cache.Store) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.at.IsZero() || time.Since(c.at) >= adminEntriesEvery {
		c.n = s.Stats().Entries
		c.at = time.Now()
	}
	return c.n
}

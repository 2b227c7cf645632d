package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distcache/distcache/cache"
	"github.com/distcache/distcache/cluster"
	"github.com/distcache/distcache/discovery"
	"github.com/distcache/distcache/keyspace"
)

// Engine lifecycle states.
const (
	stateNew int32 = iota
	stateStarting
	stateRunning
	stateStopping
	stateStopped
)

// Engine is one node of a distcache cluster. Create it with New, then Start
// it; every method is safe for concurrent use. See the package doc for the
// read and write paths.
type Engine struct {
	cfg Config // validated copy; never written after New
	log *slog.Logger

	state atomic.Int32
	// keyspaces is the current immutable keyspace snapshot.
	keyspaces atomic.Pointer[ksTable]
	// ksMu serialises keyspace changes (UpdateKeySpace, DeleteKeySpace).
	ksMu sync.Mutex

	cl       *cluster.Cluster
	selfName string // cl.Self().Name, set once in Start before any request
	obs      *observer

	// base is cancelled by Stop: background loops and in-flight loads end.
	base   context.Context
	cancel context.CancelFunc
	// spawnMu guards stopping against wg.Add after Stop began waiting, and
	// loads.
	spawnMu  sync.Mutex
	stopping bool
	wg       sync.WaitGroup
	// loads counts load goroutines, which Stop does not wait for past its
	// context (see loads.go).
	loads loadTracker

	// purging is set while purgeNotOwned runs; purgePending asks it to run
	// once more for a ring change that arrived meanwhile.
	purging, purgePending atomic.Bool
	// flushReq counts the flushes asked for (markUntrusted: this node may
	// have missed writes), flushDone the last one purgeNotOwned completed.
	// In between the stores are not trusted for reads (storeTrusted).
	// flushMu orders the requests' flushFrom marks.
	flushReq, flushDone atomic.Uint64
	flushMu             sync.Mutex
	// pause is the execution-gap watchdog (trust.go).
	pause pauseWatch
	// minoritySince is when this node lost contact with half of the
	// cluster it knew (unix ns; 0: it has not), see inMinority.
	minoritySince atomic.Int64
	// cutOff is set while the failure detector says this node cannot reach
	// most of its peers (trust.go).
	cutOff atomic.Bool
	// events fans membership changes out to Events subscribers.
	events eventHub
	// missed lists members that a write's invalidation could not reach, or
	// that came back after being declared failed: they are told to flush
	// (trust.go).
	missed missedPeers
	// peakMembers and missedWrites are only touched by onRingChange, which
	// the cluster never runs concurrently with itself.
	peakMembers  int
	missedWrites bool
	// failed holds members that disappeared without a graceful leave
	// (trust.go).
	failedMu sync.Mutex
	failed   map[string]time.Time

	// ringChangedAt is the time of the last ring change (unix ns).
	ringChangedAt atomic.Int64

	// leaving records peers that announced a graceful leave (opLeaving).
	leavingMu sync.Mutex
	leaving   map[string]time.Time

	stopOnce sync.Once
	stopErr  error
	stopped  chan struct{}

	ext extras // admin server and warmup (extras.go)
}

// New validates cfg (every invalid field is reported, each naming the field
// and keyspace, wrapped in ErrInvalidConfig) and returns an engine that is
// not started yet. It binds no port; Start does.
func New(cfg *Config) (*Engine, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	e := &Engine{cfg: *cfg, stopped: make(chan struct{})}
	e.pause.t0 = time.Now()
	e.missed.kick = make(chan struct{}, 1)
	e.cfg.KeySpaces = append([]keyspace.KeySpace(nil), cfg.KeySpaces...)
	e.log = cfg.Logger
	if e.log == nil {
		e.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	obs, err := newObserver(cfg.MeterProvider, cfg.TracerProvider)
	if err != nil {
		return nil, fmt.Errorf("%w: observability: %w", ErrInvalidConfig, err)
	}
	e.obs = obs
	table := ksTable{}
	for _, ks := range e.cfg.KeySpaces {
		s, _ := e.cfg.settingsFor(ks) // validated above
		st, err := newKSState(ks, s, e.log)
		if err != nil {
			table.close()
			return nil, fmt.Errorf("%w: keyspace %q: %w", ErrInvalidConfig, ks.Name(), err)
		}
		table[ks.Name()] = st
	}
	e.keyspaces.Store(&table)
	e.base, e.cancel = context.WithCancel(context.Background())
	return e, nil
}

func (t ksTable) close() {
	for _, st := range t {
		st.close()
	}
}

// Start binds the node's port, starts the discovery provider, and joins the
// discovered peers until the cluster has MinimumPeersQuorum members or
// BootstrapTimeout passes (ErrClusterQuorum). With the default quorum of 1 a
// node starts alone at once even while its seeds are not up, and later nodes
// join it. After Start, the provider is polled every DiscoveryInterval and
// newly found peers are joined, so that late nodes and healed partitions
// merge. A failed Start releases everything; the engine is then stopped.
func (e *Engine) Start(ctx context.Context) error {
	if !e.state.CompareAndSwap(stateNew, stateStarting) {
		if e.state.Load() >= stateStopping {
			return ErrEngineStopped
		}
		return ErrEngineStarted
	}
	if err := e.start(ctx); err != nil {
		e.state.Store(stateStopping)
		e.shutdown(context.Background(), false)
		return err
	}
	e.state.Store(stateRunning)
	e.spawn(e.discoveryLoop)
	if err := e.startExtras(); err != nil {
		_ = e.Stop(context.Background())
		return err
	}
	return nil
}

func (e *Engine) start(ctx context.Context) error {
	ccfg := cluster.DefaultConfig()
	ccfg.NodeName = e.cfg.NodeName
	ccfg.BindAddr = e.cfg.BindAddr
	ccfg.BindPort = e.cfg.BindPort
	ccfg.AdvertiseAddr = e.cfg.AdvertiseAddr
	ccfg.AdvertisePort = e.cfg.AdvertisePort
	ccfg.Label = e.cfg.Label
	ccfg.SecretKey = e.cfg.GossipSecret
	if e.cfg.TLS != nil {
		ccfg.ServerTLS, ccfg.ClientTLS = e.cfg.TLS.ServerTLS, e.cfg.TLS.ClientTLS
	}
	ccfg.PartitionCount = e.cfg.PartitionCount
	ccfg.Logger = e.log
	ccfg.Handler = rpcHandler{e}
	ccfg.OnRingChange = e.onRingChange
	for _, tweak := range e.cfg.clusterTweaks {
		tweak(&ccfg)
	}
	// Open the hand-off window now: peers purge the keys this node takes
	// over as soon as they see it, and may hand them off before its own
	// (debounced) ring rebuild; under load that happens seconds later, and
	// a closed window would drop every such hand-off. Safe: the store is
	// empty and its writes are recorded from now on.
	e.ringChangedAt.Store(time.Now().UnixNano())
	cl, err := cluster.New(ccfg)
	if err != nil {
		return fmt.Errorf("distcache: start cluster: %w", err)
	}
	e.cl = cl
	self := cl.Self()
	e.selfName = self.Name
	e.log = e.log.With("node", self.Name)
	e.startPauseWatch()
	e.spawn(e.flushNotifier)
	if err := e.cfg.Provider.Start(ctx, discovery.Self{Name: self.Name, Addr: self.Addr}); err != nil {
		return fmt.Errorf("distcache: start discovery: %w", err)
	}
	return e.bootstrap(ctx)
}

// spawn runs fn on an engine-owned goroutine, unless Stop has begun.
func (e *Engine) spawn(fn func()) bool {
	e.spawnMu.Lock()
	defer e.spawnMu.Unlock()
	if e.stopping {
		return false
	}
	e.wg.Go(fn)
	return true
}

// Stop leaves the cluster gracefully and releases everything: new calls fail
// with ErrEngineStopped at once; requests forwarded to this node are drained
// (peers meanwhile load locally); the node leaves (peers see it within about
// a second and re-route its keys); the provider deregisters; in-flight loads
// are cancelled; and every goroutine the engine started has exited when Stop
// returns, except loads blocked in a DataSource.Fetch that ignores its
// cancelled context: those are abandoned once ctx (or ShutdownTimeout) ends,
// and Stop's error counts them. Such a goroutine belongs to the user's code
// and ends when Fetch returns. The graceful part is bounded by ctx and
// ShutdownTimeout. Stop is
// idempotent: later calls wait for the first and return its result.
func (e *Engine) Stop(ctx context.Context) error {
	e.stopOnce.Do(func() {
		prev := e.state.Swap(stateStopping)
		e.stopErr = e.shutdown(ctx, prev == stateRunning)
		e.state.Store(stateStopped)
		close(e.stopped)
	})
	<-e.stopped
	return e.stopErr
}

// shutdown tears down in dependency order, running every step even when an
// earlier one fails, and returns the joined errors.
func (e *Engine) shutdown(ctx context.Context, graceful bool) error {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.ShutdownTimeout)
	defer cancel()
	var errs []error
	if err := e.stopExtras(); err != nil {
		errs = append(errs, err)
	}
	if e.cl != nil && graceful {
		// Tell peers this is a graceful departure (not a failure, see
		// onRingChange), then leave and keep serving peers while they learn
		// of it, so their writes do not meet a node that refuses them; then
		// drain.
		e.announceLeaving(ctx)
		before := e.cl.Ring() // leaving empties our own view of the ring
		// Hand our entries to their next owners before they become owners
		// (and load from the DataSource on a miss), and again after the
		// leave for what was written meanwhile: the receivers take each
		// entry unless they saw a newer write of it (recentWrites).
		e.handOffOnLeave(ctx, before)
		leave := time.Until(deadlineOr(ctx, time.Now().Add(5*time.Second)))
		if err := e.cl.Leave(max(min(leave, 5*time.Second), 0)); err != nil {
			errs = append(errs, fmt.Errorf("leave: %w", err))
		}
		e.quiesce(ctx)
		e.handOffOnLeave(ctx, before)
		if err := e.cl.Transport().Drain(ctx); err != nil {
			errs = append(errs, fmt.Errorf("drain: %w", err))
		}
	}
	if e.cfg.Provider != nil && e.state.Load() != stateNew {
		if err := e.cfg.Provider.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("discovery stop: %w", err))
		}
	}
	e.spawnMu.Lock()
	e.stopping = true
	loadsIdle := e.stopLoadsLocked()
	e.spawnMu.Unlock()
	e.cancel()
	if e.cl != nil {
		if err := e.cl.Shutdown(); err != nil {
			errs = append(errs, fmt.Errorf("cluster shutdown: %w", err))
		}
	}
	e.wg.Wait()
	if err := e.awaitLoads(ctx, loadsIdle); err != nil {
		errs = append(errs, err)
	}
	e.events.close() // the cluster's goroutine, which publishes, has exited
	e.keyspaces.Load().close()
	if len(errs) > 0 {
		return fmt.Errorf("distcache: stop: %w", errors.Join(errs...))
	}
	return nil
}

// announceLeaving tells every member, best effort and briefly, that this
// node is about to leave on purpose.
func (e *Engine) announceLeaving(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	payload := encodeName(e.selfName)
	var wg sync.WaitGroup
	for _, m := range e.cl.Ring().Members() {
		if m.Name != e.selfName {
			wg.Go(func() { _ = e.call(ctx, m, opLeaving, payload) })
		}
	}
	wg.Wait()
}

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

// quiesce waits, after Leave, until peers stop sending requests: no new
// request for quietFor, at most quiesceMax (peers re-route within a gossip
// round and a ring debounce). Peers that still send one afterwards get
// ErrShuttingDown and fall back (Gets load locally, Puts retry on the new
// owner).
func (e *Engine) quiesce(ctx context.Context) {
	const quietFor, quiesceMax, poll = 100 * time.Millisecond, time.Second, 20 * time.Millisecond
	deadline := time.Now().Add(quiesceMax)
	last, lastChange := e.cl.Transport().Stats().Requests, time.Now()
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for time.Now().Before(deadline) && time.Since(lastChange) < quietFor {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if n := e.cl.Transport().Stats().Requests; n != last {
			last, lastChange = n, time.Now()
		}
	}
}

func deadlineOr(ctx context.Context, def time.Time) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return def
}

// checkState returns nil while the engine is running.
func (e *Engine) checkState() error {
	switch e.state.Load() {
	case stateRunning:
		return nil
	case stateNew, stateStarting:
		return ErrEngineNotStarted
	default:
		return ErrEngineStopped
	}
}

// Addr is the host:port peers reach this node at ("" before Start).
func (e *Engine) Addr() string {
	if e.cl == nil || e.state.Load() < stateRunning {
		return ""
	}
	return e.cl.Self().Addr
}

// NodeName is this node's name in the cluster ("" before Start).
func (e *Engine) NodeName() string {
	if e.cl == nil || e.state.Load() < stateRunning {
		return ""
	}
	return e.cl.Self().Name
}

// Members returns the cluster members in this node's current ring, sorted by
// name (nil before Start).
func (e *Engine) Members() []cluster.Member {
	if e.checkState() != nil {
		return nil
	}
	return e.cl.Ring().Members()
}

// Owner returns the member that owns key in this node's current ring.
func (e *Engine) Owner(key string) (cluster.Member, error) {
	if err := e.checkState(); err != nil {
		return cluster.Member{}, err
	}
	return e.cl.Ring().Owner(key), nil
}

// Cluster exposes the underlying cluster for diagnostics and tests (ring,
// transport stats, partition hooks). Nil before Start.
func (e *Engine) Cluster() *cluster.Cluster { return e.cl }

// keyspace resolves a name in the current snapshot.
func (e *Engine) keyspace(name string) (*ksState, error) {
	if st := (*e.keyspaces.Load())[name]; st != nil {
		return st, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrKeySpaceNotFound, name)
}

func (e *Engine) checkKey(key string) error {
	switch {
	case key == "":
		return ErrEmptyKey
	case len(key) > e.cfg.MaxKeyBytes:
		return fmt.Errorf("%w: %d bytes, limit %d", ErrKeyTooLarge, len(key), e.cfg.MaxKeyBytes)
	}
	return nil
}

// onRingChange runs on the cluster's rebuild goroutine after each swap; it
// must return quickly, so the purge runs on an engine goroutine.
func (e *Engine) onRingChange(prev, next *cluster.Ring) {
	if !next.Contains(e.selfName) {
		// We left (Stop): keep the entries for handOffOnLeave.
		e.announceRingChange(nil, next)
		return
	}
	// Open a hand-off window: writes from now on are remembered to guard
	// against stale hand-offs (see handoff.go).
	e.ringChangedAt.Store(time.Now().UnixNano())
	// A node that lost contact with at least half of the cluster it knew
	// (it was cut off, or most peers failed) may have missed invalidations
	// sent while it was unreachable: when it reconnects, it drops everything
	// rather than serve values that were overwritten or deleted meanwhile.
	// The majority side keeps its entries; it heard every write it owns.
	// Members that left gracefully shrink the cluster on purpose and do not
	// count as lost contact (scaling down and up again keeps the caches).
	e.peakMembers = max(e.peakMembers, prev.Len(), next.Len())
	var changes []memberChange
	for _, m := range prev.Members() {
		switch {
		case next.Contains(m.Name):
		case e.leftGracefully(m.Name):
			e.peakMembers = max(e.peakMembers-1, next.Len())
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
	e.noteReturning(prev, next)
	e.topologyChanged(prev, next)
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
// now owns. Values are not handed to the new owners: they reload them on
// first use.
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
			var moved []string
			st.store.Range(func(key string, _ cache.Entry) bool {
				if all || ring.Owner(key).Name != self {
					moved = append(moved, key)
				}
				return e.base.Err() == nil
			})
			// A flushing node's entries may be stale: never hand those off.
			if !all && e.cfg.Handoff && len(moved) > 0 {
				e.handOff(e.base, st, ring, moved)
			}
			upTo := st.flushFrom.Load()
			for _, k := range moved {
				if all {
					e.flushLocal(st, k, upTo)
				} else {
					e.removeLocal(st, k, nil)
				}
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

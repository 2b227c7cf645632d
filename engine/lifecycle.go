package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/distcache/distcache/discovery"
	"github.com/distcache/distcache/internal/membership"
)

// Engine lifecycle states.
const (
	stateNew int32 = iota
	stateStarting
	stateRunning
	stateStopping
	stateStopped
)

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
	ccfg := e.cfg.clusterTuning.clusterConfig()
	ccfg.NodeName = e.cfg.NodeName
	ccfg.BindAddr = e.cfg.BindAddr
	ccfg.BindPort = e.cfg.BindPort
	ccfg.AdvertiseAddr = e.cfg.AdvertiseAddr
	ccfg.AdvertisePort = e.cfg.AdvertisePort
	ccfg.Label = e.cfg.Label
	ccfg.SecretKey = e.cfg.GossipSecret
	ccfg.ServerTLS, ccfg.ClientTLS = e.cfg.ServerTLS, e.cfg.ClientTLS
	ccfg.PartitionCount = e.cfg.PartitionCount
	ccfg.Logger = e.log
	ccfg.Handler = rpcHandler{e}
	ccfg.BeforeRingChange = e.judgeRingChange
	ccfg.OnRingChange = e.onRingChange
	ccfg.Transport.Network = e.cfg.network
	ccfg.Insecure = e.cfg.insecure
	// Open the hand-off window now: peers purge the keys this node takes
	// over as soon as they see it, and may hand them off before its own
	// (debounced) ring rebuild; under load that happens seconds later, and
	// a closed window would drop every such hand-off. Safe: the store is
	// empty and its writes are recorded from now on.
	e.ringChangedAt.Store(time.Now().UnixNano())
	cl, err := membership.New(ccfg)
	if err != nil {
		return fmt.Errorf("distcache: start cluster: %w", err)
	}
	e.cl = cl
	e.peers = peers{cl: cl, obs: e.obs}
	self := cl.Self()
	e.selfName = self.Name
	e.log = e.log.With("node", self.Name)
	e.serving.Store(true)
	e.startPauseWatch()
	e.spawn(e.flushNotifier)
	e.spawn(e.repairLoop)
	if err := e.cfg.Provider.Start(ctx, discovery.Self{Name: self.Name, Addr: self.Addr}); err != nil {
		return fmt.Errorf("distcache: start discovery: %w", err)
	}
	return e.bootstrap(ctx)
}

// every runs fn each period until ctx ends: the engine's periodic loops
// (pause watchdog, replica repair, warmup decay and refresh).
func every(ctx context.Context, period time.Duration, fn func()) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
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
		e.handoffOnLeave(ctx, before)
		leave := time.Until(deadlineOr(ctx, time.Now().Add(5*time.Second)))
		if err := e.cl.Leave(max(min(leave, 5*time.Second), 0)); err != nil {
			errs = append(errs, fmt.Errorf("leave: %w", err))
		}
		e.quiesce(ctx)
		e.handoffOnLeave(ctx, before)
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
	if err := e.obs.stop(); err != nil {
		errs = append(errs, fmt.Errorf("metrics: %w", err))
	}
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
	var wg sync.WaitGroup
	for _, m := range e.cl.Ring().Members() {
		if m.Name != e.selfName {
			wg.Go(func() { _ = e.peers.leaving(ctx, m, e.selfName) })
		}
	}
	wg.Wait()
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

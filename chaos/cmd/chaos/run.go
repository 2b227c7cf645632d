package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/distcache/distcache/chaos/check"
	"github.com/distcache/distcache/chaos/internal/netns"
	"github.com/distcache/distcache/chaos/internal/stall"
)

// outcome is one scenario's result.
type outcome struct {
	sc       scenario
	res      check.Result
	fetches  [check.NumPhases]int64
	degraded [check.NumPhases]int64
	// recovery is how long after the fault's end every node served again
	// (-1: never within the bound).
	recovery time.Duration
	timeline check.Timeline
	// stalls are the host stalls seen (driver and nodes).
	stalls []check.Stall
	took   time.Duration
	logs   string
	// refresh is the refresh scenario's verdict and figures, over the
	// window refreshWindow (nil for the fault scenarios).
	refresh       *check.RefreshResult
	refreshWindow [2]time.Duration
	// steadyTail marks the last part of the steady phase (lossless
	// scenarios).
	steadyTail check.SteadyTail
	// err is a failure to run the scenario at all (setup, a node that
	// would not start): the run fails too.
	err error
}

// lossless scenarios run a steady phase of at least lossless.steady, and
// measure its fetch rate over its last lossless.tail: after the warm-up,
// re-reads of deleted keys take a few seconds (each key is read about every
// 2 s) to reach their steady rate.
var lossless = struct{ steady, tail time.Duration }{8 * time.Second, 4 * time.Second}

// runScenario starts a fresh cluster, runs the workload through the steady,
// fault and recovery phases, stops everything and checks the history.
func (env *env) runScenario(ctx context.Context, sc scenario) (out outcome) {
	begin := time.Now()
	out = outcome{sc: sc, recovery: -1}
	defer func() { out.took = time.Since(begin) }()
	cfg := env.cfg
	out.logs = filepath.Join(env.dir, sc.name)
	if err := os.MkdirAll(out.logs, 0o755); err != nil {
		out.err = err
		return out
	}

	var nw *netns.Net
	if sc.netns {
		var err error
		if nw, err = netns.Create(ctx, cfg.nodes); err != nil {
			out.err = fmt.Errorf("partition scenario needs network namespaces: %w", err)
			return out
		}
		env.addNet(nw)
		defer env.closeNet(nw)
	}

	epoch := time.Now()
	c, err := launch(ctx, cfg, env.procs, nw, out.logs, fmt.Sprintf("chaos-%d-%s", os.Getpid(), sc.name), epoch, sc.nodeArgs)
	if err != nil {
		out.err = err
		return out
	}
	defer c.stopAll()
	if err := c.waitServing(ctx, 30*time.Second); err != nil {
		out.err = fmt.Errorf("before the workload: %w", err)
		return out
	}

	driverStalls := stall.New(10*time.Millisecond, 300*time.Millisecond, 1024)
	mon := newMonitor(c)
	wl := newWorkload(c, cfg)
	mctx, stopMon := context.WithCancel(ctx)
	wctx, stopWork := context.WithCancel(ctx)
	var monWG, workWG sync.WaitGroup
	monWG.Go(func() { env.guard(func() { mon.run(mctx) }) })
	monWG.Go(func() { driverStalls.Run(mctx) })
	env.guard(func() { wl.warm(ctx) })
	mon.restart(ctx)
	out.timeline.Start = c.now()
	workWG.Go(func() { env.guard(func() { wl.run(wctx) }) })
	defer func() {
		stopWork()
		workWG.Wait()
		stopMon()
		monWG.Wait()
	}()

	tl := &out.timeline
	steady, tail := cfg.steady, time.Duration(0)
	if sc.lossless {
		// The fetch-rate invariant compares the fault with the end of the
		// steady phase, once re-reads of deleted keys have reached their
		// steady rate (see check.Input.SteadyTail).
		steady, tail = max(steady, lossless.steady), lossless.tail
	}
	if !waitFor(ctx, steady-tail) {
		out.err = ctx.Err()
		return out
	}
	out.steadyTail = check.SteadyTail{From: c.now(), Fetches: mon.phaseFetches(ctx, check.Steady)}
	if !waitFor(ctx, tail) {
		out.err = ctx.Err()
		return out
	}
	mon.setPhase(ctx, check.Fault, false)
	tl.FaultStart = c.now()
	faultEnds := time.Now().Add(sc.duration(cfg))
	if err := sc.inject(ctx, c); err != nil {
		out.err = fmt.Errorf("inject: %w", err)
		return out
	}
	if !waitFor(ctx, time.Until(faultEnds)) {
		out.err = ctx.Err()
		return out
	}
	mon.setPhase(ctx, check.Recovery, true)
	tl.FaultEnd = c.now()
	if err := sc.end(ctx, c); err != nil {
		out.err = fmt.Errorf("end of fault: %w", err)
		return out
	}
	// The recovery phase lasts cfg.recovery, and at least cfg.afterRecovery
	// past the moment every node served again (to catch stale reads then),
	// unless recovery takes longer than its bound.
	for {
		since := c.now() - tl.FaultEnd
		rec := mon.recoveredAfter()
		if rec >= 0 && since >= cfg.recovery && since >= rec+cfg.afterRecovery {
			break
		}
		if rec < 0 && since >= max(cfg.recovery, cfg.recoveryBound) {
			break
		}
		if !waitFor(ctx, monitorEvery) {
			out.err = ctx.Err()
			return out
		}
	}
	stopWork()
	workWG.Wait() // the workload and its calls in flight are done
	tl.End = c.now()
	mon.sample(ctx)
	out.fetches, out.degraded = mon.totals()
	out.recovery = mon.recoveredAfter()

	outages := c.outagesSnapshot()
	in := check.Input{
		Calls: wl.calls(), Timeline: *tl, Outages: outages,
		Stalls:   mon.hostStalls(driverStalls.Stalls(), outages),
		Deadline: cfg.deadline, Slack: cfg.slack,
		Recovered: out.recovery, RecoveryBound: cfg.recoveryBound,
		Lossless: sc.lossless, Fetches: out.fetches, SteadyTail: out.steadyTail,
	}
	if sc.netns {
		in.Partition = &check.Partition{From: tl.FaultStart, To: tl.FaultEnd, Minority: sc.minority}
	}
	out.res = check.Check(in)
	out.stalls = in.Stalls
	if err := dumpCalls(filepath.Join(out.logs, "calls.jsonl"), in.Calls); err != nil {
		fmt.Fprintln(os.Stderr, "chaos: writing the history:", err)
	}
	return out
}

// waitFor waits d, or until ctx ends (false). The phases of a run are
// durations by definition; the driver's waits for conditions poll.
func waitFor(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(max(d, 0))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

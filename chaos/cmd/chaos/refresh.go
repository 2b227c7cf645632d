package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/distcache/distcache/chaos/check"
	"github.com/distcache/distcache/chaos/internal/ctlapi"
	"github.com/distcache/distcache/chaos/internal/rowdb"
	"github.com/distcache/distcache/chaos/internal/stall"
)

// The refresh scenario (issue 10, refresh-ahead): no fault; the nodes read
// a shared database (package rowdb) whose rows the driver changes, with
// refresh-ahead every refreshEvery and a near cache whose copies outlive
// many intervals, so that only the refresh's invalidation can drop them.
const (
	refreshEvery   = time.Second
	refreshNearTTL = time.Minute
	refreshHot     = 8
	refreshCold    = 40
	// refreshDoomed is one more hot key, whose row the driver deletes at
	// the first change: its fetches are not counted (once the row is gone,
	// every read of it loads, and finds nothing).
	refreshDoomed = "doomed"
	// refreshReadEvery is each node's reader's pace: one hot key per tick,
	// so every node reads every hot key about every 180 ms.
	refreshReadEvery = 20 * time.Millisecond
	// refreshBound is how long after a change every node must return the new
	// row: up to one interval until the owner's next refresh, one more for a
	// refresh in flight or a late tick, and a margin for the invalidation.
	refreshBound = 2*refreshEvery + 500*time.Millisecond
	// refreshTolerance is how far a hot key's fetches in the window may be
	// from its number of intervals (a tick at either edge, a late tick).
	refreshTolerance = 2
	// refreshChangeEvery spaces the changes of rows, each judged over
	// refreshBound; not a multiple of the interval, so that the changes
	// fall at different points of the owners' refresh cycle.
	refreshChangeEvery = refreshBound + refreshEvery/3
)

func refreshScenario() scenario {
	return scenario{
		name: "refresh",
		about: fmt.Sprintf("no fault: refresh-ahead every %s with near caches (TTL %s) over a shared database; the driver changes hot rows without a Put",
			refreshEvery, refreshNearTTL),
		nodeArgs: []string{"-refresh", refreshEvery.String(), "-near-ttl", refreshNearTTL.String()},
		run:      (*env).runRefresh,
	}
}

// refreshReads records the scenario's Gets.
type refreshReads struct {
	c        *cluster
	deadline time.Duration
	mu       sync.Mutex // guards calls
	calls    []check.Call
}

// get reads key through node i and records the call.
func (rr *refreshReads) get(ctx context.Context, client, i int, key string) {
	cl := rr.c.nodes[i].client.Load()
	if cl == nil {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rr.deadline+10*time.Second)
	defer cancel()
	c := check.Call{Client: client, Node: i, Op: check.Get, Key: key, Start: rr.c.now()}
	res, err := cl.Op(cctx, ctlapi.OpGet, key, 0, rr.deadline)
	c.End = rr.c.now()
	record(&c, res, err)
	if !c.OK && c.Err == ctlapi.ErrNotFound {
		c.OK, c.Err, c.Missing = true, "", true // the row was deleted
	} else if c.OK {
		v, perr := ctlapi.ParseValue(key, []byte(res.Value))
		if perr != nil {
			c.BadValue = perr.Error()
		}
		c.Version = v
	}
	rr.mu.Lock()
	rr.calls = append(rr.calls, c)
	rr.mu.Unlock()
}

// runRefresh runs the refresh scenario: every node reads the hot keys
// continuously, each cold key is read once; after a warm-up interval the
// database's fetches are counted over cfg.refreshIntervals intervals while
// the driver changes hot rows every refreshChangeEvery.
func (env *env) runRefresh(ctx context.Context, sc scenario) (out outcome) {
	begin := time.Now()
	out = outcome{sc: sc, recovery: -1}
	defer func() { out.took = time.Since(begin) }()
	cfg := env.cfg
	out.logs = filepath.Join(env.dir, sc.name)
	if err := os.MkdirAll(out.logs, 0o755); err != nil {
		out.err = err
		return out
	}
	db, err := rowdb.Start()
	if err != nil {
		out.err = err
		return out
	}
	defer db.Close()

	c, err := launch(ctx, cfg, env.procs, nil, out.logs, fmt.Sprintf("chaos-%d-%s", os.Getpid(), sc.name), time.Now(),
		append(slices.Clone(sc.nodeArgs), "-db", db.URL()))
	if err != nil {
		out.err = err
		return out
	}
	defer c.stopAll()
	if err := c.waitServing(ctx, 30*time.Second); err != nil {
		out.err = fmt.Errorf("before the workload: %w", err)
		return out
	}

	hot, cold := make([]string, refreshHot), make([]string, refreshCold)
	for i := range hot {
		hot[i] = fmt.Sprintf("hot-%02d", i)
	}
	for i := range cold {
		cold[i] = fmt.Sprintf("cold-%03d", i)
	}
	driverStalls := stall.New(10*time.Millisecond, 300*time.Millisecond, 1024)
	mon := newMonitor(c)
	read := append(slices.Clone(hot), refreshDoomed)
	reads := &refreshReads{c: c, deadline: cfg.deadline}
	mctx, stopMon := context.WithCancel(ctx)
	rctx, stopReads := context.WithCancel(ctx)
	var monWG, readWG sync.WaitGroup
	monWG.Go(func() { env.guard(func() { mon.run(mctx) }) })
	monWG.Go(func() { driverStalls.Run(mctx) })
	for i := range c.nodes {
		readWG.Go(func() {
			env.guard(func() {
				t := time.NewTicker(refreshReadEvery)
				defer t.Stop()
				for k := i; ; k++ {
					select {
					case <-rctx.Done():
						return
					case <-t.C:
					}
					reads.get(rctx, i, i, read[k%len(read)])
				}
			})
		})
	}
	coldDone := make(chan struct{})
	readWG.Go(func() {
		defer close(coldDone)
		env.guard(func() {
			for j, k := range cold {
				if !waitFor(rctx, refreshEvery/refreshCold) {
					return
				}
				reads.get(rctx, len(c.nodes), j%len(c.nodes), k)
			}
		})
	})
	defer func() {
		stopReads()
		readWG.Wait()
		stopMon()
		monWG.Wait()
	}()

	// Warm-up: every hot key loaded, every cold key read, then one full
	// interval so that each owner has had a refresh tick with its keys hot.
	for {
		f := db.Fetches()
		if !slices.ContainsFunc(read, func(k string) bool { return f[k] == nil }) {
			break
		}
		if !waitFor(ctx, 50*time.Millisecond) {
			out.err = ctx.Err()
			return out
		}
	}
	select {
	case <-coldDone:
	case <-ctx.Done():
		out.err = ctx.Err()
		return out
	}
	if !waitFor(ctx, refreshEvery) {
		out.err = ctx.Err()
		return out
	}

	windowFrom, before := c.now(), db.Fetches()
	windowTo := windowFrom + time.Duration(cfg.refreshIntervals)*refreshEvery
	var changes []check.RowChange
	versions := make([]uint64, len(hot))
	for i := 0; ; i++ {
		at := windowFrom + refreshEvery/2 + time.Duration(i)*refreshChangeEvery
		if at+refreshBound > windowTo {
			break
		}
		if !waitFor(ctx, at-c.now()) {
			out.err = ctx.Err()
			return out
		}
		if i == 0 {
			ch := check.RowChange{Key: refreshDoomed, Version: 1, Deleted: true, Start: c.now()}
			db.Delete(refreshDoomed)
			ch.End = c.now()
			changes = append(changes, ch)
		}
		// Every other change leaves half the rows as they are: their
		// refreshes find the same value.
		for k, key := range hot {
			if i%2 == 1 && k%2 == 1 {
				continue
			}
			versions[k]++
			ch := check.RowChange{Key: key, Version: versions[k], Start: c.now()}
			db.Set(key, versions[k])
			ch.End = c.now()
			changes = append(changes, ch)
		}
	}
	if !waitFor(ctx, windowTo-c.now()) {
		out.err = ctx.Err()
		return out
	}
	after := db.Fetches()
	stopReads()
	readWG.Wait()
	final := db.Fetches()

	in := check.RefreshInput{
		Calls: reads.calls, Nodes: len(c.nodes), Hot: hot, Cold: cold, Changes: changes,
		Interval: refreshEvery, Bound: refreshBound,
		WindowFrom: windowFrom, WindowTo: windowTo, Intervals: cfg.refreshIntervals, Tolerance: refreshTolerance,
		HotFetches: map[string]map[string]int{}, ColdFetches: map[string]int{},
		Deadline: cfg.deadline, Slack: cfg.slack,
		Stalls: mon.hostStalls(driverStalls.Stalls(), nil),
	}
	for _, k := range hot {
		in.HotFetches[k] = map[string]int{}
		for n, f := range after[k] {
			if d := f - before[k][n]; d > 0 {
				in.HotFetches[k][n] = d
			}
		}
	}
	for _, k := range cold {
		for _, f := range final[k] {
			in.ColdFetches[k] += f
		}
	}
	for k, byNode := range after {
		for n, f := range byNode {
			out.fetches[check.Steady] += int64(f - before[k][n])
		}
	}
	res := check.CheckRefresh(in)
	out.refresh = &res
	out.stalls = in.Stalls
	out.res.Violations = res.Violations
	out.res.Phases[check.Steady] = check.PhaseStats{Calls: res.Calls, Gets: res.Calls, Failures: res.Failures, Stale: res.Late + res.Back, MaxLatency: res.MaxLatency}
	out.refreshWindow = [2]time.Duration{windowFrom, windowTo}
	if err := dumpCalls(filepath.Join(out.logs, "calls.jsonl"), in.Calls); err != nil {
		fmt.Fprintln(os.Stderr, "chaos: writing the history:", err)
	}
	return out
}

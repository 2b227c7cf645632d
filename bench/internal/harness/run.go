package harness

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/distcache/distcache/bench/internal/raw"
	"github.com/distcache/distcache/bench/internal/sut"
)

// Logf receives progress lines.
type Logf func(format string, args ...any)

// Run measures the baselines (unless skipBaselines) and then every system in
// order, each on a fresh Source.
func Run(ctx context.Context, cfg Config, systems []sut.System, skipBaselines bool, logf Logf) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	start := time.Now()
	rep := &Report{Config: cfg}
	if !skipBaselines {
		b, err := RunBaselines(ctx, cfg, logf)
		if err != nil {
			return nil, err
		}
		rep.Baselines = b
	}
	for _, sys := range systems {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		rep.Systems = append(rep.Systems, RunSystem(ctx, sys, cfg, logf))
	}
	rep.TotalSecs = time.Since(start).Seconds()
	return rep, nil
}

// RunBaselines measures the raw limits with cfg's key set, callers and
// value size; each runs for Duration/2.
func RunBaselines(ctx context.Context, cfg Config, logf Logf) (Baselines, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	var b Baselines
	d := cfg.Duration / 2
	keys := makeKeys(cfg.Keys)

	h0 := heapAfterGC()
	m := make(map[string][]byte, len(keys))
	for _, k := range keys {
		kk := string([]byte(k))
		m[kk] = make([]byte, cfg.ValueSize)
	}
	b.MemMap = float64(int64(heapAfterGC())-int64(h0)) / float64(len(keys))
	runtime.KeepAlive(m)
	m = nil

	h0 = heapAfterGC()
	c, err := raw.NewRistretto(keys, cfg.ValueSize)
	if err != nil {
		return b, fmt.Errorf("harness: ristretto: %w", err)
	}
	b.MemRistretto = float64(int64(heapAfterGC())-int64(h0)) / float64(len(keys))
	for _, v := range []struct {
		name string
		dist raw.KeyDist
	}{{BaseRistrettoZipf, raw.Zipf(len(keys))}, {BaseRistrettoUniform, raw.Uniform(len(keys))}} {
		logf("baseline: %s", v.name)
		mm := raw.RistrettoGet(ctx, c, keys, v.dist, cfg.Callers, d)
		b.Results = append(b.Results, measured(v.name, mm))
	}
	c.Close()

	logf("baseline: %s", BaseTCPPipeline)
	mm, err := raw.TCPPipeline(ctx, 64, cfg.ValueSize, d)
	if err != nil {
		return b, fmt.Errorf("harness: tcp pipeline: %w", err)
	}
	b.Results = append(b.Results, measured(BaseTCPPipeline, mm))
	logf("baseline: %s", BaseTCPPingPong)
	mm, err = raw.TCPPingPong(ctx, cfg.ValueSize, d)
	if err != nil {
		return b, fmt.Errorf("harness: tcp ping-pong: %w", err)
	}
	b.Results = append(b.Results, measured(BaseTCPPingPong, mm))
	return b, nil
}

func measured(name string, m raw.Measurement) Result {
	r := Result{System: name, Ops: m.Ops, Secs: m.Elapsed.Seconds()}
	fill(&r, m.Latency, meter{remote: -1}, meter{mallocs: m.Mallocs, cpu: m.CPU, syscalls: m.Syscalls, remote: -1})
	return r
}

// RunSystem starts sys with cfg.Nodes nodes, fills it, runs W1..W5 and
// closes it. A failure is recorded in the report and ends the system's run.
func RunSystem(ctx context.Context, sys sut.System, cfg Config, logf Logf) (rep SystemReport) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	rep = SystemReport{Name: sys.Name(), Notes: sys.Notes()}
	src := sut.NewSource(cfg.ValueSize)
	keys := makeKeys(cfg.Keys)
	logf("%s: starting %d nodes", sys.Name(), cfg.Nodes)

	t0 := time.Now()
	if err := sys.Start(ctx, cfg.Nodes, src); err != nil {
		rep.Err = fmt.Sprintf("start: %v", err)
		return rep
	}
	rep.StartSecs = time.Since(t0).Seconds()
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := sys.Close(cctx); err != nil {
			rep.CloseErr = err.Error()
		}
	}()
	// Bound every workload so that a stuck system cannot stall the run.
	ctx, cancel := context.WithTimeout(ctx, 20*cfg.Duration+5*time.Minute)
	defer cancel()

	logf("%s: fill %d keys", sys.Name(), len(keys))
	src.SetLatency(0)
	h0 := settledHeap(ctx)
	t0 = time.Now()
	rep.FillErrors = fillAll(ctx, sys, cfg, keys)
	rep.FillSecs = time.Since(t0).Seconds()
	rep.MemPerEntry = float64(int64(heapAfterGC())-int64(h0)) / float64(len(keys))
	if rep.MemPerEntry <= 0 {
		// Memory of the previous system released during the fill, after
		// settledHeap gave up waiting: the difference means nothing.
		rep.MemNote = fmt.Sprintf("not measured: the heap shrank by %.0f B per entry during the fill (memory released late by the previous system)", -rep.MemPerEntry)
		rep.MemPerEntry = 0
	}
	src.SetLatency(cfg.MissLatency)

	rt := newRouter(cfg.Nodes)
	timed := func(ph *phaser) error { sleep(ctx, cfg.Duration); return nil }

	if cfg.runs(W1) {
		logf("%s: %s", sys.Name(), W1)
		r, _, _ := runMix(ctx, sys, cfg, keys, src, rt, mixSpec{zipf: true, putFrac: cfg.PutFraction, phases: 1}, timed)
		r.Workload = W1
		rep.Results = append(rep.Results, r)
	}
	if cfg.runs(W2) {
		logf("%s: %s", sys.Name(), W2)
		r, _, _ := runMix(ctx, sys, cfg, keys, src, rt, mixSpec{zipf: false, phases: 1}, timed)
		r.Workload = W2
		rep.Results = append(rep.Results, r)
	}
	if cfg.runs(W3) {
		logf("%s: %s", sys.Name(), W3)
		src.SetLatency(cfg.StormLatency)
		rep.Results = append(rep.Results, storm(ctx, sys, cfg, src))
		src.SetLatency(cfg.MissLatency)
	}
	if cfg.runs(W4) {
		logf("%s: %s", sys.Name(), W4)
		rep.Results = append(rep.Results, many(ctx, sys, cfg, keys, src))
	}
	if !cfg.runs(W5) {
		logf("%s: done", sys.Name())
		return rep
	}
	logf("%s: %s", sys.Name(), W5)
	third := cfg.Duration / 2
	var stopSecs, restartSecs float64
	churn := func(ph *phaser) error {
		sleep(ctx, third)
		ph.advance()
		rt.live[cfg.ChurnNode].Store(false)
		t := time.Now()
		if err := sys.StopNode(ctx, cfg.ChurnNode); err != nil {
			return fmt.Errorf("stop node %d: %w", cfg.ChurnNode, err)
		}
		stopSecs = time.Since(t).Seconds()
		logf("%s: node %d stopped in %.2f s", sys.Name(), cfg.ChurnNode, stopSecs)
		sleep(ctx, third)
		t = time.Now()
		if err := sys.RestartNode(ctx, cfg.ChurnNode); err != nil {
			return fmt.Errorf("restart node %d: %w", cfg.ChurnNode, err)
		}
		restartSecs = time.Since(t).Seconds()
		logf("%s: node %d restarted in %.2f s", sys.Name(), cfg.ChurnNode, restartSecs)
		rt.live[cfg.ChurnNode].Store(true)
		ph.advance()
		sleep(ctx, third)
		return nil
	}
	r, phases, err := runMix(ctx, sys, cfg, keys, src, rt, mixSpec{zipf: true, putFrac: cfg.PutFraction, phases: 3}, churn)
	r.Workload = W5
	for i, name := range []string{"before", "during", "after"} {
		if i < len(phases) {
			phases[i].Name = name
		}
	}
	r.Phases = phases
	r.StopSecs, r.RestartSecs = stopSecs, restartSecs
	if err != nil {
		r.Err = err.Error()
	}
	rep.Results = append(rep.Results, r)
	logf("%s: done", sys.Name())
	return rep
}

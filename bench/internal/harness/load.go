package harness

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distcache/distcache/bench/internal/hist"
	"github.com/distcache/distcache/bench/internal/raw"
	"github.com/distcache/distcache/bench/internal/sut"
)

// makeKeys returns n keys "user:%08d".
func makeKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("user:%08d", i)
	}
	return keys
}

// router sends a caller to its home node, or to the next live one.
type router struct{ live []atomic.Bool }

func newRouter(n int) *router {
	r := &router{live: make([]atomic.Bool, n)}
	for i := range r.live {
		r.live[i].Store(true)
	}
	return r
}

func (r *router) pick(home int) int {
	n := len(r.live)
	for i := range n {
		if j := (home + i) % n; r.live[j].Load() {
			return j
		}
	}
	return -1
}

// caller is one load goroutine's counters; the padding keeps callers off
// each other's cache lines.
type caller struct {
	ops, gets, errs, putErrs atomic.Int64
	_                        [96]byte
	hists                    []*hist.Histogram // one per phase
	puts                     hist.Histogram    // Puts alone, every phase
}

// mark is a snapshot of the counters at a phase boundary.
type mark struct {
	at                           time.Time
	ops, gets, errs, putErrs, ds int64
}

// firstError keeps the first error reported to it.
type firstError struct{ p atomic.Pointer[string] }

func (f *firstError) set(err error) {
	if f.p.Load() == nil {
		msg := err.Error()
		f.p.CompareAndSwap(nil, &msg)
	}
}

func (f *firstError) get() string {
	if p := f.p.Load(); p != nil {
		return *p
	}
	return ""
}

// phaser lets a workload's controller split it into phases.
type phaser struct {
	firstError
	cur     atomic.Int32
	callers []*caller
	src     *sut.Source
	marks   []mark
}

func (p *phaser) snapshot() {
	m := mark{at: time.Now(), ds: p.src.Calls()}
	for _, c := range p.callers {
		m.ops += c.ops.Load()
		m.gets += c.gets.Load()
		m.errs += c.errs.Load()
		m.putErrs += c.putErrs.Load()
	}
	p.marks = append(p.marks, m)
}

// advance closes the current phase and opens the next.
func (p *phaser) advance() {
	p.snapshot()
	p.cur.Add(1)
}

// mixSpec shapes a Get/Put workload.
type mixSpec struct {
	zipf    bool
	putFrac float64
	phases  int
}

// runMix drives callers doing Gets (and a share of Puts) until control
// returns; control may call ph.advance() phases-1 times.
func runMix(ctx context.Context, sys sut.System, cfg Config, keys []string, src *sut.Source, rt *router, spec mixSpec,
	control func(ph *phaser) error) (Result, []Phase, error) {
	value := src.Value("put-value")
	ph := &phaser{src: src}
	for range cfg.Callers {
		c := &caller{hists: make([]*hist.Histogram, spec.phases)}
		for i := range c.hists {
			c.hists[i] = &hist.Histogram{}
		}
		ph.callers = append(ph.callers, c)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	m0 := readMeter(sys)
	ph.snapshot()
	for w, c := range ph.callers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 0xd15c))
			var next func() int
			if spec.zipf {
				z := rand.NewZipf(r, 1.01, 1, uint64(len(keys)-1))
				next = func() int { return int(z.Uint64()) }
			} else {
				next = func() int { return r.IntN(len(keys)) }
			}
			home := w % cfg.Nodes
			for !stop.Load() {
				key := keys[next()]
				node := rt.pick(home)
				if node < 0 {
					runtime.Gosched()
					continue
				}
				p := ph.cur.Load()
				var err error
				t0 := time.Now()
				put := spec.putFrac > 0 && r.Float64() < spec.putFrac
				if put {
					err = sys.Put(ctx, node, key, value)
				} else {
					_, err = sys.Get(ctx, node, key)
					c.gets.Add(1)
				}
				took := time.Since(t0)
				c.hists[p].Record(took)
				if put {
					c.puts.Record(took)
				}
				if err != nil {
					c.errs.Add(1)
					if put {
						c.putErrs.Add(1)
					}
					ph.set(err)
				}
				c.ops.Add(1)
			}
		})
	}
	cerr := control(ph)
	ph.snapshot()
	stop.Store(true)
	wg.Wait()
	m1 := readMeter(sys)

	first, last := ph.marks[0], ph.marks[len(ph.marks)-1]
	res := Result{
		System: sys.Name(),
		Ops:    last.ops - first.ops, Gets: last.gets - first.gets, Errors: last.errs - first.errs, PutErrors: last.putErrs - first.putErrs,
		DSCalls: last.ds - first.ds, Secs: last.at.Sub(first.at).Seconds(), FirstError: ph.get(),
	}
	all := &hist.Histogram{}
	phaseHists := make([]*hist.Histogram, spec.phases)
	for i := range phaseHists {
		phaseHists[i] = &hist.Histogram{}
	}
	for _, c := range ph.callers {
		for i, h := range c.hists {
			all.Merge(h)
			phaseHists[i].Merge(h)
		}
	}
	fill(&res, all, m0, m1)
	puts := &hist.Histogram{}
	for _, c := range ph.callers {
		puts.Merge(&c.puts)
	}
	if puts.Count() > 0 {
		res.PutP50, res.PutP99 = puts.Quantile(0.5), puts.Quantile(0.99)
	}
	var phases []Phase
	for i := 1; i < len(ph.marks) && i <= spec.phases; i++ {
		a, b := ph.marks[i-1], ph.marks[i]
		p := Phase{
			Secs: b.at.Sub(a.at).Seconds(), Ops: b.ops - a.ops, Gets: b.gets - a.gets,
			Errors: b.errs - a.errs, PutErrors: b.putErrs - a.putErrs, DSCalls: b.ds - a.ds, P99: phaseHists[i-1].Quantile(0.99),
		}
		if p.Secs > 0 {
			p.OpsPerSec = float64(p.Ops) / p.Secs
		}
		if p.Gets > 0 {
			p.HitRatio = 1 - float64(p.DSCalls)/float64(p.Gets)
		}
		phases = append(phases, p)
	}
	return res, phases, cerr
}

// fillAll reads every key once through the nodes round-robin with callers
// goroutines. Each key is passed as a fresh copy, so the heap growth counts
// the key bytes a system keeps.
func fillAll(ctx context.Context, sys sut.System, cfg Config, keys []string) (errs int64) {
	var next, nerr atomic.Int64
	var wg sync.WaitGroup
	for range cfg.Callers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(len(keys)) || ctx.Err() != nil {
					return
				}
				if _, err := sys.Get(ctx, int(i)%cfg.Nodes, strings.Clone(keys[i])); err != nil {
					nerr.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return nerr.Load()
}

// storm runs cfg.StormRounds rounds; each releases cfg.StormGets Gets of
// cfg.StormKeys keys never asked for before, all at once.
func storm(ctx context.Context, sys sut.System, cfg Config, src *sut.Source) Result {
	src.TrackKeys(true)
	defer src.TrackKeys(false)
	var nerr atomic.Int64
	var ferr firstError
	h := &hist.Histogram{}
	walls := make([]time.Duration, 0, cfg.StormRounds)
	m0 := readMeter(sys)
	calls0 := src.Calls()
	for round := range cfg.StormRounds {
		keys := make([]string, cfg.StormKeys)
		for i := range keys {
			keys[i] = fmt.Sprintf("storm:%d:%08d", round, i)
		}
		lat := make([]time.Duration, cfg.StormGets)
		var started, wg sync.WaitGroup
		release := make(chan struct{})
		for i := range cfg.StormGets {
			started.Add(1)
			wg.Go(func() {
				started.Done()
				<-release
				t0 := time.Now()
				if _, err := sys.Get(ctx, i%cfg.Nodes, keys[i%len(keys)]); err != nil {
					nerr.Add(1)
					ferr.set(err)
				}
				lat[i] = time.Since(t0)
			})
		}
		started.Wait()
		t0 := time.Now()
		close(release)
		wg.Wait()
		walls = append(walls, time.Since(t0))
		for _, d := range lat {
			h.Record(d)
		}
	}
	m1 := readMeter(sys)
	var total time.Duration
	for _, w := range walls {
		total += w
	}
	slices.Sort(walls)
	res := Result{
		System: sys.Name(), Workload: W3, Rounds: cfg.StormRounds, WallMedian: walls[len(walls)/2],
		Ops: int64(cfg.StormRounds * cfg.StormGets), Gets: int64(cfg.StormRounds * cfg.StormGets), Errors: nerr.Load(),
		Secs: total.Seconds(), DSCalls: src.Calls() - calls0, FirstError: ferr.get(),
	}
	for _, n := range src.KeyCalls() {
		res.MaxCallsPerKey = max(res.MaxCallsPerKey, n)
	}
	fill(&res, h, m0, m1)
	return res
}

// many runs cfg.ManyCallers callers doing GetMany of cfg.BatchSize uniform
// keys for cfg.Duration.
func many(ctx context.Context, sys sut.System, cfg Config, keys []string, src *sut.Source) Result {
	type out struct {
		batches, requested, found, errs int64
		h                               hist.Histogram
	}
	outs := make([]*out, cfg.ManyCallers)
	var ferr firstError
	var stop atomic.Bool
	var wg sync.WaitGroup
	m0 := readMeter(sys)
	calls0 := src.Calls()
	t0 := time.Now()
	for w := range outs {
		o := &out{}
		outs[w] = o
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 0xba7c4))
			batch := make([]string, cfg.BatchSize)
			home := w % cfg.Nodes
			for !stop.Load() {
				for j := range batch {
					batch[j] = keys[r.IntN(len(keys))]
				}
				s := time.Now()
				n, err := sys.GetMany(ctx, home, batch)
				o.h.Record(time.Since(s))
				o.batches++
				o.requested += int64(len(batch))
				o.found += int64(n)
				if err != nil {
					o.errs++
					ferr.set(err)
				}
			}
		})
	}
	sleep(ctx, cfg.Duration)
	stop.Store(true)
	wg.Wait()
	secs := time.Since(t0).Seconds()
	m1 := readMeter(sys)
	res := Result{System: sys.Name(), Workload: W4, Secs: secs, DSCalls: src.Calls() - calls0, FirstError: ferr.get()}
	h := &hist.Histogram{}
	var found int64
	for _, o := range outs {
		res.Ops += o.batches
		res.Gets += o.requested
		res.Errors += o.errs
		found += o.found
		h.Merge(&o.h)
	}
	fill(&res, h, m0, m1)
	if secs > 0 {
		res.KeysPerSec = float64(found) / secs
	}
	return res
}

// meter is a reading of the process-wide counters a Result is derived from.
type meter struct {
	mallocs  uint64
	cpu      time.Duration
	syscalls int64 // read+write system calls; -1: unknown
	remote   int64 // -1: the system does not count remote fetches
}

// readMeter reads the counters. Call it only while no operation is in
// flight (see sut.RemoteCounter).
func readMeter(sys sut.System) meter {
	m := meter{mallocs: memStats().Mallocs, cpu: raw.CPUTime(), syscalls: raw.IOSyscalls(), remote: -1}
	if rc, ok := sys.(sut.RemoteCounter); ok && sys != nil {
		m.remote = rc.RemoteFetches()
	}
	return m
}

func memStats() runtime.MemStats {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms
}

// heapAfterGC is the live heap after two collections.
func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	return memStats().HeapAlloc
}

// settledHeap waits (up to 10 s) until the live heap stops shrinking, so
// that what a previous system's last goroutines still hold is not counted
// as freed by the next fill, and returns it. "Stopped" means: over the last
// settleWindow it shrank by less than 1 % (or 256 KiB). Comparing only two
// samples 100 ms apart was not enough: a previous system's memory can be
// released in one step seconds after its Close (TestShortRun once measured
// -1261 B per entry for the system after distcache+near).
func settledHeap(ctx context.Context) uint64 {
	const step, settleWindow = 100 * time.Millisecond, time.Second
	deadline := time.Now().Add(10 * time.Second)
	samples := []uint64{heapAfterGC()}
	for time.Now().Before(deadline) && ctx.Err() == nil {
		sleep(ctx, step)
		cur := heapAfterGC()
		samples = append(samples, cur)
		if len(samples) <= int(settleWindow/step) {
			continue
		}
		old := samples[len(samples)-1-int(settleWindow/step)]
		if cur+max(cur/100, 256<<10) >= old {
			return cur
		}
	}
	return samples[len(samples)-1]
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// Command scalebench measures how the engine's costs grow with the cluster
// size: for each N of -nodes, in one run, it starts N engines on 127.0.0.1
// in this process (static discovery, testutil.LocalOptions with memberlist's
// LAN profile and timings unless -local) and measures
// Put latency with one caller, Put and Get throughput with many callers,
// the busiest owner's share of the ring, transport requests per Put and
// gossip bytes per node per second. It prints a Markdown table.
//
//	cd bench && go run ./cmd/scalebench                    # N = 3, 9, 27; 3 s per loop (~1.5 min)
//	cd bench && go run ./cmd/scalebench -nodes 3,27 -repeat 5 -only put
//	cd bench && go run ./cmd/scalebench -nodes 27 -only get -duration 10s -cpuprofile get27.pprof
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distcache/distcache/bench/internal/hist"
	"github.com/distcache/distcache/bench/internal/sut"
	"github.com/distcache/distcache/bench/internal/sut/distcache"
	"github.com/distcache/distcache/engine"
	"github.com/distcache/distcache/internal/enginehook"
	"github.com/distcache/distcache/testutil"
	"github.com/hashicorp/go-metrics"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "scalebench:", err)
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	nodes      []int
	duration   time.Duration
	callers    int
	warmKeys   int
	valueSize  int
	only       string // "", "put" or "get"
	local      bool
	cpuprofile string
	settle     time.Duration
	warmup     time.Duration
	noNear     bool
	repeat     int
	maxBytes   int64
}

func parse(args []string) (options, error) {
	fs := flag.NewFlagSet("scalebench", flag.ContinueOnError)
	nodes := fs.String("nodes", "3,9,27", "cluster sizes, comma-separated")
	o := options{}
	fs.DurationVar(&o.duration, "duration", 3*time.Second, "length of each measuring loop")
	fs.IntVar(&o.callers, "callers", 32, "concurrent callers of the throughput loops (caller i on node i mod N)")
	fs.IntVar(&o.warmKeys, "keys", 5000, "keys read in the Get loop (each fetched once before it)")
	fs.IntVar(&o.valueSize, "value", 100, "value size in bytes")
	fs.StringVar(&o.only, "only", "", `run only the "put" or the "get" loops`)
	fs.BoolVar(&o.local, "local", false, "testutil.LocalOptions' fast failure detection (200 ms probes) instead of memberlist's LAN profile")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the throughput loop at the largest N to this file (the Get loop; the Put loop with -only put)")
	fs.IntVar(&o.repeat, "repeat", 1, "measure the whole -nodes list this many times, interleaved; the table shows each figure's median, and each ratio's median and range over the repetitions")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured Puts (all callers) before the Put loops: a fresh store faults in its frequency sketch (8 MB) over its first writes, a start-up cost that N fresh stores pay N times")
	fs.Int64Var(&o.maxBytes, "maxbytes", 0, "each node's store budget in bytes (WithKeySpaceMaxBytes); 0: the bench systems' 256 MB. A store's frequency sketch grows with it (8 MB at 256 MB), and N sketches in one process compete for one CPU cache")
	fs.BoolVar(&o.noNear, "nonear", false, "turn the near cache off (WithKeySpaceNearCache(ks, 0, 0)), as before it was on by default")
	fs.DurationVar(&o.settle, "settle", 11*time.Second, "wait after the cluster formed, before the loops: for 10 s after its ring changes a node's writes invalidate every member (DESIGN.md, targeted invalidation), which is not the steady cost of a write")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	for _, f := range strings.Split(*nodes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return o, fmt.Errorf("bad -nodes entry %q", f)
		}
		o.nodes = append(o.nodes, n)
	}
	switch {
	case o.duration <= 0, o.callers < 1, o.warmKeys < 1, o.valueSize < 1, o.repeat < 1:
		return o, errors.New("-duration, -callers, -keys, -value and -repeat must be positive")
	case o.settle < 0, o.warmup < 0, o.maxBytes < 0:
		return o, errors.New("-settle, -warmup and -maxbytes must not be negative")
	case o.only != "" && o.only != "put" && o.only != "get":
		return o, fmt.Errorf(`-only %q: want "put" or "get"`, o.only)
	}
	return o, nil
}

// row holds the figures of one cluster size.
type row struct {
	N              int
	PutP50         time.Duration
	PutsPerSec     float64
	MsgsPerPut     float64 // transport requests sent cluster-wide during the 32-caller Put loop ÷ Puts
	GetsPerSec     float64
	RemotePerGet   float64 // requests to owners ÷ Gets
	Busiest        float64 // busiest owner's share of the partitions
	GossipBytesSec float64 // memberlist bytes sent per node per second, over the node's whole run
	Errors         int64
}

func run(args []string, out io.Writer) error {
	o, err := parse(args)
	if err != nil {
		return err
	}
	sink, err := installGossipSink()
	if err != nil {
		return err
	}
	reps := make([][]row, o.repeat)
	for k := range reps {
		for i, n := range o.nodes {
			profile := ""
			if k == 0 && i == len(o.nodes)-1 {
				profile = o.cpuprofile
			}
			r, err := measure(o, n, sink, profile)
			if err != nil {
				return fmt.Errorf("%d nodes: %w", n, err)
			}
			reps[k] = append(reps[k], r)
			fmt.Fprintf(os.Stderr, "N=%d done (repetition %d of %d)\n", n, k+1, o.repeat)
		}
	}
	writeTable(out, o, summarize(reps))
	return nil
}

// summary is one N's figures over the repetitions: each figure's median,
// and the ratios of its throughputs to the first N's in the same
// repetition (runs far apart in time see different machine load).
type summary struct {
	row
	puts, gets spread
}

// spread is a median with the range it was taken from.
type spread struct{ med, lo, hi float64 }

func spreadOf(xs []float64) spread {
	xs = slices.Clone(xs)
	slices.Sort(xs)
	m := xs[len(xs)/2]
	if len(xs)%2 == 0 {
		m = (xs[len(xs)/2-1] + m) / 2
	}
	return spread{m, xs[0], xs[len(xs)-1]}
}

// summarize turns reps[k][i], repetition k's row for the i-th N, into one
// summary per N.
func summarize(reps [][]row) []summary {
	out := make([]summary, len(reps[0]))
	for i := range out {
		fig := func(f func(row) float64) float64 {
			xs := make([]float64, len(reps))
			for k, rs := range reps {
				xs[k] = f(rs[i])
			}
			return spreadOf(xs).med
		}
		ratio := func(f func(row) float64) spread {
			xs := make([]float64, 0, len(reps))
			for _, rs := range reps {
				if b := f(rs[0]); b > 0 {
					xs = append(xs, f(rs[i])/b)
				}
			}
			if len(xs) == 0 {
				return spread{}
			}
			return spreadOf(xs)
		}
		r := reps[0][i]
		s := summary{row: row{
			N:              r.N,
			PutP50:         time.Duration(fig(func(r row) float64 { return float64(r.PutP50) })),
			PutsPerSec:     fig(func(r row) float64 { return r.PutsPerSec }),
			MsgsPerPut:     fig(func(r row) float64 { return r.MsgsPerPut }),
			GetsPerSec:     fig(func(r row) float64 { return r.GetsPerSec }),
			RemotePerGet:   fig(func(r row) float64 { return r.RemotePerGet }),
			Busiest:        r.Busiest, // a function of the member set alone
			GossipBytesSec: fig(func(r row) float64 { return r.GossipBytesSec }),
		}}
		for _, rs := range reps {
			s.Errors += rs[i].Errors
		}
		if i > 0 {
			s.puts = ratio(func(r row) float64 { return r.PutsPerSec })
			s.gets = ratio(func(r row) float64 { return r.GetsPerSec })
		}
		out[i] = s
	}
	return out
}

func measure(o options, n int, sink *gossipSink, cpuprofile string) (row, error) {
	ctx := context.Background()
	r := row{N: n}
	src := sut.NewSource(o.valueSize)
	// Every node shares 127.0.0.1, so the per-IP caps on accepted
	// connections, meant for one node per address, are lifted. The LAN
	// profile is what a deployment runs; the local one's 100 ms probe
	// timeouts make a few dozen nodes on a busy 2-core machine flap.
	var tuning engine.ClusterTuning
	if o.local {
		tuning = testutil.LocalTuning()
	}
	tuning.MaxConnsPerIP, tuning.MaxPendingConns = -1, -1
	opts := []engine.Option{engine.WithClusterTuning(tuning)}
	if o.noNear {
		opts = append(opts, engine.WithKeySpaceNearCache(distcache.KeySpace, 0, 0))
	}
	if o.maxBytes > 0 {
		opts = append(opts, engine.WithKeySpaceMaxBytes(distcache.KeySpace, o.maxBytes))
	}
	sys := distcache.NewVariant("distcache", fmt.Sprintf("scale-%d", n), "connection caps per IP lifted", opts...)
	gossip0, start := sink.bytes.Load(), time.Now()
	if err := sys.Start(ctx, n, src); err != nil {
		return r, err
	}
	defer sys.Close(ctx)
	engines := make([]*engine.Engine, n)
	for i := range engines {
		e, err := sys.Engine(i)
		if err != nil {
			return r, err
		}
		engines[i] = e
	}
	r.Busiest = busiestShare(engines[0])
	// A duration, not a condition: what ends is the engine's settle window
	// after the last ring change, which no public call reports.
	time.Sleep(o.settle)
	var errs atomic.Int64
	value := src.Value("v")

	if o.only != "get" {
		// One caller: Put latency, each Put through the next node.
		h := &hist.Histogram{}
		loop(o.duration, 1, func(_ int, i int) {
			t := time.Now()
			if err := engines[i%n].Put(ctx, distcache.KeySpace, engine.Entry{Key: "p" + strconv.Itoa(i), Value: value}); err != nil {
				errs.Add(1)
			}
			h.Record(time.Since(t))
		})
		r.PutP50 = h.Quantile(0.5)
		put := func(c int, i int) {
			key := "q" + strconv.Itoa(c) + "-" + strconv.Itoa(i%1000)
			if err := engines[c%n].Put(ctx, distcache.KeySpace, engine.Entry{Key: key, Value: value}); err != nil {
				errs.Add(1)
			}
		}
		if o.warmup > 0 {
			loop(o.warmup, o.callers, put)
		}

		profile := ""
		if o.only == "put" {
			profile = cpuprofile
		}
		stopProfile, err := startProfile(profile)
		if err != nil {
			return r, err
		}
		calls0 := transportCalls(engines)
		puts, secs := loop(o.duration, o.callers, put)
		stopProfile()
		r.PutsPerSec = float64(puts) / secs
		r.MsgsPerPut = float64(transportCalls(engines)-calls0) / float64(puts)
	}

	if o.only != "put" {
		keys := make([]string, o.warmKeys)
		for i := range keys {
			keys[i] = "g" + strconv.Itoa(i)
			if _, err := engines[i%n].Get(ctx, distcache.KeySpace, keys[i]); err != nil {
				errs.Add(1)
			}
		}
		stopProfile, err := startProfile(cpuprofile)
		if err != nil {
			return r, err
		}
		fwd0 := forwarded(engines)
		gets, secs := loop(o.duration, o.callers, func(c int, i int) {
			// A stride coprime with the key count spreads each caller over all keys.
			k := keys[(c*7919+i*104729)%len(keys)]
			if _, err := engines[c%n].Get(ctx, distcache.KeySpace, k); err != nil {
				errs.Add(1)
			}
		})
		stopProfile()
		r.GetsPerSec = float64(gets) / secs
		r.RemotePerGet = float64(forwarded(engines)-fwd0) / float64(gets)
	}
	r.GossipBytesSec = float64(sink.bytes.Load()-gossip0) / float64(n) / time.Since(start).Seconds()
	r.Errors = errs.Load()
	return r, nil
}

// startProfile starts a CPU profile to path; stop ends it. With no path,
// stop does nothing.
func startProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// loop runs fn from callers goroutines for d; fn gets the caller's index and
// its iteration count. It returns the calls made and the seconds taken.
func loop(d time.Duration, callers int, fn func(caller, i int)) (int64, float64) {
	var (
		total atomic.Int64
		wg    sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for c := range callers {
		wg.Go(func() {
			i := 0
			for ; time.Now().Before(deadline); i++ {
				fn(c, i)
			}
			total.Add(int64(i))
		})
	}
	wg.Wait()
	return total.Load(), time.Since(start).Seconds()
}

// busiestShare is the largest fraction of the partitions one member owns in
// e's ring.
func busiestShare(e *engine.Engine) float64 {
	dist := enginehook.Cluster(e).Ring().Distribution()
	total, most := 0, 0
	for _, c := range dist {
		total += c
		most = max(most, c)
	}
	if total == 0 {
		return 0
	}
	return float64(most) / float64(total)
}

// transportCalls sums the RPC requests every engine's transport has sent.
func transportCalls(engines []*engine.Engine) uint64 {
	var n uint64
	for _, e := range engines {
		n += enginehook.Cluster(e).Transport().Stats().Calls
	}
	return n
}

// forwarded sums the requests every engine sent to owners for reads.
func forwarded(engines []*engine.Engine) int64 {
	var n int64
	for _, e := range engines {
		st, _ := e.Stats().KeySpace(distcache.KeySpace)
		n += st.Forwarded
	}
	return n
}

// installGossipSink makes a new gossipSink go-metrics' global sink, where
// memberlist reports.
func installGossipSink() (*gossipSink, error) {
	sink := &gossipSink{}
	cfg := metrics.DefaultConfig("")
	cfg.EnableHostname, cfg.EnableRuntimeMetrics = false, false
	_, err := metrics.NewGlobal(cfg, sink)
	return sink, err
}

// gossipSink is a go-metrics sink that adds up the bytes memberlist reports
// sending (memberlist.udp.sent and memberlist.tcp.sent) from every node of
// the process; everything else is dropped.
type gossipSink struct{ bytes atomic.Uint64 }

func (s *gossipSink) IncrCounter(key []string, val float32) {
	if len(key) >= 3 && key[len(key)-3] == "memberlist" && key[len(key)-1] == "sent" {
		s.bytes.Add(uint64(val))
	}
}
func (s *gossipSink) IncrCounterWithLabels(key []string, val float32, _ []metrics.Label) {
	s.IncrCounter(key, val)
}
func (*gossipSink) SetGauge([]string, float32)                             {}
func (*gossipSink) SetGaugeWithLabels([]string, float32, []metrics.Label)  {}
func (*gossipSink) EmitKey([]string, float32)                              {}
func (*gossipSink) AddSample([]string, float32)                            {}
func (*gossipSink) AddSampleWithLabels([]string, float32, []metrics.Label) {}

func writeTable(w io.Writer, o options, rows []summary) {
	profile := "memberlist LAN profile"
	if o.local {
		profile = "testutil.LocalOptions (200 ms probes)"
	}
	fmt.Fprintf(w, "N engines per row on 127.0.0.1 in one process, static discovery, %s, %v per loop (Puts after %v of warm-up), %d callers, %d warm keys of %d B",
		profile, o.duration, o.warmup, o.callers, o.warmKeys, o.valueSize)
	if o.repeat > 1 {
		fmt.Fprintf(w, "; medians of %d interleaved repetitions, ratios as median (range)", o.repeat)
	}
	fmt.Fprint(w, "\n\n")
	fmt.Fprintln(w, "| N | Put p50 (1 caller) | Puts/s | messages/Put | Gets/s | remote/Get | busiest owner (ideal) | gossip B/node/s | errors |")
	fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for i, r := range rows {
		rel := func(s spread) string {
			switch {
			case i == 0 || s.med == 0:
				return ""
			case o.repeat == 1:
				return fmt.Sprintf(" (%.2fx)", s.med)
			}
			return fmt.Sprintf(" (%.2fx, %.2f–%.2f)", s.med, s.lo, s.hi)
		}
		fmt.Fprintf(w, "| %d | %v | %.0f%s | %.2f | %.0f%s | %.2f | %.1f %% (%.1f %%) | %.0f | %d |\n",
			r.N, r.PutP50.Round(time.Microsecond), r.PutsPerSec, rel(r.puts), r.MsgsPerPut,
			r.GetsPerSec, rel(r.gets), r.RemotePerGet, 100*r.Busiest, 100/float64(r.N),
			r.GossipBytesSec, r.Errors)
	}
}

package engine_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/distcache/distcache/discovery/static"
	"github.com/distcache/distcache/engine"
	"github.com/distcache/distcache/internal/benchutil"
	"github.com/distcache/distcache/keyspace"
	"github.com/distcache/distcache/testutil"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

const benchKeys = 100_000

func benchKeyNames() []string { return benchutil.Keys(benchKeys) }

func zipf(n int) []int { return benchutil.ZipfIndexes(n, benchKeys) }

func benchEngine(b *testing.B, opts ...engine.Option) (*engine.Engine, *testutil.DataSource) {
	b.Helper()
	ds := testutil.NewDataSource()
	all := append(testutil.LocalOptions("bench-"+b.Name()), opts...)
	e, err := engine.New(engine.NewConfig(static.NewDiscovery(nil), []keyspace.KeySpace{keyspace.New(ks, 256<<20, ds)}, all...))
	if err != nil {
		b.Fatal(err)
	}
	if err := e.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = e.Stop(context.Background()) })
	return e, ds
}

// BenchmarkLocalHit and BenchmarkRawRistrettoGet run the same parallel Zipf
// workload of 100-byte values; the engine's hit path includes the keyspace
// and ring lookups and the copy of the value the caller gets.
func BenchmarkLocalHit(b *testing.B) {
	e, _ := benchEngine(b)
	ctx := context.Background()
	keys := benchKeyNames()
	entries := make([]engine.Entry, len(keys))
	for i, k := range keys {
		entries[i] = engine.Entry{Key: k, Value: make([]byte, 100)}
	}
	if err := e.PutMany(ctx, ks, entries); err != nil {
		b.Fatal(err)
	}
	idx := zipf(1 << 16)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(len(idx))
		for pb.Next() {
			i = (i + 1) & (len(idx) - 1)
			if _, err := e.Get(ctx, ks, keys[idx[i]]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkLocalHitAppend is BenchmarkLocalHit through GetAppend with a
// reused buffer: the copy into caller memory without an allocation.
func BenchmarkLocalHitAppend(b *testing.B) {
	e, _ := benchEngine(b)
	ctx := context.Background()
	keys := benchKeyNames()
	entries := make([]engine.Entry, len(keys))
	for i, k := range keys {
		entries[i] = engine.Entry{Key: k, Value: make([]byte, 100)}
	}
	if err := e.PutMany(ctx, ks, entries); err != nil {
		b.Fatal(err)
	}
	idx := zipf(1 << 16)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(len(idx))
		buf := make([]byte, 0, 128)
		var err error
		for pb.Next() {
			i = (i + 1) & (len(idx) - 1)
			if buf, err = e.GetAppend(ctx, ks, keys[idx[i]], buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkRawRistrettoGet(b *testing.B) {
	benchutil.BenchRawRistrettoGet(b, benchKeyNames(), false)
}

// BenchmarkRawRistrettoGetCopy is the like-for-like baseline: the engine
// must hand the caller its own copy of the value, so this adds that copy
// to a raw ristretto Get.
func BenchmarkRawRistrettoGetCopy(b *testing.B) {
	benchutil.BenchRawRistrettoGet(b, benchKeyNames(), true)
}

func BenchmarkPut(b *testing.B) {
	e, _ := benchEngine(b)
	ctx := context.Background()
	keys := benchKeyNames()
	v := make([]byte, 100)
	var n atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			k := keys[n.Add(1)%benchKeys]
			if err := e.Put(ctx, ks, engine.Entry{Key: k, Value: v}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkMissSingleflight: 64 concurrent Gets of each cold key make one
// fetch; ns/op is per Get.
func BenchmarkMissSingleflight(b *testing.B) {
	e, ds := benchEngine(b)
	ctx := context.Background()
	var n atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			k := fmt.Sprint("cold-", n.Add(1)/64)
			if _, err := e.Get(ctx, ks, k); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(ds.Total())/float64(b.N), "fetches/op")
}

// remoteSetup returns a 3-node cluster and keys owned by node 1, cached there.
func remoteSetup(b *testing.B, opts ...engine.Option) (*testutil.Cluster, []string) {
	b.Helper()
	c := testutil.NewCluster(b, 3, testutil.ClusterConfig{Options: opts})
	keys := c.KeysOwnedBy(1, 1000, "remote")
	entries := make([]engine.Entry, len(keys))
	for i, k := range keys {
		entries[i] = engine.Entry{Key: k, Value: make([]byte, 100)}
	}
	if err := c.Node(1).PutMany(context.Background(), ks, entries); err != nil {
		b.Fatal(err)
	}
	return c, keys
}

// BenchmarkRemoteGet measures a Get on node 0 of a key owned (and cached)
// by node 1: one forwarded hop. Compare with the raw loopback baselines in
// ./internal/transport (BenchmarkRawPingPong, BenchmarkRawPipelined): run
//
//	go test -run '^$' -bench 'RemoteGet|Raw' -benchmem ./engine/ ./internal/transport/
func BenchmarkRemoteGet(b *testing.B) {
	b.Run("callers=1", func(b *testing.B) {
		c, keys := remoteSetup(b)
		e := c.Node(0)
		ctx := context.Background()
		lat := make([]time.Duration, 0, b.N)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			t0 := time.Now()
			if _, err := e.Get(ctx, ks, keys[i%len(keys)]); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
		b.StopTimer()
		reportLatency(b, lat)
	})
	// 64 goroutines with their share of b.N and preallocated latency slices,
	// the same shape as the transport's BenchmarkCall/callers=64: growing a
	// shared latency slice cost this benchmark ~15% of its CPU.
	b.Run("callers=64", func(b *testing.B) { benchRemoteGet64(b) })
	// With a near cache, node 0 keeps copies of node 1's keys: after the
	// first Get of each key, a remote Get costs a local lookup.
	b.Run("callers=64/near", func(b *testing.B) {
		benchRemoteGet64(b, engine.WithKeySpaceNearCache(ks, 64<<20, time.Minute))
	})
}

func benchRemoteGet64(b *testing.B, opts ...engine.Option) {
	const callers = 64
	c, keys := remoteSetup(b, opts...)
	e := c.Node(0)
	ctx := context.Background()
	lats := make([][]time.Duration, callers)
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for g := range callers {
		n := b.N / callers
		if g < b.N%callers {
			n++
		}
		wg.Go(func() {
			lat := make([]time.Duration, 0, n)
			i := rand.IntN(len(keys))
			for range n {
				i = (i + 1) % len(keys)
				t0 := time.Now()
				if _, err := e.Get(ctx, ks, keys[i]); err != nil {
					b.Error(err)
					return
				}
				lat = append(lat, time.Since(t0))
			}
			lats[g] = lat
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
	reportLatency(b, slices.Concat(lats...))
	if st, _ := e.Stats().KeySpace(ks); st.Degraded > 0 {
		b.Fatalf("%d degraded loads", st.Degraded)
	}
}

func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkLocalHitTelemetry is BenchmarkLocalHitAppend with metrics and
// tracing off and on: the hit path takes no span, timer or counter of its
// own, so the four should not differ.
func BenchmarkLocalHitTelemetry(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts func() []engine.Option
	}{
		{"off", func() []engine.Option { return nil }},
		{"metrics", func() []engine.Option {
			return []engine.Option{engine.WithMetrics(sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader())))}
		}},
		{"tracing", func() []engine.Option {
			return []engine.Option{engine.WithTracing(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tracetest.NewSpanRecorder())))}
		}},
		{"both", func() []engine.Option {
			return []engine.Option{
				engine.WithMetrics(sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))),
				engine.WithTracing(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tracetest.NewSpanRecorder()))),
			}
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e, _ := benchEngine(b, bc.opts()...)
			ctx := context.Background()
			keys := benchKeyNames()
			entries := make([]engine.Entry, len(keys))
			for i, k := range keys {
				entries[i] = engine.Entry{Key: k, Value: make([]byte, 100)}
			}
			if err := e.PutMany(ctx, ks, entries); err != nil {
				b.Fatal(err)
			}
			idx := zipf(1 << 16)
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			b.RunParallel(func(pb *testing.PB) {
				i := rand.IntN(len(idx))
				buf := make([]byte, 0, 128)
				var err error
				for pb.Next() {
					i = (i + 1) & (len(idx) - 1)
					if buf, err = e.GetAppend(ctx, ks, keys[idx[i]], buf[:0]); err != nil {
						b.Fatal(err)
					}
				}
			})
			// CPU time per op depends less than wall time on other load of a
			// shared machine.
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPutReplicas compares a Put with one copy and with two (the
// owner's replica applies it before the Put returns), on a 3-node cluster:
// a Put on node 0 of keys owned by node 1. Compare the p50s of one run:
//
//	go test -run '^$' -bench PutReplicas -benchtime 2000x ./engine/
func BenchmarkPutReplicas(b *testing.B) {
	for _, n := range []int{1, 2} {
		b.Run(fmt.Sprintf("replicas=%d", n), func(b *testing.B) {
			c, keys := remoteSetup(b, engine.WithReplicas(n))
			e := c.Node(0)
			ctx := context.Background()
			v := make([]byte, 100)
			lat := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				if err := e.Put(ctx, ks, engine.Entry{Key: keys[i%len(keys)], Value: v}); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			reportLatency(b, lat)
		})
	}
}

// BenchmarkPutHeldKey is the write of a hot key, as under a skewed load: a
// Put on node 0 of a key owned by node 1 whose near copy nodes 0 and 2
// hold (each Get of the loop refills it, by the owner's push or by a
// forward). One op is a Put and a Get on each non-owner; allocations and
// CPU are the whole cluster's (three nodes in one process). Run:
//
//	go test -run '^$' -bench PutHeldKey -benchmem -count 5 ./engine/
func BenchmarkPutHeldKey(b *testing.B) {
	c, keys := remoteSetup(b)
	ctx := context.Background()
	key, v := keys[0], make([]byte, 100)
	writer, other := c.Node(0), c.Node(2)
	for _, e := range []*engine.Engine{writer, other} {
		if _, err := e.Get(ctx, ks, key); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		v[0] = byte(i)
		if err := writer.Put(ctx, ks, engine.Entry{Key: key, Value: v}); err != nil {
			b.Fatal(err)
		}
		for _, e := range []*engine.Engine{writer, other} {
			if _, err := e.Get(ctx, ks, key); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
}

// Command quickstart runs a three-node distcache cluster in one process in
// front of a simulated slow database (2 ms per fetch), drives a Zipf
// workload through all three nodes for a few seconds with a live progress
// line, and prints the share of Gets that did not reach the DataSource
// ("DataSource avoided", 1 − fetches ÷ gets: the ratio the admin endpoints
// and dashboard report), DataSource fetches, throughput, latency
// percentiles and per-node statistics. It exits by itself.
//
//	go run ./examples/quickstart [-duration 5s] [-nodes 3] [-keys 100000] [-workers 32]
package main

import (
	"context"
	crand "crypto/rand"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distcache/distcache/admin"
	"github.com/distcache/distcache/discovery/static"
	"github.com/distcache/distcache/engine"
	"github.com/distcache/distcache/keyspace"
)

// slowDB simulates a database: every fetch takes latency and is counted.
type slowDB struct {
	latency time.Duration
	fetches atomic.Int64
}

func (d *slowDB) Fetch(ctx context.Context, key string) ([]byte, error) {
	d.fetches.Add(1)
	t := time.NewTimer(d.latency)
	defer t.Stop()
	select {
	case <-t.C:
		return []byte("profile of " + key), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func main() {
	duration := flag.Duration("duration", 5*time.Second, "how long the workload runs")
	nodes := flag.Int("nodes", 3, "cluster size")
	keys := flag.Int("keys", 100_000, "distinct keys (Zipf 1.01 popularity)")
	workers := flag.Int("workers", 32, "concurrent callers, spread over the nodes")
	flag.Parse()
	if err := run(*duration, *nodes, *keys, *workers); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run(duration time.Duration, n, nkeys, workers int) error {
	ctx := context.Background()
	db := &slowDB{latency: 2 * time.Millisecond}
	users := keyspace.New("users", 64<<20, db)

	// Start the nodes one by one; each joins the ones already up. In a real
	// deployment every instance of your service runs one engine and the
	// provider (static, DNS, NATS, Kubernetes) lists the others.
	// Every node of a cluster shares one secret: it encrypts gossip and
	// authenticates data connections. Yours comes from a secret store.
	secret := make([]byte, 32)
	_, _ = crand.Read(secret)

	var engines []*engine.Engine
	var seeds []string
	defer func() {
		for _, e := range engines {
			_ = e.Stop(ctx)
		}
	}()
	for i := range n {
		cfg := engine.NewConfig(
			static.NewDiscovery(&static.Config{Addresses: seeds}),
			[]keyspace.KeySpace{users},
			engine.WithNodeName(fmt.Sprintf("node-%d", i)),
			engine.WithBindAddr("127.0.0.1"),
			engine.WithBindPort(0), // any free port
			engine.WithLabel("quickstart"),
			engine.WithGossipSecret(secret),
			engine.WithKeySpaceDefaultTTL("users", time.Minute),
			engine.WithKeySpaceReadTimeout("users", time.Second),
		)
		e, err := engine.New(cfg)
		if err != nil {
			return err
		}
		if err := e.Start(ctx); err != nil {
			return err
		}
		engines = append(engines, e)
		seeds = append(seeds, e.Addr())
	}
	if err := waitMembers(engines, n, 10*time.Second); err != nil {
		return err
	}
	fmt.Printf("cluster up: %d nodes %v\n", n, seeds)

	keyNames := make([]string, nkeys)
	for i := range keyNames {
		keyNames[i] = fmt.Sprintf("user:%d", i)
	}
	var (
		ops, errs atomic.Int64
		latMu     sync.Mutex
		lats      []time.Duration
		wg        sync.WaitGroup
	)
	deadline := time.Now().Add(duration)
	start := time.Now()
	for w := range workers {
		e := engines[w%n]
		wg.Go(func() {
			z := rand.NewZipf(rand.New(rand.NewPCG(uint64(w), 42)), 1.01, 1, uint64(nkeys-1))
			local := make([]time.Duration, 0, 1<<16)
			for time.Now().Before(deadline) {
				k := keyNames[z.Uint64()]
				t0 := time.Now()
				if _, err := e.Get(ctx, "users", k); err != nil {
					errs.Add(1)
				}
				local = append(local, time.Since(t0))
				ops.Add(1)
			}
			latMu.Lock()
			lats = append(lats, local...)
			latMu.Unlock()
		})
	}
	progress := time.NewTicker(250 * time.Millisecond)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
loop:
	for {
		select {
		case <-done:
			break loop
		case <-progress.C:
			el := time.Since(start)
			fmt.Printf("\r%5.1fs  %9d gets  %8.0f gets/s  %7d fetches  DataSource avoided %5.1f%%   ",
				el.Seconds(), ops.Load(), float64(ops.Load())/el.Seconds(), db.fetches.Load(),
				100*avoided(ops.Load(), db.fetches.Load()))
		}
	}
	progress.Stop()
	elapsed := time.Since(start)
	fmt.Println()

	slices.Sort(lats)
	pct := func(p float64) time.Duration { return lats[min(int(p*float64(len(lats))), len(lats)-1)] }
	total := ops.Load()
	fmt.Printf("\ngets            %d (%d errors)\n", total, errs.Load())
	fmt.Printf("throughput      %.0f gets/s\n", float64(total)/elapsed.Seconds())
	fmt.Printf("DataSource avoided %.2f%% (1 − fetches ÷ gets)\n", 100*avoided(total, db.fetches.Load()))
	fmt.Printf("db fetches      %d (each miss costs the database one fetch, cluster-wide)\n", db.fetches.Load())
	fmt.Printf("latency         p50 %v  p99 %v  p99.9 %v\n", pct(0.50), pct(0.99), pct(0.999))
	fmt.Printf("\n%-8s %10s %10s %10s %10s %10s %10s\n", "node", "owned", "fetches", "hits", "forwarded", "served", "degraded")
	for _, e := range engines {
		st, _ := e.Stats().KeySpace("users")
		fmt.Printf("%-8s %10d %10d %10d %10d %10d %10d\n", e.NodeName(), st.Entries, st.Fetches, st.Hits, st.Forwarded, st.Served, st.Degraded)
	}
	if errs.Load() > 0 {
		return fmt.Errorf("%d gets failed", errs.Load())
	}
	return nil
}

// avoided is the hit ratio distcache reports everywhere: the share of Gets
// that did not reach the DataSource.
func avoided(gets, fetches int64) float64 {
	r, _ := admin.DataSourceAvoided(gets, fetches)
	return r
}

func waitMembers(engines []*engine.Engine, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ok := true
		for _, e := range engines {
			if len(e.Members()) != n {
				ok = false
			}
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster did not converge to %d members in %v", n, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Command dashboard runs a three-node distcache cluster in one process,
// each node with its admin server on loopback, drives a steady Zipf
// workload through all three, and prints each node's dashboard URL: open
// one to watch the cluster live (members, Gets/s, the DataSource-avoided
// ratio, fetches/s, hot keys). It runs until -duration passes or Ctrl-C.
//
//	go run ./examples/dashboard [-duration 0] [-rate 3000]
package main

import (
	"context"
	crand "crypto/rand"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"sync"
	"time"

	"github.com/distcache/distcache/admin"
	"github.com/distcache/distcache/discovery/static"
	"github.com/distcache/distcache/engine"
	"github.com/distcache/distcache/keyspace"
	"github.com/distcache/distcache/warmup"
)

// slowDB simulates a database whose fetches take latency; a tenth of the
// keys do not exist.
type slowDB struct{ latency time.Duration }

func (d slowDB) Fetch(ctx context.Context, key string) ([]byte, error) {
	t := time.NewTimer(d.latency)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if len(key)%10 == 0 {
		return nil, keyspace.ErrNotFound
	}
	return []byte("profile of " + key), nil
}

func main() {
	duration := flag.Duration("duration", 0, "how long to run (0: until Ctrl-C)")
	rate := flag.Int("rate", 3000, "Gets per second, spread over the nodes")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	if err := run(ctx, *rate); err != nil {
		fmt.Fprintln(os.Stderr, "dashboard:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, rate int) error {
	c, err := startCluster(3)
	if err != nil {
		return err
	}
	defer c.stop()
	fmt.Println("dashboards (each shows the whole cluster):")
	for _, u := range c.urls {
		fmt.Println("  " + u)
	}
	fmt.Println("Ctrl-C stops.")
	c.load(ctx, rate)
	return nil
}

// cluster is the demo's engines and their dashboards.
type cluster struct {
	engines []*engine.Engine
	urls    []string
}

// startCluster starts n engines on loopback, each with an admin server on
// a free port, and waits until every ring has n members.
func startCluster(n int) (*cluster, error) {
	ctx := context.Background()
	// Every node of a cluster shares one secret: it encrypts gossip and
	// authenticates data connections. Yours comes from a secret store.
	secret := make([]byte, 32)
	_, _ = crand.Read(secret)
	users := keyspace.New("users", 32<<20, slowDB{latency: time.Millisecond})
	c := &cluster{}
	var seeds []string
	for i := range n {
		e, err := engine.New(engine.NewConfig(
			static.NewDiscovery(&static.Config{Addresses: seeds}),
			[]keyspace.KeySpace{users},
			engine.WithNodeName(fmt.Sprintf("node-%d", i)),
			engine.WithBindAddr("127.0.0.1"),
			engine.WithBindPort(0),
			engine.WithLabel("dashboard-demo"),
			engine.WithGossipSecret(secret),
			engine.WithKeySpaceDefaultTTL("users", 30*time.Second),
			engine.WithAdminServer("127.0.0.1:0"), // loopback: no token needed
			engine.WithWarmup(warmup.DefaultConfig()),
		))
		if err == nil {
			err = e.Start(ctx)
		}
		if err != nil {
			c.stop()
			return nil, err
		}
		c.engines = append(c.engines, e)
		c.urls = append(c.urls, "http://"+e.AdminAddr()+admin.DefaultBasePath+"/")
		seeds = append(seeds, e.Addr())
	}
	deadline := time.Now().Add(10 * time.Second)
	for !c.converged(n) {
		if time.Now().After(deadline) {
			c.stop()
			return nil, errors.New("the cluster did not converge in 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return c, nil
}

func (c *cluster) converged(n int) bool {
	for _, e := range c.engines {
		if len(e.Members()) != n {
			return false
		}
	}
	return true
}

func (c *cluster) stop() {
	for _, e := range c.engines {
		_ = e.Stop(context.Background())
	}
}

// load issues about rate Gets per second of a Zipf-popular key set, from
// workersPerNode callers on each node, until ctx ends. Every 10 s the
// popular keys move to another range (four in turn), so the
// DataSource-avoided ratio dips and fetches/s rise, then settle.
func (c *cluster) load(ctx context.Context, rate int) {
	const (
		keys           = 20_000
		workersPerNode = 4
		tick           = 50 * time.Millisecond
	)
	batch := max(rate/len(c.engines)/workersPerNode/int(time.Second/tick), 1)
	var wg sync.WaitGroup
	for i, e := range c.engines {
		for w := range workersPerNode {
			wg.Go(func() {
				z := rand.NewZipf(rand.New(rand.NewPCG(uint64(i), uint64(w))), 1.1, 1, keys-1)
				// One batch of Gets per tick keeps the pacing cheap.
				t := time.NewTicker(tick)
				defer t.Stop()
				for {
					select {
					case <-ctx.Done():
						return
					case now := <-t.C:
						shift := now.Unix() / 10 % 4 * keys
						for range batch {
							_, _ = e.Get(ctx, "users", fmt.Sprintf("user:%d", int64(z.Uint64())+shift))
						}
					}
				}
			})
		}
	}
	wg.Wait()
}

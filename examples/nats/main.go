// Command nats runs three distcache engines that find each other through
// NATS: it starts an embedded nats-server on 127.0.0.1 (a random port), then
// three engines whose discovery provider is discovery/nats on one subject.
// Each node announces itself on the subject and answers discovery requests,
// so no node needs to know another's address in advance. It then reads a
// few keys through every node and exits.
//
//	go run ./examples/nats
//
// In production, drop the embedded server and set Config.URL to your NATS
// cluster (with credentials in Config.Options).
package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	natsdisc "github.com/distcache/distcache/discovery/nats"
	"github.com/distcache/distcache/engine"
	"github.com/distcache/distcache/keyspace"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "nats example:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer) error {
	// An embedded NATS server. RANDOM_PORT picks a free port; ClientURL
	// reports it.
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true})
	if err != nil {
		return err
	}
	go ns.Start()
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	if !ns.ReadyForConnections(10 * time.Second) {
		return fmt.Errorf("nats-server not ready")
	}
	fmt.Fprintf(out, "nats-server at %s\n", ns.ClientURL())

	// The DataSource: a stand-in for your database, counting its loads.
	var fetches atomic.Int64
	products := keyspace.New("products", 16<<20, keyspace.DataSourceFunc(
		func(ctx context.Context, key string) ([]byte, error) {
			fetches.Add(1)
			return []byte("details of " + key), nil
		}))

	// One secret for the cluster; in production, from your secret store.
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)

	var engines []*engine.Engine
	defer func() {
		for _, e := range engines {
			_ = e.Stop(ctx)
		}
	}()
	for i := 1; i <= 3; i++ {
		cfg := natsdisc.DefaultConfig()
		cfg.URL = ns.ClientURL()
		cfg.Subject = "distcache.example.products" // one subject per cache cluster
		p, err := natsdisc.New(cfg)
		if err != nil {
			return err
		}
		e, err := engine.New(engine.NewConfig(p, []keyspace.KeySpace{products},
			engine.WithNodeName(fmt.Sprintf("nats-node-%d", i)), // unique per subject
			engine.WithBindAddr("127.0.0.1"),
			engine.WithBindPort(0),
			engine.WithLabel("nats-example"),
			engine.WithGossipSecret(secret),
			engine.WithDiscoveryInterval(time.Second),
		))
		if err != nil {
			return err
		}
		if err := e.Start(ctx); err != nil {
			return err
		}
		engines = append(engines, e)
		fmt.Fprintf(out, "started %s on %s\n", e.NodeName(), e.Addr())
	}
	if err := waitMembers(engines, 3, 20*time.Second); err != nil {
		return err
	}
	fmt.Fprintf(out, "one cluster of %d members, found through NATS\n", len(engines[0].Members()))

	keys := []string{"product:1", "product:2", "product:3", "product:4", "product:5"}
	for _, e := range engines {
		for _, k := range keys {
			v, err := e.Get(ctx, "products", k)
			if err != nil {
				return fmt.Errorf("%s: Get %s: %w", e.NodeName(), k, err)
			}
			owner, _ := e.Owner(k)
			if e == engines[0] {
				fmt.Fprintf(out, "  %-10s owned by %-12s %q\n", k, owner.Name, v)
			}
		}
	}
	fmt.Fprintf(out, "%d Gets through 3 nodes, %d DataSource fetches (one per key)\n",
		len(keys)*len(engines), fetches.Load())
	if n := fetches.Load(); n != int64(len(keys)) {
		return fmt.Errorf("%d fetches, want %d", n, len(keys))
	}
	return nil
}

// waitMembers polls until every engine sees n members.
func waitMembers(engines []*engine.Engine, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ok := true
		for _, e := range engines {
			ok = ok && len(e.Members()) == n
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the engines did not see %d members in %v", n, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

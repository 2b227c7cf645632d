// Command chaosnode is one node of the chaos suite: a process embedding one
// engine.Engine, with static discovery of the other nodes and one keyspace
// whose DataSource is a constant "database" (every key's value is version
// 0, see ctlapi.Value), so any other version a Get returns was written by a
// Put. With -db the DataSource reads the driver's shared database instead
// (package rowdb), whose rows the driver changes (the refresh scenario). The driver (cmd/chaos) starts several of these, makes calls through
// each one's control API (HTTP), and kills, pauses or partitions them.
//
// It prints one ready line on stdout (ctlapi.ReadyLine) once the engine has
// started and the control API listens; logs go to stderr. SIGTERM or SIGINT
// stops the engine gracefully (leave, hand-off) and exits 0.
package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/distcache/distcache/chaos/internal/ctlapi"
	"github.com/distcache/distcache/chaos/internal/rowdb"
	"github.com/distcache/distcache/chaos/internal/stall"
	"github.com/distcache/distcache/discovery/static"
	"github.com/distcache/distcache/engine"
	"github.com/distcache/distcache/keyspace"
	"github.com/distcache/distcache/warmup"
)

type options struct {
	name, bind, control, label, timings, logLevel string
	port                                          int
	peers                                         []string
	replicas                                      int
	// db is the shared database's URL ("": the constant DataSource).
	db string
	// refresh is warmup.Config.RefreshInterval (0: warmup off); nearTTL
	// turns the near cache on (0: off).
	refresh, nearTTL time.Duration
}

func main() {
	var o options
	var peers string
	flag.StringVar(&o.name, "name", "", "node name (stable across restarts)")
	flag.StringVar(&o.bind, "bind", "127.0.0.1", "gossip/data bind address")
	flag.IntVar(&o.port, "port", 0, "gossip/data port (0: any free port)")
	flag.StringVar(&peers, "peers", "", "comma-separated host:port of every node (static discovery)")
	flag.StringVar(&o.control, "control", "127.0.0.1:0", "control API listen address")
	flag.StringVar(&o.label, "label", "distcache-chaos", "cluster label")
	flag.StringVar(&o.timings, "timings", "lan", "failure-detection timings: lan (engine defaults) or local (fast, as in the tests)")
	flag.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	flag.IntVar(&o.replicas, "replicas", 1, "copies of each entry (engine.WithReplicas)")
	flag.StringVar(&o.db, "db", "", "URL of the driver's shared database (default: the constant DataSource, every key at version 0)")
	flag.DurationVar(&o.refresh, "refresh", 0, "warmup with refresh-ahead every interval (warmup.Config.RefreshInterval; 0: warmup off)")
	flag.DurationVar(&o.nearTTL, "near-ttl", 0, "near cache with this TTL (engine.WithKeySpaceNearCache; 0: off)")
	flag.Parse()
	if peers != "" {
		o.peers = strings.Split(peers, ",")
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "chaosnode:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.name == "" {
		return errors.New("-name is required")
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})) // the engine adds node=

	opts, err := engineOptions(o, log)
	if err != nil {
		return err
	}
	// The secret comes from the environment, not a flag: argv is public.
	// It encrypts gossip and authenticates data connections, which the
	// engine requires on a non-loopback address (the partition scenario).
	if h := os.Getenv(ctlapi.SecretEnv); h != "" {
		secret, err := hex.DecodeString(h)
		if err != nil {
			return fmt.Errorf("%s: %w", ctlapi.SecretEnv, err)
		}
		opts = append(opts, engine.WithGossipSecret(secret))
	}
	var source keyspace.DataSource = keyspace.DataSourceFunc(
		func(_ context.Context, key string) ([]byte, error) { return ctlapi.Value(key, 0), nil })
	if o.db != "" {
		if source, err = rowdb.NewSource(o.db, o.name); err != nil {
			return err
		}
	}
	ks := keyspace.New(ctlapi.KeySpace, 64<<20, source)
	e, err := engine.New(engine.NewConfig(static.NewDiscovery(&static.Config{Addresses: o.peers}), []keyspace.KeySpace{ks}, opts...))
	if err != nil {
		return err
	}

	// The stall detector tells the driver when this process was not
	// scheduled (an overloaded host), to excuse deadline overruns then.
	stalls := stall.New(10*time.Millisecond, 300*time.Millisecond, 256)
	wctx, stopWatch := context.WithCancel(context.Background())
	var watch sync.WaitGroup
	watch.Go(func() { stalls.Run(wctx) })
	defer func() {
		stopWatch()
		watch.Wait()
	}()

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	if err := e.Start(context.Background()); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	ln, err := net.Listen("tcp", o.control)
	if err != nil {
		_ = e.Stop(context.Background())
		return fmt.Errorf("control listener: %w", err)
	}
	srv := &http.Server{Handler: newControl(e, stalls), ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Println(ctlapi.ReadyLine(e.Addr(), ln.Addr().String()))

	select {
	case sig := <-sigs:
		log.Info("stopping", "signal", sig.String())
	case err := <-served:
		log.Error("control API failed", "err", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = e.Stop(ctx)
	_ = srv.Shutdown(ctx)
	if err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	log.Info("stopped")
	return nil
}

// engineOptions are the node's engine options. Both timing sets join fast
// and re-discover every second (so a healed partition or a restarted node
// is found at once); "lan" keeps the engine's production failure detection
// (memberlist LAN profile: 1 s probes, 500 ms probe timeout, a dead node
// declared after about 5 s, DeadNodeReclaimTime 10 s), "local" uses the
// loopback test timings (200 ms probes, dead after about 1 s).
func engineOptions(o options, log *slog.Logger) ([]engine.Option, error) {
	opts := []engine.Option{
		engine.WithNodeName(o.name),
		engine.WithBindAddr(o.bind),
		engine.WithBindPort(o.port),
		engine.WithLabel(o.label),
		engine.WithJoinRetryInterval(100 * time.Millisecond),
		engine.WithDiscoveryInterval(time.Second),
		engine.WithBootstrapTimeout(10 * time.Second),
		engine.WithShutdownTimeout(10 * time.Second),
		engine.WithLogger(log),
		engine.WithReplicas(o.replicas),
	}
	if o.refresh < 0 || o.nearTTL < 0 {
		return nil, errors.New("-refresh and -near-ttl must be >= 0")
	}
	if o.refresh > 0 {
		opts = append(opts, engine.WithWarmup(warmup.Config{RefreshInterval: o.refresh}))
	}
	if o.nearTTL > 0 {
		opts = append(opts, engine.WithKeySpaceNearCache(ctlapi.KeySpace, 16<<20, o.nearTTL))
	}
	switch o.timings {
	case "lan":
	case "local":
		opts = append(opts, engine.WithClusterTuning(engine.ClusterTuning{
			LocalNetwork:  true,
			ProbeInterval: 200 * time.Millisecond,
			ProbeTimeout:  80 * time.Millisecond,
			RingDebounce:  10 * time.Millisecond,
		}))
	default:
		return nil, fmt.Errorf("-timings %q: want lan or local", o.timings)
	}
	return opts, nil
}

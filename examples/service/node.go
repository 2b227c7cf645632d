package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/distcache/distcache/admin"
	"github.com/distcache/distcache/discovery/static"
	"github.com/distcache/distcache/engine"
	"github.com/distcache/distcache/keyspace"
)

// secretEnv carries the cluster's gossip secret (hex) to every node: the
// environment, not the command line, which other users can read in ps.
const secretEnv = "SERVICE_GOSSIP_SECRET"

// readyPrefix starts the line a node prints on stdout once it serves; the
// launcher reads its addresses from it.
const readyPrefix = "service-node ready"

// nodeConfig is what one node process needs, from its command line.
type nodeConfig struct {
	name       string
	dbPath     string
	httpAddr   string
	gossipAddr string // host:port; port 0 picks a free one
	peers      []string
	watchStdin bool // exit when stdin closes (the launcher died)
	verbose    bool
}

func parseNodeFlags(args []string) (nodeConfig, error) {
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	var c nodeConfig
	var peers string
	fs.StringVar(&c.name, "name", "", "stable node name (required; a restarted node reuses it)")
	fs.StringVar(&c.dbPath, "db", "", "SQLite file shared by the nodes (required)")
	fs.StringVar(&c.httpAddr, "http", "127.0.0.1:0", "API and admin listen address")
	fs.StringVar(&c.gossipAddr, "gossip", "127.0.0.1:0", "gossip and data listen address")
	fs.StringVar(&peers, "peers", "", "comma-separated gossip addresses of other nodes")
	fs.BoolVar(&c.watchStdin, "watch-stdin", false, "shut down when stdin is closed")
	fs.BoolVar(&c.verbose, "v", false, "log at INFO (default WARN)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if c.name == "" || c.dbPath == "" {
		return c, errors.New("node: -name and -db are required")
	}
	if peers != "" {
		c.peers = strings.Split(peers, ",")
	}
	return c, nil
}

// runNode runs one node of the service until SIGTERM or SIGINT (or, with
// -watch-stdin, until its launcher goes away), then shuts down gracefully:
// the HTTP server drains its requests first, then the engine hands its
// entries to the remaining nodes and leaves, then the database closes.
func runNode(args []string) error {
	c, err := parseNodeFlags(args)
	if err != nil {
		return err
	}
	level := slog.LevelWarn
	if c.verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("node", c.name)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if c.watchStdin {
		go func() { _, _ = io.Copy(io.Discard, os.Stdin); stop() }()
	}

	db, err := openStore(c.dbPath)
	if err != nil {
		return err
	}
	defer db.Close()

	secret, err := hex.DecodeString(os.Getenv(secretEnv))
	if err != nil || len(secret) != 32 {
		return fmt.Errorf("node: $%s must hold 64 hex digits (a 32-byte gossip secret)", secretEnv)
	}
	host, port, err := splitHostPort(c.gossipAddr)
	if err != nil {
		return err
	}
	// Listen first: the engine tells the other members where this node's
	// dashboard is, so that theirs link to it.
	ln, err := net.Listen("tcp", c.httpAddr)
	if err != nil {
		return err
	}
	defer ln.Close() // after Serve took it, closing again is harmless
	users := keyspace.New(usersKeySpace, 64<<20, keyspace.DataSourceFunc(db.Fetch))
	e, err := engine.New(engine.NewConfig(
		static.NewDiscovery(&static.Config{Addresses: c.peers}),
		[]keyspace.KeySpace{users},
		engine.WithNodeName(c.name), // stable: a restarted node takes its partitions back
		engine.WithBindAddr(host),
		engine.WithBindPort(port),
		engine.WithLabel("users-service"),
		engine.WithGossipSecret(secret),
		engine.WithLogger(log),
		// Re-read the peer list often, so a node that starts alone finds the
		// others quickly. The default (30 s) suits a real deployment.
		engine.WithDiscoveryInterval(2*time.Second),
		engine.WithShutdownTimeout(5*time.Second),
		engine.WithKeySpaceDefaultTTL(usersKeySpace, 5*time.Minute),
		engine.WithKeySpaceReadTimeout(usersKeySpace, 2*time.Second),
		// Remember "no such user" for a while: unknown ids cost the database
		// one query per 10 s, not one per request. A PUT replaces it.
		engine.WithKeySpaceNegativeTTL(usersKeySpace, 10*time.Second),
		engine.WithAdminConfig(admin.Config{AdvertiseURL: "http://" + ln.Addr().String() + admin.DefaultBasePath + "/"}),
	))
	if err != nil {
		return err
	}
	if err := e.Start(ctx); err != nil {
		return err
	}

	mux := http.NewServeMux()
	(&api{e: e, db: db, log: log}).routes(mux)
	// The admin endpoints and dashboard, on the service's own port.
	mux.Handle(admin.DefaultBasePath+"/", e.AdminHandler())
	srv := newHTTPServer(mux)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	fmt.Printf("%s name=%s http=%s gossip=%s\n", readyPrefix, c.name, ln.Addr(), e.Addr())

	select {
	case <-ctx.Done():
	case err := <-served:
		log.Error("http server failed", "err", err)
	}
	// Graceful shutdown, bounded: requests in flight finish, then the engine
	// leaves the cluster (peers route around it within about a second).
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	herr := srv.Shutdown(sctx)
	eerr := e.Stop(sctx)
	log.Info("stopped", "http", herr, "engine", eerr)
	return errors.Join(herr, eerr)
}

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("node: address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("node: address %q: bad port", addr)
	}
	return host, port, nil
}

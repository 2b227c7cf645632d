// Command kubernetes is the cache node that the manifests in cache.yaml
// deploy: each pod runs one engine that finds the others by listing the
// Deployment's pods through the Kubernetes API (discovery/kubernetes), and
// serves a small read-through API plus the admin endpoints that the probes
// use. Build an image from the Dockerfile beside it, then:
//
//	kubectl create namespace shop
//	kubectl -n shop create secret generic cache-gossip --from-literal=secret=$(openssl rand -hex 32)
//	kubectl apply -f examples/kubernetes/cache.yaml
//
// Settings come from the environment, as cache.yaml sets them: POD_NAME,
// POD_NAMESPACE and POD_IP (downward API), GOSSIP_SECRET (64 hex digits,
// from the Secret), and optionally LABEL_SELECTOR (default "app=cache").
package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	k8s "k8s.io/client-go/kubernetes"

	"github.com/distcache/distcache/admin"
	k8sdisc "github.com/distcache/distcache/discovery/kubernetes"
	"github.com/distcache/distcache/engine"
	"github.com/distcache/distcache/keyspace"
)

// The names that cache.yaml must agree with (main_test.go checks it).
const (
	gossipPortName = "gossip" // the containerPort name discovery looks for
	gossipPort     = 7946
	httpPort       = 8080
	defaultLabels  = "app=cache"
)

// config is one node's settings.
type config struct {
	name, namespace, selector string
	bindIP, advertiseIP       string
	gossipPort                int
	httpAddr                  string
	secret                    []byte
	client                    k8s.Interface // nil: in-cluster (tests pass a fake)
	log                       *slog.Logger
}

func configFromEnv() (config, error) {
	c := config{
		name:        os.Getenv("POD_NAME"),
		namespace:   os.Getenv("POD_NAMESPACE"),
		selector:    os.Getenv("LABEL_SELECTOR"),
		bindIP:      "0.0.0.0",
		advertiseIP: os.Getenv("POD_IP"),
		gossipPort:  gossipPort,
		httpAddr:    fmt.Sprintf(":%d", httpPort),
		log:         slog.New(slog.NewJSONHandler(os.Stderr, nil)),
	}
	if c.selector == "" {
		c.selector = defaultLabels
	}
	var err error
	if c.secret, err = hex.DecodeString(os.Getenv("GOSSIP_SECRET")); err != nil || len(c.secret) != 32 {
		return c, errors.New("GOSSIP_SECRET must hold 64 hex digits (openssl rand -hex 32)")
	}
	if c.name == "" || c.namespace == "" || c.advertiseIP == "" {
		return c, errors.New("POD_NAME, POD_NAMESPACE and POD_IP must be set (downward API)")
	}
	return c, nil
}

func main() {
	c, err := configFromEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cache node:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	n, err := start(ctx, c)
	if err != nil {
		c.log.Error("start", "err", err)
		os.Exit(1)
	}
	<-ctx.Done()
	// Kubernetes sends SIGTERM and waits terminationGracePeriodSeconds:
	// drain HTTP, then leave the cluster handing entries over.
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.stop(sctx); err != nil {
		c.log.Error("stop", "err", err)
		os.Exit(1)
	}
}

// node is a running engine and its HTTP server.
type node struct {
	e   *engine.Engine
	srv *http.Server
	ln  net.Listener
}

func start(ctx context.Context, c config) (*node, error) {
	dcfg := k8sdisc.DefaultConfig()
	dcfg.Namespace, dcfg.LabelSelector, dcfg.PortName = c.namespace, c.selector, gossipPortName
	dcfg.Client = c.client
	dcfg.Logger = c.log
	p, err := k8sdisc.New(dcfg)
	if err != nil {
		return nil, err
	}
	// A stand-in DataSource; yours queries your database.
	profiles := keyspace.New("profiles", 64<<20, keyspace.DataSourceFunc(
		func(ctx context.Context, key string) ([]byte, error) { return []byte("profile of " + key), nil }))
	e, err := engine.New(engine.NewConfig(p, []keyspace.KeySpace{profiles},
		engine.WithNodeName(c.name), // the pod name: stable for a StatefulSet, unique for a Deployment
		engine.WithBindAddr(c.bindIP),
		engine.WithBindPort(c.gossipPort),
		engine.WithAdvertiseAddr(c.advertiseIP, 0),
		engine.WithLabel("cache/"+c.namespace),
		engine.WithGossipSecret(c.secret),
		engine.WithLogger(c.log),
		engine.WithKeySpaceDefaultTTL("profiles", 10*time.Minute),
	))
	if err != nil {
		return nil, err
	}
	if err := e.Start(ctx); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /profiles/{id}", func(w http.ResponseWriter, r *http.Request) {
		v, err := e.Get(r.Context(), "profiles", r.PathValue("id"))
		switch {
		case errors.Is(err, keyspace.ErrNotFound):
			http.Error(w, "not found", http.StatusNotFound)
		case err != nil:
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		default:
			_, _ = w.Write(v)
		}
	})
	// Probes: livenessProbe -> healthz, readinessProbe -> readyz.
	mux.Handle(admin.DefaultBasePath+"/", e.AdminHandler())
	ln, err := net.Listen("tcp", c.httpAddr)
	if err != nil {
		_ = e.Stop(ctx)
		return nil, err
	}
	n := &node{e: e, ln: ln, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}}
	go func() { _ = n.srv.Serve(ln) }()
	return n, nil
}

func (n *node) stop(ctx context.Context) error {
	return errors.Join(n.srv.Shutdown(ctx), n.e.Stop(ctx))
}

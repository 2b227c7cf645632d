// Command prometheus exports a distcache engine's metrics to Prometheus: the
// engine reports through OpenTelemetry (engine.WithMetrics), and the
// OpenTelemetry Prometheus exporter turns an SDK MeterProvider into a
// Prometheus collector served on /metrics. The core module imports only
// the OpenTelemetry API; the exporter is this program's dependency.
//
//	go run ./examples/prometheus                    # serves until Ctrl-C
//	go run ./examples/prometheus -addr 127.0.0.1:9464 -duration 30s
//
// While it runs a small workload reads keys, so the counters move; scrape
// the printed URL (or point a Prometheus at it) to see them.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/distcache/distcache/discovery/static"
	"github.com/distcache/distcache/engine"
	"github.com/distcache/distcache/keyspace"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address of /metrics (port 0: a free one)")
	duration := flag.Duration("duration", 0, "stop after this long (0: run until Ctrl-C)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	if err := run(ctx, *addr, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "prometheus example:", err)
		os.Exit(1)
	}
}

// run serves /metrics on addr and drives a workload until ctx ends, then
// scrapes itself once and prints the distcache series.
func run(ctx context.Context, addr string, out io.Writer) error {
	// A registry of our own (not prometheus.DefaultRegisterer): nothing
	// global, and several engines per process stay possible.
	reg := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return err
	}
	// The engine's duration histograms carry their own bucket boundaries
	// (10 µs to 10 s), so no view is needed; its counts (requests, hits,
	// misses, fetches, entries, members, ...) are observable instruments
	// read at each scrape.
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	defer mp.Shutdown(context.Background())

	orders := keyspace.New("orders", 16<<20, keyspace.DataSourceFunc(
		func(ctx context.Context, key string) ([]byte, error) {
			if strings.HasSuffix(key, "7") {
				return nil, keyspace.ErrNotFound // some keys do not exist
			}
			return []byte("order " + key), nil
		}))
	e, err := engine.New(engine.NewConfig(static.NewDiscovery(nil), []keyspace.KeySpace{orders},
		engine.WithNodeName("metrics-node"),
		engine.WithBindAddr("127.0.0.1"),
		engine.WithBindPort(0),
		engine.WithMetrics(mp), // the engine's OpenTelemetry instruments go to the exporter
		engine.WithKeySpaceDefaultTTL("orders", 2*time.Second),
	))
	if err != nil {
		return err
	}
	if err := e.Start(ctx); err != nil {
		return err
	}
	defer e.Stop(context.Background())

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	url := "http://" + ln.Addr().String() + "/metrics"
	fmt.Fprintf(out, "metrics at %s\n  curl -s %s | grep ^distcache\n", url, url)

	// The workload: Gets of 1,000 keys (a few missing), at most 2,000 a second.
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	gets := 0
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
			for range 2 {
				_, err := e.Get(context.Background(), "orders", fmt.Sprintf("order:%d", rand.IntN(1000)))
				if err != nil && !errors.Is(err, keyspace.ErrNotFound) {
					return err
				}
				gets++
			}
		}
	}

	fmt.Fprintf(out, "%d Gets; the distcache series on /metrics:\n", gets)
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	found := false
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "distcache_") {
			fmt.Fprintln(out, "  "+line)
			found = true
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if !found {
		return errors.New("no distcache series on /metrics")
	}
	return nil
}

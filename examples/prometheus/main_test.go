package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// The engine's metrics reach /metrics through the OpenTelemetry Prometheus
// exporter: the request counter of the Gets the workload made is there.
func TestPrometheusExample(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, "127.0.0.1:0", &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "distcache_engine_requests") {
		t.Fatalf("no distcache_engine_requests series:\n%s", out.String())
	}
}

package main

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The engine's metrics reach /metrics through the OpenTelemetry Prometheus
// exporter: the request counter of the Gets the workload made is there,
// local hits included, beside the hit, entry and member instruments, and
// the duration histogram has the engine's sub-millisecond buckets.
func TestPrometheusExample(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, "127.0.0.1:0", &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	var gets, hits float64
	for _, line := range strings.Split(out.String(), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "distcache_engine_requests_total{") && strings.Contains(line, `distcache_operation="get"`):
			gets = lastFloat(t, line)
		case strings.HasPrefix(line, "distcache_engine_hits_total{"):
			hits = lastFloat(t, line)
		}
	}
	if gets == 0 || hits == 0 || hits > gets {
		t.Fatalf("want Gets counted with their local hits (0 < hits <= gets), got gets=%v hits=%v:\n%s", gets, hits, out.String())
	}
	for _, series := range []string{"distcache_engine_entries", "distcache_cluster_members", `distcache_engine_duration_seconds_bucket{`} {
		if !strings.Contains(out.String(), series) {
			t.Fatalf("no %s series:\n%s", series, out.String())
		}
	}
	if !strings.Contains(out.String(), `le="1e-05"`) {
		t.Fatalf("the duration histogram lacks the 10 µs bucket:\n%s", out.String())
	}
}

// lastFloat parses the value at the end of a Prometheus text line.
func lastFloat(t *testing.T, line string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
	if err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	return v
}

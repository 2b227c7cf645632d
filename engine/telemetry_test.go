package engine_test

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/distcache/distcache/engine"
	"github.com/distcache/distcache/keyspace"
	"github.com/distcache/distcache/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// points collects reader's int64 sums and gauges by instrument name, then
// by their attributes ("k=v,k=v", sorted; "" for none).
func points(t *testing.T, reader sdkmetric.Reader) map[string]map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	out := map[string]map[string]int64{}
	add := func(name string, set attribute.Set, v int64) {
		var kv []string
		for _, a := range set.ToSlice() {
			kv = append(kv, string(a.Key)+"="+a.Value.String())
		}
		sort.Strings(kv)
		if out[name] == nil {
			out[name] = map[string]int64{}
		}
		out[name][strings.Join(kv, ",")] += v
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range d.DataPoints {
					add(m.Name, dp.Attributes, dp.Value)
				}
			case metricdata.Gauge[int64]:
				for _, dp := range d.DataPoints {
					add(m.Name, dp.Attributes, dp.Value)
				}
			}
		}
	}
	return out
}

// After a known sequence of calls on node 0 (local miss, local hit, remote
// Get, near hit, remote miss, GetMany, Put, Delete), every instrument reads
// exactly what happened, and the same numbers as Stats.
func TestInstrumentsReadExactValues(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{
		Options: []engine.Option{engine.WithKeySpaceNearCache(ks, 1<<20, time.Minute)},
		NodeOptions: func(i int) []engine.Option {
			if i == 0 {
				return []engine.Option{engine.WithMetrics(mp)}
			}
			return nil
		},
	})
	e := c.Node(0)
	ctx := context.Background()
	local := c.KeysOwnedBy(0, 2, "local")
	remote := c.KeysOwnedBy(1, 2, "remote")
	c.DataSource.SetMissing(remote[1], true)

	_, err := e.Get(ctx, ks, local[0]) // miss, fetch
	require.NoError(t, err)
	_, err = e.Get(ctx, ks, local[0]) // local hit
	require.NoError(t, err)
	_, err = e.Get(ctx, ks, remote[0]) // forwarded; fills the near cache
	require.NoError(t, err)
	require.Eventually(t, func() bool { // the near copy is stored asynchronously
		st, _ := e.Stats().KeySpace(ks)
		return st.NearEntries == 1
	}, 5*time.Second, time.Millisecond)
	_, err = e.Get(ctx, ks, remote[0]) // near hit
	require.NoError(t, err)
	_, err = e.Get(ctx, ks, remote[1]) // forwarded, not found
	require.ErrorIs(t, err, keyspace.ErrNotFound)
	vals, err := e.GetMany(ctx, ks, []string{local[0], remote[0], local[0]}) // local hit, near hit
	require.NoError(t, err)
	require.Len(t, vals, 2)
	require.NoError(t, e.Put(ctx, ks, engine.Entry{Key: local[1], Value: []byte("v")}))
	require.NoError(t, e.Delete(ctx, ks, "never-there"))

	p := points(t, reader)
	ksAttr := "distcache.keyspace=" + ks
	op := func(name string) string { return "distcache.keyspace=" + ks + ",distcache.operation=" + name }
	assert.Equal(t, map[string]int64{op("get"): 5, op("get_many"): 1, op("put"): 1, op("delete"): 1,
		"distcache.operation=delete_keyspaces": 0, "distcache.operation=update_keyspace": 0},
		p["distcache.engine.requests"])
	st, _ := e.Stats().KeySpace(ks)
	want := map[string]int64{
		"distcache.engine.hits":        2,
		"distcache.engine.misses":      1,
		"distcache.engine.near_hits":   2,
		"distcache.datasource.fetches": 1,
		"distcache.engine.degraded":    0,
		"distcache.engine.entries":     2,
	}
	for name, v := range want {
		assert.Equal(t, v, p[name][ksAttr], name)
	}
	assert.Equal(t, map[string]int64{"": 3}, p["distcache.cluster.members"])
	assert.Equal(t, st.Hits, p["distcache.engine.hits"][ksAttr])
	assert.Equal(t, st.Misses, p["distcache.engine.misses"][ksAttr])
	assert.Equal(t, st.NearHits, p["distcache.engine.near_hits"][ksAttr])
	assert.Equal(t, st.Fetches, p["distcache.datasource.fetches"][ksAttr])
	assert.Equal(t, st.UsedBytes, p["distcache.engine.bytes"]["distcache.keyspace="+ks+",distcache.store=main"])
	assert.Equal(t, st.NearUsedBytes, p["distcache.engine.bytes"]["distcache.keyspace="+ks+",distcache.store=near"])
	assert.EqualValues(t, 5+2, st.Gets, "Stats counts GetMany's keys with Get's")
	assert.Equal(t, int64(0), p["distcache.engine.handoffs"]["distcache.direction=sent,"+ksAttr])
	assert.Positive(t, st.GetP99, "a fetch and two forwards were timed")
}

// A local hit allocates nothing with metrics and tracing on (through
// GetAppend and a reused buffer), and the hit is still counted.
func TestLocalHitAllocatesNothingWithTelemetry(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tracetest.NewSpanRecorder()))
	e, _ := startSingle(t, engine.WithMetrics(mp), engine.WithTracing(tp))
	ctx := context.Background()
	require.NoError(t, e.Put(ctx, ks, engine.Entry{Key: "k", Value: []byte("value")}))
	buf := make([]byte, 0, 64)
	allocs := testing.AllocsPerRun(1000, func() {
		var err error
		if buf, err = e.GetAppend(ctx, ks, "k", buf[:0]); err != nil {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs)
	gets := points(t, reader)["distcache.engine.requests"]["distcache.keyspace="+ks+",distcache.operation=get"]
	assert.EqualValues(t, 1001, gets, "AllocsPerRun's warm-up call and its 1000 runs")
}

// A Get through a non-owner is one trace: the caller's get span and client
// span, the owner's server span under it (a remote parent), and the fetch
// span of the owner's load under that.
func TestTraceSpansTheHop(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{Options: []engine.Option{engine.WithTracing(tp)}})
	keys := c.KeysOwnedBy(2, 2, "traced")
	key := keys[0]
	_, err := c.Node(0).Get(context.Background(), ks, key)
	require.NoError(t, err)
	require.Equal(t, 1, c.DataSource.Fetches(key))

	byName := map[string]sdktrace.ReadOnlySpan{}
	require.Eventually(t, func() bool { // the owner ends its server span after answering
		for _, s := range spans.Ended() {
			byName[s.Name()] = s
		}
		return len(byName) >= 4
	}, 5*time.Second, 5*time.Millisecond)
	get, call, serve, fetch := byName["distcache.get"], byName["distcache.call get"], byName["distcache.serve get"], byName["distcache.fetch"]
	require.NotNil(t, get)
	require.NotNil(t, call)
	require.NotNil(t, serve)
	require.NotNil(t, fetch)
	tid := get.SpanContext().TraceID()
	for _, s := range []sdktrace.ReadOnlySpan{call, serve, fetch} {
		assert.Equal(t, tid, s.SpanContext().TraceID(), s.Name())
	}
	assert.Equal(t, trace.SpanKindClient, call.SpanKind())
	assert.Equal(t, trace.SpanKindServer, serve.SpanKind())
	assert.Equal(t, get.SpanContext().SpanID(), call.Parent().SpanID())
	assert.Equal(t, call.SpanContext().SpanID(), serve.Parent().SpanID())
	assert.True(t, serve.Parent().IsRemote(), "the server span's parent came over the wire")
	assert.Equal(t, serve.SpanContext().SpanID(), fetch.Parent().SpanID())
	var peer string
	for _, a := range call.Attributes() {
		if a.Key == "distcache.peer" {
			peer = a.Value.AsString()
		}
	}
	assert.Equal(t, c.Name(2), peer)

	// GetMany, Put and Delete go through the same client: each one's server
	// span is the child of its client span, in the caller's trace. (GetMany
	// reads a key node 0 has not read: the near cache would answer the
	// first one without a hop.)
	ctx := context.Background()
	_, err = c.Node(0).GetMany(ctx, ks, []string{keys[1]})
	require.NoError(t, err)
	require.NoError(t, c.Node(0).Put(ctx, ks, engine.Entry{Key: key, Value: []byte("v")}))
	require.NoError(t, c.Node(0).Delete(ctx, ks, key))
	for _, op := range []string{"get_many", "put", "delete"} {
		var call, serve sdktrace.ReadOnlySpan
		require.Eventually(t, func() bool {
			for _, s := range spans.Ended() {
				switch s.Name() {
				case "distcache.call " + op:
					call = s
				case "distcache.serve " + op:
					serve = s
				}
			}
			return call != nil && serve != nil
		}, 5*time.Second, 5*time.Millisecond, op)
		assert.Equal(t, call.SpanContext().TraceID(), serve.SpanContext().TraceID(), op)
		assert.Equal(t, call.SpanContext().SpanID(), serve.Parent().SpanID(), op)
	}
}

// The trace context is the caller's, not the engine's: a caller whose
// engine does not trace sends none for an untraced Get (the owner records
// nothing), and its application's own sampled span for a traced one (the
// owner's server span is that span's child).
func TestTraceFollowsTheCallersContext(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{NodeOptions: func(i int) []engine.Option {
		if i == 0 {
			return nil // the caller's engine does not trace
		}
		return []engine.Option{engine.WithTracing(tp)}
	}})
	keys := c.KeysOwnedBy(2, 2, "caller")
	_, err := c.Node(0).Get(context.Background(), ks, keys[0])
	require.NoError(t, err)
	require.Equal(t, 1, c.DataSource.Fetches(keys[0]))
	assert.Empty(t, spans.Started(), "no trace context, no span on the owner")

	ctx, app := tp.Tracer("app").Start(context.Background(), "handler")
	_, err = c.Node(0).Get(ctx, ks, keys[1])
	require.NoError(t, err)
	app.End()
	var serve sdktrace.ReadOnlySpan
	require.Eventually(t, func() bool {
		for _, s := range spans.Ended() {
			if s.Name() == "distcache.serve get" {
				serve = s
			}
		}
		return serve != nil
	}, 5*time.Second, 5*time.Millisecond)
	assert.Equal(t, app.SpanContext().SpanID(), serve.Parent().SpanID())
	assert.Equal(t, app.SpanContext().TraceID(), serve.SpanContext().TraceID())
}

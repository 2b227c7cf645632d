package engine_test

import (
	"context"
	"testing"

	"github.com/distcache/distcache/engine"
	"github.com/distcache/distcache/internal/testcert"
	"github.com/distcache/distcache/keyspace"
	"github.com/distcache/distcache/testutil"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func TestOpenTelemetry(t *testing.T) {
	t.Parallel()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	e, ds := startSingle(t, engine.WithMetrics(mp), engine.WithTracing(tp))
	ctx := context.Background()
	ds.SetMissing("gone", true)
	_, err := e.Get(ctx, ks, "k")
	require.NoError(t, err)
	_, err = e.Get(ctx, ks, "gone")
	require.ErrorIs(t, err, keyspace.ErrNotFound)
	require.NoError(t, e.Put(ctx, ks, engine.Entry{Key: "p", Value: []byte("v")}))

	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(ctx, &rm))
	sums := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		require.Equal(t, "github.com/distcache/distcache/engine", sm.Scope.Name)
		for _, m := range sm.Metrics {
			if s, ok := m.Data.(metricdata.Sum[int64]); ok {
				for _, dp := range s.DataPoints {
					sums[m.Name] += dp.Value
				}
			}
		}
	}
	require.EqualValues(t, 3, sums["distcache.engine.requests"], "two gets and a put")
	require.Zero(t, sums["distcache.engine.errors"], "not-found is not an error")
	require.EqualValues(t, 2, sums["distcache.datasource.fetches"])

	var names []string
	for _, s := range spans.Ended() {
		names = append(names, s.Name())
		for _, a := range s.Attributes() {
			if a.Key == "distcache.keyspace" {
				require.Equal(t, ks, a.Value.AsString())
			}
		}
	}
	require.ElementsMatch(t, []string{"distcache.get", "distcache.fetch", "distcache.get", "distcache.fetch", "distcache.put"}, names)
	require.NoError(t, tp.Shutdown(ctx))
	require.NoError(t, mp.Shutdown(ctx))
}

// A 3-node cluster whose data connections use mutual TLS.
func TestClusterMutualTLS(t *testing.T) {
	server, client := testcert.MutualTLS(t)
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{Options: []engine.Option{
		engine.WithTLS(server, client),
		engine.WithGossipSecret([]byte("0123456789abcdef")),
	}})
	key := c.KeysOwnedBy(2, 1, "tls")[0]
	v, err := c.Node(0).Get(context.Background(), ks, key)
	require.NoError(t, err)
	require.Equal(t, testutil.ValueOf(key), v)
	st, _ := c.Node(0).Stats().KeySpace(ks)
	require.EqualValues(t, 1, st.Forwarded)
	require.Zero(t, st.Degraded)
	require.Equal(t, 1, c.DataSource.Fetches(key))
}

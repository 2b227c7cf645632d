package engine_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/distcache/distcache/engine"
	"github.com/distcache/distcache/keyspace"
	"github.com/distcache/distcache/testutil"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func TestOpenTelemetry(t *testing.T) {
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
	require.EqualValues(t, 3, sums["distcache.engine.requests"], "two slow-path gets and a put")
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
	require.ElementsMatch(t, []string{"distcache.get", "distcache.get", "distcache.put"}, names)
	require.NoError(t, tp.Shutdown(ctx))
	require.NoError(t, mp.Shutdown(ctx))
}

// A 3-node cluster whose data connections use mutual TLS.
func TestClusterMutualTLS(t *testing.T) {
	server, client := testTLS(t)
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{Options: []engine.Option{
		engine.WithTLS(&engine.TLSInfo{ServerTLS: server, ClientTLS: client}),
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

// testTLS makes a CA and one certificate for 127.0.0.1 used as both server
// and client certificate; the server requires client certificates.
func testTLS(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "distcache-test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	pair := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}
	server = &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS13}
	client = &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool, MinVersion: tls.VersionTLS13}
	return server, client
}

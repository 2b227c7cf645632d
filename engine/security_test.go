package engine_test

import (
	"context"
	"crypto/tls"
	"testing"

	"github.com/distcache/distcache/discovery/static"
	"github.com/distcache/distcache/engine"
	"github.com/distcache/distcache/internal/enginehook"
	"github.com/distcache/distcache/internal/testcert"
	"github.com/distcache/distcache/keyspace"
	"github.com/distcache/distcache/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// New refuses configurations in which anyone who reaches the port is a trusted peer, and
// says what to add; loopback binds, a secret, mutual TLS or WithInsecure are accepted.
func TestSecureByDefault(t *testing.T) {
	server, client := testcert.MutualTLS(t)
	serverOnly := server.Clone()
	serverOnly.ClientAuth = tls.NoClientCert
	noCert := client.Clone()
	noCert.Certificates = nil
	secret := engine.WithGossipSecret([]byte("0123456789abcdef"))
	loopback := engine.WithBindAddr("127.0.0.1")
	good := []keyspace.KeySpace{keyspace.New("a", 1<<20, testutil.NewDataSource())}
	for _, tc := range []struct {
		name string
		opts []engine.Option
		want []string // nil: valid
	}{
		{"defaults", nil, []string{`BindAddr "0.0.0.0" is not a loopback address`, "WithGossipSecret", "WithTLS with client certificates", "WithInsecure()"}},
		{"private address", []engine.Option{engine.WithBindAddr("10.0.0.7")}, []string{`BindAddr "10.0.0.7"`}},
		{"defaults with a secret", []engine.Option{secret}, nil},
		{"defaults with mutual TLS", []engine.Option{engine.WithTLS(server, client)}, nil},
		{"defaults, insecure", []engine.Option{engine.WithInsecure()}, nil},
		{"loopback", []engine.Option{loopback}, nil},
		{"ipv6 loopback", []engine.Option{engine.WithBindAddr("::1")}, nil},
		{"server-only TLS", []engine.Option{loopback, engine.WithTLS(serverOnly, client)},
			[]string{"TLS authenticates no peer", "tls.RequireAndVerifyClientCert", "WithGossipSecret", "WithInsecure()"}},
		{"server-only TLS with a secret", []engine.Option{engine.WithTLS(serverOnly, client), secret}, nil},
		{"server-only TLS, insecure", []engine.Option{engine.WithTLS(serverOnly, client), engine.WithInsecure()}, nil},
		{"mutual TLS without a client certificate", []engine.Option{engine.WithTLS(server, noCert)},
			[]string{"ClientTLS presents none"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := engine.New(engine.NewConfig(static.NewDiscovery(nil), good, tc.opts...))
			if tc.want == nil {
				require.NoError(t, err)
				require.NoError(t, e.Stop(context.Background()))
				return
			}
			require.ErrorIs(t, err, engine.ErrInvalidConfig)
			for _, w := range tc.want {
				require.ErrorContains(t, err, w)
			}
		})
	}
}

// WithInsecure reaches the cluster: a node bound to every interface starts with it.
func TestInsecureNodeStarts(t *testing.T) {
	opts := append(testutil.LocalOptions("insecure-"+t.Name()),
		engine.WithBindAddr("0.0.0.0"), engine.WithAdvertiseAddr("127.0.0.1", 0), engine.WithInsecure())
	e, err := engine.New(engine.NewConfig(static.NewDiscovery(nil), []keyspace.KeySpace{keyspace.New("a", 1<<20, testutil.NewDataSource())}, opts...))
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Stop(context.Background()) })
	require.NoError(t, e.Start(context.Background()))
}

// A cluster sharing a secret serves reads and writes across nodes; the secret
// authenticated every data connection.
func TestClusterWithGossipSecret(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{
		Options: []engine.Option{engine.WithGossipSecret([]byte("0123456789abcdef0123456789abcdef"))},
	})
	ctx := context.Background()
	key := c.KeysOwnedBy(2, 1, "k")[0]
	require.NoError(t, c.Node(0).Put(ctx, testutil.DefaultKeySpace, engine.Entry{Key: key, Value: []byte("v")}))
	v, err := c.Node(1).Get(ctx, testutil.DefaultKeySpace, key)
	require.NoError(t, err)
	assert.Equal(t, "v", string(v))
	assert.Positive(t, enginehook.Cluster(c.Node(2)).Transport().Stats().ConnsAccepted)
	assert.Zero(t, enginehook.Cluster(c.Node(2)).Transport().Stats().AuthFailures)
}

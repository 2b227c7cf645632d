package membership

import (
	"context"
	"crypto/tls"
	"slices"
	"testing"
	"time"

	"github.com/distcache/distcache/internal/testcert"
	"github.com/distcache/distcache/internal/transport"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// knownTo reports whether memberlist on c reports a live member called name.
func knownTo(c *Cluster, name string) bool {
	for _, n := range c.ml.Members() {
		if n.Name == name {
			return true
		}
	}
	return false
}

// requireExcluded waits until every legit node has seen the rogue in gossip and failed at
// least admitWarnAfter data handshakes with it, then checks that no ring contains it.
func requireExcluded(t *testing.T, legit []*Cluster, rogue *Cluster, wantErr error) {
	t.Helper()
	name := rogue.Self().Name
	require.Eventually(t, func() bool {
		for _, n := range legit {
			if !knownTo(n, name) {
				return false
			}
			n.admit.mu.Lock()
			st := n.admit.probing[name]
			failed := st != nil && st.failures >= admitWarnAfter
			n.admit.mu.Unlock()
			if !failed {
				return false
			}
		}
		return true
	}, 15*time.Second, poll, "the rogue never showed up in gossip, or was never probed")
	want := names(legit...)
	for _, n := range legit {
		assert.Equal(t, want, ringNames(n.Ring()), "ring of %s", n.Self().Name)
		assert.Contains(t, n.Members(), rogue.Self(), "gossip knows it")
		err := n.admit.unverified()[name]
		require.ErrorIs(t, err, wantErr)
	}
	assert.False(t, slices.Contains(ringNames(legit[0].Ring()), name))
}

// A node that speaks gossip but cannot complete the data handshake never enters the ring:
// under mutual TLS without a secret (memberlist lets anyone gossip), a node without TLS.
func TestNodeWithoutCertificateIsNotAdmitted(t *testing.T) {
	server, client := testcert.MutualTLS(t)
	legit := startCluster(t, "mtls", 2, func(c *Config) { c.ServerTLS, c.ClientTLS = server, client })
	rogue := startNode(t, testConfig("mtls-rogue"))
	_, err := rogue.Join(t.Context(), []string{legit[0].Self().Addr})
	require.NoError(t, err, "memberlist itself lets the rogue in")
	requireExcluded(t, legit, rogue, transport.ErrBadHandshake)
}

// With mutual TLS and a secret, a node that has the secret (so it gossips) and a
// certificate from another CA is not admitted either.
func TestNodeWithSecretButForeignCertificateIsNotAdmitted(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	server, client := testcert.MutualTLS(t)
	legit := startCluster(t, "mtls-secret", 2, func(c *Config) {
		c.ServerTLS, c.ClientTLS, c.SecretKey = server, client, secret
	})
	rs, rc := testcert.MutualTLS(t) // another CA
	cfg := testConfig("mtls-secret-rogue")
	cfg.ServerTLS, cfg.ClientTLS, cfg.SecretKey = rs, rc, secret
	rogue := startNode(t, cfg)
	_, err := rogue.Join(t.Context(), []string{legit[0].Self().Addr})
	require.NoError(t, err)
	requireExcluded(t, legit, rogue, transport.ErrPeerUnavailable)
}

// Nodes with the secret form a cluster and call each other; the secret authenticates the
// data connections too.
func TestClusterWithSecret(t *testing.T) {
	secret := []byte("0123456789abcdef")
	nodes := startCluster(t, "secret", 3, func(c *Config) {
		c.SecretKey = secret
		c.Handler = transport.HandlerFunc(func(_ context.Context, req transport.Request) transport.Response {
			return transport.Response{Payload: req.Payload}
		})
	})
	resp, err := nodes[0].Call(t.Context(), nodes[2].Self(), transport.Request{Payload: []byte("hi")})
	require.NoError(t, err)
	assert.Equal(t, "hi", string(resp.Payload))
	assert.Positive(t, nodes[2].Transport().Stats().ConnsAccepted)
}

func TestConfigSecurity(t *testing.T) {
	server, client := testcert.MutualTLS(t)
	serverOnly := server.Clone()
	serverOnly.ClientAuth = tls.NoClientCert
	noCert := client.Clone()
	noCert.Certificates = nil
	secret := make([]byte, 32)
	for _, tc := range []struct {
		name    string
		mutate  func(*Config)
		wantErr string // "" = valid
	}{
		{"loopback, nothing", func(c *Config) {}, ""},
		{"all interfaces, nothing", func(c *Config) { c.BindAddr = "0.0.0.0" }, "not a loopback address"},
		{"private address, nothing", func(c *Config) { c.BindAddr = "10.1.2.3" }, "set SecretKey"},
		{"all interfaces, insecure", func(c *Config) { c.BindAddr, c.Insecure = "0.0.0.0", true }, ""},
		{"all interfaces, secret", func(c *Config) { c.BindAddr, c.SecretKey = "0.0.0.0", secret }, ""},
		{"all interfaces, mTLS", func(c *Config) { c.BindAddr, c.ServerTLS, c.ClientTLS = "0.0.0.0", server, client }, ""},
		{"server-only TLS", func(c *Config) { c.ServerTLS, c.ClientTLS = serverOnly, client }, "authenticate no peer"},
		{"server-only TLS, secret", func(c *Config) { c.ServerTLS, c.ClientTLS, c.SecretKey = serverOnly, client, secret }, ""},
		{"server-only TLS, insecure", func(c *Config) { c.ServerTLS, c.ClientTLS, c.Insecure = serverOnly, client, true }, ""},
		{"mTLS without a client certificate", func(c *Config) { c.ServerTLS, c.ClientTLS = server, noCert }, "presents none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultLocalConfig()
			tc.mutate(&cfg)
			err := cfg.Validate()
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalidConfig)
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
	assert.True(t, RequiresClientCerts(server))
	assert.False(t, RequiresClientCerts(serverOnly))
	assert.False(t, RequiresClientCerts(nil))
	custom := serverOnly.Clone()
	custom.ClientAuth = tls.RequireAnyClientCert
	assert.False(t, RequiresClientCerts(custom))
	custom.VerifyConnection = func(tls.ConnectionState) error { return nil }
	assert.True(t, RequiresClientCerts(custom))
}

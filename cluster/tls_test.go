package cluster

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

	"github.com/distcache/distcache/cluster/transport"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testTLS returns mTLS server and client configs sharing one self-signed
// certificate valid for 127.0.0.1.
func testTLS(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "distcache-test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	server = &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS13}
	client = &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS13}
	return server, client
}

func TestClusterCallOverMutualTLS(t *testing.T) {
	t.Parallel()
	server, client := testTLS(t)
	nodes := startCluster(t, "tls", 2, func(c *Config) {
		c.ServerTLS, c.ClientTLS = server, client
		c.Handler = transport.HandlerFunc(func(_ context.Context, req transport.Request) transport.Response {
			return transport.Response{Payload: append([]byte("tls:"), req.Payload...)}
		})
	})
	resp, err := nodes[0].Call(t.Context(), nodes[1].Self(), transport.Request{Payload: []byte("hi")})
	require.NoError(t, err)
	assert.Equal(t, "tls:hi", string(resp.Payload))

	// A node without TLS cannot call a TLS node.
	plain := startNode(t, testConfig("tls-plain"))
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	_, err = plain.Call(ctx, nodes[1].Self(), transport.Request{Payload: []byte("hi")})
	require.Error(t, err)
}

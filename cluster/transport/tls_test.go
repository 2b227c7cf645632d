package transport

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

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testCA is a throwaway certificate authority.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "distcache test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue creates a leaf certificate for 127.0.0.1 usable as server and client.
func (ca *testCA) issue(t *testing.T, serial int64) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "node"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	require.NoError(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// mtls returns server and client configs for mutual TLS under ca.
func (ca *testCA) mtls(t *testing.T, serial int64) (server, client *tls.Config) {
	cert := ca.issue(t, serial)
	server = &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    ca.pool,
		MinVersion:   tls.VersionTLS13,
	}
	client = &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      ca.pool,
		MinVersion:   tls.VersionTLS13,
	}
	return server, client
}

func TestMutualTLS(t *testing.T) {
	ca := newTestCA(t)
	sTLS, cTLS := ca.mtls(t, 2)
	srv := newTestTransport(t, func(c *Config) { c.Handler = echo; c.ServerTLS, c.ClientTLS = sTLS, cTLS })
	sTLS2, cTLS2 := ca.mtls(t, 3)
	cli := newTestTransport(t, func(c *Config) { c.ServerTLS, c.ClientTLS = sTLS2, cTLS2 })

	resp, err := cli.Call(context.Background(), addrOf(srv), Request{Op: 3, Payload: []byte("secret")})
	require.NoError(t, err)
	assert.Equal(t, "secret", string(resp.Payload))
	assert.Equal(t, uint8(3), resp.Status)

	t.Run("plaintext client refused", func(t *testing.T) {
		plain := newTestTransport(t, nil)
		_, err := plain.Call(context.Background(), addrOf(srv), Request{})
		require.ErrorIs(t, err, ErrBadHandshake)
		require.ErrorContains(t, err, "requires TLS")
	})
	t.Run("TLS client to plaintext server refused", func(t *testing.T) {
		plainSrv := newTestTransport(t, func(c *Config) { c.Handler = echo })
		_, err := cli.Call(context.Background(), addrOf(plainSrv), Request{})
		require.ErrorIs(t, err, ErrBadHandshake)
	})
	t.Run("client without certificate refused", func(t *testing.T) {
		noCert := cTLS.Clone()
		noCert.Certificates = nil
		c2 := newTestTransport(t, func(c *Config) { c.ServerTLS, c.ClientTLS = sTLS, noCert })
		_, err := c2.Call(context.Background(), addrOf(srv), Request{})
		require.ErrorIs(t, err, ErrPeerUnavailable)
	})
	t.Run("untrusted server refused", func(t *testing.T) {
		other := newTestCA(t)
		oS, _ := other.mtls(t, 4)
		rogue := newTestTransport(t, func(c *Config) { c.Handler = echo; c.ServerTLS, c.ClientTLS = oS, cTLS })
		_, err := cli.Call(context.Background(), addrOf(rogue), Request{})
		require.ErrorIs(t, err, ErrPeerUnavailable)
		require.ErrorContains(t, err, "certificate")
	})
}

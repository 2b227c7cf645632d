package transport

import (
	"context"
	"crypto/tls"
	"testing"

	"github.com/distcache/distcache/internal/testcert"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// newTestCA and its methods are thin names over internal/testcert.
type testCA struct{ *testcert.CA }

func newTestCA(t *testing.T) *testCA { return &testCA{testcert.NewCA(t)} }

func (ca *testCA) mtls(t *testing.T, serial int64) (server, client *tls.Config) {
	return ca.MutualTLS(t, serial)
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

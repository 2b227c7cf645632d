package transport

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	secretA = []byte("0123456789abcdef0123456789abcdef")
	secretB = []byte("fedcba9876543210fedcba9876543210")
)

// Peers with the same secret talk; a missing or different secret on either side is refused
// at the handshake, in both directions, and counted on the server.
func TestSecretAuthentication(t *testing.T) {
	srv := newTestTransport(t, func(c *Config) { c.Handler = echo; c.AuthSecret = secretA })
	ctx := context.Background()

	good := newTestTransport(t, func(c *Config) { c.AuthSecret = secretA })
	resp, err := good.Call(ctx, addrOf(srv), Request{Op: 4, Payload: []byte("hi")})
	require.NoError(t, err)
	assert.Equal(t, "hi", string(resp.Payload))
	require.NoError(t, good.Probe(ctx, addrOf(srv)))

	for _, tc := range []struct {
		name    string
		secret  []byte
		wantMsg string
	}{
		{"different secret", secretB, "secrets differ"},
		{"no secret", nil, "AuthSecret is not configured"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cli := newTestTransport(t, func(c *Config) { c.AuthSecret = tc.secret })
			_, err := cli.Call(ctx, addrOf(srv), Request{Payload: []byte("hi")})
			require.ErrorIs(t, err, ErrAuthFailed)
			require.ErrorIs(t, err, ErrPeerUnavailable)
			require.ErrorContains(t, err, tc.wantMsg)
			require.ErrorIs(t, cli.Probe(ctx, addrOf(srv)), ErrAuthFailed)
		})
	}
	require.Eventually(t, func() bool { return srv.Stats().AuthFailures >= 4 }, 5*time.Second, 5*time.Millisecond)
	assert.Equal(t, uint64(2), srv.Stats().ConnsAccepted, "only the good client's call and probe got in")

	t.Run("server without secret", func(t *testing.T) {
		plain := newTestTransport(t, func(c *Config) { c.Handler = echo })
		_, err := good.Call(ctx, addrOf(plain), Request{})
		require.ErrorIs(t, err, ErrAuthFailed)
		require.ErrorContains(t, err, "peer has no cluster secret")
	})
	t.Run("impostor server", func(t *testing.T) {
		// A server with another secret that accepted everyone would still fail the client's
		// check of its proof; here it refuses first, which the client reports the same way.
		rogue := newTestTransport(t, func(c *Config) { c.Handler = echo; c.AuthSecret = secretB })
		_, err := good.Call(ctx, addrOf(rogue), Request{})
		require.ErrorIs(t, err, ErrAuthFailed)
	})
}

// The secret works inside TLS, server-only or mutual: the proof is bound to the TLS session.
func TestSecretOverTLS(t *testing.T) {
	ca := newTestCA(t)
	sTLS, cTLS := ca.mtls(t, 2)
	serverOnly := sTLS.Clone()
	serverOnly.ClientAuth = 0 // tls.NoClientCert
	for _, tc := range []struct {
		name string
		srv  func(*Config)
	}{
		{"server-only TLS", func(c *Config) { c.ServerTLS, c.ClientTLS = serverOnly, cTLS }},
		{"mutual TLS", func(c *Config) { c.ServerTLS, c.ClientTLS = sTLS, cTLS }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newTestTransport(t, func(c *Config) { tc.srv(c); c.Handler = echo; c.AuthSecret = secretA })
			good := newTestTransport(t, func(c *Config) { tc.srv(c); c.AuthSecret = secretA })
			resp, err := good.Call(context.Background(), addrOf(srv), Request{Payload: []byte("over tls")})
			require.NoError(t, err)
			assert.Equal(t, "over tls", string(resp.Payload))

			bad := newTestTransport(t, func(c *Config) { tc.srv(c); c.AuthSecret = secretB })
			_, err = bad.Call(context.Background(), addrOf(srv), Request{})
			require.ErrorIs(t, err, ErrAuthFailed)
		})
	}
}

// rawHandshake opens a raw connection to tr and sends a hello; it returns the connection
// and the two-byte reply status.
func rawHandshake(t *testing.T, tr *Transport, h hello) (net.Conn, byte) {
	t.Helper()
	c, err := net.Dial("tcp", addrOf(tr))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = c.Write(appendHello(nil, h))
	require.NoError(t, err)
	var reply [helloReplyLen]byte
	_, err = io.ReadFull(c, reply[:])
	require.NoError(t, err)
	return c, reply[1]
}

// A raw client that speaks the protocol but lacks the secret gets no frame through: a hello
// without the auth flag is refused, and a guessed proof is refused and the connection closed.
func TestRawClientWithoutSecretIsRefused(t *testing.T) {
	srv := newTestTransport(t, func(c *Config) { c.Handler = echo; c.AuthSecret = secretA })

	c, status := rawHandshake(t, srv, hello{version: protoVersion, label: "test"})
	assert.Equal(t, hsAuthRequired, status)
	_, err := io.Copy(io.Discard, c)
	require.NoError(t, err, "closed by the server")

	c, status = rawHandshake(t, srv, hello{version: protoVersion, flags: hsFlagAuth, label: "test", nonce: newNonce()})
	require.Equal(t, hsOK, status)
	var ns [nonceLen]byte
	_, err = io.ReadFull(c, ns[:])
	require.NoError(t, err)
	guess := appendName(nil, "intruder")
	guess = append(guess, make([]byte, macLen)...)
	_, err = c.Write(guess)
	require.NoError(t, err)
	got, err := io.ReadAll(c)
	require.NoError(t, err, "closed by the server")
	assert.Equal(t, []byte{authRefused}, got)
	_, _ = c.Write(appendHeader(nil, frameHeader{typ: frameReq, id: 1}))
	assert.Zero(t, srv.Stats().Requests)
	assert.Zero(t, srv.Stats().ConnsAccepted)
}

// The key is derived (never the raw secret), and each MAC depends on every input.
func TestAuthMAC(t *testing.T) {
	a, err := newAuthenticator(secretA)
	require.NoError(t, err)
	assert.NotEqual(t, secretA, a.key)
	none, err := newAuthenticator(nil)
	require.NoError(t, err)
	assert.Nil(t, none)

	h := hello{flags: hsFlagAuth, label: "l", nonce: newNonce()}
	ns := newNonce()
	base := a.mac("client", h, "node-a", &ns, nil)
	assert.Len(t, base, macLen)
	with := func(mod func(*hello)) hello {
		h2 := h
		mod(&h2)
		return h2
	}
	for name, other := range map[string][]byte{
		"role":    a.mac("server", h, "node-a", &ns, nil),
		"flags":   a.mac("client", with(func(h *hello) { h.flags |= hsFlagTLS }), "node-a", &ns, nil),
		"label":   a.mac("client", with(func(h *hello) { h.label = "m" }), "node-a", &ns, nil),
		"name":    a.mac("client", h, "node-b", &ns, nil),
		"nonce":   a.mac("client", with(func(h *hello) { h.nonce[0] ^= 1 }), "node-a", &ns, nil),
		"swapped": a.mac("client", with(func(h *hello) { h.nonce = ns }), "node-a", &h.nonce, nil),
		"binding": a.mac("client", h, "node-a", &ns, []byte{1}),
		// The length prefixes keep a byte from moving between label and name.
		"boundary": a.mac("client", with(func(h *hello) { h.label = "l" + "n" }), "ode-a", &ns, nil),
	} {
		assert.NotEqual(t, base, other, name)
	}
}

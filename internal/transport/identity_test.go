package transport

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fromEcho answers every request with the caller's name, on the inline path for op 1 and
// on a goroutine otherwise.
type fromEcho struct{}

func (fromEcho) ServeRPC(_ context.Context, req Request) Response {
	return Response{Status: 2, Payload: []byte(req.From)}
}

func (fromEcho) ServeInline(req Request) (Response, bool) {
	if req.Op != 1 {
		return Response{}, false
	}
	return Response{Status: 1, Payload: []byte(req.From)}, true
}

// The caller's NodeName reaches the server's handler as Request.From, on both serving
// paths and in every security mode; a caller without a name is "".
func TestCallerNameReachesHandler(t *testing.T) {
	ca := newTestCA(t)
	sTLS, cTLS := ca.mtls(t, 2)
	for _, tc := range []struct {
		name string
		mod  func(*Config)
	}{
		{"plain", func(*Config) {}},
		{"secret", func(c *Config) { c.AuthSecret = secretA }},
		{"mutual TLS", func(c *Config) { c.ServerTLS, c.ClientTLS = sTLS, cTLS }},
		{"mutual TLS and secret", func(c *Config) { c.ServerTLS, c.ClientTLS, c.AuthSecret = sTLS, cTLS, secretA }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newTestTransport(t, func(c *Config) { tc.mod(c); c.Handler = fromEcho{}; c.NodeName = "server" })
			for _, name := range []string{"node-a", "", strings.Repeat("n", maxNameLen)} {
				cli := newTestTransport(t, func(c *Config) { tc.mod(c); c.NodeName = name })
				for _, op := range []uint8{1, 2} {
					resp, err := cli.Call(context.Background(), addrOf(srv), Request{Op: op})
					require.NoError(t, err)
					assert.Equal(t, op, resp.Status, "served on the expected path")
					assert.Equal(t, name, string(resp.Payload), "op %d", op)
				}
			}
		})
	}
}

// A name longer than the one-byte length can carry is a config error, not a truncation.
func TestNodeNameTooLong(t *testing.T) {
	cfg := DefaultConfig()
	cfg.NodeName = strings.Repeat("n", maxNameLen+1)
	require.ErrorContains(t, cfg.Validate(), "NodeName is 256 bytes, at most 255")
}

// Under a secret only its holders can present a name: a raw client that proves the secret
// for one name and sends another (as an attacker rewriting the name on the path would),
// or that presents a member's name with a proof under another secret, is refused before a
// frame is read.
func TestForgedNameIsRefused(t *testing.T) {
	srv := newTestTransport(t, func(c *Config) { c.Handler = fromEcho{}; c.AuthSecret = secretA })
	right, err := newAuthenticator(secretA)
	require.NoError(t, err)
	wrong, err := newAuthenticator(secretB)
	require.NoError(t, err)
	for _, tc := range []struct {
		name       string
		a          *authenticator
		proveName  string
		sendName   string
		wantAccept bool
	}{
		{"genuine", right, "node-a", "node-a", true},
		{"name rewritten", right, "node-a", "node-b", false},
		{"member's name without the secret", wrong, "node-a", "node-a", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := hello{version: protoVersion, flags: hsFlagAuth, label: "test", nonce: newNonce()}
			c, status := rawHandshake(t, srv, h)
			require.Equal(t, hsOK, status)
			var ns [nonceLen]byte
			_, err := io.ReadFull(c, ns[:])
			require.NoError(t, err)
			out := appendName(nil, tc.sendName)
			out = append(out, tc.a.mac("client", h, tc.proveName, &ns, nil)...)
			_, err = c.Write(out)
			require.NoError(t, err)
			var reply [1]byte
			_, err = io.ReadFull(c, reply[:])
			require.NoError(t, err)
			if tc.wantAccept {
				require.Equal(t, authOK, reply[0])
				return
			}
			require.Equal(t, authRefused, reply[0])
			rest, err := io.ReadAll(c)
			require.NoError(t, err, "closed by the server")
			assert.Empty(t, rest)
		})
	}
	require.Eventually(t, func() bool { return srv.Stats().AuthFailures == 2 }, 5*time.Second, time.Millisecond)
	require.Eventually(t, func() bool { return srv.Stats().ConnsAccepted == 1 }, 5*time.Second, time.Millisecond,
		"only the genuine client got in")
}

func FuzzDecodeName(f *testing.F) {
	f.Add(appendName(nil, "node-a"))
	f.Add([]byte{})
	f.Add([]byte{5, 'a'})
	f.Add(appendName(nil, strings.Repeat("n", maxNameLen)))
	f.Fuzz(func(t *testing.T, b []byte) {
		name, n, err := decodeName(b)
		if err != nil {
			if !errors.Is(err, ErrBadHandshake) {
				t.Fatalf("unclassified error %v", err)
			}
		} else if !bytes.Equal(appendName(nil, name), b[:n]) {
			t.Fatalf("re-encode mismatch")
		}
		// The streaming reader agrees with the slice decoder.
		name2, err2 := readName(bytes.NewReader(b))
		if (err == nil) != (err2 == nil) || name != name2 {
			t.Fatalf("readName disagrees: %v/%v %q/%q", err, err2, name, name2)
		}
	})
}

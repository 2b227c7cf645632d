package transport

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"io"
	"net"
)

// Secret-based authentication of RPC connections (Config.AuthSecret).
//
// After the hello and its reply (and after the TLS handshake, when TLS is on), with
// nc the client's nonce from the hello, ns the server's from the reply and name the
// client's node name (identity.go):
//
//	client -> server: name | macC = HMAC(k, "client" | flags | label | name | nc | ns | binding)
//	server -> client: authOK | macS = HMAC(k, "server" | flags | label | name | nc | ns | binding)
//	               or authRefused, then close
//
// k is derived from the secret with HKDF-SHA256 under its own context string, so the
// secret used as memberlist's gossip key is never used directly as a MAC key. Each side
// proves the secret over a nonce the other chose, so a recorded handshake cannot be
// replayed; the role string keeps one side's MAC from being reflected as the other's;
// flags, label and name are covered so that they cannot be altered in flight, and so
// that only a holder of the secret can present a name. Under TLS,
// binding is 32 bytes exported from the TLS session (RFC 5705), which ties the proof to
// this TLS connection: a man in the middle with its own certificate cannot relay it.
// Without TLS there is no binding: the secret authenticates the peer at the start of the
// connection but does not protect the frames that follow from an attacker who can rewrite
// traffic on the path (use TLS for that; see SECURITY.md).
//
// Authentication happens once per connection, so it costs nothing per request.
const (
	nonceLen = 32
	macLen   = sha256.Size
	// authKeyInfo is the HKDF context of the MAC key.
	authKeyInfo = "distcache transport: RPC connection authentication v3"
	// tlsExporterLabel names the keying material exported from the TLS session.
	tlsExporterLabel = "EXPORTER-distcache-rpc-auth"

	authOK      byte = 0
	authRefused byte = 1
)

// authenticator holds the MAC key derived from the shared secret.
type authenticator struct {
	key []byte
}

// newAuthenticator derives the MAC key; nil secret gives nil (no authentication).
func newAuthenticator(secret []byte) (*authenticator, error) {
	if len(secret) == 0 {
		return nil, nil
	}
	key, err := hkdf.Key(sha256.New, secret, nil, authKeyInfo, sha256.Size)
	if err != nil {
		return nil, fmt.Errorf("transport: derive authentication key: %w", err)
	}
	return &authenticator{key: key}, nil
}

// mac computes one side's proof over the hello h, the client's name, the server's nonce
// and the channel binding. role is "client" or "server".
func (a *authenticator) mac(role string, h hello, name string, ns *[nonceLen]byte, binding []byte) []byte {
	m := hmac.New(sha256.New, a.key)
	m.Write([]byte{byte(len(role))})
	m.Write([]byte(role))
	m.Write([]byte{h.flags, byte(len(h.label))})
	m.Write([]byte(h.label))
	m.Write([]byte{byte(len(name))})
	m.Write([]byte(name))
	m.Write(h.nonce[:])
	m.Write(ns[:])
	m.Write([]byte{byte(len(binding))})
	m.Write(binding)
	return m.Sum(nil)
}

// newNonce returns 32 random bytes.
func newNonce() (n [nonceLen]byte) {
	_, _ = rand.Read(n[:]) // crypto/rand.Read never fails (it crashes the program instead)
	return n
}

// channelBinding returns the keying material exported from conn's TLS session, or nil
// for a plain connection.
func channelBinding(conn net.Conn) ([]byte, error) {
	tc, ok := conn.(*tls.Conn)
	if !ok {
		return nil, nil
	}
	cs := tc.ConnectionState()
	b, err := cs.ExportKeyingMaterial(tlsExporterLabel, nil, 32)
	if err != nil {
		return nil, fmt.Errorf("%w: TLS session exports no keying material (TLS 1.2 without extended master secret?): %w", ErrAuthFailed, err)
	}
	return b, nil
}

// clientAuth runs the client side of the exchange on conn (deadline already set): it
// sends name with its proof and checks the server's.
func (a *authenticator) clientAuth(conn net.Conn, h hello, name string, ns *[nonceLen]byte) error {
	binding, err := channelBinding(conn)
	if err != nil {
		return err
	}
	out := appendName(make([]byte, 0, 1+len(name)+macLen), name)
	out = append(out, a.mac("client", h, name, ns, binding)...)
	if _, err := conn.Write(out); err != nil {
		return fmt.Errorf("send authentication: %w", err)
	}
	var reply [1 + macLen]byte
	if _, err := io.ReadFull(conn, reply[:1]); err != nil {
		return fmt.Errorf("read authentication reply: %w", err)
	}
	if reply[0] != authOK {
		return fmt.Errorf("%w: peer refused our proof of the cluster secret (the secrets differ)", ErrAuthFailed)
	}
	if _, err := io.ReadFull(conn, reply[1:]); err != nil {
		return fmt.Errorf("read authentication reply: %w", err)
	}
	want := a.mac("server", h, name, ns, binding)
	if !hmac.Equal(reply[1:], want) {
		return fmt.Errorf("%w: peer could not prove it knows the cluster secret", ErrAuthFailed)
	}
	return nil
}

// serverAuth runs the server side of the exchange on conn (deadline already set), once
// the client's name has been read: it checks the client's proof over name and answers
// with its own. On a bad proof it tells the client and returns an error wrapping
// ErrAuthFailed.
func (a *authenticator) serverAuth(conn net.Conn, h hello, name string, ns *[nonceLen]byte) error {
	binding, err := channelBinding(conn)
	if err != nil {
		return err
	}
	var got [macLen]byte
	if _, err := io.ReadFull(conn, got[:]); err != nil {
		return fmt.Errorf("%w: reading the client's proof: %w", ErrBadHandshake, err)
	}
	if !hmac.Equal(got[:], a.mac("client", h, name, ns, binding)) {
		_, _ = conn.Write([]byte{authRefused})
		return fmt.Errorf("%w: client %q could not prove it knows the cluster secret", ErrAuthFailed, name)
	}
	out := make([]byte, 0, 1+macLen)
	out = append(out, authOK)
	out = append(out, a.mac("server", h, name, ns, binding)...)
	if _, err := conn.Write(out); err != nil {
		return fmt.Errorf("send authentication reply: %w", err)
	}
	return nil
}

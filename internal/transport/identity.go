package transport

import (
	"fmt"
	"io"
	"net"
)

// Caller identity of RPC connections.
//
// After the hello, its reply and the TLS handshake (when TLS is on), the client names
// itself, and with a secret proves it (auth.go):
//
//	client -> server: u8 name length | name | [macC, when both sides have the secret]
//
// The name is the client's Config.NodeName. It belongs to the connection: the server reads
// it once and hands it to the Handler as Request.From of every request on that connection,
// so it costs nothing per request. What it is worth depends on the mode:
//
//   - With the secret, both MACs cover it: only a holder of the secret can present a name,
//     and nobody on the path can change it.
//   - Under TLS it travels inside the TLS session. Under mutual TLS it therefore comes from
//     a holder of a trusted certificate and cannot be changed on the path, but certificates
//     do not name nodes (they carry the address peers dial), so any holder of one can
//     present any name.
//   - On a plain connection without the secret it is whatever the peer says.
//
// So the name tells members apart and keeps out callers without the cluster's credentials;
// a holder of those credentials can always present another member's name.

// maxNameLen is the longest node name the one-byte length can carry.
const maxNameLen = 255

// appendName appends the encoded name. The name must be at most maxNameLen bytes
// (Validate checks).
func appendName(b []byte, name string) []byte {
	b = append(b, byte(len(name)))
	return append(b, name...)
}

// decodeName parses an encoded name from the start of b and returns the bytes consumed.
func decodeName(b []byte) (string, int, error) {
	if len(b) < 1 {
		return "", 0, fmt.Errorf("%w: missing node name", ErrBadHandshake)
	}
	n := 1 + int(b[0])
	if len(b) < n {
		return "", 0, fmt.Errorf("%w: truncated node name: have %d of %d bytes", ErrBadHandshake, len(b)-1, b[0])
	}
	return string(b[1:n]), n, nil
}

// readName reads an encoded name from r into a fixed buffer: at most 256 bytes, whatever
// the peer sends.
func readName(r io.Reader) (string, error) {
	var buf [1 + maxNameLen]byte
	if _, err := io.ReadFull(r, buf[:1]); err != nil {
		return "", fmt.Errorf("%w: reading node name: %w", ErrBadHandshake, err)
	}
	n := 1 + int(buf[0])
	if _, err := io.ReadFull(r, buf[1:n]); err != nil {
		return "", fmt.Errorf("%w: reading node name: %w", ErrBadHandshake, err)
	}
	return string(buf[1:n]), nil
}

// sendIdentity runs the client side of the identity step on conn (deadline already set):
// the name, and with a secret the proof of both sides over it.
func (t *Transport) sendIdentity(conn net.Conn, h hello, ns *[nonceLen]byte) error {
	if t.auth != nil {
		return t.auth.clientAuth(conn, h, t.cfg.NodeName, ns)
	}
	buf := appendName(make([]byte, 0, 1+len(t.cfg.NodeName)), t.cfg.NodeName)
	if _, err := conn.Write(buf); err != nil {
		return fmt.Errorf("send node name: %w", err)
	}
	return nil
}

// readIdentity runs the server side of the identity step on conn (deadline already set)
// and returns the caller's name: authenticated by the secret when auth is set.
func (t *Transport) readIdentity(conn net.Conn, h hello, auth bool, ns *[nonceLen]byte) (string, error) {
	name, err := readName(conn)
	if err != nil {
		return "", err
	}
	if auth {
		if err := t.auth.serverAuth(conn, h, name, ns); err != nil {
			return "", err
		}
	}
	return name, nil
}

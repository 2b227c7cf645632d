package transport

import (
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// Wire protocol constants. See doc.go for the layout.
const (
	// magic is the first byte of every RPC connection. memberlist streams start
	// with a message type (0-13) or its label marker (244), never with 0xC3.
	magic byte = 0xC3
	// protoVersion is the only protocol version this package speaks. Version 2 added the
	// secret-based authentication (hsFlagAuth), version 3 the caller's name (identity.go).
	protoVersion byte = 3

	// hsFlagTLS in the hello flags: both sides start TLS after the reply.
	hsFlagTLS byte = 1 << 0
	// hsFlagAuth in the hello flags: the client knows the shared secret; a nonce follows the
	// label and both sides prove the secret after the reply (and after TLS).
	hsFlagAuth   byte = 1 << 1
	hsKnownFlags      = hsFlagTLS | hsFlagAuth

	// helloFixedLen is magic, version, flags and label length.
	helloFixedLen = 4
	// maxLabelLen is the longest label the one-byte length can carry (= memberlist.LabelMaxSize).
	maxLabelLen = 255
	// helloReplyLen is magic and status.
	helloReplyLen = 2
)

// Handshake reply statuses.
const (
	hsOK             byte = 0
	hsBadLabel       byte = 1
	hsBadVersion     byte = 2
	hsTLSRequired    byte = 3
	hsTLSUnavailable byte = 4
	hsShuttingDown   byte = 5
	hsBadFlags       byte = 6
	// hsAuthRequired: the server has a secret and the client offered none.
	hsAuthRequired byte = 7
	// hsAuthUnavailable: the client offered a secret the server does not have.
	hsAuthUnavailable byte = 8
)

// Frame types.
const (
	frameReq     byte = 1 // request: code = op, budget = caller's remaining time in µs (0 = none)
	frameResp    byte = 2 // response: code = application status
	frameErr     byte = 3 // transport-level failure of a request: code = errCode, payload = message
	frameCancel  byte = 4 // caller gave up on request id
	framePing    byte = 5 // keepalive probe, id is echoed in the PONG
	framePong    byte = 6 // keepalive answer
	frameGoAway  byte = 7 // sender is draining: send no new requests on this connection
	frameTypeMax      = frameGoAway
)

// Transport error codes carried in frameErr.
const (
	errCodeOverloaded    byte = 1
	errCodeShuttingDown  byte = 2
	errCodeNoHandler     byte = 3
	errCodeFrameTooLarge byte = 4
	errCodeHandlerPanic  byte = 5
)

// frameHeaderLen is the fixed size of a frame header:
// u32 payload length | u8 type | u8 code | u16 flags | u64 id | u32 budget µs.
const frameHeaderLen = 20

// maxBudget is the largest encodable budget; longer deadlines are clamped to it.
const maxBudget = time.Duration(^uint32(0)) * time.Microsecond

// frameHeader is a decoded frame header.
type frameHeader struct {
	length uint32 // payload bytes following the header
	typ    byte
	code   byte
	flags  uint16
	id     uint64
	budget uint32 // µs, frameReq only; 0 = no deadline
}

// appendHeader appends the encoded header to b.
func appendHeader(b []byte, h frameHeader) []byte {
	b = binary.BigEndian.AppendUint32(b, h.length)
	b = append(b, h.typ, h.code)
	b = binary.BigEndian.AppendUint16(b, h.flags)
	b = binary.BigEndian.AppendUint64(b, h.id)
	return binary.BigEndian.AppendUint32(b, h.budget)
}

// decodeHeader parses and validates a frame header. maxFrame bounds header plus
// payload; a larger frame yields an error wrapping ErrFrameTooLarge (the header is
// still returned so that the caller can name the request).
func decodeHeader(b []byte, maxFrame int) (frameHeader, error) {
	if len(b) < frameHeaderLen {
		return frameHeader{}, fmt.Errorf("%w: header is %d bytes, need %d", ErrBadFrame, len(b), frameHeaderLen)
	}
	h := frameHeader{
		length: binary.BigEndian.Uint32(b[0:4]),
		typ:    b[4],
		code:   b[5],
		flags:  binary.BigEndian.Uint16(b[6:8]),
		id:     binary.BigEndian.Uint64(b[8:16]),
		budget: binary.BigEndian.Uint32(b[16:20]),
	}
	if h.typ == 0 || h.typ > frameTypeMax {
		return h, fmt.Errorf("%w: unknown frame type %d", ErrBadFrame, h.typ)
	}
	if h.typ != frameReq && h.budget != 0 {
		return h, fmt.Errorf("%w: budget set on frame type %d", ErrBadFrame, h.typ)
	}
	if h.flags&frameFlagTrace != 0 && (h.typ != frameReq || h.length < traceFieldLen) {
		return h, fmt.Errorf("%w: trace flag on frame type %d of %d payload bytes", ErrBadFrame, h.typ, h.length)
	}
	switch h.typ {
	case frameCancel, framePing, framePong, frameGoAway:
		if h.length != 0 {
			return h, fmt.Errorf("%w: control frame type %d carries %d payload bytes", ErrBadFrame, h.typ, h.length)
		}
	}
	if uint64(h.length)+frameHeaderLen > uint64(maxFrame) {
		return h, fmt.Errorf("%w: %d byte payload exceeds the %d byte frame limit", ErrFrameTooLarge, h.length, maxFrame)
	}
	return h, nil
}

// decodeFrame parses one complete frame from b, returning the header, the trace field and
// the payload (both aliasing b) and the number of bytes consumed. It exists for tests and
// fuzzing; connections read the header and body separately and split the body with
// splitBody.
func decodeFrame(b []byte, maxFrame int) (h frameHeader, trace, payload []byte, n int, err error) {
	if h, err = decodeHeader(b, maxFrame); err != nil {
		return h, nil, nil, 0, err
	}
	end := frameHeaderLen + int(h.length)
	if len(b) < end {
		return h, nil, nil, 0, fmt.Errorf("%w: truncated payload: have %d of %d bytes", ErrBadFrame, len(b)-frameHeaderLen, h.length)
	}
	if trace, payload, err = splitBody(h, b[frameHeaderLen:end]); err != nil {
		return h, nil, nil, 0, err
	}
	return h, trace, payload, end, nil
}

// splitBody separates a frame body into its trace field (nil without frameFlagTrace) and
// its payload.
func splitBody(h frameHeader, body []byte) (trace, payload []byte, err error) {
	if h.flags&frameFlagTrace == 0 {
		return nil, body, nil
	}
	return splitTrace(body)
}

// hello is the client's connection preamble.
type hello struct {
	version byte
	flags   byte
	label   string
	nonce   [nonceLen]byte // the client's challenge; present when flags has hsFlagAuth
}

// helloLen is the encoded size of h.
func helloLen(h hello) int {
	n := helloFixedLen + len(h.label)
	if h.flags&hsFlagAuth != 0 {
		n += nonceLen
	}
	return n
}

// appendHello appends the encoded hello. The label must be at most 255 bytes (Validate checks).
func appendHello(b []byte, h hello) []byte {
	b = append(b, magic, h.version, h.flags, byte(len(h.label)))
	b = append(b, h.label...)
	if h.flags&hsFlagAuth != 0 {
		b = append(b, h.nonce[:]...)
	}
	return b
}

// decodeHello parses a complete hello from b and returns the bytes consumed.
func decodeHello(b []byte) (hello, int, error) {
	if len(b) < helloFixedLen {
		return hello{}, 0, fmt.Errorf("%w: hello is %d bytes, need %d", ErrBadHandshake, len(b), helloFixedLen)
	}
	if b[0] != magic {
		return hello{}, 0, fmt.Errorf("%w: bad magic byte 0x%02x", ErrBadHandshake, b[0])
	}
	n := helloFixedLen + int(b[3])
	if len(b) < n {
		return hello{}, 0, fmt.Errorf("%w: truncated label: have %d of %d bytes", ErrBadHandshake, len(b)-helloFixedLen, b[3])
	}
	h := hello{version: b[1], flags: b[2], label: string(b[helloFixedLen:n])}
	if h.flags&hsFlagAuth != 0 {
		if len(b) < n+nonceLen {
			return hello{}, 0, fmt.Errorf("%w: truncated nonce: have %d of %d bytes", ErrBadHandshake, len(b)-n, nonceLen)
		}
		copy(h.nonce[:], b[n:n+nonceLen])
		n += nonceLen
	}
	return h, n, nil
}

// readHello reads a hello from r. The magic byte has already been consumed by the
// connection classifier, so r starts at the version byte. It reads at most
// helloFixedLen+maxLabelLen+nonceLen bytes, into a fixed buffer.
func readHello(r io.Reader) (hello, error) {
	var buf [helloFixedLen + maxLabelLen + nonceLen]byte
	buf[0] = magic
	if _, err := io.ReadFull(r, buf[1:helloFixedLen]); err != nil {
		return hello{}, fmt.Errorf("%w: reading hello: %w", ErrBadHandshake, err)
	}
	n := helloFixedLen + int(buf[3])
	if buf[2]&hsFlagAuth != 0 {
		n += nonceLen
	}
	if _, err := io.ReadFull(r, buf[helloFixedLen:n]); err != nil {
		return hello{}, fmt.Errorf("%w: reading label: %w", ErrBadHandshake, err)
	}
	h, _, err := decodeHello(buf[:n])
	return h, err
}

// decodeHelloReply parses the server's two-byte reply into an error (nil = accepted).
func decodeHelloReply(b []byte, label string) error {
	if len(b) < helloReplyLen {
		return fmt.Errorf("%w: reply is %d bytes, need %d", ErrBadHandshake, len(b), helloReplyLen)
	}
	if b[0] != magic {
		return fmt.Errorf("%w: reply has bad magic byte 0x%02x (not a distcache peer?)", ErrBadHandshake, b[0])
	}
	switch b[1] {
	case hsOK:
		return nil
	case hsBadLabel:
		return fmt.Errorf("%w: peer refused our cluster label %q", ErrLabelMismatch, label)
	case hsBadVersion:
		return fmt.Errorf("%w: peer does not speak protocol version %d", ErrBadHandshake, protoVersion)
	case hsTLSRequired:
		return fmt.Errorf("%w: peer requires TLS but ClientTLS is not configured", ErrBadHandshake)
	case hsTLSUnavailable:
		return fmt.Errorf("%w: peer has no TLS configured but we asked for TLS", ErrBadHandshake)
	case hsShuttingDown:
		return ErrShuttingDown
	case hsBadFlags:
		return fmt.Errorf("%w: peer refused our handshake flags", ErrBadHandshake)
	case hsAuthRequired:
		return fmt.Errorf("%w: peer requires the cluster secret but AuthSecret is not configured", ErrAuthFailed)
	case hsAuthUnavailable:
		return fmt.Errorf("%w: peer has no cluster secret configured but we have one", ErrAuthFailed)
	default:
		return fmt.Errorf("%w: unknown reply status %d", ErrBadHandshake, b[1])
	}
}

// checkHello decides the server's reply status for a hello.
func checkHello(h hello, label string, serverTLS, serverAuth bool) byte {
	switch {
	case h.version != protoVersion:
		return hsBadVersion
	case h.flags&^hsKnownFlags != 0:
		return hsBadFlags
	case h.label != label:
		return hsBadLabel
	case serverTLS && h.flags&hsFlagTLS == 0:
		return hsTLSRequired
	case !serverTLS && h.flags&hsFlagTLS != 0:
		return hsTLSUnavailable
	case serverAuth && h.flags&hsFlagAuth == 0:
		return hsAuthRequired
	case !serverAuth && h.flags&hsFlagAuth != 0:
		return hsAuthUnavailable
	}
	return hsOK
}

// budgetFromDeadline converts a remaining duration to the wire budget (µs, at least 1, clamped).
func budgetFromDeadline(d time.Duration) uint32 {
	if d >= maxBudget {
		return ^uint32(0)
	}
	us := d / time.Microsecond
	if us < 1 {
		return 1
	}
	return uint32(us)
}

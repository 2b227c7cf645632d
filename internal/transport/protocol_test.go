package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFrameRoundTrip(t *testing.T) {
	h := frameHeader{length: 3, typ: frameReq, code: 9, flags: 0x2BCD, id: 1 << 40, budget: 12345}
	b := append(appendHeader(nil, h), "abc"...)
	got, trace, payload, n, err := decodeFrame(b, 1024)
	require.NoError(t, err)
	assert.Equal(t, h, got)
	assert.Nil(t, trace)
	assert.Equal(t, "abc", string(payload))
	assert.Equal(t, len(b), n)
}

func TestDecodeFrameErrors(t *testing.T) {
	hdr := func(h frameHeader) []byte { return appendHeader(nil, h) }
	cases := map[string]struct {
		b    []byte
		want error
	}{
		"short":                {[]byte{1, 2, 3}, ErrBadFrame},
		"type 0":               {hdr(frameHeader{}), ErrBadFrame},
		"unknown type":         {hdr(frameHeader{typ: 99}), ErrBadFrame},
		"budget on resp":       {hdr(frameHeader{typ: frameResp, budget: 5}), ErrBadFrame},
		"payload on ping":      {hdr(frameHeader{typ: framePing, length: 1}), ErrBadFrame},
		"too large":            {hdr(frameHeader{typ: frameReq, length: 5000}), ErrFrameTooLarge},
		"huge length":          {hdr(frameHeader{typ: frameResp, length: ^uint32(0)}), ErrFrameTooLarge},
		"truncated payload":    {hdr(frameHeader{typ: frameReq, length: 10}), ErrBadFrame},
		"trace on resp":        {tracedFrame(frameHeader{typ: frameResp}, "tp", "x"), ErrBadFrame},
		"trace flag, no field": {hdr(frameHeader{typ: frameReq, flags: frameFlagTrace, length: 1}), ErrBadFrame},
		"empty trace field":    {tracedFrame(frameHeader{typ: frameReq}, "", "x"), ErrBadFrame},
		"trace past payload":   {append(hdr(frameHeader{typ: frameReq, flags: frameFlagTrace, length: 4}), 0, 9, 'a', 'b'), ErrBadFrame},
		"trace over the cap": {append(hdr(frameHeader{typ: frameReq, flags: frameFlagTrace, length: 2 + MaxTraceBytes + 1}),
			appendTraceFieldRaw(MaxTraceBytes+1)...), ErrBadFrame},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, _, _, _, err := decodeFrame(tc.b, 4096)
			require.ErrorIs(t, err, tc.want)
			assert.Contains(t, err.Error(), "transport:")
		})
	}
}

func TestHelloRoundTripAndChecks(t *testing.T) {
	h := hello{version: protoVersion, flags: hsFlagTLS, label: "prod/eu"}
	b := appendHello(nil, h)
	got, n, err := decodeHello(b)
	require.NoError(t, err)
	assert.Equal(t, h, got)
	assert.Equal(t, len(b), n)
	got, err = readHello(bytes.NewReader(b[1:]))
	require.NoError(t, err)
	assert.Equal(t, h, got)

	_, _, err = decodeHello([]byte{0x00, 1, 0, 0})
	require.ErrorIs(t, err, ErrBadHandshake)
	_, _, err = decodeHello([]byte{magic, 1, 0, 5, 'a'})
	require.ErrorIs(t, err, ErrBadHandshake)
	_, err = readHello(bytes.NewReader([]byte{1, 0, 5, 'a'}))
	require.ErrorIs(t, err, ErrBadHandshake)

	// With the auth flag, a nonce follows the label.
	ha := hello{version: protoVersion, flags: hsFlagAuth | hsFlagTLS, label: "prod/eu", nonce: newNonce()}
	b = appendHello(nil, ha)
	assert.Len(t, b, helloLen(ha))
	got, n, err = decodeHello(b)
	require.NoError(t, err)
	assert.Equal(t, ha, got)
	assert.Equal(t, len(b), n)
	got, err = readHello(bytes.NewReader(b[1:]))
	require.NoError(t, err)
	assert.Equal(t, ha, got)
	_, _, err = decodeHello(b[:len(b)-1])
	require.ErrorIs(t, err, ErrBadHandshake)

	assert.Equal(t, hsOK, checkHello(hello{version: protoVersion, label: "x"}, "x", false, false))
	assert.Equal(t, hsBadLabel, checkHello(hello{version: protoVersion, label: "y"}, "x", false, false))
	assert.Equal(t, hsBadVersion, checkHello(hello{version: 1, label: "x"}, "x", false, false))
	assert.Equal(t, hsBadFlags, checkHello(hello{version: protoVersion, flags: 0x80, label: "x"}, "x", false, false))
	assert.Equal(t, hsTLSRequired, checkHello(hello{version: protoVersion, label: "x"}, "x", true, false))
	assert.Equal(t, hsTLSUnavailable, checkHello(hello{version: protoVersion, flags: hsFlagTLS, label: "x"}, "x", false, false))
	assert.Equal(t, hsAuthRequired, checkHello(hello{version: protoVersion, label: "x"}, "x", false, true))
	assert.Equal(t, hsAuthUnavailable, checkHello(hello{version: protoVersion, flags: hsFlagAuth, label: "x"}, "x", false, false))
	assert.Equal(t, hsOK, checkHello(hello{version: protoVersion, flags: hsFlagAuth, label: "x"}, "x", false, true))
	require.ErrorIs(t, decodeHelloReply([]byte{magic, hsAuthRequired}, "x"), ErrAuthFailed)
	require.ErrorIs(t, decodeHelloReply([]byte{magic, hsAuthUnavailable}, "x"), ErrAuthFailed)

	require.NoError(t, decodeHelloReply([]byte{magic, hsOK}, ""))
	require.ErrorIs(t, decodeHelloReply([]byte{magic, hsBadLabel}, "x"), ErrLabelMismatch)
	require.ErrorIs(t, decodeHelloReply([]byte{magic, hsShuttingDown}, "x"), ErrShuttingDown)
	require.ErrorIs(t, decodeHelloReply([]byte{0, 0}, "x"), ErrBadHandshake)
	require.ErrorIs(t, decodeHelloReply([]byte{magic, 200}, "x"), ErrBadHandshake)
	require.ErrorIs(t, decodeHelloReply(nil, "x"), ErrBadHandshake)
}

func TestBudget(t *testing.T) {
	assert.Equal(t, uint32(1), budgetFromDeadline(time.Nanosecond))
	assert.Equal(t, uint32(1500), budgetFromDeadline(1500*time.Microsecond))
	assert.Equal(t, ^uint32(0), budgetFromDeadline(24*time.Hour))
}

// tracedFrame encodes a frame whose body is a trace field followed by payload; an empty
// trace still gets its (zero) length prefix.
func tracedFrame(h frameHeader, trace, payload string) []byte {
	h.flags |= frameFlagTrace
	h.length = uint32(traceFieldLen + len(trace) + len(payload))
	b := appendHeader(nil, h)
	b = binary.BigEndian.AppendUint16(b, uint16(len(trace)))
	return append(append(b, trace...), payload...)
}

// appendTraceFieldRaw is a trace field of n bytes, bypassing the encoder's limit.
func appendTraceFieldRaw(n int) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(n))
	return append(b, make([]byte, n)...)
}

func TestTracedFrameRoundTrip(t *testing.T) {
	tp := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	b := tracedFrame(frameHeader{typ: frameReq, code: 3, flags: 0x0001, id: 5}, tp, "payload")
	h, trace, payload, n, err := decodeFrame(b, 1024)
	require.NoError(t, err)
	assert.Equal(t, tp, string(trace))
	assert.Equal(t, "payload", string(payload))
	assert.Equal(t, frameFlagTrace|0x0001, h.flags)
	assert.Equal(t, len(b), n)
}

func FuzzDecodeFrame(f *testing.F) {
	f.Add(appendHeader(nil, frameHeader{typ: frameReq, length: 2, id: 7, budget: 100}), 64)
	f.Add(tracedFrame(frameHeader{typ: frameReq, id: 7}, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "abc"), 1024)
	f.Add(tracedFrame(frameHeader{typ: frameReq, id: 7}, "", "abc"), 1024)
	f.Add(append(appendHeader(nil, frameHeader{typ: frameReq, flags: frameFlagTrace, length: 2 + MaxTraceBytes + 1}), appendTraceFieldRaw(MaxTraceBytes+1)...), 4096)
	f.Add(append(appendHeader(nil, frameHeader{typ: frameResp, length: 3, code: 1, id: 1}), "abc"...), 1024)
	f.Add(appendHeader(nil, frameHeader{typ: frameCancel, id: 9}), 64)
	f.Add([]byte{0, 0, 0, 0, 9}, 64)
	f.Add([]byte{}, 0)
	f.Fuzz(func(t *testing.T, b []byte, maxFrame int) {
		if maxFrame < 0 {
			maxFrame = -maxFrame
		}
		h, trace, payload, n, err := decodeFrame(b, maxFrame)
		if err != nil {
			if !errors.Is(err, ErrBadFrame) && !errors.Is(err, ErrFrameTooLarge) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		traced := h.flags&frameFlagTrace != 0
		if traced != (len(trace) > 0) || len(trace) > MaxTraceBytes {
			t.Fatalf("trace field of %d bytes with flags %#x", len(trace), h.flags)
		}
		if n > len(b) || n != frameHeaderLen+frameLen(trace, payload) || int(h.length) != frameLen(trace, payload) {
			t.Fatalf("inconsistent decode: n=%d len=%d trace=%d payload=%d", n, len(b), len(trace), len(payload))
		}
		re := appendHeader(nil, h)
		if traced {
			re = appendTraceField(re, trace)
		}
		re = append(re, payload...)
		if !bytes.Equal(re, b[:n]) {
			t.Fatalf("re-encode mismatch")
		}
	})
}

func FuzzDecodeHello(f *testing.F) {
	f.Add(appendHello(nil, hello{version: protoVersion, flags: hsFlagTLS, label: "prod"}))
	f.Add([]byte{magic, 1, 0, 200})
	f.Add([]byte{magic})
	f.Add(appendHello(nil, hello{version: protoVersion, flags: hsFlagAuth, label: "prod", nonce: [nonceLen]byte{1, 2, 3}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := decodeHello(b)
		if err != nil {
			if !errors.Is(err, ErrBadHandshake) {
				t.Fatalf("unclassified error %v", err)
			}
		} else if !bytes.Equal(appendHello(nil, h), b[:n]) {
			t.Fatalf("re-encode mismatch")
		}
		// The streaming reader agrees with the slice decoder.
		if len(b) > 0 && b[0] == magic {
			h2, err2 := readHello(bytes.NewReader(b[1:]))
			if (err == nil) != (err2 == nil) || (err == nil && h != h2) {
				t.Fatalf("readHello disagrees: %v/%v %+v/%+v", err, err2, h, h2)
			}
		}
		_ = checkHello(h, "prod", len(b)%2 == 0, len(b)%3 == 0)
		_ = decodeHelloReply(b, "prod")
	})
}

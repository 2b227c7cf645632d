package transport

import (
	"encoding/binary"
	"fmt"
)

// frameFlagTrace in a REQ frame's flags: the payload starts with a trace field,
//
//	u16 trace length | trace bytes
//
// and the application payload follows it. The transport reserves this bit of the flags; the
// other fifteen are the application's (Request.Flags).
const frameFlagTrace uint16 = 1 << 15

// MaxTraceBytes bounds Request.Trace. A W3C traceparent is 55 bytes; the rest leaves room for
// a tracestate of the 512 characters the W3C recommends propagating. A frame announcing a
// larger trace field is a protocol error.
const MaxTraceBytes = 1024

// traceFieldLen is the length prefix of the trace field.
const traceFieldLen = 2

// frameLen is the payload length of a REQ frame carrying trace and payload: the trace
// field (when trace is not empty) plus the payload.
func frameLen(trace, payload []byte) int {
	if len(trace) == 0 {
		return len(payload)
	}
	return traceFieldLen + len(trace) + len(payload)
}

// appendTraceField appends the length-prefixed trace field. The caller has checked that
// trace is at most MaxTraceBytes.
func appendTraceField(b, trace []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(trace)))
	return append(b, trace...)
}

// splitTrace separates the trace field from the application payload of a REQ frame body
// whose header has frameFlagTrace. Both results alias body.
func splitTrace(body []byte) (trace, payload []byte, err error) {
	if len(body) < traceFieldLen {
		return nil, nil, fmt.Errorf("%w: trace flag set but the payload is %d bytes", ErrBadFrame, len(body))
	}
	n := int(binary.BigEndian.Uint16(body))
	switch {
	case n == 0:
		return nil, nil, fmt.Errorf("%w: empty trace field", ErrBadFrame)
	case n > MaxTraceBytes:
		return nil, nil, fmt.Errorf("%w: %d byte trace field exceeds the %d byte limit", ErrBadFrame, n, MaxTraceBytes)
	case traceFieldLen+n > len(body):
		return nil, nil, fmt.Errorf("%w: truncated trace field: have %d of %d bytes", ErrBadFrame, len(body)-traceFieldLen, n)
	}
	return body[traceFieldLen : traceFieldLen+n], body[traceFieldLen+n:], nil
}

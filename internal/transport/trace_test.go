package transport

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// traceRecorder answers op 1 inline and other ops on a goroutine, recording what each
// request carried.
type traceRecorder struct {
	mu   sync.Mutex
	seen []Request
}

func (r *traceRecorder) record(req Request) Response {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, req)
	return Response{Payload: req.Payload}
}

func (r *traceRecorder) ServeRPC(_ context.Context, req Request) Response { return r.record(req) }

func (r *traceRecorder) ServeInline(req Request) (Response, bool) {
	if req.Op != 1 {
		return Response{}, false
	}
	return r.record(req), true
}

func (r *traceRecorder) last() Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen[len(r.seen)-1]
}

// The trace context reaches the handler on both serving paths, apart from the payload and
// without the transport's flag bit; an untraced request carries none.
func TestTraceTravelsWithRequest(t *testing.T) {
	rec := &traceRecorder{}
	srv := newTestTransport(t, func(c *Config) { c.Handler = rec })
	cli := newTestTransport(t, nil)
	tp := []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\nvendor=x")
	for _, op := range []uint8{1, 2} {
		resp, err := cli.Call(context.Background(), addrOf(srv), Request{Op: op, Flags: 0x0003, Trace: tp, Payload: []byte("body")})
		require.NoError(t, err)
		assert.Equal(t, "body", string(resp.Payload))
		got := rec.last()
		assert.Equal(t, tp, got.Trace, "op %d", op)
		assert.Equal(t, "body", string(got.Payload), "op %d", op)
		assert.Equal(t, uint16(0x0003), got.Flags, "op %d", op)

		_, err = cli.Call(context.Background(), addrOf(srv), Request{Op: op, Payload: []byte("plain")})
		require.NoError(t, err)
		assert.Nil(t, rec.last().Trace, "op %d", op)
	}
}

// Call refuses what would make a bad frame: the reserved flag bit, a trace over the cap.
func TestTraceLimitsOnCall(t *testing.T) {
	srv := newTestTransport(t, func(c *Config) { c.Handler = echo })
	cli := newTestTransport(t, nil)
	_, err := cli.Call(context.Background(), addrOf(srv), Request{Flags: frameFlagTrace})
	require.Error(t, err)
	_, err = cli.Call(context.Background(), addrOf(srv), Request{Trace: make([]byte, MaxTraceBytes+1)})
	require.ErrorIs(t, err, ErrFrameTooLarge)
	_, err = cli.Call(context.Background(), addrOf(srv), Request{Trace: make([]byte, MaxTraceBytes)})
	require.NoError(t, err)
}

// A peer announcing a trace field over the cap has broken the protocol: the server closes
// its connection without calling the handler, and goes on serving others.
func TestOversizedTraceFieldClosesConnection(t *testing.T) {
	rec := &traceRecorder{}
	srv := newTestTransport(t, func(c *Config) { c.Handler = rec })
	cli := newTestTransport(t, nil)
	raw, err := net.Dial("tcp", addrOf(srv))
	require.NoError(t, err)
	defer raw.Close()
	require.NoError(t, raw.SetDeadline(time.Now().Add(10*time.Second)))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	conn, err := cli.clientHandshake(ctx, raw, addrOf(srv))
	cancel()
	require.NoError(t, err)
	frame := appendHeader(nil, frameHeader{typ: frameReq, code: 2, id: 1, flags: frameFlagTrace, length: 2 + MaxTraceBytes + 1})
	frame = append(frame, appendTraceFieldRaw(MaxTraceBytes+1)...)
	_, err = conn.Write(frame)
	require.NoError(t, err)
	_, err = io.Copy(io.Discard, conn) // returns once the server closes
	if err != nil {
		require.True(t, isReset(err), "%v", err)
	}
	rec.mu.Lock()
	assert.Empty(t, rec.seen)
	rec.mu.Unlock()
	_, err = cli.Call(context.Background(), addrOf(srv), Request{Op: 1, Payload: []byte("ok")})
	require.NoError(t, err)
}

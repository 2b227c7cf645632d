package transport

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// newTestTransport starts a transport on 127.0.0.1:0 and shuts it down at cleanup.
func newTestTransport(t testing.TB, mod func(*Config)) *Transport {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Label = "test"
	if mod != nil {
		mod(&cfg)
	}
	tr, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, tr.Shutdown()) })
	return tr
}

// addrOf is the "host:port" to Call tr at.
func addrOf(tr *Transport) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(tr.BoundPort()))
}

// echo returns the request payload with status = op.
var echo = HandlerFunc(func(_ context.Context, req Request) Response {
	return Response{Status: req.Op, Payload: req.Payload}
})

// inlineEcho echoes on the inline fast path for op 1 and on the goroutine path otherwise.
type inlineEcho struct{}

func (inlineEcho) ServeRPC(_ context.Context, req Request) Response {
	return Response{Status: 100 + req.Op, Payload: req.Payload}
}

func (inlineEcho) ServeInline(req Request) (Response, bool) {
	switch req.Op {
	case 1:
		return Response{Status: req.Op, Payload: req.Payload}, true
	case 2:
		panic("inline boom")
	}
	return Response{}, false
}

// echoed checks an echo handler's answer to a Call with op and payload want.
func echoed(resp Response, err error, want string, op uint8) error {
	if err != nil {
		return err
	}
	if string(resp.Payload) != want || resp.Status != op {
		return fmt.Errorf("got %q/%d want %q/%d", resp.Payload, resp.Status, want, op)
	}
	return nil
}

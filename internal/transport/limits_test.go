package transport

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// dialRaw opens a TCP connection to tr that the test closes at cleanup.
func dialRaw(t *testing.T, tr *Transport) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addrOf(tr))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// requireClosedSoon asserts that the server closes c within d (a reset counts: the server
// closed with our input unread).
func requireClosedSoon(t *testing.T, c net.Conn, d time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	if errors.Is(err, syscall.ECONNRESET) {
		err = nil
	}
	require.NoError(t, err, "the server should have closed the connection")
}

// A remote IP gets at most MaxConnsPerIP connections; one more is closed at once, and a
// slot frees when a connection ends.
func TestMaxConnsPerIP(t *testing.T) {
	srv := newTestTransport(t, func(c *Config) { c.Handler = echo; c.MaxConnsPerIP = 3; c.HandshakeTimeout = time.Minute })
	held := []net.Conn{dialRaw(t, srv), dialRaw(t, srv), dialRaw(t, srv)}
	require.Eventually(t, func() bool { return srv.Stats().OpenConns == 3 }, 5*time.Second, 5*time.Millisecond)
	requireClosedSoon(t, dialRaw(t, srv), 5*time.Second)
	assert.Equal(t, uint64(1), srv.Stats().ConnsRefused)

	// Calls from this IP are refused too until a slot frees.
	cli := newTestTransport(t, nil)
	_, err := cli.Call(context.Background(), addrOf(srv), Request{})
	require.ErrorIs(t, err, ErrPeerUnavailable)
	_ = held[0].Close()
	require.Eventually(t, func() bool { return srv.Stats().OpenConns == 2 }, 5*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool {
		_, err := cli.Call(context.Background(), addrOf(srv), Request{})
		return err == nil
	}, 5*time.Second, 20*time.Millisecond, "a freed slot admits the next connection (after the dial backoff)")
}

// At most MaxPendingConns connections may sit in their handshake; each is closed after
// HandshakeTimeout, also when it trickles its hello byte by byte.
func TestPendingConnsAndHandshakeDeadline(t *testing.T) {
	srv := newTestTransport(t, func(c *Config) {
		c.Handler = echo
		c.MaxPendingConns = 2
		c.MaxConnsPerIP = -1
		c.HandshakeTimeout = 300 * time.Millisecond
	})
	a, b := dialRaw(t, srv), dialRaw(t, srv)
	require.Eventually(t, func() bool { return srv.Stats().PendingConns == 2 }, 5*time.Second, 5*time.Millisecond)
	requireClosedSoon(t, dialRaw(t, srv), 5*time.Second)
	assert.Equal(t, uint64(1), srv.Stats().ConnsRefused)

	// b trickles a valid hello, one byte per 50 ms: the deadline counts from the accept.
	go func() {
		for _, x := range appendHello(nil, hello{version: protoVersion, label: "test"}) {
			if _, err := b.Write([]byte{x}); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond) // the attacker's pace, not a wait for a condition
		}
	}()
	start := time.Now()
	requireClosedSoon(t, a, 5*time.Second)
	requireClosedSoon(t, b, 5*time.Second)
	assert.Less(t, time.Since(start), 2*time.Second)
	require.Eventually(t, func() bool { s := srv.Stats(); return s.PendingConns == 0 && s.OpenConns == 0 }, 5*time.Second, 5*time.Millisecond)
	assert.Zero(t, srv.Stats().ConnsAccepted)
}

// An accepted connection that serves no request for IdleTimeout gets GOAWAY and is closed,
// although the client keeps pinging it; a client transport dials afresh for its next call.
// Keepalives are off on the server so that no read deadline races with the idle check.
func TestIdleConnectionExpires(t *testing.T) {
	srv := newTestTransport(t, func(c *Config) {
		c.Handler = echo
		c.KeepaliveInterval = -1
		c.IdleTimeout = 100 * time.Millisecond
	})
	t.Run("pings do not keep it", func(t *testing.T) {
		c := handshaken(t, srv)
		_, err := c.Write(appendHeader(nil, frameHeader{typ: frameReq, code: 1, id: 1}))
		require.NoError(t, err)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			tk := time.NewTicker(10 * time.Millisecond)
			defer tk.Stop()
			for {
				select {
				case <-tk.C:
				case <-stop:
					return
				}
				if _, err := c.Write(appendHeader(nil, frameHeader{typ: framePing})); err != nil {
					return
				}
			}
		})
		defer func() { close(stop); wg.Wait() }()
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		var goAway bool
		var hb [frameHeaderLen]byte
		for {
			if _, err := io.ReadFull(c, hb[:]); err != nil {
				require.True(t, errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET), "closed by the server: %v", err)
				break
			}
			h, err := decodeHeader(hb[:], DefaultMaxFrameBytes)
			require.NoError(t, err)
			_, err = io.CopyN(io.Discard, c, int64(h.length))
			require.NoError(t, err)
			goAway = goAway || h.typ == frameGoAway
		}
		assert.True(t, goAway, "GOAWAY came before the close")
		require.Eventually(t, func() bool { return srv.Stats().ConnsIdleClosed == 1 }, 5*time.Second, 5*time.Millisecond)
	})
	t.Run("client redials", func(t *testing.T) {
		cli := newTestTransport(t, func(c *Config) { c.KeepaliveInterval = -1 })
		accepted := srv.Stats().ConnsAccepted
		_, err := cli.Call(context.Background(), addrOf(srv), Request{})
		require.NoError(t, err)
		require.Eventually(t, func() bool { return srv.Stats().ConnsIdleClosed == 2 }, 5*time.Second, 5*time.Millisecond)
		require.Eventually(t, func() bool { return srv.Stats().OpenConns == 0 }, 5*time.Second, 5*time.Millisecond)
		_, err = cli.Call(context.Background(), addrOf(srv), Request{})
		require.NoError(t, err)
		assert.Equal(t, accepted+2, srv.Stats().ConnsAccepted)
	})
}

// A busy connection is not idle.
func TestBusyConnectionDoesNotExpire(t *testing.T) {
	srv := newTestTransport(t, func(c *Config) {
		c.Handler = echo
		c.KeepaliveInterval = -1
		c.IdleTimeout = 50 * time.Millisecond
	})
	cli := newTestTransport(t, func(c *Config) { c.KeepaliveInterval = -1 })
	deadline := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(deadline) {
		_, err := cli.Call(context.Background(), addrOf(srv), Request{})
		require.NoError(t, err)
	}
	assert.Zero(t, srv.Stats().ConnsIdleClosed)
	assert.Equal(t, uint64(1), srv.Stats().ConnsAccepted)
}

// handshaken opens a raw RPC connection to tr (no secret, no TLS) past the handshake,
// named "raw".
func handshaken(t *testing.T, tr *Transport) net.Conn {
	t.Helper()
	c, status := rawHandshake(t, tr, hello{version: protoVersion, label: "test"})
	require.Equal(t, hsOK, status)
	_, err := c.Write(appendName(nil, "raw"))
	require.NoError(t, err)
	_ = c.SetDeadline(time.Time{})
	return c
}

// A header announcing a large payload allocates nothing by itself: the frame reserves its
// length from MaxReceiveBufferBytes, its buffer grows with the bytes that arrive, and a
// frame that stalls is dropped with its connection after ReadTimeout.
func TestHalfSentFrame(t *testing.T) {
	const frame = 1 << 20
	srv := newTestTransport(t, func(c *Config) {
		c.Handler = echo
		c.MaxFrameBytes = frame
		c.MaxReceiveBufferBytes = frame
		c.ReadTimeout = 300 * time.Millisecond
	})
	a := handshaken(t, srv)
	_, err := a.Write(appendHeader(nil, frameHeader{typ: frameReq, id: 1, length: frame - frameHeaderLen}))
	require.NoError(t, err)
	_, err = a.Write(make([]byte, 100<<10))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return srv.Stats().ReceiveBufferBytes == frame-frameHeaderLen }, 5*time.Second, time.Millisecond)

	// A second large frame finds the budget taken: it waits, then its connection is closed.
	b := handshaken(t, srv)
	_, err = b.Write(appendHeader(nil, frameHeader{typ: frameReq, id: 1, length: 200 << 10}))
	require.NoError(t, err)
	// Small frames need no budget and are served meanwhile.
	cli := newTestTransport(t, nil)
	resp, err := cli.Call(context.Background(), addrOf(srv), Request{Payload: []byte("small")})
	require.NoError(t, err)
	assert.Equal(t, "small", string(resp.Payload))

	requireClosedSoon(t, a, 5*time.Second)
	requireClosedSoon(t, b, 5*time.Second)
	require.Eventually(t, func() bool { return srv.Stats().ReceiveBufferBytes == 0 }, 5*time.Second, time.Millisecond)
}

// bigInline answers op 1 on the reader goroutine with a shared 4 MiB value (a cache hit)
// and echoes everything else.
type bigInline struct{ value []byte }

func (b bigInline) ServeRPC(_ context.Context, req Request) Response {
	return Response{Payload: req.Payload}
}

func (b bigInline) ServeInline(req Request) (Response, bool) {
	if req.Op == 1 {
		return Response{Payload: b.value}, true
	}
	return Response{}, false
}

// A client that pipelines requests for a large value and never reads the replies stops
// being read once MaxQueuedBytesPerConn of replies are queued, and is closed after
// WriteTimeout; other connections are served throughout.
func TestNonReadingClientIsPaused(t *testing.T) {
	value := make([]byte, 4<<20)
	srv := newTestTransport(t, func(c *Config) {
		c.Handler = bigInline{value}
		c.WriteTimeout = 500 * time.Millisecond
	})
	c := handshaken(t, srv)
	go func() { // ends when the server closes c
		for i := uint64(1); ; i++ {
			if _, err := c.Write(appendHeader(nil, frameHeader{typ: frameReq, code: 1, id: i})); err != nil {
				return
			}
		}
	}()
	require.Eventually(t, func() bool { return srv.Stats().ReadsPaused > 0 }, 5*time.Second, time.Millisecond)
	cli := newTestTransport(t, nil)
	_, err := cli.Call(context.Background(), addrOf(srv), Request{Op: 2, Payload: []byte("x")})
	require.NoError(t, err)
	// Replies served: a few, not thousands.
	assert.Less(t, srv.Stats().Requests, uint64(16))
	require.Eventually(t, func() bool { return srv.Stats().ConnsBroken > 0 }, 10*time.Second, 5*time.Millisecond,
		"the writer gives up after WriteTimeout")
}

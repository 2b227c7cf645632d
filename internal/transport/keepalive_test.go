package transport

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// blackhole accepts RPC handshakes, then reads and discards everything and never answers:
// to the client it looks like a half-open connection.
type blackhole struct {
	ln      net.Listener
	accepts atomic.Int32
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   []net.Conn
}

func newBlackhole(t *testing.T) *blackhole {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	b := &blackhole{ln: ln}
	b.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.accepts.Add(1)
			b.mu.Lock()
			b.conns = append(b.conns, c)
			b.mu.Unlock()
			b.wg.Go(func() {
				var first [1]byte
				if _, err := io.ReadFull(c, first[:]); err != nil {
					return
				}
				if _, err := readHello(c); err != nil {
					return
				}
				if _, err := c.Write([]byte{magic, hsOK}); err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, c)
			})
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		b.mu.Lock()
		for _, c := range b.conns {
			_ = c.Close()
		}
		b.mu.Unlock()
		b.wg.Wait()
	})
	return b
}

func TestKeepaliveDetectsHalfOpenAndRedials(t *testing.T) {
	bh := newBlackhole(t)
	cli := newTestTransport(t, func(c *Config) {
		c.KeepaliveInterval = 20 * time.Millisecond
		c.ConnsPerPeer = 1
	})
	addr := bh.ln.Addr().String()
	// No deadline on the call: only keepalive can end it.
	_, err := cli.Call(context.Background(), addr, Request{})
	require.ErrorIs(t, err, ErrPeerUnavailable)
	require.ErrorContains(t, err, "timeout")
	assert.Equal(t, uint64(1), cli.Stats().ConnsBroken)

	// The next call dials a fresh connection.
	_, err = cli.Call(context.Background(), addr, Request{})
	require.ErrorIs(t, err, ErrPeerUnavailable)
	assert.Equal(t, int32(2), bh.accepts.Load())
}

func TestServerClosesSilentClient(t *testing.T) {
	srv := newTestTransport(t, func(c *Config) { c.Handler = echo; c.KeepaliveInterval = 20 * time.Millisecond })
	c, err := net.Dial("tcp", addrOf(srv))
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write(appendHello(nil, hello{version: protoVersion, label: "test"}))
	require.NoError(t, err)
	var reply [2]byte
	_, err = io.ReadFull(c, reply[:])
	require.NoError(t, err)
	require.NoError(t, decodeHelloReply(reply[:], "test"))
	_, err = c.Write(appendName(nil, "silent"))
	require.NoError(t, err)
	// We never answer the server's PINGs: it must give up on us.
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.Copy(io.Discard, c)
	require.NoError(t, err, "server closed the connection (EOF), no read timeout on our side")
	require.Eventually(t, func() bool { return srv.Stats().ConnsBroken == 1 }, 5*time.Second, 5*time.Millisecond)
}

func TestAcceptedGarbage(t *testing.T) {
	srv := newTestTransport(t, func(c *Config) { c.Handler = echo; c.HandshakeTimeout = 50 * time.Millisecond })
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addrOf(srv))
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	expectClosed := func(c net.Conn) {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := io.Copy(io.Discard, c)
		require.NoError(t, err, "server closed the connection")
	}
	// Silent connection: closed after HandshakeTimeout.
	expectClosed(dial())
	// Magic byte then a bad version: refused with a status.
	c := dial()
	_, err := c.Write([]byte{magic, 99, 0, 0})
	require.NoError(t, err)
	var reply [2]byte
	_, err = io.ReadFull(c, reply[:])
	require.NoError(t, err)
	require.ErrorIs(t, decodeHelloReply(reply[:], ""), ErrBadHandshake)
	expectClosed(c)
	// Valid handshake, then a garbage frame: closed.
	c = dial()
	_, err = c.Write(appendHello(nil, hello{version: protoVersion, label: "test"}))
	require.NoError(t, err)
	_, err = io.ReadFull(c, reply[:])
	require.NoError(t, err)
	_, err = c.Write(appendName(make([]byte, 0, 1+frameHeaderLen), "")) // no name, then a frame of type 0
	require.NoError(t, err)
	_, err = c.Write(make([]byte, frameHeaderLen))
	require.NoError(t, err)
	expectClosed(c)
}

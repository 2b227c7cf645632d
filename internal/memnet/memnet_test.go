package memnet

import (
	"context"
	"io"
	"net"
	"os"
	"strconv"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"
)

// TestConnConformance runs x/net's net.Conn conformance suite (concurrent use, deadlines,
// close semantics, io.Copy in both directions) over a dialed connection.
func TestConnConformance(t *testing.T) {
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		n := New()
		a, err := n.Listen("127.0.0.1", 0)
		if err != nil {
			return nil, nil, nil, err
		}
		b, err := n.Listen("127.0.0.1", 0)
		if err != nil {
			return nil, nil, nil, err
		}
		c1, err = a.DialContext(context.Background(), b.Addr())
		if err != nil {
			return nil, nil, nil, err
		}
		c2 = <-b.StreamCh()
		stop = func() {
			_ = c1.Close()
			_ = c2.Close()
			_ = a.Shutdown()
			_ = b.Shutdown()
		}
		return c1, c2, stop, nil
	})
}

func pair(t *testing.T) (*Network, *Host, *Host) {
	t.Helper()
	n := New()
	a, err := n.Listen("127.0.0.1", 0)
	require.NoError(t, err)
	b, err := n.Listen("0.0.0.0", 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.Shutdown(); _ = b.Shutdown() })
	return n, a, b
}

func TestListenAddresses(t *testing.T) {
	n, a, b := pair(t)
	require.NotEqual(t, a.Addr(), b.Addr())
	host, _, err := net.SplitHostPort(b.Addr())
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1", host, "an unspecified bind gets loopback")
	_, err = n.Listen("127.0.0.1", a.GetAutoBindPort())
	require.ErrorIs(t, err, syscall.EADDRINUSE)
	_, err = n.Listen("not-an-ip", 0)
	require.Error(t, err)
	_, err = n.Listen("127.0.0.1", 70000)
	require.Error(t, err)

	ip, port, err := a.FinalAdvertiseAddr("", 0)
	require.NoError(t, err)
	require.Equal(t, a.Addr(), net.JoinHostPort(ip.String(), itoa(port)))
	ip, port, err = a.FinalAdvertiseAddr("10.1.2.3", 99)
	require.NoError(t, err)
	require.Equal(t, "10.1.2.3:99", net.JoinHostPort(ip.String(), itoa(port)))

	require.NoError(t, a.Shutdown())
	c, err := n.Listen("127.0.0.1", a.GetAutoBindPort())
	require.NoError(t, err, "a shut-down host's address is free again")
	require.NoError(t, c.Shutdown())
}

func TestPackets(t *testing.T) {
	_, a, b := pair(t)
	msg := []byte("ping")
	_, err := a.WriteToAddress(msg, memberlist.Address{Addr: b.Addr()})
	require.NoError(t, err)
	msg[0] = 'X' // the sender may reuse its buffer
	p := <-b.PacketCh()
	require.Equal(t, "ping", string(p.Buf))
	require.Equal(t, a.Addr(), p.From.String())

	// Like UDP: nobody there, or a full queue, drops the datagram without blocking.
	_, err = a.WriteToAddress(msg, memberlist.Address{Addr: "127.0.0.1:1"})
	require.NoError(t, err)
	for range packetQueue + 10 {
		_, err = a.WriteToAddress(msg, memberlist.Address{Addr: b.Addr()})
		require.NoError(t, err)
	}
	require.Len(t, b.PacketCh(), packetQueue)
}

func TestDial(t *testing.T) {
	_, a, b := pair(t)
	c, err := a.DialAddressTimeout(memberlist.Address{Addr: b.Addr()}, time.Second)
	require.NoError(t, err)
	s := <-b.StreamCh()
	require.Equal(t, b.Addr(), c.RemoteAddr().String())
	require.Equal(t, c.LocalAddr().String(), s.RemoteAddr().String())
	require.IsType(t, &net.TCPAddr{}, s.RemoteAddr(), "per-IP limits read the remote IP")

	// Both ends write before either reads: the buffers hold it, as TCP's do.
	_, err = c.Write([]byte("hello"))
	require.NoError(t, err)
	_, err = s.Write([]byte("world"))
	require.NoError(t, err)
	buf := make([]byte, 5)
	_, err = io.ReadFull(s, buf)
	require.NoError(t, err)
	require.Equal(t, "hello", string(buf))
	_, err = io.ReadFull(c, buf)
	require.NoError(t, err)
	require.Equal(t, "world", string(buf))

	// Close: the peer reads what was sent, then EOF; its writes fail.
	_, err = c.Write([]byte("bye"))
	require.NoError(t, err)
	require.NoError(t, c.Close())
	rest, err := io.ReadAll(s)
	require.NoError(t, err)
	require.Equal(t, "bye", string(rest))
	_, err = s.Write([]byte("x"))
	require.ErrorIs(t, err, io.ErrClosedPipe)
	require.NoError(t, s.Close())

	_, err = a.DialContext(context.Background(), "127.0.0.1:1")
	require.ErrorIs(t, err, syscall.ECONNREFUSED)
	_, err = a.DialContext(context.Background(), "nonsense")
	require.Error(t, err)
}

func TestShutdown(t *testing.T) {
	_, a, b := pair(t)
	pending, err := a.DialContext(context.Background(), b.Addr())
	require.NoError(t, err)
	require.NoError(t, b.Shutdown())
	require.NoError(t, b.Shutdown(), "idempotent")
	_, err = pending.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF, "a connection left in the backlog is closed")
	_, err = a.DialContext(context.Background(), b.Addr())
	require.ErrorIs(t, err, syscall.ECONNREFUSED)
	_, err = b.DialContext(context.Background(), a.Addr())
	require.ErrorIs(t, err, net.ErrClosed)
	_, err = b.WriteToAddress([]byte("x"), memberlist.Address{Addr: a.Addr()})
	require.ErrorIs(t, err, net.ErrClosed)
}

// TestDeadlinesInBubble checks that deadlines run on the bubble's fake clock and that a
// goroutine blocked on a connection counts as durably blocked.
func TestDeadlinesInBubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, a, b := pair(t)
		c, err := a.DialContext(context.Background(), b.Addr())
		require.NoError(t, err)
		s := <-b.StreamCh()
		start := time.Now()
		require.NoError(t, c.SetReadDeadline(start.Add(time.Hour)))
		_, err = c.Read(make([]byte, 1))
		require.ErrorIs(t, err, os.ErrDeadlineExceeded)
		require.Equal(t, time.Hour, time.Since(start), "the read waited exactly until its deadline")

		// A full buffer blocks the writer until the deadline.
		require.NoError(t, c.SetWriteDeadline(time.Now().Add(time.Minute)))
		n, err := c.Write(make([]byte, pipeBufferBytes+1))
		require.ErrorIs(t, err, os.ErrDeadlineExceeded)
		require.Equal(t, pipeBufferBytes, n)

		// A reader blocked with no deadline wakes when the peer closes.
		done := make(chan error)
		go func() {
			_, err := io.ReadAll(s)
			done <- err
		}()
		synctest.Wait()
		require.NoError(t, c.Close())
		require.NoError(t, <-done)
		require.NoError(t, s.Close())
		_, err = s.Read(make([]byte, 1))
		require.ErrorIs(t, err, net.ErrClosed)
	})
}

func itoa(p int) string { return strconv.Itoa(p) }

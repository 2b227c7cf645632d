package transport

import (
	"context"
	"fmt"
	"io"
	"log"
	"testing"
	"testing/synctest"
	"time"

	"github.com/distcache/distcache/internal/memnet"
	"github.com/hashicorp/memberlist"
	"github.com/stretchr/testify/require"
)

// newMemMember starts a memberlist node whose Transport runs on the in-memory network nw.
func newMemMember(t *testing.T, nw *memnet.Network, name string, h Handler) (*memberlist.Memberlist, *Transport, *msgDelegate) {
	t.Helper()
	tr := newTestTransport(t, func(c *Config) { c.Label, c.Handler, c.Network = "ml-test", h, nw })
	cfg := memberlist.DefaultLocalConfig()
	cfg.Name = name
	cfg.BindAddr = "127.0.0.1"
	cfg.AdvertiseAddr = "127.0.0.1"
	cfg.AdvertisePort = tr.BoundPort()
	cfg.Transport = tr
	cfg.Label = "ml-test"
	cfg.Logger = log.New(io.Discard, "", 0)
	d := &msgDelegate{msgs: make(chan string, 16)}
	cfg.Delegate = d
	ml, err := memberlist.Create(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, ml.Shutdown()) })
	return ml, tr, d
}

// TestMemberlistInBubble runs three memberlist nodes and their RPCs over one in-memory
// network inside a synctest bubble: gossip, memberlist streams and RPC share each node's
// address, and the fake clock drives memberlist's probe and gossip timers.
func TestMemberlistInBubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Registered first, run last: memberlist's Shutdown leaves a probe in
		// flight waiting for its timeout, and a bubble whose test returned no
		// longer advances its clock.
		t.Cleanup(func() { time.Sleep(time.Minute) })
		nw := memnet.New()
		const n = 3
		mls := make([]*memberlist.Memberlist, n)
		trs := make([]*Transport, n)
		dels := make([]*msgDelegate, n)
		for i := range n {
			name := fmt.Sprintf("node-%d", i)
			mls[i], trs[i], dels[i] = newMemMember(t, nw, name, HandlerFunc(func(_ context.Context, req Request) Response {
				return Response{Payload: []byte(name)}
			}))
		}
		for i := 1; i < n; i++ {
			_, err := mls[i].Join([]string{mls[0].LocalNode().Address()})
			require.NoError(t, err)
		}
		for _, ml := range mls {
			for ml.NumMembers() != n {
				time.Sleep(10 * time.Millisecond)
			}
		}
		require.NoError(t, mls[0].SendReliable(mls[2].LocalNode(), []byte("over-the-stream")))
		require.Equal(t, "over-the-stream", <-dels[2].msgs)
		for _, m := range mls[0].Members() {
			resp, err := trs[0].Call(context.Background(), m.Address(), Request{})
			require.NoError(t, err)
			require.Equal(t, m.Name, string(resp.Payload))
		}
		require.Positive(t, trs[2].Stats().StreamsForwarded, "memberlist streams were demultiplexed to memberlist")
	})
}

// TestDialBackoffInBubble checks the dial backoff to the millisecond on the fake clock:
// after a failed dial, Calls fail at once without dialing until the backoff (50 ms, then
// doubling) has passed, and the first Call after it dials again.
func TestDialBackoffInBubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memnet.New()
		cli := newTestTransport(t, func(c *Config) { c.Network = nw })
		const addr = "127.0.0.1:9999" // nobody bound yet
		call := func() error {
			_, err := cli.Call(context.Background(), addr, Request{Op: 7})
			return err
		}
		require.ErrorIs(t, call(), ErrPeerUnavailable)
		require.EqualValues(t, 1, cli.Stats().DialFailures)
		time.Sleep(minDialBackoff - time.Millisecond)
		require.ErrorIs(t, call(), ErrPeerUnavailable)
		require.EqualValues(t, 1, cli.Stats().DialFailures, "no dial during the backoff")

		time.Sleep(2 * time.Millisecond)
		require.ErrorIs(t, call(), ErrPeerUnavailable)
		require.EqualValues(t, 2, cli.Stats().DialFailures, "redialed once the backoff passed")

		newTestTransport(t, func(c *Config) { c.Network, c.BindPort, c.Handler = nw, 9999, echo })
		time.Sleep(2*minDialBackoff - time.Millisecond)
		require.ErrorIs(t, call(), ErrPeerUnavailable, "the backoff doubled: still waiting")
		time.Sleep(2 * time.Millisecond)
		require.NoError(t, call(), "the server that came up meanwhile is reached")
		require.EqualValues(t, 2, cli.Stats().DialFailures)
		require.EqualValues(t, 1, cli.Stats().ConnsDialed)
	})
}

// TestResetBackoffInBubble: a peer that comes back (ResetBackoff, from the
// membership layer) is dialed by the next Call, inside its backoff.
func TestResetBackoffInBubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memnet.New()
		cli := newTestTransport(t, func(c *Config) { c.Network = nw })
		const addr = "127.0.0.1:9998"
		call := func() error {
			_, err := cli.Call(context.Background(), addr, Request{Op: 7})
			return err
		}
		require.ErrorIs(t, call(), ErrPeerUnavailable)
		newTestTransport(t, func(c *Config) { c.Network, c.BindPort, c.Handler = nw, 9998, echo })
		require.ErrorIs(t, call(), ErrPeerUnavailable, "in backoff")
		cli.ResetBackoff(addr)
		require.NoError(t, call(), "dialed at once after ResetBackoff")
		require.EqualValues(t, 1, cli.Stats().DialFailures)
		cli.ResetBackoff("127.0.0.1:1") // no pool: nothing to do
	})
}

// TestCallDeadlineInBubble checks on the fake clock that a call fails exactly at its
// deadline, the earlier of the explicit one and ctx's, while the handler never answers.
func TestCallDeadlineInBubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memnet.New()
		release := make(chan struct{})
		srv := newTestTransport(t, func(c *Config) {
			c.Network = nw
			c.Handler = HandlerFunc(func(context.Context, Request) Response {
				<-release
				return Response{}
			})
		})
		t.Cleanup(func() { close(release) }) // before srv's Shutdown (LIFO)
		cli := newTestTransport(t, func(c *Config) { c.Network = nw })

		start := time.Now()
		_, err := cli.CallDeadline(context.Background(), addrOf(srv), Request{Op: 1}, start.Add(50*time.Millisecond))
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Equal(t, 50*time.Millisecond, time.Since(start), "failed at the explicit deadline")

		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		defer cancel()
		start = time.Now()
		_, err = cli.CallDeadline(ctx, addrOf(srv), Request{Op: 1}, start.Add(time.Hour))
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Equal(t, 30*time.Millisecond, time.Since(start), "ctx's earlier deadline wins")
	})
}

package transport

import (
	"context"
	"fmt"
	"io"
	"log"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// msgDelegate records user messages delivered through SendReliable (a memberlist stream).
type msgDelegate struct{ msgs chan string }

func (d *msgDelegate) NodeMeta(int) []byte             { return nil }
func (d *msgDelegate) NotifyMsg(b []byte)              { d.msgs <- string(b) }
func (d *msgDelegate) GetBroadcasts(int, int) [][]byte { return nil }
func (d *msgDelegate) LocalState(bool) []byte          { return nil }
func (d *msgDelegate) MergeRemoteState([]byte, bool)   {}

// newTestMember starts a memberlist node on a Transport, both shut down at cleanup.
func newTestMember(t *testing.T, name string, h Handler, mods ...func(*memberlist.Config)) (*memberlist.Memberlist, *Transport, *msgDelegate) {
	t.Helper()
	tr := newTestTransport(t, func(c *Config) { c.Label = "ml-test"; c.Handler = h })
	cfg := memberlist.DefaultLocalConfig()
	cfg.Name = name
	cfg.BindAddr = "127.0.0.1"
	cfg.AdvertiseAddr = "127.0.0.1"
	cfg.AdvertisePort = tr.BoundPort() // memberlist does not copy the auto port for custom transports
	cfg.Transport = tr
	cfg.Label = "ml-test"
	cfg.Logger = log.New(io.Discard, "", 0)
	d := &msgDelegate{msgs: make(chan string, 16)}
	cfg.Delegate = d
	for _, mod := range mods {
		mod(cfg)
	}
	ml, err := memberlist.Create(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, ml.Shutdown()) }) // runs before the transport's cleanup
	return ml, tr, d
}

func TestMemberlistThroughTransport(t *testing.T) {
	const n = 3
	mls := make([]*memberlist.Memberlist, n)
	trs := make([]*Transport, n)
	dels := make([]*msgDelegate, n)
	for i := range n {
		name := fmt.Sprintf("node-%d", i)
		mls[i], trs[i], dels[i] = newTestMember(t, name, HandlerFunc(func(_ context.Context, req Request) Response {
			return Response{Payload: []byte(name)}
		}))
	}
	for i := 1; i < n; i++ {
		_, err := mls[i].Join([]string{mls[0].LocalNode().Address()})
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		for _, ml := range mls {
			if ml.NumMembers() != n {
				return false
			}
		}
		return true
	}, 10*time.Second, 10*time.Millisecond, "all members see each other through the wrapper")

	// A memberlist stream (SendReliable) shares the port with our RPC.
	require.NoError(t, mls[0].SendReliable(mls[2].LocalNode(), []byte("over-the-stream")))
	select {
	case got := <-dels[2].msgs:
		assert.Equal(t, "over-the-stream", got)
	case <-time.After(10 * time.Second):
		t.Fatal("reliable message not delivered")
	}

	// RPC to the address memberlist advertises.
	for _, m := range mls[0].Members() {
		resp, err := trs[0].Call(context.Background(), m.Address(), Request{})
		require.NoError(t, err)
		assert.Equal(t, m.Name, string(resp.Payload))
	}
	// Counted once the stream is handed over, which memberlist may read (and deliver
	// the message above) first.
	require.Eventually(t, func() bool { return trs[2].Stats().StreamsForwarded > 0 }, 10*time.Second, time.Millisecond,
		"memberlist streams were demultiplexed to memberlist")
}

func TestMemberlistPartitionWithSetBlocked(t *testing.T) {
	fast := func(c *memberlist.Config) {
		c.ProbeInterval = 50 * time.Millisecond
		c.ProbeTimeout = 25 * time.Millisecond
		c.GossipInterval = 20 * time.Millisecond
		c.SuspicionMult = 1
	}
	a, ta, _ := newTestMember(t, "a", echo, fast)
	b, tb, _ := newTestMember(t, "b", echo, fast)
	_, err := b.Join([]string{a.LocalNode().Address()})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return a.NumMembers() == 2 && b.NumMembers() == 2 },
		10*time.Second, 10*time.Millisecond)

	addrA, addrB := a.LocalNode().Address(), b.LocalNode().Address()
	ta.SetBlocked(func(addr string) bool { return addr == addrB })
	tb.SetBlocked(func(addr string) bool { return addr == addrA })
	_, err = ta.Call(context.Background(), addrB, Request{})
	require.ErrorIs(t, err, ErrPeerUnavailable)
	// Each side declares the other dead (fast probe settings keep this well under a second).
	require.Eventually(t, func() bool { return a.NumMembers() == 1 && b.NumMembers() == 1 },
		20*time.Second, 20*time.Millisecond)
	assert.Positive(t, ta.Stats().PacketsDropped)

	// Heal and rejoin.
	ta.SetBlocked(nil)
	tb.SetBlocked(nil)
	_, err = b.Join([]string{addrA})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return a.NumMembers() == 2 && b.NumMembers() == 2 },
		10*time.Second, 10*time.Millisecond)
	_, err = ta.Call(context.Background(), addrB, Request{})
	require.NoError(t, err)
}

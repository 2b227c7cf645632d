package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/distcache/distcache/engine"
	"github.com/distcache/distcache/testutil"
	"github.com/stretchr/testify/require"
)

// nextEvent returns the next event of type typ from ch, skipping others.
func nextEvent(t *testing.T, ch <-chan engine.Event, typ engine.EventType) engine.Event {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			require.True(t, ok, "channel closed while waiting for %v", typ)
			if ev.Type == typ {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %v event", typ)
		}
	}
}

// Events reports, on every subscriber, who joined, who left gracefully and
// who failed (name and address, ring size after), each followed by
// RingChanged; Stop closes every channel.
func TestEvents(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{})
	watcher := c.Node(0)
	a, b := watcher.Events(), watcher.Events()

	i := c.StartNode("node-3")
	for _, ch := range []<-chan engine.Event{a, b} {
		ev := nextEvent(t, ch, engine.MemberJoined)
		require.Equal(t, "node-3", ev.Node)
		require.Equal(t, c.Node(i).Addr(), ev.Addr)
		require.Equal(t, 4, ev.Members)
		require.False(t, ev.At.IsZero())
		rc := nextEvent(t, ch, engine.RingChanged)
		require.Equal(t, 4, rc.Members)
		require.Empty(t, rc.Node)
	}

	addr := c.Node(i).Addr()
	c.StopNode(i) // graceful
	ev := nextEvent(t, a, engine.MemberLeft)
	require.Equal(t, "node-3", ev.Node)
	require.Equal(t, addr, ev.Addr)
	require.Equal(t, 3, ev.Members)

	addr = c.Node(2).Addr()
	c.CrashNode(2) // no goodbye: declared dead by failure detection
	ev = nextEvent(t, a, engine.MemberFailed)
	require.Equal(t, c.Name(2), ev.Node)
	require.Equal(t, addr, ev.Addr)
	require.Equal(t, 2, ev.Members)

	require.NoError(t, watcher.Stop(context.Background()))
	for _, ch := range []<-chan engine.Event{a, b} {
		for range ch { // drain: Stop closes it
		}
	}
	_, ok := <-watcher.Events()
	require.False(t, ok, "after Stop, Events returns a closed channel")
}

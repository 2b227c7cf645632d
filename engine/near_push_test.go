package engine_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/distcache/distcache/engine"
	"github.com/distcache/distcache/testutil"
	"github.com/stretchr/testify/require"
)

// pushCluster is three nodes with near caches whose copies outlive the
// test, settled so that writes invalidate recorded holders only.
func pushCluster(t *testing.T) *testutil.Cluster {
	t.Helper()
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{
		Options: []engine.Option{engine.WithKeySpaceNearCache(ks, 8<<20, time.Minute)},
	})
	settleAll(c)
	return c
}

// stableRound runs round until no ring changed during it (on a loaded
// machine members are sometimes suspected and back, and a ring change
// rightly voids every near copy and tombstone), at most five times.
func stableRound(t *testing.T, c *testutil.Cluster, round func(attempt int) (ok bool)) {
	t.Helper()
	for attempt := 1; attempt <= 5; attempt++ {
		awaitQuiet(t, c)
		rings := ringVersions(c)
		ok := round(attempt)
		if slices.Equal(rings, ringVersions(c)) {
			require.True(t, ok)
			return
		}
		t.Logf("a ring changed during round %d: again", attempt)
	}
	t.Fatal("rings changed in every round")
}

// pollFor polls cond until it holds (true) or timeout passes (false).
func pollFor(timeout time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

// After a Put, the nodes whose near copies the write dropped get the new
// value pushed. Invariants: every node reads the new value once the Put has
// returned; a holder that took the push serves it from its near cache (no
// forward); the DataSource was asked once, for the first read.
func TestWritePushesValueToNearHolders(t *testing.T) {
	c := pushCluster(t)
	ctx := context.Background()
	stableRound(t, c, func(attempt int) bool {
		key := c.KeysOwnedBy(0, 1, fmt.Sprint("pushed", attempt))[0]
		c.DataSource.SetValue(key, []byte("v1"))
		for _, n := range []int{1, 2} {
			got, err := c.Node(n).Get(ctx, ks, key)
			require.NoError(t, err)
			require.Equal(t, "v1", string(got))
			// The copy is stored asynchronously; an invalidation that came
			// first would find nothing to leave a tombstone for.
			awaitNear(t, c, n, key)
		}
		taken := []int64{ksStats(t, c.Node(1)).PushesTaken, ksStats(t, c.Node(2)).PushesTaken}
		// Through node 1, which forwards it to the owner.
		require.NoError(t, c.Node(1).Put(ctx, ks, engine.Entry{Key: key, Value: []byte("v2")}))
		got, err := c.Node(0).Get(ctx, ks, key)
		require.NoError(t, err)
		require.Equal(t, "v2", string(got), "the owner after the Put")
		// (A holder's Get before the push arrives forwards and keeps what
		// the owner answers; the push then finds no tombstone to replace.)
		for i, n := range []int{1, 2} {
			// Not WaitFor: a ring change meanwhile rightly voids the tombstone the
			// push needs, and stableRound then runs the round again.
			if !pollFor(5*time.Second, func() bool { return ksStats(t, c.Node(n)).PushesTaken > taken[i] }) {
				tomb, ok := engine.NearTombstone(c.Node(n), ks, key)
				t.Logf("round %d: node %d took no push in 5 s (tombstone %v, version %d; owner sent %d pushes)",
					attempt, n, ok, tomb, ksStats(t, c.Node(0)).PushesSent)
				return false
			}
			before := ksStats(t, c.Node(n))
			got, err := c.Node(n).Get(ctx, ks, key)
			require.NoError(t, err)
			require.Equal(t, "v2", string(got))
			after := ksStats(t, c.Node(n))
			if after.Forwarded != before.Forwarded || after.NearHits != before.NearHits+1 {
				return false // the copy went with a ring change
			}
		}
		require.Equal(t, 1, c.DataSource.Fetches(key))
		return true
	})
}

// A holder installs a push only over its tombstone of the key, from the
// key's owner, with a store version above the tombstone's. Invariants, with
// the owner's own pushes off: a push at or below the tombstone's version
// (a late push of an earlier write) is refused, and the next Get forwards;
// so are pushes from a non-owner and pushes of keys the node held no copy
// of; a valid push is served from the near cache, without a forward.
func TestPushRules(t *testing.T) {
	c := pushCluster(t)
	engine.StopPushes(t)
	ctx := context.Background()
	owner, holder, other := c.Node(0), c.Node(1), c.Node(2)
	stableRound(t, c, func(attempt int) bool {
		keys := c.KeysOwnedBy(0, 2, fmt.Sprint("rules", attempt))
		key, neverRead := keys[0], keys[1]
		c.DataSource.SetValue(key, []byte("v1"))
		_, err := holder.Get(ctx, ks, key)
		require.NoError(t, err)
		require.NoError(t, owner.Put(ctx, ks, engine.Entry{Key: key, Value: []byte("v2")}))
		tomb, ok := engine.NearTombstone(holder, ks, key)
		if !ok {
			return false
		}
		// forwards reports whether a Get on the holder forwarded, and what
		// it read.
		forwards := func() (bool, string) {
			before := ksStats(t, holder).Forwarded
			got, err := holder.Get(ctx, ks, key)
			require.NoError(t, err)
			return ksStats(t, holder).Forwarded > before, string(got)
		}

		engine.Push(holder, ks, owner.NodeName(), key, []byte("stale"), tomb) // not above the tombstone
		fwd, got := forwards()
		require.True(t, fwd, "a push at the tombstone's version was installed")
		require.Equal(t, "v2", got)

		require.NoError(t, owner.Put(ctx, ks, engine.Entry{Key: key, Value: []byte("v3")}))
		tomb, ok = engine.NearTombstone(holder, ks, key)
		if !ok {
			return false
		}
		engine.Push(holder, ks, other.NodeName(), key, []byte("forged"), tomb+1) // not the owner
		engine.Push(holder, ks, owner.NodeName(), neverRead, []byte("unasked"), tomb+1)
		_, held := engine.NearTombstone(holder, ks, neverRead)
		require.False(t, held)
		fwd, got = forwards()
		require.True(t, fwd, "a push from a non-owner was installed")
		require.Equal(t, "v3", got)
		before := ksStats(t, holder).Forwarded
		got2, err := holder.Get(ctx, ks, neverRead)
		require.NoError(t, err)
		require.NotEqual(t, "unasked", string(got2))
		require.Greater(t, ksStats(t, holder).Forwarded, before, "a push of a key never read was installed")

		require.NoError(t, owner.Put(ctx, ks, engine.Entry{Key: key, Value: []byte("v4")}))
		tomb, ok = engine.NearTombstone(holder, ks, key)
		if !ok {
			return false
		}
		engine.Push(holder, ks, owner.NodeName(), key, []byte("v4"), tomb+1)
		fwd, got = forwards()
		require.False(t, fwd, "a valid push was not installed")
		require.Equal(t, "v4", got)
		return true
	})
}

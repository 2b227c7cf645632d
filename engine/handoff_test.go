package engine_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/distcache/distcache/engine"
	"github.com/distcache/distcache/internal/enginehook"
	"github.com/distcache/distcache/internal/transport"
	"github.com/distcache/distcache/testutil"
	"github.com/stretchr/testify/require"
)

// Writes racing a node's graceful leave land on the new owner instead of
// failing, and stay readable.
func TestClusterPutsDuringGracefulLeave(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{})
	ctx := context.Background()
	keys := c.KeysOwnedBy(2, 50, "leaving")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []error
	last := map[string]string{}
	for _, n := range []int{0, 1} {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := keys[i%len(keys)]
				v := fmt.Sprintf("n%d-%d", n, i)
				err := c.Node(n).Put(ctx, ks, engine.Entry{Key: k, Value: []byte(v)})
				mu.Lock()
				if err != nil {
					failures = append(failures, err)
				} else if n == 0 {
					last[k] = v
				}
				mu.Unlock()
			}
		})
	}
	testutil.WaitFor(t, 0, func() bool { mu.Lock(); defer mu.Unlock(); return len(last) == len(keys) }, "puts running")
	c.StopNode(2)
	c.WaitConverged()
	close(stop)
	wg.Wait()
	require.Empty(t, failures, "Puts failed while the owner left")
	for _, k := range keys[:5] {
		v, err := c.Node(1).Get(ctx, ks, k)
		require.NoError(t, err)
		require.Regexp(t, `^n[01]-\d+$`, string(v), "a written value, not a reload")
	}
}

// Scaling down gracefully and up again is not a partition: the remaining
// nodes keep their entries. (In a bubble on an in-memory network: a test
// process starved for over PauseLimit on a busy machine rightly flushes.)
func TestClusterScaleDownUpKeepsEntries(t *testing.T) {
	t.Parallel()
	testutil.Bubble(t, func(t *testing.T) {
		c := testutil.NewCluster(t, 4, testutil.ClusterConfig{InMemory: true})
		ctx := context.Background()
		keys := c.KeysOwnedBy(0, 20, "keep")
		for _, k := range keys {
			_, err := c.Node(0).Get(ctx, ks, k)
			require.NoError(t, err)
		}
		c.StopNode(3)
		c.StopNode(2)
		c.WaitConverged()
		c.StartNode("node-2")
		c.WaitConverged()
		before := c.DataSource.Total()
		for _, k := range keys {
			if c.OwnerIndex(0, k) == 0 {
				_, err := c.Node(0).Get(ctx, ks, k)
				require.NoError(t, err)
			}
		}
		require.Equal(t, before, c.DataSource.Total(), "keys still owned by node 0 were kept, not flushed")
	})
}

// When a node joins, the entries of the keys it takes over are handed to
// it: no key is fetched from the DataSource again.
func TestClusterHandoffOnJoin(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{})
	ctx := context.Background()
	var keys []string
	for i := range 200 {
		keys = append(keys, fmt.Sprint("h-", i))
	}
	got, err := c.Node(0).GetMany(ctx, ks, keys)
	require.NoError(t, err)
	require.Len(t, got, 200)
	require.EqualValues(t, 200, c.DataSource.Total())
	n := c.StartNode("node-3")
	c.WaitConverged()
	testutil.WaitFor(t, 0, func() bool { return ksStats(t, c.Node(n)).HandoffsTaken > 0 }, "entries handed to the new node")
	moved := 0
	for _, k := range keys {
		if c.OwnerIndex(0, k) == n {
			moved++
		}
	}
	require.Positive(t, moved)
	testutil.WaitFor(t, 0, func() bool { return ksStats(t, c.Node(n)).Entries == int64(moved) }, "every moved key handed off, nothing else kept")
	got, err = c.Node(1).GetMany(ctx, ks, keys)
	require.NoError(t, err)
	require.Len(t, got, 200)
	require.EqualValues(t, 200, c.DataSource.Total(), "no key reloaded after the join")
	require.EqualValues(t, moved, ksStats(t, c.Node(n)).Entries)
}

// A graceful leave hands the leaving node's entries to their new owners.
func TestClusterHandoffOnLeave(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{})
	ctx := context.Background()
	keys := c.KeysOwnedBy(2, 50, "leave-h")
	_, err := c.Node(0).GetMany(ctx, ks, keys)
	require.NoError(t, err)
	require.EqualValues(t, 50, c.DataSource.Total())
	c.StopNode(2)
	c.WaitConverged()
	got, err := c.Node(0).GetMany(ctx, ks, keys)
	require.NoError(t, err)
	require.Len(t, got, 50)
	require.EqualValues(t, 50, c.DataSource.Total(), "the leaving node's entries were handed off, not reloaded")
}

// A key deleted on its new owner is never brought back by a hand-off.
func TestClusterHandoffDoesNotResurrect(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{})
	ctx := context.Background()
	keys := c.KeysOwnedBy(2, 30, "res")
	var entries []engine.Entry
	for _, k := range keys {
		entries = append(entries, engine.Entry{Key: k, Value: []byte("old")})
	}
	require.NoError(t, c.Node(0).PutMany(ctx, ks, entries))
	// Delete everything on every node, then hand off stale copies by hand:
	// the owner wrote (deleted) these keys since its ring change, so it
	// must refuse them.
	c.StopNode(2) // ring change on 0 and 1 opens their hand-off window
	c.WaitConverged()
	require.NoError(t, c.Node(0).DeleteMany(ctx, ks, keys))
	// A late hand-off of the old values (as if a departing node's push had
	// been in flight) reaches each key's owner after the delete.
	for _, k := range keys {
		owner := c.OwnerIndex(0, k)
		from := c.Node(1 - owner) // the other live node sends it
		m, _ := c.Node(owner).Owner(k)
		resp, err := enginehook.Cluster(from).Call(ctx, m, transport.Request{Op: 7, Payload: handoffPayload(ks, from.NodeName(), k, "old")})
		require.NoError(t, err)
		require.Zero(t, resp.Status)
	}
	for _, k := range keys {
		v, err := c.Node(1).Get(ctx, ks, k)
		require.NoError(t, err)
		require.Equal(t, testutil.ValueOf(k), v, "deleted, then reloaded from the DataSource; never the handed-off old value")
	}
}

// handoffPayload encodes one hand-off entry the way the engine's wire does
// (uvarint-prefixed keyspace, sender, count, key, value, expiry 0, store
// version 0: older than anything the sender wrote since).
func handoffPayload(keyspace, from, key, value string) []byte {
	var b []byte
	str := func(s string) { b = binary.AppendUvarint(b, uint64(len(s))); b = append(b, s...) }
	str(keyspace)
	str(from)
	b = binary.AppendUvarint(b, 1)
	str(key)
	str(value)
	b = binary.AppendUvarint(b, 0)
	return binary.AppendUvarint(b, 0)
}

// A graceful leave loses no acknowledged write, even for keys written just
// before it (whose invalidations the new owners noted) and while Gets keep
// arriving during the leave: the leaver hands its entries to their next
// owners before and after it leaves, and the new owners never load them
// from the DataSource.
func TestClusterGracefulLeaveLosesNoWrite(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{})
	ctx := context.Background()
	keys := c.KeysOwnedBy(2, 100, "leave")
	want := map[string]string{}
	for i, k := range keys {
		want[k] = "v1-" + k
		require.NoError(t, c.Node(i%2).Put(ctx, ks, engine.Entry{Key: k, Value: []byte(want[k])}))
	}
	for i, k := range keys[:50] { // rewritten just before the leave
		want[k] = "v2-" + k
		require.NoError(t, c.Node(i%2).Put(ctx, ks, engine.Entry{Key: k, Value: []byte(want[k])}))
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for n := range 2 { // readers on the staying nodes, through the leave
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := keys[i%len(keys)]
				v, err := c.Node(n).Get(ctx, ks, k)
				if err == nil && string(v) != want[k] {
					t.Errorf("node %d read %q for %s, want %q", n, v, k, want[k])
				}
			}
		})
	}
	c.StopNode(2)
	testutil.WaitFor(t, 10*time.Second, func() bool {
		return enginehook.Cluster(c.Node(0)).Ring().Len() == 2 && enginehook.Cluster(c.Node(1)).Ring().Len() == 2
	}, "the others saw the leave")
	for n := range 2 {
		for _, k := range keys {
			v, err := c.Node(n).Get(ctx, ks, k)
			require.NoError(t, err)
			require.Equal(t, want[k], string(v), "node %d, %s", n, k)
		}
	}
	close(stop)
	wg.Wait()
	for n := range 2 {
		st := ksStats(t, c.Node(n))
		t.Logf("node %d: hand-offs taken %d, fetches %d", n, st.HandoffsTaken, st.Fetches)
	}
	require.Zero(t, c.DataSource.Total(), "no key went back to the DataSource")
}

// A node takes a member's hand-off only within HandoffWindow of its last
// ring change: on the fake clock, one sent at the window's last millisecond
// is stored, one sent at its end is ignored (the key is loaded instead).
func TestHandoffWindowCloses(t *testing.T) {
	t.Parallel()
	testutil.Bubble(t, func(t *testing.T) {
		c := testutil.NewCluster(t, 3, testutil.ClusterConfig{InMemory: true})
		ctx := context.Background()
		owner, sender := c.Node(0), c.Node(1)
		keys := c.KeysOwnedBy(0, 2, "window")
		inside, after := keys[0], keys[1]
		self, err := sender.Owner(inside)
		require.NoError(t, err)
		handoff := func(key string) {
			t.Helper()
			resp, err := enginehook.Cluster(sender).Call(ctx, self, engine.HandoffRequest(ks, c.Name(1), key, []byte("handed")))
			require.NoError(t, err)
			require.Zero(t, resp.Status, "%s", resp.Payload)
		}
		opened := owner.RingChangedAt()
		time.Sleep(time.Until(time.Unix(0, opened).Add(engine.HandoffWindow - time.Millisecond)))
		handoff(inside)
		time.Sleep(time.Millisecond)
		handoff(after)
		require.Equal(t, opened, owner.RingChangedAt(), "no ring change meanwhile")

		v, err := owner.Get(ctx, ks, inside)
		require.NoError(t, err)
		require.Equal(t, "handed", string(v), "taken within the window")
		v, err = owner.Get(ctx, ks, after)
		require.NoError(t, err)
		require.Equal(t, testutil.ValueOf(after), v, "ignored once the window closed")
		require.EqualValues(t, 1, c.DataSource.Total(), "only the refused key was loaded")
		require.EqualValues(t, 1, ksStats(t, owner).HandoffsTaken)
	})
}

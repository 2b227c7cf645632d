package engine_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/distcache/distcache/discovery/static"
	"github.com/distcache/distcache/engine"
	"github.com/distcache/distcache/internal/enginehook"
	"github.com/distcache/distcache/keyspace"
	"github.com/distcache/distcache/testutil"
	"github.com/stretchr/testify/require"
)

// holderIndexes returns the indexes of key's n holders per node from's
// ring: the owner first.
func holderIndexes(t *testing.T, c *testutil.Cluster, from int, key string, n int) []int {
	t.Helper()
	var out []int
	for _, m := range enginehook.Cluster(c.Node(from)).Ring().Replicas(key, n) {
		for _, i := range c.Live() {
			if c.Name(i) == m.Name {
				out = append(out, i)
			}
		}
	}
	require.Len(t, out, n)
	return out
}

func replicaEntries(t *testing.T, e *engine.Engine) int64 {
	t.Helper()
	return ksStats(t, e).ReplicaEntries
}

func TestReplicasConfigValidated(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  engine.Option
	}{
		{"zero", engine.WithReplicas(0)},
		{"six", engine.WithReplicas(6)},
		{"keyspace zero", engine.WithKeySpaceReplicas(ks, 0)},
		{"keyspace negative", engine.WithKeySpaceReplicas(ks, -1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kss := []keyspace.KeySpace{keyspace.New(ks, 1<<20, testutil.NewDataSource())}
			_, err := engine.New(engine.NewConfig(static.NewDiscovery(nil), kss, tc.opt))
			require.ErrorIs(t, err, engine.ErrInvalidConfig)
			require.ErrorContains(t, err, "Replicas")
		})
	}
}

// With two copies, a Put lands on the owner and on its first replica, and
// nowhere else; a miss loads once, on the owner, which fills the replica.
func TestReplicasPlacementAndFill(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{Options: []engine.Option{engine.WithReplicas(2)}})
	ctx := context.Background()
	key := "placed"
	hs := holderIndexes(t, c, 0, key, 2)
	other := 3 - hs[0] - hs[1]
	require.NoError(t, c.Node(other).Put(ctx, ks, engine.Entry{Key: key, Value: []byte("v1")}))
	require.EqualValues(t, 1, replicaEntries(t, c.Node(hs[1])), "the replica holds a copy once the Put returns")
	require.EqualValues(t, 1, ksStats(t, c.Node(hs[1])).ReplicaWrites)
	require.Zero(t, replicaEntries(t, c.Node(hs[0])), "the owner holds the entry itself, not a copy")
	require.Zero(t, replicaEntries(t, c.Node(other)))

	loaded := "loaded"
	hs = holderIndexes(t, c, 0, loaded, 2)
	for _, n := range c.Live() {
		v, err := c.Node(n).Get(ctx, ks, loaded)
		require.NoError(t, err)
		require.Equal(t, testutil.ValueOf(loaded), v)
	}
	require.Equal(t, 1, c.DataSource.Fetches(loaded), "one fetch cluster-wide")
	require.EqualValues(t, 1, ksStats(t, c.Node(hs[0])).Fetches, "on the owner")
	testutil.WaitFor(t, 5*time.Second, func() bool {
		return ksStats(t, c.Node(hs[1])).ReplicaFills == 1
	}, "the owner sends the loaded value to its replica")
}

// A Get whose owner is unreachable (but not declared dead) is served by
// the key's replica, not by a local load.
func TestReplicasServeWhenOwnerUnreachable(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{Options: []engine.Option{engine.WithReplicas(2)}})
	ctx := context.Background()
	var key string
	var hs []int
	for i := 0; ; i++ { // a key that node 0 neither owns nor replicates
		key = fmt.Sprintf("unreach-%d", i)
		if hs = holderIndexes(t, c, 0, key, 2); hs[0] != 0 && hs[1] != 0 {
			break
		}
	}
	require.NoError(t, c.Node(0).Put(ctx, ks, engine.Entry{Key: key, Value: []byte("written")}))
	ownerAddr := c.Node(hs[0]).Addr()
	enginehook.Cluster(c.Node(0)).Transport().SetBlocked(func(a string) bool { return a == ownerAddr })
	defer enginehook.Cluster(c.Node(0)).Transport().SetBlocked(nil)
	v, err := c.Node(0).Get(ctx, ks, key)
	require.NoError(t, err)
	require.Equal(t, "written", string(v), "the replica's copy, not the DataSource's value")
	require.Zero(t, c.DataSource.Total())
	require.EqualValues(t, 1, ksStats(t, c.Node(hs[1])).ReplicaReads)
	require.Zero(t, ksStats(t, c.Node(0)).Degraded)
}

// Once the owner is declared dead, its first replica owns the key and
// already holds every acknowledged write: no read returns the DataSource's
// value, and nothing is fetched.
func TestReplicasSurviveOwnerCrash(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{Options: []engine.Option{engine.WithReplicas(2)}})
	ctx := context.Background()
	keys := c.KeysOwnedBy(2, 60, "crash")
	want := map[string]string{}
	for i, k := range keys {
		want[k] = "w-" + k
		require.NoError(t, c.Node(i%2).Put(ctx, ks, engine.Entry{Key: k, Value: []byte(want[k])}))
	}
	// A loaded key too: the fill makes its copy.
	loaded := c.KeysOwnedBy(2, 1, "crash-loaded")[0]
	_, err := c.Node(0).Get(ctx, ks, loaded)
	require.NoError(t, err)
	want[loaded] = string(testutil.ValueOf(loaded))
	keys = append(keys, loaded)
	testutil.WaitFor(t, 5*time.Second, func() bool {
		return replicaEntries(t, c.Node(0))+replicaEntries(t, c.Node(1)) == int64(len(keys))
	}, "every key has its copy")
	fetched := c.DataSource.Total()

	c.CrashNode(2)
	testutil.WaitFor(t, 15*time.Second, func() bool {
		return enginehook.Cluster(c.Node(0)).Ring().Len() == 2 && enginehook.Cluster(c.Node(1)).Ring().Len() == 2
	}, "the others declared node 2 dead")
	for n := range 2 {
		for _, k := range keys {
			v, err := c.Node(n).Get(ctx, ks, k)
			require.NoError(t, err)
			require.Equal(t, want[k], string(v), "node %d, %s", n, k)
		}
	}
	require.Equal(t, fetched, c.DataSource.Total(), "the new owners already held the data")
	// And the copies are re-established on the one other member.
	testutil.WaitFor(t, 5*time.Second, func() bool {
		return replicaEntries(t, c.Node(0))+replicaEntries(t, c.Node(1)) == int64(len(keys))
	}, "repair gives every key a copy again")
}

// A Put whose replica cannot be reached is acknowledged by the owner, and
// repair brings the replica up to date once it can be reached again.
func TestReplicasRepairAfterUnreachableReplica(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{Options: []engine.Option{engine.WithReplicas(2)}})
	ctx := context.Background()
	key := "repair"
	hs := holderIndexes(t, c, 0, key, 2)
	require.NoError(t, c.Node(hs[0]).Put(ctx, ks, engine.Entry{Key: key, Value: []byte("v1")}))
	replicaAddr := c.Node(hs[1]).Addr()
	enginehook.Cluster(c.Node(hs[0])).Transport().SetBlocked(func(a string) bool { return a == replicaAddr })
	require.NoError(t, c.Node(hs[0]).Put(ctx, ks, engine.Entry{Key: key, Value: []byte("v2")}), "acknowledged by the owner alone")
	require.Zero(t, ksStats(t, c.Node(hs[0])).Repairs)
	enginehook.Cluster(c.Node(hs[0])).Transport().SetBlocked(nil)
	testutil.WaitFor(t, 5*time.Second, func() bool {
		return ksStats(t, c.Node(hs[0])).Repairs >= 1
	}, "repair pushes the write to the replica")
	// The replica now holds v2: with the owner unreachable from a third
	// node, that node reads it there.
	other := 3 - hs[0] - hs[1]
	ownerAddr := c.Node(hs[0]).Addr()
	enginehook.Cluster(c.Node(other)).Transport().SetBlocked(func(a string) bool { return a == ownerAddr })
	defer enginehook.Cluster(c.Node(other)).Transport().SetBlocked(nil)
	v, err := c.Node(other).Get(ctx, ks, key)
	require.NoError(t, err)
	require.Equal(t, "v2", string(v))
	require.Zero(t, c.DataSource.Total())
}

// A late replication never brings back an older value: a replica refuses
// a copy older than the one it holds or than a delete it applied.
func TestReplicasRefuseOlderCopies(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{Options: []engine.Option{engine.WithReplicas(3)}})
	ctx := context.Background()
	key := "order"
	for i := range 20 {
		require.NoError(t, c.Node(i%3).Put(ctx, ks, engine.Entry{Key: key, Value: fmt.Appendf(nil, "v%d", i)}))
	}
	require.NoError(t, c.Node(0).Delete(ctx, ks, key))
	for _, n := range c.Live() {
		require.Zero(t, replicaEntries(t, c.Node(n)), "node %d: the delete reached every copy", n)
	}
}

// Writes stay linearizable with two copies (see TestLinearizableWrites).
func TestLinearizableWritesReplicas(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{Options: []engine.Option{engine.WithReplicas(2)}})
	checkLinearizable(t, c, 3*time.Second)
}

// failureWatch records whether any of c's live nodes sees a member fail
// (not leave) from now on.
func failureWatch(t *testing.T, c *testutil.Cluster) func() bool {
	var mu sync.Mutex
	failed := false
	for _, n := range c.Live() {
		ch := c.Node(n).Events()
		go func() {
			for ev := range ch {
				if ev.Type == engine.MemberFailed {
					mu.Lock()
					failed = true
					mu.Unlock()
				}
			}
		}()
	}
	return func() bool {
		mu.Lock()
		defer mu.Unlock()
		return failed
	}
}

// A join moves keys to the new node without a window in which any node
// answers from the DataSource: the new owner takes each key from the
// member that held it. A member declared failed meanwhile flushes by
// design, which would lose keys with one copy: the cluster probes every
// second, as in production, so that a machine loaded by -race does not
// get members declared failed, and a run in which one was fails.
func TestLosslessHandoffOnJoin(t *testing.T) {
	tuning := testutil.LocalTuning()
	tuning.ProbeInterval, tuning.ProbeTimeout = time.Second, 400*time.Millisecond
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{Options: []engine.Option{engine.WithClusterTuning(tuning)}})
	ctx := context.Background()
	var keys []string
	want := map[string]string{}
	for i := range 300 {
		k := fmt.Sprintf("join-%d", i)
		keys = append(keys, k)
		want[k] = "w-" + k
		require.NoError(t, c.Node(i%3).Put(ctx, ks, engine.Entry{Key: k, Value: []byte(want[k])}))
	}
	flapped := failureWatch(t, c)
	var (
		mu  sync.Mutex
		bad []string
	)
	check := func(n int, k string, v []byte) {
		if string(v) != want[k] {
			mu.Lock()
			bad = append(bad, fmt.Sprintf("node %d read %q for %s", n, v, k))
			mu.Unlock()
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	readers := func(n int) {
		e := c.Node(n)
		wg.Go(func() {
			// Paced: flat-out readers starve gossip on a small machine
			// under -race, and members flap.
			tick := time.NewTicker(200 * time.Microsecond)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				k := keys[i%len(keys)]
				if v, err := e.Get(ctx, ks, k); err == nil {
					check(n, k, v)
				}
			}
		})
	}
	for n := range 3 {
		readers(n)
	}
	joined := c.StartNode("node-3")
	readers(joined)
	c.WaitConverged()
	for _, n := range c.Live() {
		for _, k := range keys {
			v, err := c.Node(n).Get(ctx, ks, k)
			require.NoError(t, err)
			check(n, k, v)
		}
	}
	close(stop)
	wg.Wait()
	for _, n := range c.Live() {
		st := ksStats(t, c.Node(n))
		t.Logf("node %d: fetches %d, degraded %d, handoffs taken %d", n, st.Fetches, st.Degraded, st.HandoffsTaken)
	}
	require.False(t, flapped(), "a member was declared failed during the join (%d stale reads, %d fetches)", len(bad), c.DataSource.Total())
	require.Empty(t, bad, "reads older than an acknowledged write")
	require.Zero(t, c.DataSource.Total(), "no key went back to the DataSource")
}

// An owner that lost its entry (here: evicted by a flush) takes the
// replica's copy instead of fetching: an acknowledged write survives.
func TestReplicasRefillOwnerFromCopy(t *testing.T) {
	// (Hand-off off: the takeover of moving keys would find them too.)
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{Options: []engine.Option{engine.WithReplicas(2), engine.WithHandoff(false)}})
	ctx := context.Background()
	keys := c.KeysOwnedBy(1, 20, "refill")
	for _, k := range keys {
		require.NoError(t, c.Node(0).Put(ctx, ks, engine.Entry{Key: k, Value: []byte("w-" + k)}))
	}
	// Drop the owner's entries as a flush would: write them away through
	// a keyspace replacement, which empties its store.
	require.NoError(t, c.Node(1).UpdateKeySpace(ctx, keyspace.New(ks, 64<<20, c.DataSource)))
	for _, k := range keys {
		v, err := c.Node(2).Get(ctx, ks, k)
		require.NoError(t, err)
		require.Equal(t, "w-"+k, string(v))
	}
	require.Zero(t, c.DataSource.Total(), "the owner refilled from its replica")
}

// A replica asked for a key it does not own (a peer whose ring already
// makes it the owner, while its own ring does not yet) answers from its
// copy without keeping the value as owned, and must keep the copy: it is
// what the replica takes over from when its ring catches up. Invariant:
// after such a Get the replica still holds its copy, and the DataSource
// was not asked.
func TestPeerGetUnderAnotherRingKeepsReplicaCopy(t *testing.T) {
	const label = "replica-keeps-copy"
	secret := []byte("0123456789abcdef0123456789abcdef")
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{Label: label, Options: []engine.Option{
		engine.WithGossipSecret(secret), engine.WithReplicas(2)}})
	ctx := context.Background()
	key := c.KeysOwnedBy(0, 1, "keep")[0]
	hs := holderIndexes(t, c, 0, key, 2)
	replica := c.Node(hs[1])
	require.NoError(t, c.Node(hs[0]).Put(ctx, ks, engine.Entry{Key: key, Value: []byte("v1")}))
	require.EqualValues(t, 1, replicaEntries(t, replica), "the write reached the replica")
	fetches := c.DataSource.Total()

	peer := rawPeer(t, label, c.Name(hs[0]), secret) // a member's name: the owner's
	resp := peer(replica, engine.GetRequest(ks, key))
	require.Contains(t, string(resp.Payload), "v1", "the replica answered from its copy")
	require.EqualValues(t, 1, replicaEntries(t, replica), "the replica still holds its copy")
	require.Equal(t, fetches, c.DataSource.Total(), "no DataSource fetch")
}

// A node keeps replica copies only of keys it holds in its own ring. A
// copy sent under another ring (the sender's, a moment before or after a
// membership change) is refused, and the answer says so, so that the
// sender repairs it once the rings agree: a copy kept on a non-holder
// would miss the writes that go to the key's holders, and be promoted if
// the node became the key's owner again. Invariant: the non-holder stores
// nothing and answers "refused"; a holder stores the copy and does not.
func TestReplicaCopyRefusedByNonHolder(t *testing.T) {
	const label = "replica-non-holder"
	secret := []byte("0123456789abcdef0123456789abcdef")
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{Label: label, Options: []engine.Option{
		engine.WithGossipSecret(secret), engine.WithReplicas(2)}})
	key := c.KeysOwnedBy(0, 1, "nonholder")[0]
	hs := holderIndexes(t, c, 0, key, 2)
	other := 3 - hs[0] - hs[1] // the node that holds no copy
	peer := rawPeer(t, label, c.Name(hs[0]), secret)

	resp := peer(c.Node(other), engine.ReplicateRequest(ks, c.Name(hs[0]), key, []byte("stray")))
	require.True(t, engine.ReplicateRefused(resp.Payload), "the non-holder refuses the copy")
	require.Zero(t, replicaEntries(t, c.Node(other)), "and keeps nothing")

	resp = peer(c.Node(hs[1]), engine.ReplicateRequest(ks, c.Name(hs[0]), key, []byte("kept")))
	require.False(t, engine.ReplicateRefused(resp.Payload))
	require.EqualValues(t, 1, replicaEntries(t, c.Node(hs[1])), "the replica keeps it")
}

// A Get whose owner cannot be reached reads a replica; a replica that is
// writing the key (it became the owner in its ring already) answers busy,
// and the Get waits for it or fails, never degrading to the DataSource,
// whose value is older than the replica's. Invariant: while the replica is
// busy the Get fails by its deadline; afterwards it returns the replica's
// copy; the DataSource is never asked.
func TestReadReplicaWaitsForBusyReplica(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{Options: []engine.Option{engine.WithReplicas(2)}})
	ctx := context.Background()
	key := c.KeysOwnedBy(0, 1, "busy")[0]
	hs := holderIndexes(t, c, 0, key, 2)
	reader := 3 - hs[0] - hs[1]
	require.NoError(t, c.Node(hs[0]).Put(ctx, ks, engine.Entry{Key: key, Value: []byte("written")}))
	fetches := c.DataSource.Total()

	ownerAddr := c.Node(hs[0]).Addr()
	enginehook.Cluster(c.Node(reader)).Transport().SetBlocked(func(a string) bool { return a == ownerAddr })
	defer enginehook.Cluster(c.Node(reader)).Transport().SetBlocked(nil)
	release := engine.HoldWrite(c.Node(hs[1]), ks, key)
	gctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	v, err := c.Node(reader).Get(gctx, ks, key)
	cancel()
	require.Error(t, err, "got %q while the replica was busy", v)
	release()

	v, err = c.Node(reader).Get(ctx, ks, key)
	require.NoError(t, err)
	require.Equal(t, "written", string(v))
	require.Equal(t, fetches, c.DataSource.Total(), "the DataSource was never asked")
}

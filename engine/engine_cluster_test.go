package engine_test

import (
	"context"
	"errors"
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

func ksStats(t *testing.T, e *engine.Engine) engine.KeySpaceStats {
	t.Helper()
	st, ok := e.Stats().KeySpace(ks)
	require.True(t, ok)
	return st
}

// Every node computes the same owner for every key.
func TestClusterAgreesOnOwners(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{})
	owners := map[int]int{}
	for i := range 2000 {
		k := fmt.Sprint("key-", i)
		o := c.OwnerIndex(0, k)
		owners[o]++
		for n := 1; n < 3; n++ {
			require.Equal(t, o, c.OwnerIndex(n, k), "node %d disagrees on %s", n, k)
		}
	}
	require.Len(t, owners, 3, "every node owns keys")
	for n, cnt := range owners {
		require.Greater(t, cnt, 2000/3/2, "node %d owns too few keys: %v", n, owners)
	}
}

// 300 concurrent Gets of one cold key, spread over all nodes, make exactly
// one Fetch, on the owner.
func TestClusterColdKeyOneFetch(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{})
	c.DataSource.SetLatency(20 * time.Millisecond)
	const key = "cold"
	owner := c.OwnerIndex(0, key)
	var wg sync.WaitGroup
	errs := make(chan error, 300)
	for i := range 300 {
		wg.Go(func() {
			v, err := c.Node(i%3).Get(context.Background(), ks, key)
			if err == nil && string(v) != string(testutil.ValueOf(key)) {
				err = fmt.Errorf("wrong value %q", v)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, 1, c.DataSource.Fetches(key))
	for i := range 3 {
		st := ksStats(t, c.Node(i))
		if i == owner {
			require.EqualValues(t, 1, st.Fetches)
			require.EqualValues(t, 1, st.Entries)
		} else {
			require.Zero(t, st.Fetches, "non-owner %d fetched", i)
			require.Zero(t, st.Entries, "non-owner %d stored", i)
			require.Zero(t, st.Degraded)
			require.Positive(t, st.Forwarded)
			// 100 callers on this node shared a handful of forwards.
			require.Less(t, st.Forwarded, int64(100))
		}
	}
}

// Put on node A: Get on every node returns it; only the owner stores it.
func TestClusterPutVisibleEverywhere(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{})
	ctx := context.Background()
	for from := range 3 {
		key := fmt.Sprint("put-", from)
		owner := c.OwnerIndex(0, key)
		before := make([]int64, 3)
		for i := range 3 {
			before[i] = ksStats(t, c.Node(i)).Entries
		}
		require.NoError(t, c.Node(from).Put(ctx, ks, engine.Entry{Key: key, Value: []byte("v" + key)}))
		for i := range 3 {
			v, err := c.Node(i).Get(ctx, ks, key)
			require.NoError(t, err)
			require.Equal(t, "v"+key, string(v))
		}
		for i := range 3 {
			grew := ksStats(t, c.Node(i)).Entries - before[i]
			if i == owner {
				require.EqualValues(t, 1, grew, "owner stores it")
			} else {
				require.Zero(t, grew, "node %d is not the owner", i)
			}
		}
	}
	require.Zero(t, c.DataSource.Total())
}

// Delete or DeleteMany on any node: no node returns the old value.
func TestClusterDeleteNoStaleReads(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{})
	ctx := context.Background()
	var keys []string
	var entries []engine.Entry
	for i := range 100 {
		k := fmt.Sprint("d-", i)
		keys = append(keys, k)
		entries = append(entries, engine.Entry{Key: k, Value: []byte("old")})
	}
	require.NoError(t, c.Node(0).PutMany(ctx, ks, entries))
	for i := range 3 { // everyone reads the old value
		got, err := c.Node(i).GetMany(ctx, ks, keys)
		require.NoError(t, err)
		require.Len(t, got, 100)
		require.Equal(t, "old", string(got["d-5"]))
	}
	require.NoError(t, c.Node(2).DeleteMany(ctx, ks, keys))
	for i := range 3 {
		got, err := c.Node(i).GetMany(ctx, ks, keys)
		require.NoError(t, err)
		for _, k := range keys {
			require.Equal(t, string(testutil.ValueOf(k)), string(got[k]), "node %d served a stale %s", i, k)
		}
	}
	// Single-key Delete from a non-owner.
	key := keys[0]
	nonOwner := (c.OwnerIndex(0, key) + 1) % 3
	require.NoError(t, c.Node(0).Put(ctx, ks, engine.Entry{Key: key, Value: []byte("old2")}))
	require.NoError(t, c.Node(nonOwner).Delete(ctx, ks, key))
	for i := range 3 {
		v, err := c.Node(i).Get(ctx, ks, key)
		require.NoError(t, err)
		require.NotEqual(t, "old2", string(v))
	}
}

// GetMany of 100 keys: at most one request per remote owner.
func TestClusterGetManyOneRequestPerOwner(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{})
	var keys []string
	for i := range 100 {
		keys = append(keys, fmt.Sprint("m-", i))
	}
	c.DataSource.SetMissing("m-7", true)
	before := ksStats(t, c.Node(0)).Forwarded
	got, err := c.Node(0).GetMany(context.Background(), ks, keys)
	require.NoError(t, err)
	require.Len(t, got, 99)
	require.NotContains(t, got, "m-7")
	require.EqualValues(t, 2, ksStats(t, c.Node(0)).Forwarded-before, "one request per remote owner")
	require.EqualValues(t, 100, c.DataSource.Total(), "each key fetched once, on its owner")
	for i := range 3 {
		owned := 0
		for _, k := range keys {
			if c.OwnerIndex(0, k) == i {
				owned++
			}
		}
		require.EqualValues(t, owned, ksStats(t, c.Node(i)).Fetches)
	}
}

// Typed errors survive the hop.
func TestClusterTypedErrors(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{})
	ctx := context.Background()
	key := c.KeysOwnedBy(1, 1, "e")[0]
	c.DataSource.SetMissing(key, true)
	_, err := c.Node(0).Get(ctx, ks, key)
	require.ErrorIs(t, err, keyspace.ErrNotFound)

	key2 := c.KeysOwnedBy(1, 1, "boom")[0]
	c.DataSource.SetError(key2, errors.New("database exploded"))
	_, err = c.Node(0).Get(ctx, ks, key2)
	var re *engine.RemoteError
	require.ErrorAs(t, err, &re)
	require.Equal(t, c.Name(1), re.Peer)
	require.Contains(t, re.Message, "database exploded")
	require.Zero(t, ksStats(t, c.Node(0)).Fetches, "the caller did not fetch itself")
}

// A keyspace that a peer lacks: the peer answers ErrKeySpaceNotFound (no
// panic) and the caller serves the key itself.
func TestClusterKeySpaceMissingOnPeer(t *testing.T) {
	ds := testutil.NewDataSource()
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{KeySpaces: func(i int) []keyspace.KeySpace {
		kss := []keyspace.KeySpace{keyspace.New(ks, 1<<20, ds)}
		if i == 0 {
			kss = append(kss, keyspace.New("only0", 1<<20, ds))
		}
		return kss
	}})
	key := c.KeysOwnedBy(1, 1, "x")[0]
	v, err := c.Node(0).Get(context.Background(), "only0", key)
	require.NoError(t, err)
	require.Equal(t, testutil.ValueOf(key), v)
	st, _ := c.Node(0).Stats().KeySpace("only0")
	require.EqualValues(t, 1, st.Degraded)
	_, err = c.Node(1).Get(context.Background(), "only0", key)
	require.ErrorIs(t, err, engine.ErrKeySpaceNotFound)
}

// DeleteKeySpace is cluster-wide.
func TestClusterDeleteKeySpace(t *testing.T) {
	ds := testutil.NewDataSource()
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{KeySpaces: func(int) []keyspace.KeySpace {
		return []keyspace.KeySpace{keyspace.New(ks, 1<<20, ds), keyspace.New("gone", 1<<20, ds)}
	}})
	require.NoError(t, c.Node(1).DeleteKeySpace(context.Background(), "gone"))
	for i := range 3 {
		require.Equal(t, []string{ks}, c.Node(i).KeySpaces())
		_, err := c.Node(i).Get(context.Background(), "gone", "k")
		require.ErrorIs(t, err, engine.ErrKeySpaceNotFound)
	}
}

// Stop one node: its keys get new owners; Gets keep succeeding on the other
// nodes throughout; a node restarted with the same name rejoins.
func TestClusterNodeLeavesAndRejoins(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{})
	ctx := context.Background()
	keys := c.KeysOwnedBy(2, 20, "leave")
	for _, k := range keys {
		_, err := c.Node(0).Get(ctx, ks, k)
		require.NoError(t, err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var failures []error
	var mu sync.Mutex
	for _, n := range []int{0, 1} {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := c.Node(n).Get(ctx, ks, keys[i%len(keys)]); err != nil {
					mu.Lock()
					failures = append(failures, err)
					mu.Unlock()
				}
			}
		})
	}
	c.StopNode(2)
	c.WaitConverged()
	for _, k := range keys {
		require.NotEqual(t, 2, c.OwnerIndex(0, k))
		require.Equal(t, c.OwnerIndex(0, k), c.OwnerIndex(1, k))
	}
	idx := c.StartNode(c.Name(2))
	require.Equal(t, 2, idx)
	c.WaitConverged()
	close(stop)
	wg.Wait()
	require.Empty(t, failures, "Gets failed during the topology change")
	require.Equal(t, 2, c.OwnerIndex(0, keys[0]), "the restarted node takes its partitions back")
	v, err := c.Node(2).Get(ctx, ks, keys[0])
	require.NoError(t, err)
	require.Equal(t, testutil.ValueOf(keys[0]), v)
}

// A crashed node (no leave) is removed by failure detection; Gets for its
// keys keep succeeding (degraded, then on the new owner).
func TestClusterNodeCrash(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{})
	ctx := context.Background()
	keys := c.KeysOwnedBy(2, 10, "crash")
	c.CrashNode(2)
	for _, k := range keys {
		v, err := c.Node(0).Get(ctx, ks, k)
		require.NoError(t, err)
		require.Equal(t, testutil.ValueOf(k), v)
	}
	c.WaitConverged()
	for _, k := range keys {
		require.NotEqual(t, 2, c.OwnerIndex(0, k))
	}
}

// A node with another cluster label never joins.
func TestClusterLabelIsolation(t *testing.T) {
	a := testutil.NewCluster(t, 2, testutil.ClusterConfig{Label: "blue"})
	b := testutil.NewCluster(t, 1, testutil.ClusterConfig{Label: "green"})
	// Point green's node at blue's nodes: the join must fail.
	_, err := enginehook.Cluster(b.Node(0)).Join(context.Background(), []string{a.Node(0).Addr(), a.Node(1).Addr()})
	require.Error(t, err)
	require.Len(t, b.Node(0).Members(), 1)
	require.Len(t, a.Node(0).Members(), 2)
}

// A node cut off long enough to be reaped by the others comes back by
// itself (periodic re-discovery), the cluster agrees on one view again, and
// no node serves a value that was overwritten while the node was cut off.
func TestClusterPartitionHeals(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{})
	ctx := context.Background()
	keys := c.KeysOwnedBy(2, 5, "part")
	var entries []engine.Entry
	for _, k := range keys {
		entries = append(entries, engine.Entry{Key: k, Value: []byte("v1")})
	}
	require.NoError(t, c.Node(0).PutMany(ctx, ks, entries))
	v, err := c.Node(2).Get(ctx, ks, keys[0])
	require.NoError(t, err)
	require.Equal(t, "v1", string(v))

	c.Isolate(2)
	testutil.WaitFor(t, 0, func() bool {
		return len(c.Node(0).Members()) == 2 && len(c.Node(1).Members()) == 2 && len(c.Node(2).Members()) == 1
	}, "both sides reap each other")
	// The majority overwrites the keys node 2 held; node 2 cannot hear it.
	for i := range entries {
		entries[i].Value = []byte("v2")
	}
	require.NoError(t, c.Node(0).PutMany(ctx, ks, entries))

	c.Heal()
	c.WaitConverged()
	for n := range 3 {
		got, err := c.Node(n).GetMany(ctx, ks, keys)
		require.NoError(t, err)
		for _, k := range keys {
			require.NotEqual(t, "v1", string(got[k]), "node %d served %s overwritten during the partition", n, k)
		}
	}
}

// Discovery is polled after Start: peers that appear later are joined
// without a restart.
func TestPeriodicDiscoveryJoinsLatePeers(t *testing.T) {
	ds := testutil.NewDataSource()
	provA := static.NewDiscovery(nil)
	a := newEngineWith(t, provA, ds, "a")
	require.NoError(t, a.Start(context.Background()))
	provB := static.NewDiscovery(nil)
	b := newEngineWith(t, provB, ds, "b")
	require.NoError(t, b.Start(context.Background()))
	require.Len(t, a.Members(), 1)
	require.Len(t, b.Members(), 1)
	// Only a's provider learns of b; a joins it on its next poll.
	require.NoError(t, provA.SetAddresses([]string{b.Addr()}))
	testutil.WaitFor(t, 0, func() bool { return len(a.Members()) == 2 && len(b.Members()) == 2 }, "late peer joined")
	key := "late"
	owner, err := a.Owner(key)
	require.NoError(t, err)
	other := a
	if owner.Name == a.NodeName() {
		other = b
	}
	_, err = other.Get(context.Background(), ks, key)
	require.NoError(t, err)
	require.Equal(t, 1, ds.Fetches(key))
	st, _ := other.Stats().KeySpace(ks)
	require.EqualValues(t, 0, st.Fetches, "the non-owner forwarded")
}

func newEngineWith(t *testing.T, p *static.Discovery, ds *testutil.DataSource, name string) *engine.Engine {
	t.Helper()
	opts := append(testutil.LocalOptions("late-"+t.Name()), engine.WithNodeName(name))
	e, err := engine.New(engine.NewConfig(p, []keyspace.KeySpace{keyspace.New(ks, 1<<20, ds)}, opts...))
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Stop(context.Background()) })
	return e
}

// A node cut off from half of its cluster caches nothing and refuses
// writes, so that when the network heals it has nothing stale to serve in
// the moments before it notices; the majority keeps working, and after the
// heal no node serves the value the cut-off node held (the majority's write
// may have been lost with its hand-off, refused while the node still
// believed itself cut off: then the DataSource's value is served).
func TestClusterMinorityCachesNothing(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{})
	ctx := context.Background()
	key := c.KeysOwnedBy(2, 1, "minority")[0]
	require.NoError(t, c.Node(0).Put(ctx, ks, engine.Entry{Key: key, Value: []byte("v1")}))

	c.Isolate(2)
	testutil.WaitFor(t, 0, func() bool {
		return len(c.Node(0).Members()) == 2 && len(c.Node(2).Members()) == 1
	}, "both sides reap each other")
	require.NoError(t, c.Node(0).Put(ctx, ks, engine.Entry{Key: key, Value: []byte("v2")}), "the majority writes")

	// On the cut-off node: reads come from the DataSource, every time, and
	// never from the entry it held (v1) nor from a copy it kept.
	before := c.DataSource.Fetches(key)
	for range 3 {
		v, err := c.Node(2).Get(ctx, ks, key)
		require.NoError(t, err)
		require.Equal(t, testutil.ValueOf(key), v)
	}
	require.Equal(t, before+3, c.DataSource.Fetches(key), "nothing is cached while cut off")
	err := c.Node(2).Put(ctx, ks, engine.Entry{Key: key, Value: []byte("minority")})
	require.ErrorIs(t, err, engine.ErrClusterQuorum)
	require.ErrorIs(t, c.Node(2).Delete(ctx, ks, key), engine.ErrClusterQuorum)

	c.Heal()
	c.WaitConverged()
	for n := range 3 {
		v, err := c.Node(n).Get(ctx, ks, key)
		require.NoError(t, err)
		require.Contains(t, []string{"v2", string(testutil.ValueOf(key))}, string(v), "node %d after the heal", n)
	}
}

package engine_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/distcache/distcache/discovery/static"
	"github.com/distcache/distcache/engine"
	"github.com/distcache/distcache/internal/benchutil"
	"github.com/distcache/distcache/internal/enginehook"
	"github.com/distcache/distcache/keyspace"
	"github.com/distcache/distcache/testutil"
	"github.com/stretchr/testify/require"
)

// settleAll makes every live node of c invalidate only recorded holders at
// once, as in a cluster whose ring has not changed for a while.
func settleAll(c *testutil.Cluster) {
	for _, i := range c.Live() {
		engine.SetSettleWindow(c.Node(i), 0)
	}
}

// startExtra starts one more node beside c's, joined to them, with the
// test defaults and opts; it is stopped by t.Cleanup.
func startExtra(t *testing.T, c *testutil.Cluster, label, name string, opts ...engine.Option) *engine.Engine {
	t.Helper()
	var seeds []string
	for _, i := range c.Live() {
		seeds = append(seeds, c.Node(i).Addr())
	}
	all := append(testutil.LocalOptions(label), engine.WithNodeName(name))
	all = append(all, opts...)
	e, err := engine.New(engine.NewConfig(static.NewDiscovery(&static.Config{Addresses: seeds}),
		[]keyspace.KeySpace{keyspace.New(ks, 64<<20, c.DataSource)}, all...))
	require.NoError(t, err)
	require.NoError(t, e.Start(context.Background()))
	t.Cleanup(func() { _ = e.Stop(context.Background()) })
	return e
}

// awaitRings waits until every engine's ring has n members.
func awaitRings(t *testing.T, n int, es ...*engine.Engine) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, func() bool {
		for _, e := range es {
			if enginehook.Cluster(e).Ring().Len() != n {
				return false
			}
		}
		return true
	}, "rings of %d members", n)
}

// awaitQuiet waits until gossip on every node of c knows exactly its ring's
// members: on a loaded test machine members are suspected and come back,
// and meanwhile owners broadcast their invalidations (as they should).
func awaitQuiet(t *testing.T, c *testutil.Cluster) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, func() bool {
		for _, i := range c.Live() {
			cl := enginehook.Cluster(c.Node(i))
			ring, gossip := cl.Ring(), cl.Members()
			if len(gossip) != ring.Len() {
				return false
			}
			for _, m := range gossip {
				if !ring.Contains(m.Name) {
					return false
				}
			}
		}
		return true
	}, "gossip and rings agreeing")
}

// A write sends invalidations only to the nodes that hold a copy: the
// owner records each node it answers a Get for, and no other node hears of
// the write. The holder still never reads the old value afterwards.
func TestWriteInvalidatesOnlyHolders(t *testing.T) {
	c := testutil.NewCluster(t, 4, testutil.ClusterConfig{
		Options: []engine.Option{engine.WithKeySpaceNearCache(ks, 8<<20, time.Minute)},
	})
	settleAll(c)
	// On a loaded test machine members are sometimes suspected, declared
	// failed and back: owners then broadcast, as they should. A round
	// during which a ring changed is run again.
	for attempt := 1; ; attempt++ {
		awaitQuiet(t, c)
		rings := ringVersions(c)
		key := c.KeysOwnedBy(0, 1, fmt.Sprint("held", attempt))[0]
		got := invalidationRound(t, c, key)
		if slices.Equal(rings, ringVersions(c)) || attempt == 5 {
			require.Equal(t, []int64{0, 1, 1, 0}, got,
				"invalidations sent by a write with no holder, with node 2 holding, after node 2 read again, with no Get since")
			break
		}
		t.Logf("a ring changed during round %d: again", attempt)
	}
}

// invalidationRound writes key (owned by node 0) four times from various
// nodes and returns the invalidations node 0 sent for each write; node 2
// reads the key in between as described in the caller.
func invalidationRound(t *testing.T, c *testutil.Cluster, key string) []int64 {
	t.Helper()
	ctx := context.Background()
	sent := func() int64 { return ksStats(t, c.Node(0)).InvalidationsSent }
	var out []int64
	// The database is written before the cache, as writers do: a node that
	// drops its entries (a flush after a pause of a loaded test machine)
	// reloads the current value.
	write := func(n int, v string) {
		before := sent()
		c.DataSource.SetValue(key, []byte(v))
		if v == "" {
			require.NoError(t, c.Node(n).Delete(ctx, ks, key))
		} else {
			require.NoError(t, c.Node(n).Put(ctx, ks, engine.Entry{Key: key, Value: []byte(v)}))
		}
		out = append(out, sent()-before)
	}
	write(0, "v1")          // nobody holds a copy
	awaitNear(t, c, 2, key) // node 2 holds a near copy; nodes 1 and 3 none
	require.Positive(t, ksStats(t, c.Node(0)).HolderRecords)
	write(3, "v2")
	v, err := c.Node(2).Get(ctx, ks, key)
	require.NoError(t, err)
	require.Equal(t, "v2", string(v), "the holder read the value the write replaced")
	write(3, "") // node 2 read again: it holds a copy
	write(1, "v3")
	for i := range 4 {
		v, err := c.Node(i).Get(ctx, ks, key)
		require.NoError(t, err)
		require.Equal(t, "v3", string(v), "node %d", i)
	}
	return out
}

func ringVersions(c *testutil.Cluster) []uint64 {
	var out []uint64
	for _, i := range c.Live() {
		out = append(out, enginehook.Cluster(c.Node(i)).Ring().Version())
	}
	return out
}

// Two nodes that disagree on the ring for a moment: a key's old owner,
// whose ring has not caught up with a join yet, takes a write while the
// key's new owner already holds it. The old owner's view is not settled
// (gossip has a member its ring lacks), so it invalidates every member, and
// the new owner does not serve the value the write replaced.
func TestWriteBroadcastsWhileRingsDisagree(t *testing.T) {
	label := "test-" + t.Name()
	c := testutil.NewCluster(t, 2, testutil.ClusterConfig{Label: label})
	// The slow node rebuilds its ring 5 s after a membership change; the
	// others after 10 ms.
	tuning := testutil.LocalTuning()
	tuning.RingDebounce = 5 * time.Second
	slow := startExtra(t, c, label, "slow", engine.WithClusterTuning(tuning))
	awaitRings(t, 3, c.Node(0), c.Node(1), slow)
	settleAll(c)
	engine.SetSettleWindow(slow, 0)
	ctx := context.Background()

	// The joiner's Start gives up waiting for the slow node to agree.
	joiner := startExtra(t, c, label, "joiner", engine.WithBootstrapTimeout(500*time.Millisecond))
	awaitRings(t, 4, c.Node(0), c.Node(1), joiner)
	// Gossip or, failing that, the next push-pull (5 s) brings the join.
	testutil.WaitFor(t, 15*time.Second, func() bool { return len(enginehook.Cluster(slow).Members()) == 4 }, "gossip on the slow node has the joiner")
	require.Equal(t, 3, enginehook.Cluster(slow).Ring().Len(), "the slow node rebuilt its ring early: the test needs it behind")

	// A key the slow node still owns, and that the joiner owns already.
	var key string
	for j := 0; j < 100_000 && key == ""; j++ {
		k := fmt.Sprintf("moved-%d", j)
		if enginehook.Cluster(slow).Ring().Owner(k).Name == "slow" && enginehook.Cluster(joiner).Ring().Owner(k).Name == "joiner" {
			key = k
		}
	}
	require.NotEmpty(t, key, "no key moved from the slow node to the joiner")

	v, err := joiner.Get(ctx, ks, key) // loaded and kept by its new owner
	require.NoError(t, err)
	require.Equal(t, testutil.ValueOf(key), v)
	c.DataSource.SetValue(key, []byte("new"))
	require.NoError(t, slow.Put(ctx, ks, engine.Entry{Key: key, Value: []byte("new")}))
	v, err = joiner.Get(ctx, ks, key)
	require.NoError(t, err)
	require.Equal(t, "new", string(v), "the new owner served the value the write replaced")
	require.Equal(t, 3, enginehook.Cluster(slow).Ring().Len(), "the slow node caught up before the write: inconclusive")
}

// blockFrom makes node from's calls to node to fail (as across a partition)
// until t ends.
func blockFrom(t *testing.T, c *testutil.Cluster, from, to int) {
	tr := enginehook.Cluster(c.Node(from)).Transport()
	addr := c.Node(to).Addr()
	tr.SetBlocked(func(a string) bool { return a == addr })
	t.Cleanup(func() { tr.SetBlocked(nil) })
}

// A write that cannot reach a node holding a near copy waits until the
// lease its owner granted that node has lapsed, and only then is
// acknowledged: the holder, cut off from the owner, may serve its copy
// until then, never after.
func TestWriteWaitsOutUnreachableNearHolder(t *testing.T) {
	const lease = 600 * time.Millisecond
	c := nearCluster(t, lease)
	settleAll(c)
	ctx := context.Background()
	key := c.KeysOwnedBy(0, 1, "cut")[0]
	awaitNear(t, c, 1, key)
	ring := enginehook.Cluster(c.Node(1)).Ring().Version()

	blockFrom(t, c, 0, 1)
	start := time.Now()
	require.NoError(t, c.Node(0).Put(ctx, ks, engine.Entry{Key: key, Value: []byte("new")}))
	took := time.Since(start)
	v, err := c.Node(1).Get(ctx, ks, key)
	require.NoError(t, err)
	require.Equal(t, "new", string(v), "the cut-off holder served its copy after the write was acknowledged (in %v)", took)
	require.Less(t, took, lease+time.Second, "the write waits for the lease, not longer")
	require.Equal(t, ring, enginehook.Cluster(c.Node(1)).Ring().Version(), "the ring changed, which drops near copies anyway: inconclusive")
}

// A holder that takes the invalidation but never answers (a paused
// process, a link that drops packets) delays the write for the rest of its
// lease, or invalidationPatience (1 s), not until the write's deadline:
// the write succeeds, and the holder serves no copy after it.
func TestWriteGivesUpOnSilentHolderAtItsLease(t *testing.T) {
	const lease = 1500 * time.Millisecond
	c := nearCluster(t, lease)
	settleAll(c)
	key := c.KeysOwnedBy(0, 1, "silent")[0]
	awaitNear(t, c, 1, key)
	frozen, holder := make(chan struct{}), c.Name(1)
	engine.HoldInvalidations(t, func(node string) {
		if node == holder {
			<-frozen
		}
	})
	t.Cleanup(func() { close(frozen) })

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	require.NoError(t, c.Node(0).Put(ctx, ks, engine.Entry{Key: key, Value: []byte("new")}))
	took := time.Since(start)
	require.Less(t, took, lease+time.Second, "the write waits for the lease, not for its deadline")
	v, err := c.Node(1).Get(ctx, ks, key)
	require.NoError(t, err)
	require.Equal(t, "new", string(v), "the silent holder served its copy after the write was acknowledged (in %v)", took)
}

// A write that cannot reach a node whose forward of the key is in flight
// waits until that forward can no longer be joined (the owner records a
// plain Get's asker for that long): a Get there after the write's
// acknowledgement never gets the answer the forward carries, which the
// owner sent before the write.
func TestWriteWaitsOutUnreachableForward(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{Options: []engine.Option{engine.WithKeySpaceNearCache(ks, 0, 0)}})
	settleAll(c)
	ctx := context.Background()
	key := c.KeysOwnedBy(0, 1, "fwd")[0]
	_, err := c.Node(0).Get(ctx, ks, key) // the owner holds it: the forward is quick
	require.NoError(t, err)

	var held atomic.Bool
	arrived, release := make(chan struct{}), make(chan struct{})
	engine.HoldForwardAnswers(t, func(k string) {
		if k == key && held.CompareAndSwap(false, true) {
			close(arrived)
			<-release
		}
	})
	type got struct {
		v   []byte
		err error
	}
	get := func() chan got {
		ch := make(chan got, 1)
		go func() {
			v, err := c.Node(1).Get(ctx, ks, key)
			ch <- got{v, err}
		}()
		return ch
	}
	first := get()
	select {
	case <-arrived:
	case <-time.After(5 * time.Second):
		t.Fatal("no forward from node 1")
	}

	blockFrom(t, c, 0, 1)
	require.NoError(t, c.Node(0).Put(ctx, ks, engine.Entry{Key: key, Value: []byte("new")}))
	second := get()
	var r got
	select {
	case r = <-second:
	case <-time.After(time.Second):
		// It joined the held forward.
		close(release)
		r = <-second
	}
	require.NoError(t, r.err)
	require.Equal(t, "new", string(r.v), "a Get after the write joined a forward answered before it")
	if held.Load() {
		select {
		case <-release:
		default:
			close(release)
		}
	}
	require.NoError(t, (<-first).err)
}

// A write that cannot reach a holder whose lease outlasts the write's
// deadline fails with the deadline's error, unapplied; the holder's copy is
// still current then, but the write took the owner's record of it, so it
// puts the record back: the next write still reaches the holder.
func TestWriteFailsWhileHolderLeaseOutlastsIt(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{Options: []engine.Option{
		engine.WithKeySpaceNearCache(ks, 8<<20, time.Minute),
		engine.WithKeySpaceWriteTimeout(ks, 300*time.Millisecond),
	}})
	settleAll(c)
	ctx := context.Background()
	key := c.KeysOwnedBy(0, 1, "cut")[0]
	awaitNear(t, c, 1, key)
	ring := enginehook.Cluster(c.Node(1)).Ring().Version()

	tr := enginehook.Cluster(c.Node(0)).Transport()
	holder := c.Node(1).Addr()
	tr.SetBlocked(func(a string) bool { return a == holder })
	err := c.Node(0).Put(ctx, ks, engine.Entry{Key: key, Value: []byte("lost")})
	tr.SetBlocked(nil)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	v, err := c.Node(0).Get(ctx, ks, key)
	require.NoError(t, err)
	require.Equal(t, testutil.ValueOf(key), v, "the failed write was applied")

	require.NoError(t, c.Node(0).Put(ctx, ks, engine.Entry{Key: key, Value: []byte("new")}))
	v, err = c.Node(1).Get(ctx, ks, key)
	require.NoError(t, err)
	require.Equal(t, "new", string(v), "the write after the failed one did not reach the holder")
	require.Equal(t, ring, enginehook.Cluster(c.Node(1)).Ring().Version(), "the ring changed, which drops near copies anyway: inconclusive")
}

// A holder that left gracefully stopped serving its callers before it
// announced its leave, so a write that cannot reach it any more does not
// wait out its lease.
func TestWriteDoesNotWaitForLeftHolder(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{Options: []engine.Option{
		engine.WithKeySpaceNearCache(ks, 8<<20, time.Minute),
		engine.WithKeySpaceWriteTimeout(ks, 2*time.Second),
	}})
	settleAll(c)
	ctx := context.Background()
	key := c.KeysOwnedBy(0, 1, "left")[0]
	awaitNear(t, c, 1, key)
	c.StopNode(1)
	require.True(t, c.Node(0).LeftGracefully(c.Name(1)))
	awaitRings(t, 2, c.Node(0), c.Node(2))
	require.NoError(t, c.Node(0).Put(ctx, ks, engine.Entry{Key: key, Value: []byte("new")}), "the write waited for a node that left")
	v, err := c.Node(2).Get(ctx, ks, key)
	require.NoError(t, err)
	require.Equal(t, "new", string(v))
	// Nor does it tell the next process under that name to flush: that one
	// starts empty, and a flush would drop what it takes over meanwhile.
	require.False(t, c.Node(0).Missed(c.Name(1)), "the writer would tell the node's next incarnation to flush")
}

// A holder never serves a near copy past the lease its owner granted, even
// with a longer TTL of its own: the owner forgets holders whose lease has
// lapsed (a paused or silent node among them), so their copies must lapse
// too.
func TestNearCopyLapsesWithLease(t *testing.T) {
	label := "test-" + t.Name()
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{
		Label:   label,
		Options: []engine.Option{engine.WithKeySpaceNearCache(ks, 8<<20, 300*time.Millisecond)},
	})
	long := startExtra(t, c, label, "long", engine.WithKeySpaceNearCache(ks, 8<<20, time.Hour))
	awaitRings(t, 4, c.Node(0), c.Node(1), c.Node(2), long)
	ctx := context.Background()
	var key string
	for j := 0; key == ""; j++ {
		if k := fmt.Sprintf("lease-%d", j); enginehook.Cluster(long).Ring().Owner(k).Name == c.Name(0) {
			key = k
		}
	}
	stats := func() engine.KeySpaceStats { return ksStats(t, long) }
	testutil.WaitFor(t, 5*time.Second, func() bool {
		before := stats().NearHits
		_, err := long.Get(ctx, ks, key)
		require.NoError(t, err)
		return stats().NearHits > before
	}, "a near copy on the long-TTL node")
	// The copy read continuously either lapses (the next Get forwards) or is
	// renewed before it does (near_renew.go), which is due in the last
	// 250 ms of a copy's life: with the 1 h TTL alone neither would happen
	// for half an hour.
	asked := func() int64 { s := stats(); return s.Forwarded + s.NearRenewals }
	before := asked()
	start := time.Now()
	testutil.WaitFor(t, 10*time.Second, func() bool {
		_, err := long.Get(ctx, ks, key)
		require.NoError(t, err)
		return asked() > before
	}, "the copy lapsing, or renewed, with its 300 ms lease")
	require.Less(t, time.Since(start), 5*time.Second)
}

// A node that loads a key it does not own (its owner could not serve it)
// answers its caller but keeps nothing: the owner, which never answered
// for it, would not invalidate that copy.
func TestDegradedLoadNotKept(t *testing.T) {
	ds := testutil.NewDataSource()
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{KeySpaces: func(i int) []keyspace.KeySpace {
		kss := []keyspace.KeySpace{keyspace.New(ks, 1<<20, ds)}
		if i == 0 {
			kss = append(kss, keyspace.New("only0", 1<<20, ds))
		}
		return kss
	}})
	key := c.KeysOwnedBy(1, 1, "x")[0]
	for range 2 {
		v, err := c.Node(0).Get(context.Background(), "only0", key)
		require.NoError(t, err)
		require.Equal(t, testutil.ValueOf(key), v)
	}
	st, _ := c.Node(0).Stats().KeySpace("only0")
	require.EqualValues(t, 2, st.Degraded)
	require.EqualValues(t, 2, st.Fetches, "each degraded Get loads afresh")
	require.Zero(t, st.Entries, "a degraded load is not kept")
}

// BenchmarkMessagesPerPut reports the requests a Put costs the cluster (to
// its owner, if the writer is not the owner, plus the owner's
// invalidations) on a read-mostly Zipf mix: 19 Gets per Put from random
// nodes, near caches on (the default) unless "nonear". "broadcast" keeps
// every node within its settle window, so owners invalidate every member
// (the behaviour before targeted invalidation); "targeted" lets them
// invalidate holders only.
//
//	go test -run '^$' -bench MessagesPerPut -benchtime 400x ./engine/
func BenchmarkMessagesPerPut(b *testing.B) {
	for _, n := range []int{3, 9} {
		for _, mode := range []string{"broadcast", "targeted", "targeted-nonear"} {
			b.Run(fmt.Sprintf("nodes=%d/%s", n, mode), func(b *testing.B) {
				var opts []engine.Option
				if mode == "targeted-nonear" {
					opts = append(opts, engine.WithKeySpaceNearCache(ks, 0, 0))
				}
				c := testutil.NewCluster(b, n, testutil.ClusterConfig{Options: opts})
				for _, i := range c.Live() {
					if mode != "broadcast" {
						engine.SetSettleWindow(c.Node(i), 0)
					} else {
						engine.SetSettleWindow(c.Node(i), time.Hour)
					}
				}
				ctx := context.Background()
				keys := benchutil.Keys(1000)
				idx := benchutil.ZipfIndexes(1<<16, len(keys))
				sent := func() (s int64) {
					for _, i := range c.Live() {
						st, _ := c.Node(i).Stats().KeySpace(ks)
						s += st.InvalidationsSent
					}
					return s
				}
				before := sent()
				var forwarded int64
				b.ResetTimer()
				for j := range b.N {
					for r := range 19 {
						node := (j*20 + r) % n
						if _, err := c.Node(node).Get(ctx, ks, keys[idx[(j*20+r)&(1<<16-1)]]); err != nil {
							b.Fatal(err)
						}
					}
					writer, key := (j*7)%n, keys[idx[(j*20+19)&(1<<16-1)]]
					if c.OwnerIndex(writer, key) != writer {
						forwarded++
					}
					if err := c.Node(writer).Put(ctx, ks, engine.Entry{Key: key, Value: []byte("v")}); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(forwarded+sent()-before)/float64(b.N), "msgs/put")
				b.ReportMetric(float64(sent()-before)/float64(b.N), "invalidations/put")
			})
		}
	}
}

// A write forwarded to a node that is not the key's owner in its own ring
// (its sender's ring differs, around a membership change) is applied there
// as owner, and must reach the member that owns the key in the receiver's
// ring: no record covers that member's entry, and the receiver's own entry
// goes with its next purge. Invariant: once the write returns, every node
// reads the written value, without asking the DataSource.
func TestWriteAsNonOwnerReachesRingOwner(t *testing.T) {
	const label = "write-non-owner"
	secret := []byte("0123456789abcdef0123456789abcdef")
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{Label: label, Options: []engine.Option{engine.WithGossipSecret(secret)}})
	settleAll(c)
	ctx := context.Background()
	key := c.KeysOwnedBy(0, 1, "misrouted")[0]
	require.NoError(t, c.Node(0).Put(ctx, ks, engine.Entry{Key: key, Value: []byte("old")}))

	fetches := c.DataSource.Total()
	peer := rawPeer(t, label, c.Name(2), secret)
	resp := peer(c.Node(1), engine.PutRequest(ks, key, []byte("new")))
	require.Equal(t, uint8(0), resp.Status)
	require.EqualValues(t, 1, ksStats(t, c.Node(0)).Entries, "the owner holds the written entry when the write returns")
	for _, n := range c.Live() {
		v, err := c.Node(n).Get(ctx, ks, key)
		require.NoError(t, err)
		require.Equal(t, "new", string(v), "node %d read the value the write replaced", n)
	}
	require.Equal(t, fetches, c.DataSource.Total(), "the owner got the write, not a DataSource load")
}

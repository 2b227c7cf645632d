package engine_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/distcache/distcache/engine"
	"github.com/distcache/distcache/internal/prefetch"
	"github.com/distcache/distcache/keyspace"
	"github.com/distcache/distcache/testutil"
	"github.com/distcache/distcache/warmup"
	"github.com/stretchr/testify/require"
)

// peakSource wraps a DataSource and remembers the most fetches in flight.
type peakSource struct {
	*testutil.DataSource
	cur, peak atomic.Int64
}

func (p *peakSource) Fetch(ctx context.Context, key string) ([]byte, error) {
	n := p.cur.Add(1)
	defer p.cur.Add(-1)
	for old := p.peak.Load(); n > old && !p.peak.CompareAndSwap(old, n); old = p.peak.Load() {
	}
	return p.DataSource.Fetch(ctx, key)
}

func keyRange(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

// owners maps each key to the index of its owner, per node from's ring.
func owners(c *testutil.Cluster, from int, keys []string) map[string]int {
	out := make(map[string]int, len(keys))
	for _, k := range keys {
		out[k] = c.OwnerIndex(from, k)
	}
	return out
}

// waitWarmupIdle waits until no live node has a warmup round running or
// scheduled.
func waitWarmupIdle(t *testing.T, c *testutil.Cluster) {
	t.Helper()
	testutil.WaitFor(t, 0, func() bool {
		for _, i := range c.Live() {
			if c.Node(i).WarmupStats().Busy {
				return false
			}
		}
		return true
	}, "warmup rounds did not finish")
}

// getAll reads keys from every live node and returns how many fetches
// that caused (0 when every key is stored on its owner).
func getAll(t *testing.T, c *testutil.Cluster, keys []string) int64 {
	t.Helper()
	before := c.DataSource.Total()
	for _, i := range c.Live() {
		for _, k := range keys {
			v, err := c.Node(i).Get(context.Background(), ks, k)
			require.NoError(t, err)
			require.Equal(t, testutil.ValueOf(k), v)
		}
	}
	return c.DataSource.Total() - before
}

var warmOpts = warmup.Config{MaxHotKeys: 100, MinHits: 2, Concurrency: 4, Timeout: 5 * time.Second, WarmOnJoin: true, WarmOnLeave: true}

// Without WithWarmup nothing is tracked or prefetched, even with warm keys
// configured and a member joining.
func TestWarmupDisabledByDefault(t *testing.T) {
	t.Parallel()
	testutil.Bubble(t, func(t *testing.T) {
		c := testutil.NewCluster(t, 3, testutil.ClusterConfig{InMemory: true, Options: []engine.Option{
			engine.WithKeySpaceWarmKeys(ks, keyRange("warm", 20)),
		}})
		_, err := c.Node(0).Get(context.Background(), ks, "k")
		require.NoError(t, err)
		c.StartNode("node-3")
		c.WaitConverged()
		require.EqualValues(t, 1, c.DataSource.Total(), "only the explicit Get fetched")
		for _, i := range c.Live() {
			require.Equal(t, engine.WarmupStats{}, c.Node(i).WarmupStats())
			require.Nil(t, c.Node(i).HotKeys(ks, 10))
		}
	})
}

// Warm keys are loaded on their owners at start; when a node joins, the
// ones that moved are loaded once more, on the new owner, and the others
// are not fetched again.
func TestWarmupWarmKeysOnStartAndJoin(t *testing.T) {
	t.Parallel()
	testutil.Bubble(t, func(t *testing.T) {
		warm := keyRange("warm", 40)
		c := testutil.NewCluster(t, 3, testutil.ClusterConfig{InMemory: true, Options: []engine.Option{
			engine.WithWarmup(warmOpts),
			engine.WithKeySpaceWarmKeys(ks, warm),
			engine.WithHandoff(false),
		}})
		testutil.WaitFor(t, 0, func() bool {
			for _, k := range warm {
				if c.DataSource.Fetches(k) == 0 {
					return false
				}
			}
			return true
		}, "warm keys were not prefetched")
		waitWarmupIdle(t, c)
		require.Zero(t, getAll(t, c, warm), "every warm key is stored on its owner")

		before := owners(c, 0, warm)
		counts := map[string]int{}
		for _, k := range warm {
			counts[k] = c.DataSource.Fetches(k)
		}
		n3 := c.StartNode("node-3")
		c.WaitConverged()
		after := owners(c, 0, warm)
		var moved []string
		for _, k := range warm {
			if before[k] != after[k] {
				moved = append(moved, k)
			}
		}
		require.NotEmpty(t, moved)
		testutil.WaitFor(t, 0, func() bool {
			for _, k := range moved {
				if c.DataSource.Fetches(k) < counts[k]+1 {
					return false
				}
			}
			return true
		}, "moved warm keys were not prefetched by their new owner")
		waitWarmupIdle(t, c)
		for _, k := range warm {
			want := counts[k]
			if before[k] != after[k] {
				want++
			}
			require.Equal(t, want, c.DataSource.Fetches(k), "key %s (owner %d -> %d)", k, before[k], after[k])
		}
		require.Positive(t, c.Node(n3).WarmupStats().Loaded)
		require.Zero(t, getAll(t, c, warm), "every warm key is stored on its new owner")
	})
}

// Keys that are hot on the cluster are loaded exactly once more when a
// node joins: by their new owner, told by their previous owner. Keys seen
// fewer than MinHits times are not prefetched. (Hand-off is off in these
// tests: with it, moved entries travel to their new owner and warmup has
// nothing to load; warmup still covers keys lost with a crashed node.)
func TestWarmupHotKeysMoveOnJoin(t *testing.T) {
	t.Parallel()
	testutil.Bubble(t, func(t *testing.T) {
		c := testutil.NewCluster(t, 3, testutil.ClusterConfig{InMemory: true, Options: []engine.Option{engine.WithWarmup(warmOpts), engine.WithHandoff(false)}})
		ctx := context.Background()
		hot, cold := keyRange("hot", 60), keyRange("cold", 60)
		for round := range 3 {
			for j, k := range hot {
				_, err := c.Node((j+round)%3).Get(ctx, ks, k)
				require.NoError(t, err)
			}
		}
		for j, k := range cold {
			_, err := c.Node(j%3).Get(ctx, ks, k)
			require.NoError(t, err)
		}
		require.EqualValues(t, 120, c.DataSource.Total())
		for _, k := range hot[:5] {
			o := c.Node(c.OwnerIndex(0, k))
			require.Contains(t, prefetch.Keys(o.HotKeys(ks, 100)), k, "the owner tracked the hot key")
		}

		before := owners(c, 0, append(hot, cold...))
		n3 := c.StartNode("node-3")
		c.WaitConverged()
		after := owners(c, 0, append(hot, cold...))
		var moved, movedTo3 []string
		for _, k := range hot {
			if before[k] != after[k] {
				moved = append(moved, k)
				if after[k] == n3 {
					movedTo3 = append(movedTo3, k)
				}
			}
		}
		require.NotEmpty(t, movedTo3)
		testutil.WaitFor(t, 0, func() bool {
			for _, k := range moved {
				if c.DataSource.Fetches(k) < 2 {
					return false
				}
			}
			return true
		}, "moved hot keys were not prefetched")
		waitWarmupIdle(t, c)
		for _, k := range hot {
			want := 1
			if before[k] != after[k] {
				want = 2
			}
			require.Equal(t, want, c.DataSource.Fetches(k), "hot key %s (owner %d -> %d)", k, before[k], after[k])
		}
		for _, k := range cold {
			require.Equal(t, 1, c.DataSource.Fetches(k), "cold key %s was prefetched", k)
		}
		var requested int64
		for _, i := range c.Live() {
			requested += c.Node(i).WarmupStats().Requested
		}
		require.GreaterOrEqual(t, requested, int64(len(moved)), "previous owners told the new ones")
		st, ok := c.Node(n3).Stats().KeySpace(ks)
		require.True(t, ok)
		require.GreaterOrEqual(t, st.Entries, int64(len(movedTo3)), "the new node holds its hot keys")
		require.Zero(t, getAll(t, c, hot), "every hot key is served from its owner's store")
	})
}

// When a member leaves, the hot keys it owned are loaded by their new
// owners, from what the survivors tracked: once, or twice when a survivor
// asked before the new owner's ring had changed (see below); keys that did
// not move are not loaded again, and afterwards every hot key is served
// from its owner's store.
func TestWarmupHotKeysMoveOnLeave(t *testing.T) {
	t.Parallel()
	testutil.Bubble(t, func(t *testing.T) {
		c := testutil.NewCluster(t, 3, testutil.ClusterConfig{InMemory: true, Options: []engine.Option{engine.WithWarmup(warmOpts), engine.WithHandoff(false)}})
		ctx := context.Background()
		hot := keyRange("hot", 60)
		for round := range 3 {
			for j, k := range hot {
				_, err := c.Node((j+round)%2).Get(ctx, ks, k) // nodes 0 and 1 only
				require.NoError(t, err)
			}
		}
		before := owners(c, 0, hot)
		c.StopNode(2)
		c.WaitConverged()
		after := owners(c, 0, hot)
		var moved []string
		for _, k := range hot {
			if before[k] != after[k] {
				moved = append(moved, k)
			}
		}
		require.NotEmpty(t, moved)
		testutil.WaitFor(t, 0, func() bool {
			for _, k := range moved {
				if c.DataSource.Fetches(k) < 2 {
					return false
				}
			}
			return true
		}, "hot keys of the node that left were not prefetched")
		waitWarmupIdle(t, c)
		for _, k := range hot {
			if before[k] == after[k] {
				require.Equal(t, 1, c.DataSource.Fetches(k), "hot key %s stayed on node %d", k, after[k])
				continue
			}
			// Loaded once more, by the new owner. A survivor whose ring changed
			// first may ask the new owner before that node's own ring has: the
			// new owner then answers with a load it does not keep (a peer's
			// request under another ring, DESIGN.md) and loads the key again
			// for its own warmup. 12 runs in 60 met that window.
			n := c.DataSource.Fetches(k)
			require.True(t, n == 2 || n == 3, "hot key %s (owner %d -> %d) fetched %d times", k, before[k], after[k], n)
		}
		require.Zero(t, getAll(t, c, hot))
	})
}

// A round never has more than Concurrency prefetches in flight.
func TestWarmupConcurrencyBound(t *testing.T) {
	t.Parallel()
	testutil.Bubble(t, func(t *testing.T) {
		ds := &peakSource{DataSource: testutil.NewDataSource()}
		release := ds.Hold()
		defer release()
		warm := keyRange("warm", 30)
		cfg := warmOpts
		cfg.Concurrency = 3
		c := testutil.NewCluster(t, 1, testutil.ClusterConfig{
			InMemory:  true,
			KeySpaces: func(int) []keyspace.KeySpace { return []keyspace.KeySpace{keyspace.New(ks, 64<<20, ds)} },
			Options:   []engine.Option{engine.WithWarmup(cfg), engine.WithKeySpaceWarmKeys(ks, warm)},
		})
		synctest.Wait()
		require.EqualValues(t, 3, ds.InFlight(), "Concurrency prefetches started")
		require.True(t, c.Node(0).WarmupStats().Busy)
		release()
		testutil.WaitFor(t, 0, func() bool { return ds.Total() == int64(len(warm)) }, "not every warm key was fetched")
		waitWarmupIdle(t, c)
		require.EqualValues(t, 3, ds.peak.Load())
		require.Equal(t, int64(len(warm)), c.Node(0).WarmupStats().Loaded)
	})
}

// Each prefetch waits at most the warmup Timeout even when the keyspace
// read timeout is longer (and at most the read timeout when it is shorter:
// the load itself ends then).
func TestWarmupTimeout(t *testing.T) {
	t.Parallel()
	testutil.Bubble(t, func(t *testing.T) {
		ds := testutil.NewDataSource()
		release := ds.Hold()
		defer release()
		cfg := warmOpts
		cfg.Concurrency = 2
		cfg.Timeout = 50 * time.Millisecond
		e := newEngine(t, []keyspace.KeySpace{keyspace.New(ks, 1<<20, ds)},
			engine.WithWarmup(cfg),
			engine.WithKeySpaceReadTimeout(ks, time.Hour),
			engine.WithKeySpaceWarmKeys(ks, keyRange("warm", 6)))
		require.NoError(t, e.Start(context.Background()))
		// Six held prefetches, two at a time, each given up after Timeout:
		// the round ends three Timeouts after it started.
		time.Sleep(3*cfg.Timeout - time.Millisecond)
		synctest.Wait()
		st := e.WarmupStats()
		require.Zero(t, st.Rounds, "still running")
		require.EqualValues(t, 4, st.Failed, "two waves gave up")
		time.Sleep(time.Millisecond)
		synctest.Wait()
		st = e.WarmupStats()
		require.EqualValues(t, 1, st.Rounds, "the round ended")
		require.EqualValues(t, 6, st.Failed, "every prefetch gave up after the warmup Timeout")
		require.Zero(t, st.Loaded)
	})
}

// Stop ends a round that is still running, and waits for it.
func TestWarmupStopDuringRound(t *testing.T) {
	t.Parallel()
	testutil.Bubble(t, func(t *testing.T) {
		ds := testutil.NewDataSource()
		release := ds.Hold()
		defer release()
		cfg := warmOpts
		cfg.Concurrency = 2
		cfg.Timeout = time.Hour
		e := newEngine(t, []keyspace.KeySpace{keyspace.New(ks, 1<<20, ds)},
			engine.WithWarmup(cfg), engine.WithKeySpaceWarmKeys(ks, keyRange("warm", 6)))
		require.NoError(t, e.Start(context.Background()))
		synctest.Wait()
		require.EqualValues(t, 2, ds.InFlight(), "Concurrency prefetches started")
		require.True(t, e.WarmupStats().Busy)
		require.NoError(t, e.Stop(context.Background()))
		require.False(t, e.WarmupStats().Busy, "the round ended")
		require.EqualValues(t, 2, ds.Total(), "no prefetch started after Stop")
	})
}

// UpdateKeySpace drops the node's entries of the keyspace; warmup reloads
// its warm and hot keys through the new DataSource.
func TestWarmupAfterUpdateKeySpace(t *testing.T) {
	t.Parallel()
	testutil.Bubble(t, func(t *testing.T) {
		e, ds := startSingle(t, engine.WithWarmup(warmOpts), engine.WithKeySpaceWarmKeys(ks, []string{"w1", "w2"}))
		ctx := context.Background()
		testutil.WaitFor(t, 0, func() bool { return ds.Total() == 2 }, "warm keys were not prefetched")
		for range 2 {
			_, err := e.Get(ctx, ks, "hot")
			require.NoError(t, err)
		}
		_, err := e.Get(ctx, ks, "cold")
		require.NoError(t, err)

		ds2 := testutil.NewDataSource()
		require.NoError(t, e.UpdateKeySpace(ctx, keyspace.New(ks, 64<<20, ds2)))
		testutil.WaitFor(t, 0, func() bool { return ds2.Total() == 3 }, "the replaced keyspace was not warmed")
		testutil.WaitFor(t, 0, func() bool { return !e.WarmupStats().Busy }, "the round did not end")
		for _, k := range []string{"w1", "w2", "hot"} {
			require.Equal(t, 1, ds2.Fetches(k), k)
		}
		require.Zero(t, ds2.Fetches("cold"), "below MinHits")
	})
}

// Every node tracks what it is asked for: the caller and, through the
// forwarded request, the owner; counts decay.
func TestWarmupTracksCallerAndOwner(t *testing.T) {
	t.Parallel()
	testutil.Bubble(t, func(t *testing.T) {
		// Without a near cache, so that every Get reaches the owner.
		c := testutil.NewCluster(t, 3, testutil.ClusterConfig{InMemory: true, Options: []engine.Option{
			engine.WithWarmup(warmOpts), engine.WithHandoff(false), engine.WithKeySpaceNearCache(ks, 0, 0)}})
		k := c.KeysOwnedBy(1, 1, "k")[0]
		for range 3 {
			_, err := c.Node(0).Get(context.Background(), ks, k)
			require.NoError(t, err)
		}
		require.Equal(t, []warmup.HotKey{{Key: k, Hits: 3}}, c.Node(0).HotKeys(ks, 10))
		require.Equal(t, []warmup.HotKey{{Key: k, Hits: 3}}, c.Node(1).HotKeys(ks, 10))
		require.Empty(t, c.Node(2).HotKeys(ks, 10))
		require.Nil(t, c.Node(0).HotKeys("nope", 10))
	})
}

// BenchmarkGetHitWarmup measures the local hit path with warmup off (one
// atomic load) and on (one tracker update per Get).
func BenchmarkGetHitWarmup(b *testing.B) {
	for _, tc := range []struct {
		name string
		opts []engine.Option
	}{
		{"off", nil},
		{"on", []engine.Option{engine.WithWarmup(warmup.Config{})}},
		{"on-sampled-8", []engine.Option{engine.WithWarmup(warmup.Config{SampleEvery: 8})}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			e, _ := benchEngine(b, tc.opts...)
			ctx := context.Background()
			keys := keyRange("k", 1024)
			entries := make([]engine.Entry, len(keys))
			for i, k := range keys {
				entries[i] = engine.Entry{Key: k, Value: make([]byte, 100)}
			}
			if err := e.PutMany(ctx, ks, entries); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := rand.IntN(len(keys))
				for pb.Next() {
					if _, err := e.Get(ctx, ks, keys[i&1023]); err != nil {
						b.Error(err)
						return
					}
					i++
				}
			})
		})
	}
}

package engine_test

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/distcache/distcache/engine"
	"github.com/distcache/distcache/keyspace"
	"github.com/distcache/distcache/testutil"
	"github.com/stretchr/testify/require"
)

// awaitNear Gets key on node n until the Get is served from its near
// cache (copies are filled asynchronously, shortly after a forward).
func awaitNear(t *testing.T, c *testutil.Cluster, n int, key string) {
	t.Helper()
	testutil.WaitFor(t, 5*time.Second, func() bool {
		before := ksStats(t, c.Node(n)).NearHits
		_, err := c.Node(n).Get(context.Background(), ks, key)
		require.NoError(t, err)
		return ksStats(t, c.Node(n)).NearHits > before
	}, "node %d serving %s from its near cache", n, key)
}

func nearCluster(t *testing.T, ttl time.Duration) *testutil.Cluster {
	t.Helper()
	return testutil.NewCluster(t, 3, testutil.ClusterConfig{
		Options: []engine.Option{engine.WithKeySpaceNearCache(ks, 8<<20, ttl)},
	})
}

// A non-owner serves repeated Gets of a remote key from its near cache: one
// forward, then near hits; it stores nothing in its own store, and the
// owner made the only fetch.
func TestNearCacheServesRemoteKeysLocally(t *testing.T) {
	c := nearCluster(t, time.Minute)
	ctx := context.Background()
	key := c.KeysOwnedBy(1, 1, "near")[0]
	v, err := c.Node(0).Get(ctx, ks, key)
	require.NoError(t, err)
	require.Equal(t, testutil.ValueOf(key), v)
	testutil.WaitFor(t, 5*time.Second, func() bool { return ksStats(t, c.Node(0)).NearEntries == 1 }, "the near copy stored")
	for range 4 {
		v, err := c.Node(0).Get(ctx, ks, key)
		require.NoError(t, err)
		require.Equal(t, testutil.ValueOf(key), v)
	}
	st := ksStats(t, c.Node(0))
	require.EqualValues(t, 1, st.Forwarded, "one hop, then near hits")
	require.EqualValues(t, 4, st.NearHits)
	require.EqualValues(t, 5, st.Gets)
	require.EqualValues(t, 1, st.NearEntries)
	require.Positive(t, st.NearUsedBytes)
	require.Zero(t, st.Entries, "a non-owner's own store holds nothing")
	require.Equal(t, 1, c.DataSource.Fetches(key))
	require.EqualValues(t, 1, ksStats(t, c.Node(1)).Entries)

	// The returned bytes are the caller's own: scribbling on them does not
	// reach the near copy.
	v, err = c.Node(0).Get(ctx, ks, key)
	require.NoError(t, err)
	copy(v, "XXXX")
	v, err = c.Node(0).Get(ctx, ks, key)
	require.NoError(t, err)
	require.Equal(t, testutil.ValueOf(key), v)

	// On by default: an untuned engine keeps near copies too.
	def := testutil.NewCluster(t, 3, testutil.ClusterConfig{})
	key = def.KeysOwnedBy(1, 1, "default")[0]
	awaitNear(t, def, 0, key)
	require.EqualValues(t, 1, ksStats(t, def.Node(0)).NearEntries)

	// Off with (0, 0): every Get of a remote key forwards.
	plain := testutil.NewCluster(t, 3, testutil.ClusterConfig{Options: []engine.Option{engine.WithKeySpaceNearCache(ks, 0, 0)}})
	key = plain.KeysOwnedBy(1, 1, "plain")[0]
	for range 3 {
		_, err := plain.Node(0).Get(ctx, ks, key)
		require.NoError(t, err)
	}
	st = ksStats(t, plain.Node(0))
	require.EqualValues(t, 3, st.Forwarded)
	require.Zero(t, st.NearHits)
	require.Zero(t, st.NearEntries)
}

// GetMany answers keys with a near copy locally and asks the owners only
// for the rest.
func TestNearCacheGetMany(t *testing.T) {
	c := nearCluster(t, time.Minute)
	ctx := context.Background()
	keys := c.KeysOwnedBy(1, 4, "many")
	for _, k := range keys[:2] {
		awaitNear(t, c, 0, k)
	}
	before := ksStats(t, c.Node(0))
	got, err := c.Node(0).GetMany(ctx, ks, keys)
	require.NoError(t, err)
	require.Len(t, got, len(keys))
	for _, k := range keys {
		require.Equal(t, testutil.ValueOf(k), got[k])
	}
	after := ksStats(t, c.Node(0))
	require.Equal(t, before.NearHits+2, after.NearHits)
	require.Equal(t, before.Forwarded+1, after.Forwarded, "one request for the two other keys")
	// A write drops the copy for GetMany too.
	require.NoError(t, c.Node(2).Put(ctx, ks, engine.Entry{Key: keys[0], Value: []byte("new")}))
	got, err = c.Node(0).GetMany(ctx, ks, keys[:1])
	require.NoError(t, err)
	require.Equal(t, "new", string(got[keys[0]]))
}

// Put, PutMany, Delete and DeleteMany from any node drop every near copy
// before they return: the next Get anywhere sees the write.
func TestNearCacheInvalidatedByWrites(t *testing.T) {
	c := nearCluster(t, time.Minute)
	ctx := context.Background()
	key := c.KeysOwnedBy(1, 1, "inv")[0]
	warm := func() {
		t.Helper()
		for _, n := range []int{0, 2} {
			awaitNear(t, c, n, key)
		}
	}
	expect := func(want []byte) {
		t.Helper()
		for n := range 3 {
			v, err := c.Node(n).Get(ctx, ks, key)
			require.NoError(t, err)
			require.Equal(t, string(want), string(v), "node %d", n)
		}
	}
	for i, writer := range []int{1, 0, 2} { // the owner, then non-owners
		warm()
		val := fmt.Appendf(nil, "put-%d", i)
		require.NoError(t, c.Node(writer).Put(ctx, ks, engine.Entry{Key: key, Value: val}))
		expect(val)
	}
	warm()
	val := []byte("put-many")
	require.NoError(t, c.Node(2).PutMany(ctx, ks, []engine.Entry{{Key: key, Value: val}}))
	expect(val)

	// After a Delete the owner loads afresh from the DataSource.
	warm()
	require.NoError(t, c.Node(0).Delete(ctx, ks, key))
	expect(testutil.ValueOf(key))
	require.NoError(t, c.Node(1).Put(ctx, ks, engine.Entry{Key: key, Value: val}))
	warm()
	require.NoError(t, c.Node(2).DeleteMany(ctx, ks, []string{key}))
	expect(testutil.ValueOf(key))
	require.Positive(t, ksStats(t, c.Node(0)).NearHits)
	require.Positive(t, ksStats(t, c.Node(2)).NearHits)
}

// A near copy never outlives the entry's own expiry, which the owner sends
// with the value (the near TTL here is far longer): on the fake clock it is
// served until the expiry's last millisecond and never at the expiry.
func TestNearCacheHonoursEntryExpiry(t *testing.T) {
	t.Parallel()
	testutil.Bubble(t, func(t *testing.T) {
		c := testutil.NewCluster(t, 3, testutil.ClusterConfig{InMemory: true, Options: []engine.Option{
			engine.WithKeySpaceNearCache(ks, 8<<20, time.Hour),
		}})
		ctx := context.Background()
		key := c.KeysOwnedBy(1, 1, "exp")[0]
		const life = 300 * time.Millisecond
		require.NoError(t, c.Node(1).Put(ctx, ks, engine.Entry{Key: key, Value: []byte("short-lived"), Expiry: time.Now().Add(life)}))
		v, err := c.Node(0).Get(ctx, ks, key)
		require.NoError(t, err)
		require.Equal(t, "short-lived", string(v))
		synctest.Wait() // the near copy is stored asynchronously
		require.EqualValues(t, 1, ksStats(t, c.Node(0)).NearEntries)

		time.Sleep(life - time.Millisecond)
		v, err = c.Node(0).Get(ctx, ks, key)
		require.NoError(t, err)
		require.Equal(t, "short-lived", string(v))
		require.EqualValues(t, 1, ksStats(t, c.Node(0)).NearHits, "served from the near copy")

		time.Sleep(time.Millisecond)
		v, err = c.Node(0).Get(ctx, ks, key)
		require.NoError(t, err)
		require.Equal(t, testutil.ValueOf(key), v, "expired: the owner reloads; the near copy is not served")
		require.EqualValues(t, 1, ksStats(t, c.Node(0)).NearHits)
		require.Equal(t, 1, c.DataSource.Fetches(key))
	})
}

// Any ring change invalidates every near copy at once (they are tagged with
// the ring they were fetched under), so a key whose owner changed and came
// back is never served from a copy older than the moves.
func TestNearCacheInvalidatedByRingChange(t *testing.T) {
	c := nearCluster(t, time.Hour)
	ctx := context.Background()
	keys := c.KeysOwnedBy(1, 20, "ring")
	for _, k := range keys {
		awaitNear(t, c, 0, k)
	}
	before := ksStats(t, c.Node(0))
	require.GreaterOrEqual(t, before.NearHits, int64(len(keys)))
	c.StopNode(2)
	testutil.WaitFor(t, 10*time.Second, func() bool {
		return len(c.Node(0).Members()) == 2 && len(c.Node(1).Members()) == 2
	}, "the ring without node 2")
	for _, k := range keys {
		if c.OwnerIndex(0, k) == 0 {
			continue // now owned here (a key of node 2's may not move, one of node 1's may)
		}
		_, err := c.Node(0).Get(ctx, ks, k)
		require.NoError(t, err)
	}
	after := ksStats(t, c.Node(0))
	require.Equal(t, before.NearHits, after.NearHits, "no near hit across a ring change")
	require.Greater(t, after.Forwarded, before.Forwarded)
	// The copies of the old ring are purged, in the background.
	testutil.WaitFor(t, 10*time.Second, func() bool {
		st := ksStats(t, c.Node(0))
		return st.NearEntries <= int64(len(keys))
	}, "old near copies purged")
}

// A Get that starts after a write has returned never joins a forward that
// started before it (that forward may carry the old value), and a
// superseded forward does not fill the near cache. With and without the
// near cache.
func TestForwardSupersededByWrite(t *testing.T) {
	for _, near := range []bool{false, true} {
		t.Run(fmt.Sprintf("near=%v", near), func(t *testing.T) {
			cfg := testutil.ClusterConfig{}
			if near {
				cfg.Options = []engine.Option{engine.WithKeySpaceNearCache(ks, 8<<20, time.Hour)}
			}
			c := testutil.NewCluster(t, 3, cfg)
			ctx := context.Background()
			key := c.KeysOwnedBy(1, 1, "race")[0]
			release := c.DataSource.Hold()
			released := false
			defer func() {
				if !released {
					release()
				}
			}()
			first := make(chan []byte, 1)
			go func() {
				v, err := c.Node(0).Get(ctx, ks, key)
				if err != nil {
					v = []byte(err.Error())
				}
				first <- v
			}()
			testutil.WaitFor(t, 5*time.Second, func() bool { return c.DataSource.InFlight() == 1 }, "the owner fetching")
			require.EqualValues(t, 1, ksStats(t, c.Node(0)).Forwarded)

			require.NoError(t, c.Node(2).Put(ctx, ks, engine.Entry{Key: key, Value: []byte("new")}))
			v, err := c.Node(0).Get(ctx, ks, key)
			require.NoError(t, err)
			require.Equal(t, "new", string(v), "a Get after the Put returned")
			st := ksStats(t, c.Node(0))
			require.Zero(t, st.ForwardsCoalesced, "it did not join the forward that started before the Put")
			require.EqualValues(t, 2, st.Forwarded)

			release()
			released = true
			<-first // the old fetch's value, or the new one: both are allowed
			for n := range 3 {
				v, err := c.Node(n).Get(ctx, ks, key)
				require.NoError(t, err)
				require.Equal(t, "new", string(v), "node %d after the old fetch finished", n)
			}
		})
	}
}

// A near cache needs both a size and a TTL; bad values are clear errors.
func TestNearCacheConfigValidation(t *testing.T) {
	ds := testutil.NewDataSource()
	for _, bad := range []engine.Option{
		engine.WithKeySpaceNearCache(ks, 1<<20, 0),
		engine.WithKeySpaceNearCache(ks, 0, time.Second),
		engine.WithKeySpaceNearCache(ks, -1, -time.Second),
	} {
		_, err := engine.New(engine.NewConfig(nil, []keyspace.KeySpace{keyspace.New(ks, 1<<20, ds)}, bad))
		require.ErrorIs(t, err, engine.ErrInvalidConfig)
		require.ErrorContains(t, err, "NearCache")
		require.ErrorContains(t, err, ks)
	}
}

// renewTTL is the near TTL of renewCluster.
const renewTTL = 2 * time.Second

// renewCluster is three nodes on the in-memory network (call it inside a
// bubble) with near copies that live renewTTL.
func renewCluster(t *testing.T) *testutil.Cluster {
	t.Helper()
	return testutil.NewCluster(t, 3, testutil.ClusterConfig{InMemory: true, Options: []engine.Option{
		engine.WithKeySpaceNearCache(ks, 8<<20, renewTTL),
	}})
}

// A copy read often is renewed in the background before it lapses, so no
// Get after the first waits for the owner; a copy no longer read lapses.
// Invariants: every Get is a near hit after the first (Forwarded stays 1),
// one renewal per half-life while read, one fetch from the DataSource, and
// no renewal from a copy read with between pushLease/2 and pushLease left.
func TestNearCopyRenewedWhileRead(t *testing.T) {
	t.Parallel()
	testutil.Bubble(t, func(t *testing.T) {
		c := renewCluster(t)
		ctx := context.Background()
		keys := c.KeysOwnedBy(1, 2, "renew")
		hot, cold := keys[0], keys[1]
		for _, k := range keys {
			_, err := c.Node(0).Get(ctx, ks, k)
			require.NoError(t, err)
		}
		synctest.Wait()
		start := ksStats(t, c.Node(0))
		require.EqualValues(t, 2, start.Forwarded)

		// The hot key is read every 100 ms for three near TTLs.
		for range 60 {
			time.Sleep(100 * time.Millisecond)
			v, err := c.Node(0).Get(ctx, ks, hot)
			require.NoError(t, err)
			require.Equal(t, testutil.ValueOf(hot), v)
			synctest.Wait() // a renewal started by this Get has finished
		}
		st := ksStats(t, c.Node(0))
		require.EqualValues(t, 2, st.Forwarded, "no Get of the hot key waited for its owner")
		require.EqualValues(t, 60, st.NearHits)
		// Renewed at the first read with less than half its life left (age
		// 1.1 s), then every 1.1 s: 5 in 6 s.
		require.EqualValues(t, 5, st.NearRenewals)
		require.Equal(t, 1, c.DataSource.Fetches(hot))

		// readCold reads the cold key and returns the stats once any
		// renewal it started has finished.
		readCold := func() engine.KeySpaceStats {
			_, err := c.Node(0).Get(ctx, ks, cold)
			require.NoError(t, err)
			synctest.Wait()
			return ksStats(t, c.Node(0))
		}

		// The cold copy (6 s old) lapsed unrenewed: its next Get forwards.
		st = readCold()
		require.EqualValues(t, 3, st.Forwarded)
		require.EqualValues(t, 5, st.NearRenewals)

		// Read only in its last pushLease (1.6 s after the forward above),
		// the copy is served but not renewed.
		time.Sleep(1600 * time.Millisecond)
		st = readCold()
		require.EqualValues(t, 3, st.Forwarded, "a near hit")
		require.EqualValues(t, 5, st.NearRenewals, "a pushed copy's life left: not renewed")

		// In its last half pushLease a copy renews again (a pushed copy, which
		// lives pushLease, renews only there; a key written every few
		// milliseconds gets a new push before).
		time.Sleep(200 * time.Millisecond)
		st = readCold()
		require.EqualValues(t, 3, st.Forwarded, "a near hit")
		require.EqualValues(t, 6, st.NearRenewals)
		time.Sleep(time.Second) // past the first copy's lease, within the renewed one
		require.EqualValues(t, 3, readCold().Forwarded, "served from the renewed copy")
	})
}

// A renewal that cannot reach the owner leaves the copy to lapse; the
// keyspace renews nothing for a while after each failure, so a hot key does
// not spin against an unreachable owner, and Gets keep being served from
// the copy until it lapses.
func TestNearRenewalBacksOffWhenOwnerUnreachable(t *testing.T) {
	t.Parallel()
	testutil.Bubble(t, func(t *testing.T) {
		c := renewCluster(t)
		ctx := context.Background()
		key := c.KeysOwnedBy(1, 1, "backoff")[0]
		_, err := c.Node(0).Get(ctx, ks, key)
		require.NoError(t, err)
		synctest.Wait()
		time.Sleep(renewTTL/2 + time.Millisecond) // the copy is due for renewal
		c.Isolate(1)
		defer c.Heal()
		// 40 reads in 400 ms, each a near hit: renewals at most every
		// renewBackoff (100 ms).
		for range 40 {
			v, err := c.Node(0).Get(ctx, ks, key)
			require.NoError(t, err)
			require.Equal(t, testutil.ValueOf(key), v)
			time.Sleep(10 * time.Millisecond)
		}
		st := ksStats(t, c.Node(0))
		require.EqualValues(t, 40, st.NearHits)
		require.EqualValues(t, 1, st.Forwarded)
		require.GreaterOrEqual(t, st.NearRenewals, int64(1))
		require.LessOrEqual(t, st.NearRenewals, int64(5), "one renewal per backoff at most")
	})
}

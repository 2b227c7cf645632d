package engine_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/distcache/distcache/engine"
	"github.com/distcache/distcache/testutil"
	"github.com/stretchr/testify/require"
)

// The edges of the write and read contract, each through a local owner and
// through a remote one: expiries a user can pass, empty values, done
// contexts, and batch answers larger than a frame.

// ownerAndOther returns a key owned by node 1 and the two nodes to write it
// through: its owner (local) and node 0 (remote owner).
func ownerAndOther(t *testing.T, c *testutil.Cluster, prefix string) (key string, via map[string]int) {
	t.Helper()
	return c.KeysOwnedBy(1, 1, prefix)[0], map[string]int{"local owner": 1, "remote owner": 0}
}

// Any time.Time works as an expiry: zero is "never", the far future (year
// 3000, past UnixNano's 2262 limit) is stored, and a time already past makes
// the Put a Delete.
func TestPutExpiries(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{})
	ctx := context.Background()
	cases := []struct {
		name   string
		expiry time.Time
		stored bool
	}{
		{"none", time.Time{}, true},
		{"year 3000", time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{"max time", time.Unix(1<<62, 0), true},
		{"an hour ago", time.Now().Add(-time.Hour), false},
		{"year 1", time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), false},
		{"before the epoch", time.Date(1500, 1, 1, 0, 0, 0, 0, time.UTC), false},
	}
	for _, tc := range cases {
		for how, n := range map[string]int{"local owner": 1, "remote owner": 0} {
			t.Run(tc.name+"/"+how, func(t *testing.T) {
				key := c.KeysOwnedBy(1, 1, "exp-"+tc.name+how)[0]
				// An earlier value, so that "deleted" is observable.
				require.NoError(t, c.Node(n).Put(ctx, ks, engine.Entry{Key: key, Value: []byte("old")}))
				require.NoError(t, c.Node(n).Put(ctx, ks, engine.Entry{Key: key, Value: []byte("new"), Expiry: tc.expiry}))
				for reader := range 3 {
					v, err := c.Node(reader).Get(ctx, ks, key)
					require.NoError(t, err)
					if tc.stored {
						require.Equal(t, "new", string(v), "node %d", reader)
					} else {
						require.Equal(t, string(testutil.ValueOf(key)), string(v), "an expired Put deletes: node %d loads afresh", reader)
					}
				}
			})
		}
	}
}

// An empty value is a non-nil, empty slice on every path: local hit, remote
// owner, near copy, GetMany.
func TestEmptyValueIsNonNil(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{
		Options: []engine.Option{engine.WithKeySpaceNearCache(ks, 1<<20, time.Minute)},
	})
	ctx := context.Background()
	key, _ := ownerAndOther(t, c, "empty")
	require.NoError(t, c.Node(0).Put(ctx, ks, engine.Entry{Key: key, Value: nil}))
	for n := range 3 {
		for range 3 { // owner hit, forward, then near hit
			v, err := c.Node(n).Get(ctx, ks, key)
			require.NoError(t, err)
			require.NotNil(t, v, "node %d", n)
			require.Empty(t, v)
		}
		m, err := c.Node(n).GetMany(ctx, ks, []string{key})
		require.NoError(t, err)
		require.Contains(t, m, key)
		require.NotNil(t, m[key], "GetMany on node %d", n)
		require.Empty(t, m[key])
	}
}

// A write whose ctx is already done writes nothing and says so; a Get whose
// ctx is done returns at once without a fetch.
func TestDoneContext(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{
		Options: []engine.Option{engine.WithKeySpaceNearCache(ks, 1<<20, time.Minute)},
	})
	ctx := context.Background()
	done, cancel := context.WithCancel(ctx)
	cancel()
	key, via := ownerAndOther(t, c, "ctx")
	require.NoError(t, c.Node(0).Put(ctx, ks, engine.Entry{Key: key, Value: []byte("v1")}))
	for n := range 3 { // near copies on the non-owners
		v, err := c.Node(n).Get(ctx, ks, key)
		require.NoError(t, err)
		require.Equal(t, "v1", string(v))
	}
	for how, n := range via {
		err := c.Node(n).Put(done, ks, engine.Entry{Key: key, Value: []byte("v2")})
		require.ErrorIs(t, err, context.Canceled, how)
		err = c.Node(n).Delete(done, ks, key)
		require.ErrorIs(t, err, context.Canceled, how)
		err = c.Node(n).PutMany(done, ks, []engine.Entry{{Key: key, Value: []byte("v3")}})
		require.ErrorIs(t, err, context.Canceled, how)
		for reader := range 3 {
			v, err := c.Node(reader).Get(ctx, ks, key)
			require.NoError(t, err)
			require.Equal(t, "v1", string(v), "nothing was written (%s), node %d", how, reader)
		}
	}
	before := c.DataSource.Total()
	for n := range 3 {
		_, err := c.Node(n).Get(done, ks, "never-loaded")
		require.ErrorIs(t, err, context.Canceled)
		_, err = c.Node(n).GetMany(done, ks, []string{"never-loaded-either"})
		require.True(t, errors.Is(err, context.Canceled), "GetMany on node %d: %v", n, err)
	}
	require.Equal(t, before, c.DataSource.Total(), "no fetch for a caller that has gone")
}

// GetMany of values whose sum exceeds a frame returns exactly what the
// owner holds, in several rounds, and never substitutes a local load. (In a
// bubble on an in-memory network: copying 18 MiB under -race on a busy
// machine must not run into the read timeout.)
func TestGetManyLargerThanAFrame(t *testing.T) {
	t.Parallel()
	testutil.Bubble(t, func(t *testing.T) {
		c := testutil.NewCluster(t, 3, testutil.ClusterConfig{InMemory: true})
		ctx := context.Background()
		keys := c.KeysOwnedBy(1, 3, "big")
		want := map[string][]byte{}
		for i, k := range keys {
			v := bytes.Repeat([]byte{byte('a' + i)}, 6<<20)
			want[k] = v
			require.NoError(t, c.Node(0).Put(ctx, ks, engine.Entry{Key: k, Value: v}))
		}
		for _, n := range []int{0, 1, 2} {
			got, err := c.Node(n).GetMany(ctx, ks, keys)
			require.NoError(t, err, "node %d", n)
			require.Len(t, got, 3)
			for _, k := range keys {
				require.True(t, bytes.Equal(want[k], got[k]), "node %d: %s is the value Put, not a reload", n, k)
			}
		}
		require.Zero(t, c.DataSource.Total(), "nothing was loaded from the DataSource")
		require.Zero(t, ksStats(t, c.Node(0)).Degraded)
	})
}

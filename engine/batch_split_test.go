package engine_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/distcache/distcache/engine"
	"github.com/distcache/distcache/testutil"
	"github.com/stretchr/testify/require"
)

// Batches larger than a peer request may carry (peers refuse more than
// 1024 keys per request) still work through the public API: the caller
// splits them per owner, and every key is fetched once, by its owner. (In a
// bubble on an in-memory network: a machine too busy to answer a probe in
// time must not change the ring mid-test.)
func TestClusterLargeBatchesSplit(t *testing.T) {
	t.Parallel()
	testutil.Bubble(t, func(t *testing.T) {
		c := testutil.NewCluster(t, 3, testutil.ClusterConfig{InMemory: true})
		ctx := context.Background()
		const n = 5000 // several requests per remote owner
		keys := make([]string, n)
		for i := range keys {
			keys[i] = fmt.Sprint("big-batch-", i)
		}
		got, err := c.Node(0).GetMany(ctx, ks, keys)
		require.NoError(t, err)
		require.Len(t, got, n)
		for _, k := range keys {
			require.Equal(t, string(testutil.ValueOf(k)), string(got[k]))
		}
		require.EqualValues(t, n, c.DataSource.Total(), "one fetch per key")

		entries := make([]engine.Entry, n)
		for i, k := range keys {
			entries[i] = engine.Entry{Key: k, Value: []byte("put-" + k)}
		}
		require.NoError(t, c.Node(1).PutMany(ctx, ks, entries))
		got, err = c.Node(2).GetMany(ctx, ks, keys)
		require.NoError(t, err)
		require.Len(t, got, n)
		for _, k := range keys {
			require.Equal(t, "put-"+k, string(got[k]))
		}
		require.EqualValues(t, n, c.DataSource.Total(), "the written values are served, not fetched")

		require.NoError(t, c.Node(2).DeleteMany(ctx, ks, keys))
		got, err = c.Node(0).GetMany(ctx, ks, keys)
		require.NoError(t, err)
		require.Len(t, got, n)
		require.EqualValues(t, 2*n, c.DataSource.Total(), "every deleted key is fetched again")
	})
}

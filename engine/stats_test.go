package engine_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/distcache/distcache/engine"
	"github.com/distcache/distcache/testutil"
	"github.com/stretchr/testify/require"
)

// TestStatsCountEachGetOnce: Gets forwarded to an owner are the caller's
// Gets, not the owner's, whether the owner's inline fast path answered them
// (a hit) or handed them on to a load (a miss, looked up twice there).
// Near caches are off so that the second round reaches the owner.
func TestStatsCountEachGetOnce(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{
		Options: []engine.Option{engine.WithKeySpaceNearCache(ks, 0, 0)},
	})
	ctx := context.Background()
	caller, owner := c.Node(0), c.Node(1)
	var keys []string
	for i := 0; len(keys) < 20; i++ {
		k := fmt.Sprint("counted-", i)
		if m, err := caller.Owner(k); err == nil && m.Name == owner.NodeName() {
			keys = append(keys, k)
		}
	}
	for range 2 { // a miss, then a hit, on the owner
		for _, k := range keys {
			_, err := caller.Get(ctx, ks, k)
			require.NoError(t, err)
		}
	}
	require.EqualValues(t, len(keys), c.DataSource.Total())
	cs, os := ksStats(t, caller), ksStats(t, owner)
	require.EqualValues(t, 2*len(keys), cs.Gets, "the caller made every Get")
	require.EqualValues(t, 0, os.Gets, "the owner made none")
	require.EqualValues(t, len(keys), os.Misses, "one miss per key on the owner")
	require.EqualValues(t, len(keys), os.Hits, "one hit per key on the owner")
}

package engine_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distcache/distcache/cluster"
	"github.com/distcache/distcache/discovery/static"
	"github.com/distcache/distcache/engine"
	"github.com/distcache/distcache/internal/enginehook"
	"github.com/distcache/distcache/keyspace"
	"github.com/distcache/distcache/testutil"
	"github.com/stretchr/testify/require"
)

// Once Start has returned on every node, all of them place every key on
// the same owner: the first storm of Gets of each cold key, right after the
// last Start, costs exactly one fetch per key. Nodes start one after
// another (the last one joins a running cluster); no wait for convergence
// other than Start itself.
func TestStartReturnsWithAgreedRing(t *testing.T) {
	for round := range 3 {
		t.Run(fmt.Sprint("round ", round), func(t *testing.T) {
			c := testutil.NewCluster(t, 1, testutil.ClusterConfig{})
			c.StartNode("node-1")
			c.StartNode("node-2")
			// Invariant 1: every node's ring has every node, one fingerprint.
			fp := enginehook.Cluster(c.Node(0)).Ring().Fingerprint()
			for n := range 3 {
				r := enginehook.Cluster(c.Node(n)).Ring()
				require.Equal(t, 3, r.Len(), "node %d's ring right after the last Start", n)
				require.Equal(t, fp, r.Fingerprint(), "node %d's ring right after the last Start", n)
			}
			// Invariant 2: the first storm of each cold key makes one fetch.
			c.DataSource.SetLatency(5 * time.Millisecond)
			for k := range 20 {
				key := fmt.Sprintf("cold-%d-%d", round, k)
				var wg sync.WaitGroup
				for i := range 300 {
					wg.Go(func() {
						_, err := c.Node(i%3).Get(context.Background(), ks, key)
						if err != nil {
							t.Errorf("get %s: %v", key, err)
						}
					})
				}
				wg.Wait()
				require.Equal(t, 1, c.DataSource.Fetches(key), "fetches of %s", key)
			}
		})
	}
}

// A node whose name a live member already holds fails Start with an error
// naming the name and the holder's address, and the holder is not
// disturbed: it stays in every ring at its address and keeps serving.
func TestDuplicateNodeNameRefused(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{})
	holder := c.Node(1)
	var seeds []string
	for n := range 3 {
		seeds = append(seeds, c.Node(n).Addr())
	}
	opts := append(testutil.LocalOptions("test-"+t.Name()), engine.WithNodeName(c.Name(1)))
	dup, err := engine.New(engine.NewConfig(static.NewDiscovery(&static.Config{Addresses: seeds}),
		[]keyspace.KeySpace{keyspace.New(ks, 1<<20, c.DataSource)}, opts...))
	require.NoError(t, err)
	err = dup.Start(context.Background())
	require.ErrorIs(t, err, cluster.ErrNameTaken)
	require.Contains(t, err.Error(), c.Name(1))
	require.Contains(t, err.Error(), holder.Addr())
	require.ErrorIs(t, dup.Stop(context.Background()), nil)

	key := c.KeysOwnedBy(1, 1, "dup")[0]
	deadline := time.Now().Add(2 * time.Second) // a few failure-detection rounds
	for time.Now().Before(deadline) {
		for n := range 3 {
			m, ok := enginehook.Cluster(c.Node(n)).Ring().Member(c.Name(1))
			require.True(t, ok, "node %d dropped the holder", n)
			require.Equal(t, holder.Addr(), m.Addr)
		}
		v, err := c.Node(0).Get(context.Background(), ks, key)
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(string(v), "value-of-"))
		time.Sleep(50 * time.Millisecond) // observation window, not a wait for a condition
	}
	require.Equal(t, 1, c.DataSource.Fetches(key), "the holder kept serving its key from its store")
}

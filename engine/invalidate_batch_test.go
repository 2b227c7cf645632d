package engine_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/distcache/distcache/engine"
	"github.com/stretchr/testify/require"
)

// Concurrent writes that invalidate the same holder share requests.
// Invariants: fewer invalidation requests than writes; after the writes
// return, the holder reads every new value (nothing a batch carried was
// missed); no batching state is left once they have all been answered.
func TestConcurrentInvalidationsShareRequests(t *testing.T) {
	c := pushCluster(t)
	engine.StopPushes(t) // the holder's reads below must see the invalidation, not a push
	ctx := context.Background()
	owner, holder := c.Node(0), c.Node(1)
	const n = 64
	stableRound(t, c, func(attempt int) bool {
		keys := c.KeysOwnedBy(0, n, fmt.Sprint("batched", attempt))
		for _, k := range keys {
			c.DataSource.SetValue(k, []byte("old"))
			_, err := holder.Get(ctx, ks, k)
			require.NoError(t, err)
		}
		sent := ksStats(t, owner).InvalidationsSent
		var wg sync.WaitGroup
		for _, k := range keys {
			wg.Go(func() {
				require.NoError(t, owner.Put(ctx, ks, engine.Entry{Key: k, Value: []byte("new")}))
			})
		}
		wg.Wait()
		requests := ksStats(t, owner).InvalidationsSent - sent
		t.Logf("%d writes, %d invalidation requests", n, requests)
		require.Less(t, requests, int64(n))
		for _, k := range keys {
			got, err := holder.Get(ctx, ks, k)
			require.NoError(t, err)
			require.Equal(t, "new", string(got), k)
		}
		require.Zero(t, engine.InvalidationLines(owner))
		return true
	})
}

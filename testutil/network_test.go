package testutil

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestInMemoryClusterInBubble runs the cluster helpers of TestClusterHelpers on the
// in-memory network inside a synctest bubble: no socket, and memberlist's timers run on
// the fake clock.
func TestInMemoryClusterInBubble(t *testing.T) {
	Bubble(t, func(t *testing.T) {
		c := NewCluster(t, 3, ClusterConfig{InMemory: true})
		keys := c.KeysOwnedBy(1, 3, "k")
		ctx := context.Background()
		for _, k := range keys {
			require.Equal(t, 1, c.OwnerIndex(2, k))
			v, err := c.Node(0).Get(ctx, DefaultKeySpace, k)
			require.NoError(t, err)
			require.Equal(t, ValueOf(k), v)
		}
		require.EqualValues(t, len(keys), c.DataSource.Total(), "one fetch per key, by its owner")
		st, _ := c.Node(1).Stats().KeySpace(DefaultKeySpace)
		require.EqualValues(t, len(keys), st.Entries, "the owner holds the keys")
		c.StopNode(1)
		c.WaitConverged()
		require.Equal(t, 1, c.StartNode("node-1"))
		c.WaitConverged()
	})
}

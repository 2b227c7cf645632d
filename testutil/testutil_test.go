package testutil

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/distcache/distcache/keyspace"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { VerifyTestMain(m) }

func TestDataSource(t *testing.T) {
	ctx := context.Background()
	ds := NewDataSource()
	v, err := ds.Fetch(ctx, "a")
	require.NoError(t, err)
	require.Equal(t, ValueOf("a"), v)
	ds.SetMissing("m", true)
	_, err = ds.Fetch(ctx, "m")
	require.ErrorIs(t, err, keyspace.ErrNotFound)
	boom := errors.New("boom")
	ds.SetError("e", boom)
	_, err = ds.Fetch(ctx, "e")
	require.ErrorIs(t, err, boom)
	ds.SetValue("v", []byte("x"))
	v, _ = ds.Fetch(ctx, "v")
	require.Equal(t, "x", string(v))
	ds.FailAll(boom)
	_, err = ds.Fetch(ctx, "a")
	require.ErrorIs(t, err, boom)
	ds.FailAll(nil)
	require.Equal(t, 2, ds.Fetches("a"))
	require.EqualValues(t, 5, ds.Total())

	ds.SetLatency(time.Hour)
	cctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	_, err = ds.Fetch(cctx, "slow")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	ds.SetLatency(0)

	release := ds.Hold()
	done := make(chan struct{})
	go func() { _, _ = ds.Fetch(ctx, "held"); close(done) }()
	WaitFor(t, 0, func() bool { return ds.InFlight() == 1 }, "fetch held")
	release()
	release() // idempotent
	<-done
	ds.Reset()
	require.Zero(t, ds.Total())
}

func TestClusterHelpers(t *testing.T) {
	c := NewCluster(t, 3, ClusterConfig{})
	require.Equal(t, 3, c.Len())
	require.Equal(t, []int{0, 1, 2}, c.Live())
	keys := c.KeysOwnedBy(1, 3, "k")
	require.Len(t, keys, 3)
	for _, k := range keys {
		require.Equal(t, 1, c.OwnerIndex(0, k))
		require.Equal(t, 1, c.OwnerIndex(2, k))
	}
	c.StopNode(1)
	require.Equal(t, []int{0, 2}, c.Live())
	c.WaitConverged()
	require.Equal(t, 1, c.StartNode("node-1"), "a known name restarts in place")
	c.WaitConverged()
	require.Equal(t, "node-1", c.Name(1))
}

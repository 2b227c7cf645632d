package engine_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/distcache/distcache/engine"
	"github.com/distcache/distcache/keyspace"
	"github.com/distcache/distcache/testutil"
	"github.com/distcache/distcache/warmup"
	"github.com/stretchr/testify/require"
)

// Refresh-ahead: only a hot key's owner refetches it, once per interval
// for the whole cluster; a cold key is never refetched; a changed row
// reaches every node (near copies included) without a Put; a failed
// refresh keeps the value.
func TestRefreshAhead(t *testing.T) {
	const interval = 300 * time.Millisecond
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{Options: []engine.Option{
		engine.WithWarmup(warmup.Config{RefreshInterval: interval, MinHits: 3, DecayInterval: time.Hour}),
		engine.WithKeySpaceNearCache(ks, 8<<20, time.Minute),
		engine.WithReplicas(2),
	}})
	ctx := context.Background()
	owner := 1
	hot := c.KeysOwnedBy(owner, 1, "refresh-hot")[0]
	cold := c.KeysOwnedBy(owner, 1, "refresh-cold")[0]
	for range 5 {
		for _, n := range c.Live() {
			_, err := c.Node(n).Get(ctx, ks, hot)
			require.NoError(t, err)
		}
	}
	_, err := c.Node(0).Get(ctx, ks, cold)
	require.NoError(t, err)
	// One load for the 15 Gets; any other fetch is a refresh, since the
	// ticker may fire while they run (a refresh counts before it fetches).
	loads := c.DataSource.Fetches(hot) - int(c.Node(owner).WarmupStats().Refreshed)
	require.LessOrEqual(t, loads, 1, "the Gets load the hot key once")
	require.Positive(t, c.DataSource.Fetches(hot))

	testutil.WaitFor(t, 10*time.Second, func() bool {
		return c.Node(owner).WarmupStats().Refreshed >= 4
	}, "the owner refreshes the hot key")
	refreshed := c.Node(owner).WarmupStats().Refreshed
	got := int64(c.DataSource.Fetches(hot) - 1)
	require.True(t, got == refreshed || got == refreshed+1, "fetches of the hot key %d, refreshes %d: the owner's only", got, refreshed)
	for _, n := range c.Live() {
		if n != owner {
			require.Zero(t, c.Node(n).WarmupStats().Refreshed, "node %d never refreshes", n)
		}
	}
	require.Equal(t, 1, c.DataSource.Fetches(cold), "a cold key is never refreshed")

	c.DataSource.SetValue(hot, []byte("v2"))
	changedAt := time.Now()
	testutil.WaitFor(t, 10*time.Second, func() bool {
		for _, n := range c.Live() {
			if v, err := c.Node(n).Get(ctx, ks, hot); err != nil || string(v) != "v2" {
				return false
			}
		}
		return true
	}, "the changed row reaches every node without a Put")
	t.Logf("changed row everywhere after %v (interval %v)", time.Since(changedAt).Round(time.Millisecond), interval)
	require.Positive(t, c.Node(owner).WarmupStats().Changed)

	c.DataSource.SetError(hot, errors.New("database down"))
	failed := c.Node(owner).WarmupStats().RefreshFailed
	testutil.WaitFor(t, 10*time.Second, func() bool {
		return c.Node(owner).WarmupStats().RefreshFailed > failed
	}, "a refresh fails")
	for _, n := range c.Live() {
		v, err := c.Node(n).Get(ctx, ks, hot)
		require.NoError(t, err)
		require.Equal(t, "v2", string(v), "node %d: a failed refresh keeps the value", n)
	}
}

// A row deleted from the DataSource is a change too: after a refresh every
// node answers ErrNotFound (near copies included), without a Delete.
func TestRefreshAheadDeletedRow(t *testing.T) {
	const interval = 300 * time.Millisecond
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{Options: []engine.Option{
		engine.WithWarmup(warmup.Config{RefreshInterval: interval, MinHits: 3, DecayInterval: time.Hour}),
		engine.WithKeySpaceNearCache(ks, 8<<20, time.Minute),
	}})
	ctx := context.Background()
	owner := 2
	hot := c.KeysOwnedBy(owner, 1, "refresh-gone")[0]
	for range 5 {
		for _, n := range c.Live() {
			_, err := c.Node(n).Get(ctx, ks, hot)
			require.NoError(t, err)
		}
	}

	c.DataSource.SetMissing(hot, true)
	testutil.WaitFor(t, 10*time.Second, func() bool {
		for _, n := range c.Live() {
			if _, err := c.Node(n).Get(ctx, ks, hot); !errors.Is(err, keyspace.ErrNotFound) {
				return false
			}
		}
		return true
	}, "the deleted row is gone from every node without a Delete")
	s := c.Node(owner).WarmupStats()
	require.Positive(t, s.Changed)
	require.Zero(t, s.RefreshFailed, "a deleted row is not a failed refresh")
}

// A row created in the DataSource is a change too: a hot key whose absence
// is remembered (for a minute here) is refreshed like a value, and after a
// refresh every node reads the new row, without a Put.
func TestRefreshAheadCreatedRow(t *testing.T) {
	const interval = 300 * time.Millisecond
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{Options: []engine.Option{
		engine.WithWarmup(warmup.Config{RefreshInterval: interval, MinHits: 3, DecayInterval: time.Hour}),
		engine.WithKeySpaceNegativeTTL(ks, time.Minute),
	}})
	ctx := context.Background()
	owner := 0
	hot := c.KeysOwnedBy(owner, 1, "refresh-born")[0]
	c.DataSource.SetMissing(hot, true)
	for range 5 {
		for _, n := range c.Live() {
			_, err := c.Node(n).Get(ctx, ks, hot)
			require.ErrorIs(t, err, keyspace.ErrNotFound)
		}
	}
	testutil.WaitFor(t, 10*time.Second, func() bool {
		return c.Node(owner).WarmupStats().Refreshed >= 2
	}, "the owner refreshes the remembered miss")
	_, err := c.Node(owner).Get(ctx, ks, hot)
	require.ErrorIs(t, err, keyspace.ErrNotFound, "still absent after refreshes that found no row")
	require.Zero(t, c.Node(owner).WarmupStats().Changed, "no row is no change")

	c.DataSource.SetMissing(hot, false)
	c.DataSource.SetValue(hot, []byte("born"))
	testutil.WaitFor(t, 10*time.Second, func() bool {
		for _, n := range c.Live() {
			if v, err := c.Node(n).Get(ctx, ks, hot); err != nil || string(v) != "born" {
				return false
			}
		}
		return true
	}, "the created row reaches every node before the negative TTL ends, without a Put")
	require.Positive(t, c.Node(owner).WarmupStats().Changed)
}

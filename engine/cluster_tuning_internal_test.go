package engine

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/distcache/distcache/discovery/static"
	"github.com/distcache/distcache/internal/membership"
	"github.com/distcache/distcache/keyspace"
)

// Every tuning field reaches the cluster config, zero fields keep the
// preset's values, and LocalNetwork switches the preset.
func TestClusterTuningConfig(t *testing.T) {
	lan, local := membership.DefaultConfig(), membership.DefaultLocalConfig()
	require.Equal(t, lan, ClusterTuning{}.clusterConfig())

	got := ClusterTuning{LocalNetwork: true}.clusterConfig()
	require.Equal(t, local.Profile, got.Profile)
	require.Equal(t, local.PushPullInterval, got.PushPullInterval)
	require.Equal(t, local.DeadNodeReclaimTime, got.DeadNodeReclaimTime)

	got = ClusterTuning{
		ProbeInterval: 3 * time.Second, ProbeTimeout: time.Second, PushPullInterval: 4 * time.Second,
		GossipToTheDeadTime: 5 * time.Second, DeadNodeReclaimTime: -1, RingDebounce: 6 * time.Millisecond,
		PauseLimit: 7 * time.Second, CutOffScore: 8, DialTimeout: 9 * time.Second, IdleTimeout: -1,
		MaxConnsPerIP: 10, MaxPendingConns: -1,
	}.clusterConfig()
	require.Equal(t, 3*time.Second, got.ProbeInterval)
	require.Equal(t, time.Second, got.ProbeTimeout)
	require.Equal(t, 4*time.Second, got.PushPullInterval)
	require.Equal(t, 5*time.Second, got.GossipToTheDeadTime)
	require.Equal(t, time.Duration(-1), got.DeadNodeReclaimTime)
	require.Equal(t, 6*time.Millisecond, got.RingDebounce)
	require.Equal(t, 7*time.Second, got.PauseLimit)
	require.Equal(t, 8, got.CutOffScore)
	require.Equal(t, 9*time.Second, got.Transport.DialTimeout)
	require.Equal(t, time.Duration(-1), got.Transport.IdleTimeout)
	require.Equal(t, 10, got.Transport.MaxConnsPerIP)
	require.Equal(t, -1, got.Transport.MaxPendingConns)
	require.Equal(t, lan.Profile, got.Profile)
}

// New names every invalid tuning field.
func TestClusterTuningValidation(t *testing.T) {
	ks := []keyspace.KeySpace{keyspace.New("a", 1<<20, keyspace.DataSourceFunc(nil))}
	_, err := New(NewConfig(static.NewDiscovery(nil), ks, WithBindAddr("127.0.0.1"),
		WithClusterTuning(ClusterTuning{ProbeInterval: time.Second, ProbeTimeout: time.Second, PauseLimit: -1, CutOffScore: -1, DialTimeout: -1})))
	require.ErrorIs(t, err, ErrInvalidConfig)
	for _, want := range []string{"ClusterTuning.ProbeTimeout", "ClusterTuning.PauseLimit", "ClusterTuning.CutOffScore", "ClusterTuning.DialTimeout"} {
		require.ErrorContains(t, err, want)
	}
	e, err := New(NewConfig(static.NewDiscovery(nil), ks, WithBindAddr("127.0.0.1"),
		WithClusterTuning(ClusterTuning{LocalNetwork: true, ProbeInterval: 200 * time.Millisecond, ProbeTimeout: 80 * time.Millisecond})))
	require.NoError(t, err)
	require.NoError(t, e.Stop(context.Background()))
}

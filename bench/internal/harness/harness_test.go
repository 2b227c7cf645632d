package harness_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/sync/singleflight"

	"github.com/distcache/distcache/bench/internal/harness"
	"github.com/distcache/distcache/bench/internal/sut"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fake is an in-memory System: one shared map, misses coalesced
// cluster-wide, nodes that can be marked down.
type fake struct {
	src             *sut.Source
	mu              sync.Mutex
	data            map[string][]byte
	flights         singleflight.Group
	down            []atomic.Bool
	stops, restarts atomic.Int32
}

func (f *fake) Name() string    { return "fake" }
func (f *fake) Notes() []string { return []string{"in-memory"} }

func (f *fake) Start(_ context.Context, n int, src *sut.Source) error {
	f.src, f.data, f.down = src, map[string][]byte{}, make([]atomic.Bool, n)
	return nil
}

func (f *fake) Get(ctx context.Context, node int, key string) ([]byte, error) {
	if f.down[node].Load() {
		return nil, sut.ErrNodeDown
	}
	f.mu.Lock()
	v, ok := f.data[key]
	f.mu.Unlock()
	if ok {
		return v, nil
	}
	r, err, _ := f.flights.Do(key, func() (any, error) {
		f.mu.Lock() // a flight that just ended may have stored it
		v, ok := f.data[key]
		f.mu.Unlock()
		if ok {
			return v, nil
		}
		v, err := f.src.Fetch(ctx, key)
		if err == nil {
			f.mu.Lock()
			f.data[key] = v
			f.mu.Unlock()
		}
		return v, err
	})
	if err != nil {
		return nil, err
	}
	return r.([]byte), nil
}

func (f *fake) Put(_ context.Context, node int, key string, v []byte) error {
	if f.down[node].Load() {
		return sut.ErrNodeDown
	}
	f.mu.Lock()
	f.data[key] = v
	f.mu.Unlock()
	return nil
}

func (f *fake) GetMany(ctx context.Context, node int, keys []string) (int, error) {
	n := 0
	for _, k := range keys {
		if _, err := f.Get(ctx, node, k); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func (f *fake) StopNode(_ context.Context, node int) error {
	f.stops.Add(1)
	f.down[node].Store(true)
	return nil
}

func (f *fake) RestartNode(_ context.Context, node int) error {
	f.restarts.Add(1)
	f.down[node].Store(false)
	return nil
}

func (f *fake) Close(context.Context) error { return nil }

func TestRunSystemRunsEveryWorkload(t *testing.T) {
	cfg := harness.ShortConfig()
	cfg.Keys = 500
	cfg.Duration = 60 * time.Millisecond
	f := &fake{}
	rep := harness.RunSystem(context.Background(), f, cfg, t.Logf)
	require.Empty(t, rep.Err)
	require.Equal(t, "fake", rep.Name)
	for _, wl := range harness.Workloads() {
		r, ok := rep.Result(wl)
		require.True(t, ok, wl)
		require.Positive(t, r.Ops, wl)
		if wl != harness.W5 { // a caller may reach the node just as it stops
			require.Zero(t, r.Errors, wl)
		}
		require.Equal(t, -1.0, r.RemotePerGet, "fake counts no remote fetches")
	}
	w1, _ := rep.Result(harness.W1)
	require.Equal(t, 1.0, w1.HitRatio, "the fill loaded every key")
	require.Zero(t, w1.DSCalls)
	require.Positive(t, w1.PutP50, "W1's Puts are timed on their own")
	require.GreaterOrEqual(t, w1.PutP99, w1.PutP50)
	w2, _ := rep.Result(harness.W2)
	require.Zero(t, w2.PutP50, "W2 has no Puts")
	w3, _ := rep.Result(harness.W3)
	require.Equal(t, int64(cfg.StormRounds*cfg.StormKeys), w3.DSCalls)
	require.Equal(t, 1, w3.MaxCallsPerKey)
	require.Equal(t, int64(cfg.StormRounds*cfg.StormGets), w3.Ops)
	require.Positive(t, w3.WallMedian)
	w4, _ := rep.Result(harness.W4)
	require.Equal(t, w4.Ops*int64(cfg.BatchSize), w4.Gets)
	w5, _ := rep.Result(harness.W5)
	require.Len(t, w5.Phases, 3)
	require.Equal(t, []string{"before", "during", "after"}, []string{w5.Phases[0].Name, w5.Phases[1].Name, w5.Phases[2].Name})
	require.Equal(t, int32(1), f.stops.Load())
	require.Equal(t, int32(1), f.restarts.Load())
}

func TestSelectedWorkloadsOnly(t *testing.T) {
	cfg := harness.ShortConfig()
	cfg.Keys = 100
	cfg.Duration = 20 * time.Millisecond
	cfg.Workloads = []string{harness.W3}
	rep := harness.RunSystem(context.Background(), &fake{}, cfg, func(string, ...any) {})
	require.Len(t, rep.Results, 1)
	require.Equal(t, harness.W3, rep.Results[0].Workload)
}

func TestConfigValidate(t *testing.T) {
	require.NoError(t, harness.DefaultConfig().Validate())
	require.NoError(t, harness.ShortConfig().Validate())
	bad := harness.DefaultConfig()
	bad.Nodes = 1
	bad.Duration = 0
	bad.StormKeys = bad.StormGets + 1
	bad.ChurnNode = 7
	bad.StormRounds = 0
	bad.Workloads = []string{"W9"}
	err := bad.Validate()
	require.ErrorIs(t, err, harness.ErrInvalidConfig)
	for _, field := range []string{"Nodes", "Duration", "StormKeys", "ChurnNode", "StormRounds", "W9"} {
		require.Contains(t, err.Error(), field)
	}
	_, err = harness.Run(context.Background(), bad, nil, true, nil)
	require.ErrorIs(t, err, harness.ErrInvalidConfig)
}

package engine_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/distcache/distcache/engine"
	"github.com/distcache/distcache/keyspace"
	"github.com/distcache/distcache/testutil"
	"github.com/stretchr/testify/require"
)

func TestRateLimitImmediateDeny(t *testing.T) {
	e, ds := startSingle(t, engine.WithRateLimiter(engine.RateLimitConfig{RequestsPerSecond: 0.001, Burst: 2}))
	ctx := context.Background()
	for i := range 2 {
		_, err := e.Get(ctx, ks, fmt.Sprint("k", i))
		require.NoError(t, err)
	}
	start := time.Now()
	_, err := e.Get(ctx, ks, "k3")
	require.ErrorIs(t, err, engine.ErrDataSourceRateLimited)
	require.Less(t, time.Since(start), 500*time.Millisecond, "denied at once")
	require.EqualValues(t, 2, ds.Total())
	st := ksStats(t, e)
	require.EqualValues(t, 1, st.RateLimited)
	// Hits are never limited.
	_, err = e.Get(ctx, ks, "k0")
	require.NoError(t, err)
}

func TestRateLimitWaitTimeout(t *testing.T) {
	e, _ := startSingle(t, engine.WithRateLimiter(engine.RateLimitConfig{RequestsPerSecond: 0.001, Burst: 1, WaitTimeout: 30 * time.Millisecond}))
	ctx := context.Background()
	_, err := e.Get(ctx, ks, "a")
	require.NoError(t, err)
	_, err = e.Get(ctx, ks, "b")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorIs(t, err, engine.ErrDataSourceRateLimited)

	// With a rate that refills within the wait, the miss waits and succeeds.
	e2, ds2 := startSingle(t, engine.WithRateLimiter(engine.RateLimitConfig{RequestsPerSecond: 50, Burst: 1, WaitTimeout: time.Second}))
	for i := range 3 {
		_, err := e2.Get(ctx, ks, fmt.Sprint("w", i))
		require.NoError(t, err)
	}
	require.EqualValues(t, 3, ds2.Total())
}

// Coalesced callers spend one token.
func TestRateLimitAfterSingleflight(t *testing.T) {
	e, ds := startSingle(t, engine.WithRateLimiter(engine.RateLimitConfig{RequestsPerSecond: 0.001, Burst: 1}))
	release := ds.Hold()
	var wg sync.WaitGroup
	var ok atomic.Int32
	for range 50 {
		wg.Go(func() {
			if _, err := e.Get(context.Background(), ks, "hot"); err == nil {
				ok.Add(1)
			}
		})
	}
	testutil.WaitFor(t, 0, func() bool { return ksStats(t, e).LoadsDeduped == 49 }, "all joined one flight")
	release()
	wg.Wait()
	require.EqualValues(t, 50, ok.Load())
	require.EqualValues(t, 1, ds.Total())
}

func TestCircuitBreakerOpensAndRecovers(t *testing.T) {
	e, ds := startSingle(t, engine.WithCircuitBreaker(engine.CircuitBreakerConfig{FailureThreshold: 3, ResetTimeout: 100 * time.Millisecond}))
	ctx := context.Background()
	boom := errors.New("db down")
	ds.FailAll(boom)
	for i := range 3 {
		_, err := e.Get(ctx, ks, fmt.Sprint("f", i))
		require.ErrorIs(t, err, boom)
	}
	_, err := e.Get(ctx, ks, "f9")
	require.ErrorIs(t, err, engine.ErrDataSourceCircuitOpen)
	require.EqualValues(t, 3, ds.Total(), "open breaker: no fetch")
	require.Equal(t, "open", ksStats(t, e).BreakerState)

	// Half-open after ResetTimeout: one probe; success closes it.
	ds.FailAll(nil)
	testutil.WaitFor(t, 0, func() bool {
		_, err := e.Get(ctx, ks, "probe")
		return err == nil
	}, "breaker lets a probe through after ResetTimeout")
	require.Equal(t, "closed", ksStats(t, e).BreakerState)
	_, err = e.Get(ctx, ks, "after")
	require.NoError(t, err)
}

func TestCircuitBreakerHalfOpenFailureReopens(t *testing.T) {
	e, ds := startSingle(t, engine.WithCircuitBreaker(engine.CircuitBreakerConfig{FailureThreshold: 1, ResetTimeout: 50 * time.Millisecond}))
	ctx := context.Background()
	ds.FailAll(errors.New("down"))
	_, _ = e.Get(ctx, ks, "a")
	_, err := e.Get(ctx, ks, "b")
	require.ErrorIs(t, err, engine.ErrDataSourceCircuitOpen)
	before := ds.Total()
	testutil.WaitFor(t, 0, func() bool {
		_, err := e.Get(ctx, ks, "c")
		return !errors.Is(err, engine.ErrDataSourceCircuitOpen)
	}, "probe after ResetTimeout")
	require.EqualValues(t, before+1, ds.Total(), "exactly one probe")
	_, err = e.Get(ctx, ks, "d")
	require.ErrorIs(t, err, engine.ErrDataSourceCircuitOpen, "the failed probe re-opened it")
}

// Not-found answers and cancellations never trip the breaker.
func TestCircuitBreakerIgnoresNotFound(t *testing.T) {
	e, ds := startSingle(t, engine.WithCircuitBreaker(engine.CircuitBreakerConfig{FailureThreshold: 2, ResetTimeout: time.Hour}))
	ctx := context.Background()
	for i := range 10 {
		k := fmt.Sprint("missing", i)
		ds.SetMissing(k, true)
		_, err := e.Get(ctx, ks, k)
		require.ErrorIs(t, err, keyspace.ErrNotFound)
	}
	_, err := e.Get(ctx, ks, "present")
	require.NoError(t, err)
	require.Equal(t, "closed", ksStats(t, e).BreakerState)
}

// Keyspace overrides replace the engine-wide protections.
func TestProtectionPrecedence(t *testing.T) {
	strict, loose := testutil.NewDataSource(), testutil.NewDataSource()
	e := newEngine(t, []keyspace.KeySpace{keyspace.New("strict", 1<<20, strict), keyspace.New("loose", 1<<20, loose)},
		engine.WithRateLimiter(engine.RateLimitConfig{RequestsPerSecond: 0.001, Burst: 1}),
		engine.WithKeySpaceRateLimiter("loose", engine.RateLimitConfig{RequestsPerSecond: 1000, Burst: 100}),
		engine.WithKeySpaceCircuitBreaker("strict", engine.CircuitBreakerConfig{FailureThreshold: 1, ResetTimeout: time.Hour}))
	require.NoError(t, e.Start(context.Background()))
	ctx := context.Background()
	for i := range 20 {
		_, err := e.Get(ctx, "loose", fmt.Sprint(i))
		require.NoError(t, err, "keyspace limiter overrides the engine's")
	}
	_, err := e.Get(ctx, "strict", "a")
	require.NoError(t, err)
	_, err = e.Get(ctx, "strict", "b")
	require.ErrorIs(t, err, engine.ErrDataSourceRateLimited, "the engine limiter applies where not overridden")
	st, _ := e.Stats().KeySpace("strict")
	require.Equal(t, "closed", st.BreakerState, "keyspace breaker configured")
	st, _ = e.Stats().KeySpace("loose")
	require.Empty(t, st.BreakerState)
}

func TestNegativeCaching(t *testing.T) {
	e, ds := startSingle(t, engine.WithKeySpaceNegativeTTL(ks, time.Hour))
	ctx := context.Background()
	ds.SetMissing("ghost", true)
	for range 5 {
		_, err := e.Get(ctx, ks, "ghost")
		require.ErrorIs(t, err, keyspace.ErrNotFound)
	}
	require.Equal(t, 1, ds.Fetches("ghost"), "the miss is remembered")
	require.EqualValues(t, 4, ksStats(t, e).NegativeHits)
	require.NoError(t, e.Put(ctx, ks, engine.Entry{Key: "ghost", Value: []byte("alive")}))
	v, err := e.Get(ctx, ks, "ghost")
	require.NoError(t, err)
	require.Equal(t, "alive", string(v), "a Put replaces the remembered miss")

	// Without a negative TTL misses are not remembered.
	e2, ds2 := startSingle(t)
	ds2.SetMissing("ghost", true)
	for range 3 {
		_, _ = e2.Get(ctx, ks, "ghost")
	}
	require.Equal(t, 3, ds2.Fetches("ghost"))
}

func TestNegativeTTLExpires(t *testing.T) {
	e, ds := startSingle(t, engine.WithKeySpaceNegativeTTL(ks, 30*time.Millisecond))
	ds.SetMissing("k", true)
	_, err := e.Get(context.Background(), ks, "k")
	require.ErrorIs(t, err, keyspace.ErrNotFound)
	ds.SetMissing("k", false)
	testutil.WaitFor(t, 0, func() bool {
		_, err := e.Get(context.Background(), ks, "k")
		return err == nil
	}, "remembered miss expires")
}

func TestStaleOnError(t *testing.T) {
	e, ds := startSingle(t,
		engine.WithKeySpaceDefaultTTL(ks, 20*time.Millisecond),
		engine.WithKeySpaceStaleOnError(ks, time.Hour),
		engine.WithCircuitBreaker(engine.CircuitBreakerConfig{FailureThreshold: 2, ResetTimeout: time.Hour}))
	ctx := context.Background()
	_, err := e.Get(ctx, ks, "k")
	require.NoError(t, err)
	ds.FailAll(errors.New("db down"))
	// Once expired, a failing refetch falls back to the stale value...
	testutil.WaitFor(t, 0, func() bool {
		v, err := e.Get(ctx, ks, "k")
		require.NoError(t, err)
		require.Equal(t, testutil.ValueOf("k"), v)
		return ksStats(t, e).StaleServed >= 2
	}, "stale value served on fetch errors")
	// ...and so does an open breaker.
	require.Equal(t, "open", ksStats(t, e).BreakerState)
	v, err := e.Get(ctx, ks, "k")
	require.NoError(t, err)
	require.Equal(t, testutil.ValueOf("k"), v)
	// A key with nothing stale still fails.
	_, err = e.Get(ctx, ks, "other")
	require.ErrorIs(t, err, engine.ErrDataSourceCircuitOpen)
}

func TestStaleOnErrorBounded(t *testing.T) {
	e, ds := startSingle(t,
		engine.WithKeySpaceDefaultTTL(ks, 10*time.Millisecond),
		engine.WithKeySpaceStaleOnError(ks, 30*time.Millisecond))
	ctx := context.Background()
	_, err := e.Get(ctx, ks, "k")
	require.NoError(t, err)
	boom := errors.New("db down")
	ds.FailAll(boom)
	testutil.WaitFor(t, 0, func() bool {
		_, err := e.Get(ctx, ks, "k")
		return errors.Is(err, boom)
	}, "past maxStale the error is returned")
	// Without stale-on-error an expired entry's failed refetch is an error.
	e2, ds2 := startSingle(t, engine.WithKeySpaceDefaultTTL(ks, 10*time.Millisecond))
	_, err = e2.Get(ctx, ks, "k")
	require.NoError(t, err)
	ds2.FailAll(boom)
	testutil.WaitFor(t, 0, func() bool {
		_, err := e2.Get(ctx, ks, "k")
		return errors.Is(err, boom)
	}, "expired entry refetched")
	require.Zero(t, ksStats(t, e2).StaleServed)
}

// A failing DataSource behind a 3-node cluster: the typed protection errors
// reach callers on every node, across the forwarded hop.
func TestClusterProtectionErrorsTyped(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{Options: []engine.Option{
		engine.WithCircuitBreaker(engine.CircuitBreakerConfig{FailureThreshold: 1, ResetTimeout: time.Hour}),
	}})
	ctx := context.Background()
	keys := c.KeysOwnedBy(0, 3, "p")
	boom := errors.New("db down")
	c.DataSource.FailAll(boom)
	_, err := c.Node(1).Get(ctx, ks, keys[0]) // opens node 0's breaker
	var re *engine.RemoteError
	require.ErrorAs(t, err, &re)
	require.Contains(t, err.Error(), "db down")
	for _, n := range []int{0, 1, 2} {
		_, err := c.Node(n).Get(ctx, ks, keys[1])
		require.ErrorIs(t, err, engine.ErrDataSourceCircuitOpen, "node %d", n)
	}
	// Node 2's limiter has one token: spend it, then every node sees the
	// typed rate-limit error for another key node 2 owns.
	c2 := testutil.NewCluster(t, 3, testutil.ClusterConfig{Options: []engine.Option{
		engine.WithKeySpaceRateLimiter(ks, engine.RateLimitConfig{RequestsPerSecond: 0.001, Burst: 1}),
	}})
	keys2 := c2.KeysOwnedBy(2, 2, "r")
	_, err = c2.Node(0).Get(ctx, ks, keys2[0])
	require.NoError(t, err)
	for _, n := range []int{0, 1, 2} {
		_, err := c2.Node(n).Get(ctx, ks, keys2[1])
		require.ErrorIs(t, err, engine.ErrDataSourceRateLimited, "node %d", n)
	}
	require.EqualValues(t, 1, c2.DataSource.Total())
}

// Under a miss storm the limiter holds the DataSource within 10% of its
// configured rate, and callers over the limit get fast errors.
func TestRateLimiterHoldsRateUnderLoad(t *testing.T) {
	const rps, burst = 200.0, 10
	e, ds := startSingle(t, engine.WithRateLimiter(engine.RateLimitConfig{RequestsPerSecond: rps, Burst: burst}))
	ctx := context.Background()
	var n, limited atomic.Int64
	var slowest atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				t0 := time.Now()
				_, err := e.Get(ctx, ks, fmt.Sprint("storm-", n.Add(1)))
				if errors.Is(err, engine.ErrDataSourceRateLimited) {
					limited.Add(1)
					if d := int64(time.Since(t0)); d > slowest.Load() {
						slowest.Store(d)
					}
				}
			}
		})
	}
	testutil.WaitFor(t, 0, func() bool { return time.Since(start) > time.Second && ds.Total() > 0 }, "load ran")
	close(stop)
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	allowed := rps*elapsed + burst
	got := float64(ds.Total())
	require.LessOrEqual(t, got, allowed*1.10, "fetches %v in %.2fs exceed the limit", got, elapsed)
	require.GreaterOrEqual(t, got, allowed*0.90, "fetches %v in %.2fs far below the limit", got, elapsed)
	require.Greater(t, limited.Load(), int64(got), "most callers were refused")
}

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
	t.Parallel()
	testutil.Bubble(t, func(t *testing.T) {
		e, ds := startSingle(t, engine.WithRateLimiter(engine.RateLimitConfig{RequestsPerSecond: 0.001, Burst: 2}))
		ctx := context.Background()
		for i := range 2 {
			_, err := e.Get(ctx, ks, fmt.Sprint("k", i))
			require.NoError(t, err)
		}
		start := time.Now()
		_, err := e.Get(ctx, ks, "k3")
		require.ErrorIs(t, err, engine.ErrDataSourceRateLimited)
		require.Zero(t, time.Since(start), "denied at once")
		require.EqualValues(t, 2, ds.Total())
		st := ksStats(t, e)
		require.EqualValues(t, 1, st.RateLimited)
		// Hits are never limited.
		_, err = e.Get(ctx, ks, "k0")
		require.NoError(t, err)
	})
}

func TestRateLimitWaitTimeout(t *testing.T) {
	t.Parallel()
	testutil.Bubble(t, func(t *testing.T) {
		e, _ := startSingle(t, engine.WithRateLimiter(engine.RateLimitConfig{RequestsPerSecond: 0.001, Burst: 1, WaitTimeout: 30 * time.Millisecond}))
		ctx := context.Background()
		_, err := e.Get(ctx, ks, "a")
		require.NoError(t, err)
		_, err = e.Get(ctx, ks, "b")
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.ErrorIs(t, err, engine.ErrDataSourceRateLimited)

		// With a rate that refills within the wait, each miss waits for its
		// token: one every 20 ms after the burst.
		e2, ds2 := startSingle(t, engine.WithRateLimiter(engine.RateLimitConfig{RequestsPerSecond: 50, Burst: 1, WaitTimeout: time.Second}))
		start := time.Now()
		for i := range 3 {
			_, err := e2.Get(ctx, ks, fmt.Sprint("w", i))
			require.NoError(t, err)
		}
		require.EqualValues(t, 3, ds2.Total())
		require.Equal(t, 40*time.Millisecond, time.Since(start), "two waits for a token")
	})
}

// Coalesced callers spend one token.
func TestRateLimitAfterSingleflight(t *testing.T) {
	t.Parallel()
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
	testutil.WaitFor(t, 0, func() bool { return ksStats(t, e).FetchesCoalesced == 49 }, "all joined one flight")
	release()
	wg.Wait()
	require.EqualValues(t, 50, ok.Load())
	require.EqualValues(t, 1, ds.Total())
}

func TestCircuitBreakerOpensAndRecovers(t *testing.T) {
	t.Parallel()
	testutil.Bubble(t, func(t *testing.T) {
		const reset = 100 * time.Millisecond
		e, ds := startSingle(t, engine.WithCircuitBreaker(engine.CircuitBreakerConfig{FailureThreshold: 3, ResetTimeout: reset}))
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

		// Open until ResetTimeout has passed, then half-open: one probe,
		// whose success closes it.
		ds.FailAll(nil)
		time.Sleep(reset - time.Millisecond)
		_, err = e.Get(ctx, ks, "early")
		require.ErrorIs(t, err, engine.ErrDataSourceCircuitOpen, "still open just before ResetTimeout")
		require.EqualValues(t, 3, ds.Total())
		time.Sleep(2 * time.Millisecond)
		_, err = e.Get(ctx, ks, "probe")
		require.NoError(t, err, "the probe goes through once ResetTimeout has passed")
		require.Equal(t, "closed", ksStats(t, e).BreakerState)
		_, err = e.Get(ctx, ks, "after")
		require.NoError(t, err)
		require.EqualValues(t, 5, ds.Total())
	})
}

func TestCircuitBreakerHalfOpenFailureReopens(t *testing.T) {
	t.Parallel()
	testutil.Bubble(t, func(t *testing.T) {
		const reset = 50 * time.Millisecond
		e, ds := startSingle(t, engine.WithCircuitBreaker(engine.CircuitBreakerConfig{FailureThreshold: 1, ResetTimeout: reset}))
		ctx := context.Background()
		ds.FailAll(errors.New("down"))
		_, _ = e.Get(ctx, ks, "a")
		_, err := e.Get(ctx, ks, "b")
		require.ErrorIs(t, err, engine.ErrDataSourceCircuitOpen)
		before := ds.Total()
		time.Sleep(reset + time.Millisecond)
		_, err = e.Get(ctx, ks, "c")
		require.NotErrorIs(t, err, engine.ErrDataSourceCircuitOpen, "probe after ResetTimeout")
		require.EqualValues(t, before+1, ds.Total(), "exactly one probe")
		_, err = e.Get(ctx, ks, "d")
		require.ErrorIs(t, err, engine.ErrDataSourceCircuitOpen, "the failed probe re-opened it")
		// Re-opened for a whole ResetTimeout from the failed probe.
		time.Sleep(reset - time.Millisecond)
		_, err = e.Get(ctx, ks, "e")
		require.ErrorIs(t, err, engine.ErrDataSourceCircuitOpen)
		require.EqualValues(t, before+1, ds.Total())
	})
}

// Not-found answers and cancellations never trip the breaker.
func TestCircuitBreakerIgnoresNotFound(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
	testutil.Bubble(t, func(t *testing.T) {
		const ttl = 30 * time.Millisecond
		e, ds := startSingle(t, engine.WithKeySpaceNegativeTTL(ks, ttl))
		ctx := context.Background()
		ds.SetMissing("k", true)
		_, err := e.Get(ctx, ks, "k")
		require.ErrorIs(t, err, keyspace.ErrNotFound)
		ds.SetMissing("k", false)
		time.Sleep(ttl - time.Millisecond)
		_, err = e.Get(ctx, ks, "k")
		require.ErrorIs(t, err, keyspace.ErrNotFound, "the miss is remembered for the negative TTL")
		require.Equal(t, 1, ds.Fetches("k"))
		time.Sleep(time.Millisecond)
		v, err := e.Get(ctx, ks, "k")
		require.NoError(t, err, "the remembered miss expired")
		require.Equal(t, testutil.ValueOf("k"), v)
		require.Equal(t, 2, ds.Fetches("k"))
	})
}

func TestStaleOnError(t *testing.T) {
	t.Parallel()
	testutil.Bubble(t, func(t *testing.T) {
		const ttl = 20 * time.Millisecond
		e, ds := startSingle(t,
			engine.WithKeySpaceDefaultTTL(ks, ttl),
			engine.WithKeySpaceStaleOnError(ks, time.Hour),
			engine.WithCircuitBreaker(engine.CircuitBreakerConfig{FailureThreshold: 2, ResetTimeout: time.Hour}))
		ctx := context.Background()
		_, err := e.Get(ctx, ks, "k")
		require.NoError(t, err)
		ds.FailAll(errors.New("db down"))
		// Fresh: a hit, no fetch.
		time.Sleep(ttl - time.Millisecond)
		_, err = e.Get(ctx, ks, "k")
		require.NoError(t, err)
		require.EqualValues(t, 1, ds.Total())
		// Once expired, each failing refetch falls back to the stale value...
		time.Sleep(time.Millisecond)
		for i := range 2 {
			v, err := e.Get(ctx, ks, "k")
			require.NoError(t, err)
			require.Equal(t, testutil.ValueOf("k"), v)
			require.EqualValues(t, 2+i, ds.Total(), "expired: refetched")
		}
		require.EqualValues(t, 2, ksStats(t, e).StaleServed)
		// ...and so does an open breaker.
		require.Equal(t, "open", ksStats(t, e).BreakerState)
		v, err := e.Get(ctx, ks, "k")
		require.NoError(t, err)
		require.Equal(t, testutil.ValueOf("k"), v)
		require.EqualValues(t, 3, ds.Total(), "open breaker: no fetch")
		// A key with nothing stale still fails.
		_, err = e.Get(ctx, ks, "other")
		require.ErrorIs(t, err, engine.ErrDataSourceCircuitOpen)
	})
}

func TestStaleOnErrorBounded(t *testing.T) {
	t.Parallel()
	testutil.Bubble(t, func(t *testing.T) {
		const ttl, maxStale = 10 * time.Millisecond, 30 * time.Millisecond
		e, ds := startSingle(t,
			engine.WithKeySpaceDefaultTTL(ks, ttl),
			engine.WithKeySpaceStaleOnError(ks, maxStale))
		ctx := context.Background()
		_, err := e.Get(ctx, ks, "k")
		require.NoError(t, err)
		boom := errors.New("db down")
		ds.FailAll(boom)
		// Stale is served up to maxStale past the expiry, not beyond.
		time.Sleep(ttl + maxStale - time.Millisecond)
		v, err := e.Get(ctx, ks, "k")
		require.NoError(t, err, "within maxStale of the expiry")
		require.Equal(t, testutil.ValueOf("k"), v)
		time.Sleep(time.Millisecond)
		_, err = e.Get(ctx, ks, "k")
		require.ErrorIs(t, err, boom, "past maxStale the error is returned")

		// Without stale-on-error an expired entry's failed refetch is an error.
		e2, ds2 := startSingle(t, engine.WithKeySpaceDefaultTTL(ks, ttl))
		_, err = e2.Get(ctx, ks, "k")
		require.NoError(t, err)
		ds2.FailAll(boom)
		time.Sleep(ttl)
		_, err = e2.Get(ctx, ks, "k")
		require.ErrorIs(t, err, boom, "expired entry refetched")
		require.Zero(t, ksStats(t, e2).StaleServed)
	})
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

// Under a miss storm the limiter holds the DataSource to its configured
// rate, to the token, and callers over the limit are refused at once.
func TestRateLimiterHoldsRateUnderLoad(t *testing.T) {
	t.Parallel()
	testutil.Bubble(t, func(t *testing.T) {
		const rps, burst = 200.0, 10
		const callers, span = 8, 500 * time.Millisecond
		e, ds := startSingle(t, engine.WithRateLimiter(engine.RateLimitConfig{RequestsPerSecond: rps, Burst: burst}))
		ctx := context.Background()
		var n, limited, slowRefusals atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range callers {
			wg.Go(func() {
				// Each caller misses once per millisecond of the fake clock.
				for ; time.Since(start) < span; time.Sleep(time.Millisecond) {
					t0 := time.Now()
					_, err := e.Get(ctx, ks, fmt.Sprint("storm-", n.Add(1)))
					if errors.Is(err, engine.ErrDataSourceRateLimited) {
						limited.Add(1)
						if time.Since(t0) > 0 {
							slowRefusals.Add(1)
						}
					}
				}
			})
		}
		wg.Wait()
		allowed := rps*span.Seconds() + burst
		require.InDelta(t, allowed, float64(ds.Total()), 1, "one fetch per token")
		require.Equal(t, n.Load(), ds.Total()+limited.Load(), "every other caller was refused")
		require.Zero(t, slowRefusals.Load(), "refusals never wait")
	})
}

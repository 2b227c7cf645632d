package engine_test

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/distcache/distcache/engine"
	"github.com/distcache/distcache/keyspace"
	"github.com/distcache/distcache/testutil"
	"github.com/stretchr/testify/require"
)

// stuckSource blocks its first fetch of "stuck" until released, ignoring
// its context (the failure mode under test); every other fetch answers.
type stuckSource struct {
	release  chan struct{}
	fetches  atomic.Int64
	stuckNow atomic.Int64 // fetches blocked right now
}

func newStuckSource() *stuckSource { return &stuckSource{release: make(chan struct{})} }

func (s *stuckSource) Fetch(_ context.Context, key string) ([]byte, error) {
	if s.fetches.Add(1) == 1 && key == "stuck" {
		s.stuckNow.Add(1)
		defer s.stuckNow.Add(-1)
		<-s.release
	}
	return []byte("v-" + key), nil
}

// unblock releases the stuck fetch at the end of the test and waits until
// it has returned: the goroutine it held belongs to the DataSource, and
// the package's leak check must not see it.
func (s *stuckSource) unblock(t *testing.T) {
	t.Cleanup(func() {
		close(s.release)
		require.Eventually(t, func() bool { return s.stuckNow.Load() == 0 }, 5*time.Second, time.Millisecond)
	})
}

// A fetch that ignores its context is abandoned at the keyspace read
// timeout: its waiters fail with the deadline, and the key recovers (the
// next Get starts a fresh load instead of joining the stuck one).
func TestStuckLoadAbandonedKeyRecovers(t *testing.T) {
	t.Parallel()
	ds := newStuckSource()
	e := newEngine(t, []keyspace.KeySpace{keyspace.New(ks, 64<<20, ds)},
		engine.WithKeySpaceReadTimeout(ks, 200*time.Millisecond))
	ds.unblock(t) // before the engine's Stop (cleanups run last first)
	ctx := context.Background()
	require.NoError(t, e.Start(ctx))

	_, err := e.Get(ctx, ks, "stuck")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.EqualValues(t, 1, ds.stuckNow.Load(), "the fetch is still blocked")
	// (A Get that joined the flight just before it was abandoned fails
	// with it: poll.)
	require.Eventually(t, func() bool {
		v, err := e.Get(ctx, ks, "stuck")
		return err == nil && string(v) == "v-stuck"
	}, 5*time.Second, 10*time.Millisecond, "a fresh load answers")
	require.EqualValues(t, 1, ds.stuckNow.Load(), "while the first fetch is still blocked")
	require.EqualValues(t, 2, ds.fetches.Load(), "one fresh fetch")
}

// Stop returns by its context even when a DataSource ignores the
// cancellation: the stuck load is abandoned, its waiter released, and
// Stop's error says how many loads it left running.
func TestStopAbandonsStuckLoad(t *testing.T) {
	t.Parallel()
	testutil.Bubble(t, func(t *testing.T) {
		ds := newStuckSource()
		ds.unblock(t)
		e := newEngine(t, []keyspace.KeySpace{keyspace.New(ks, 64<<20, ds)},
			engine.WithKeySpaceReadTimeout(ks, time.Minute))
		ctx := context.Background()
		require.NoError(t, e.Start(ctx))

		got := make(chan error, 1)
		go func() {
			_, err := e.Get(ctx, ks, "stuck")
			got <- err
		}()
		synctest.Wait()
		require.EqualValues(t, 1, ds.stuckNow.Load())

		const budget = time.Second
		sctx, cancel := context.WithTimeout(ctx, budget)
		defer cancel()
		start := time.Now()
		err := e.Stop(sctx)
		require.ErrorContains(t, err, "1 loads abandoned")
		require.LessOrEqual(t, time.Since(start), budget, "Stop returns by its context")
		synctest.Wait()
		select {
		case err := <-got:
			require.Error(t, err, "the waiter is released")
		default:
			t.Fatal("the Get waiting on the stuck load never returned")
		}
	})
}

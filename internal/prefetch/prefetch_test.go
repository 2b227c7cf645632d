package prefetch

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func tasks(n int) []Task {
	out := make([]Task, n)
	for i := range out {
		out[i] = Task{KeySpace: "ks", Key: fmt.Sprint("k", i)}
	}
	return out
}

// The runner never has more than Concurrency fetches in flight and reaches
// that bound.
func TestPrefetchBoundsConcurrency(t *testing.T) {
	var cur, peak atomic.Int64
	release := make(chan struct{})
	done := make(chan Result)
	go func() {
		done <- Run(context.Background(), tasks(40), 3, func(ctx context.Context, _ Task) error {
			n := cur.Add(1)
			defer cur.Add(-1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			<-release
			return nil
		})
	}()
	require.Eventually(t, func() bool { return cur.Load() == 3 }, 5*time.Second, time.Millisecond)
	close(release)
	res := <-done
	require.Equal(t, Result{Succeeded: 40}, res)
	require.EqualValues(t, 3, peak.Load())
}

func TestPrefetchCountsFailuresAndTimeouts(t *testing.T) {
	ts := tasks(4)
	ts[1].Timeout = time.Millisecond
	boom := errors.New("boom")
	res := Run(context.Background(), ts, 0, func(ctx context.Context, task Task) error {
		switch task.Key {
		case "k1":
			<-ctx.Done() // the task's own timeout ends it
			return ctx.Err()
		case "k2":
			return boom
		}
		return nil
	})
	require.Equal(t, 2, res.Succeeded)
	require.Equal(t, 2, res.Failed)
	require.True(t, errors.Is(res.FirstErr, context.DeadlineExceeded) || errors.Is(res.FirstErr, boom))
}

func TestPrefetchStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var ran atomic.Int64
	res := Run(ctx, tasks(10), 1, func(context.Context, Task) error {
		if ran.Add(1) == 2 {
			cancel()
		}
		return nil
	})
	require.Equal(t, 2, res.Succeeded)
	require.Equal(t, 8, res.Skipped)
	require.Equal(t, Result{}, Run(context.Background(), nil, 4, nil))
}

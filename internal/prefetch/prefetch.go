package prefetch

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Task is one prefetch.
type Task struct {
	// KeySpace and Key name the entry.
	KeySpace, Key string
	// Owner is the member to ask for the key; "" means this node loads it.
	Owner string
	// Timeout bounds the prefetch (0: only ctx bounds it).
	Timeout time.Duration
}

// Result sums up a Run call.
type Result struct {
	// Succeeded and Failed count the tasks that ran; Skipped those never
	// started because ctx ended first.
	Succeeded, Failed, Skipped int
	// FirstErr is the first failure, for logging.
	FirstErr error
}

// Run runs fetch for every task with at most concurrency running at a
// time (values below 1 mean 1), each under its task's Timeout, and returns
// when all have finished: every goroutine it starts has exited by then.
// Once ctx ends, the tasks not started yet are skipped.
func Run(ctx context.Context, tasks []Task, concurrency int, fetch func(context.Context, Task) error) Result {
	var (
		next             atomic.Int64
		ok, failed, skip atomic.Int64
		errOnce          sync.Once
		firstErr         error
		wg               sync.WaitGroup
	)
	worker := func() {
		for {
			i := int(next.Add(1) - 1)
			if i >= len(tasks) {
				return
			}
			if ctx.Err() != nil {
				skip.Add(1)
				continue
			}
			if err := runTask(ctx, tasks[i], fetch); err != nil {
				failed.Add(1)
				errOnce.Do(func() { firstErr = err })
				continue
			}
			ok.Add(1)
		}
	}
	for range min(max(concurrency, 1), len(tasks)) {
		wg.Go(worker)
	}
	wg.Wait()
	return Result{Succeeded: int(ok.Load()), Failed: int(failed.Load()), Skipped: int(skip.Load()), FirstErr: firstErr}
}

func runTask(ctx context.Context, t Task, fetch func(context.Context, Task) error) error {
	if t.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.Timeout)
		defer cancel()
	}
	return fetch(ctx, t)
}

package engine_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/distcache/distcache/engine"
	"github.com/distcache/distcache/testutil"
	"github.com/stretchr/testify/require"
)

// lateContext has a deadline but reports it only lag later, as a context
// whose timer goroutine a loaded machine runs late.
type lateContext struct {
	context.Context
	deadline time.Time
	done     chan struct{}
}

func newLateContext(parent context.Context, deadline time.Time, lag time.Duration) *lateContext {
	c := &lateContext{Context: parent, deadline: deadline, done: make(chan struct{})}
	time.AfterFunc(time.Until(deadline)+lag, func() { close(c.done) })
	return c
}

func (c *lateContext) Deadline() (time.Time, bool) { return c.deadline, true }
func (c *lateContext) Done() <-chan struct{}       { return c.done }
func (c *lateContext) Err() error {
	select {
	case <-c.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}

// A write that runs out of time while it invalidates a holder is not
// applied, so the holder's copy is still current: the holder must not be
// told to flush (a flush drops every entry it owns). Invariant: over many
// writes whose deadline ends while the invalidation is in flight, the owner
// never records a missed invalidation, and each write either succeeded or
// failed with the deadline. The transport fails such a call at the
// deadline, which the write's context may report later (lateContext), so a
// check of the context alone misreads the write's timeout as the holder's
// failure.
func TestWriteTimeoutDoesNotFlushHolder(t *testing.T) {
	var logs syncBuffer
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{
		Options: []engine.Option{engine.WithKeySpaceNearCache(ks, 8<<20, time.Minute)},
		NodeOptions: func(i int) []engine.Option {
			if i != 0 {
				return nil
			}
			return []engine.Option{engine.WithLogger(slog.New(slog.NewTextHandler(&logs, nil)))}
		},
	})
	settleAll(c)
	ctx := context.Background()
	key := c.KeysOwnedBy(0, 1, "timeout")[0]
	timedOut := 0
	for i := range 300 {
		awaitNear(t, c, 1, key) // node 1 holds a copy: a write invalidates it
		wctx := newLateContext(ctx, time.Now().Add(time.Duration(20+i%40*10)*time.Microsecond), 20*time.Millisecond)
		err := c.Node(0).Put(wctx, ks, engine.Entry{Key: key, Value: []byte("v")})
		if err != nil {
			require.ErrorIs(t, err, context.DeadlineExceeded)
			timedOut++
		}
	}
	t.Logf("%d of 300 writes ran out of time", timedOut)
	require.NotContains(t, logs.String(), "could not invalidate", "a write's own timeout was taken for the holder's failure")
}

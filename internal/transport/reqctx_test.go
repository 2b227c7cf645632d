package transport

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReqCtxCancel(t *testing.T) {
	c := &reqCtx{}
	_, ok := c.Deadline()
	assert.False(t, ok)
	require.NoError(t, c.Err())
	assert.Nil(t, c.Value("k"))

	child, cancelChild := context.WithCancel(c)
	defer cancelChild()
	timeoutChild, cancelTimeout := context.WithTimeout(c, time.Hour)
	defer cancelTimeout()
	fired := make(chan struct{})
	stop := context.AfterFunc(c, func() { close(fired) })
	defer stop()

	c.cancel(context.Canceled)
	c.cancel(context.DeadlineExceeded) // first cancel wins
	require.ErrorIs(t, c.Err(), context.Canceled)
	<-c.Done()
	<-child.Done()
	<-timeoutChild.Done()
	<-fired
	require.ErrorIs(t, child.Err(), context.Canceled)
	require.ErrorIs(t, context.Cause(child), context.Canceled)

	// Deriving from an already cancelled ctx works too.
	late, cancelLate := context.WithCancel(c)
	defer cancelLate()
	<-late.Done()
}

func TestReqCtxDeadline(t *testing.T) {
	c := &reqCtx{deadline: time.Now().Add(20 * time.Millisecond)}
	dl, ok := c.Deadline()
	assert.True(t, ok)
	assert.Equal(t, c.deadline, dl)
	child, cancel := context.WithCancel(c)
	defer cancel()
	<-child.Done() // the timer is armed because a child asked for Done
	require.ErrorIs(t, c.Err(), context.DeadlineExceeded)
	require.ErrorIs(t, child.Err(), context.DeadlineExceeded)

	// Err alone notices a passed deadline without any timer.
	past := &reqCtx{deadline: time.Now().Add(-time.Millisecond)}
	require.ErrorIs(t, past.Err(), context.DeadlineExceeded)
	<-past.Done()
	past2 := &reqCtx{deadline: time.Now().Add(-time.Millisecond)}
	<-past2.Done()
	require.ErrorIs(t, past2.Err(), context.DeadlineExceeded)
}

func TestReqCtxStopAfterFunc(t *testing.T) {
	c := &reqCtx{}
	stop := c.AfterFunc(func() { t.Error("stopped func ran") })
	assert.True(t, stop())
	assert.False(t, stop())
	c.cancel(context.Canceled)
	ran := make(chan struct{})
	c.AfterFunc(func() { close(ran) }) // already done: runs (asynchronously)
	<-ran
}

func TestReqCtxConcurrent(t *testing.T) {
	for range 50 {
		c := &reqCtx{deadline: time.Now().Add(time.Millisecond)}
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				ch, cancel := context.WithTimeout(c, time.Hour)
				defer cancel()
				<-ch.Done()
			})
		}
		wg.Go(func() { c.cancel(context.Canceled) })
		wg.Wait()
		require.Error(t, c.Err())
	}
}

func TestHandlerDerivedContextCancelledByCaller(t *testing.T) {
	started := make(chan struct{})
	childErr := make(chan error, 1)
	srv := newTestTransport(t, func(c *Config) {
		c.Handler = HandlerFunc(func(ctx context.Context, _ Request) Response {
			child, cancel := context.WithTimeout(ctx, time.Hour) // e.g. a DataSource timeout
			defer cancel()
			close(started)
			<-child.Done()
			childErr <- child.Err()
			return Response{}
		})
	})
	cli := newTestTransport(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error, 1)
	go func() {
		_, err := cli.Call(ctx, addrOf(srv), Request{})
		res <- err
	}()
	<-started
	cancel()
	require.ErrorIs(t, <-res, context.Canceled)
	require.ErrorIs(t, <-childErr, context.Canceled)
}

func TestPendingTable(t *testing.T) {
	var p pendingTable
	calls := make([]*call, 100)
	ids := make([]uint64, 100)
	for i := range calls {
		calls[i] = &call{}
		ids[i] = p.add(calls[i], 0)
	}
	assert.Nil(t, p.take(0))
	assert.Nil(t, p.take(1<<40|5), "unknown sequence")
	assert.Nil(t, p.take(1<<32|1<<31), "slot out of range")
	for i := 0; i < 100; i += 2 {
		assert.Same(t, calls[i], p.take(ids[i]))
		assert.Nil(t, p.take(ids[i]), "taken once")
	}
	// Reused slots get new ids; old ids stay dead.
	c := &call{}
	id := p.add(c, 0)
	assert.Nil(t, p.take(ids[98]))
	assert.Same(t, c, p.take(id))
	assert.Len(t, p.drain(), 50)
	assert.Empty(t, p.drain())
}

func TestPendingTableExpire(t *testing.T) {
	var p pendingTable
	none, early, late := &call{}, &call{}, &call{}
	p.add(none, 0)
	idEarly := p.add(early, 100)
	idLate := p.add(late, 200)
	calls, ids, next := p.expire(99, nil, nil)
	assert.Empty(t, calls)
	assert.Empty(t, ids)
	assert.EqualValues(t, 100, next, "the earliest deadline left; calls without one do not count")
	calls, ids, next = p.expire(100, nil, nil)
	assert.Equal(t, []*call{early}, calls, "a deadline expires at its instant")
	assert.Equal(t, []uint64{idEarly}, ids)
	assert.EqualValues(t, 200, next)
	assert.Nil(t, p.take(idEarly), "an expired call is no longer pending")
	// The freed slot is reused.
	again := &call{}
	p.add(again, 0)
	assert.Same(t, late, p.take(idLate))
	calls, _, next = p.expire(1<<40, nil, nil)
	assert.Empty(t, calls)
	assert.Zero(t, next)
	assert.Len(t, p.drain(), 2)
}

func TestLimiter(t *testing.T) {
	l := newLimiter(2)
	ctx := context.Background()
	require.NoError(t, l.acquire(ctx, time.Time{}))
	require.NoError(t, l.acquire(ctx, time.Time{}))
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, l.acquire(short, time.Time{}), context.DeadlineExceeded)
	// An explicit deadline bounds the wait too, with a ctx that never ends.
	require.ErrorIs(t, l.acquire(ctx, time.Now().Add(10*time.Millisecond)), context.DeadlineExceeded)

	// Many waiters, releases collapsing into one token: every waiter gets through.
	const waiters = 20
	var wg sync.WaitGroup
	for range waiters {
		wg.Go(func() {
			assert.NoError(t, l.acquire(ctx, time.Time{}))
			l.release()
		})
	}
	l.release()
	l.release()
	wg.Wait()
	assert.Zero(t, l.n.Load())
}

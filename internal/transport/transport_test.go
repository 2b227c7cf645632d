package transport

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCallRoundTrip(t *testing.T) {
	srv := newTestTransport(t, func(c *Config) { c.Handler = echo })
	cli := newTestTransport(t, nil)
	ctx := context.Background()
	for i := range 3 {
		resp, err := cli.Call(ctx, addrOf(srv), Request{Op: uint8(7 + i), Flags: 0x3EEF, Payload: []byte("hello")})
		require.NoError(t, err)
		assert.Equal(t, uint8(7+i), resp.Status)
		assert.Equal(t, "hello", string(resp.Payload))
	}
	// Empty payloads and flags pass through.
	var seen Request
	srv.SetHandler(HandlerFunc(func(_ context.Context, req Request) Response {
		seen = req
		return Response{Status: 200}
	}))
	resp, err := cli.Call(ctx, addrOf(srv), Request{Op: 1, Flags: 0x25A5})
	require.NoError(t, err)
	assert.Equal(t, uint8(200), resp.Status)
	assert.Empty(t, resp.Payload)
	assert.Equal(t, uint16(0x25A5), seen.Flags)

	st := cli.Stats()
	assert.Equal(t, uint64(4), st.Calls)
	assert.Zero(t, st.CallErrors)
	assert.LessOrEqual(t, st.ConnsDialed, uint64(DefaultConnsPerPeer()), "conns are pooled")
	assert.Positive(t, st.BytesOut)
	assert.Equal(t, uint64(4), srv.Stats().Requests)
}

func TestManyConcurrentCalls(t *testing.T) {
	srv := newTestTransport(t, func(c *Config) { c.Handler = echo })
	cli := newTestTransport(t, func(c *Config) { c.ConnsPerPeer = 1 })
	const callers, perCaller = 64, 50
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for g := range callers {
		wg.Go(func() {
			for i := range perCaller {
				want := fmt.Sprintf("g%d-i%d", g, i)
				resp, err := cli.Call(context.Background(), addrOf(srv), Request{Op: uint8(i), Payload: []byte(want)})
				if err := echoed(resp, err, want, uint8(i)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.Equal(t, uint64(1), cli.Stats().ConnsDialed, "all calls multiplexed on one conn")
	assert.Equal(t, uint64(callers*perCaller), srv.Stats().Requests)
}

func TestDeadlinePropagation(t *testing.T) {
	got := make(chan time.Duration, 1)
	srv := newTestTransport(t, func(c *Config) {
		c.Handler = HandlerFunc(func(ctx context.Context, _ Request) Response {
			dl, ok := ctx.Deadline()
			if !ok {
				got <- -1
			} else {
				got <- time.Until(dl)
			}
			return Response{}
		})
	})
	cli := newTestTransport(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err := cli.Call(ctx, addrOf(srv), Request{})
	require.NoError(t, err)
	left := <-got
	assert.Greater(t, left, time.Second, "handler sees the caller's deadline")
	assert.LessOrEqual(t, left, 3*time.Second)

	_, err = cli.Call(context.Background(), addrOf(srv), Request{})
	require.NoError(t, err)
	assert.Equal(t, time.Duration(-1), <-got, "no caller deadline, no handler deadline")

	// A call whose deadline expires while the handler runs returns DeadlineExceeded and the
	// handler's ctx ends too.
	handlerDone := make(chan error, 1)
	unblock := make(chan struct{})
	defer close(unblock)
	srv.SetHandler(HandlerFunc(func(ctx context.Context, _ Request) Response {
		<-ctx.Done()
		handlerDone <- ctx.Err()
		<-unblock // reply only after the caller gave up
		return Response{}
	}))
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	_, err = cli.Call(ctx2, addrOf(srv), Request{})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	// The handler's ctx ends by its own deadline or by the caller's CANCEL, whichever is first.
	require.Error(t, <-handlerDone)
}

func TestCancellation(t *testing.T) {
	started := make(chan struct{})
	handlerErr := make(chan error, 1)
	srv := newTestTransport(t, func(c *Config) {
		c.Handler = HandlerFunc(func(ctx context.Context, req Request) Response {
			if req.Op == 1 {
				close(started)
				<-ctx.Done()
				handlerErr <- ctx.Err()
			}
			return Response{Status: req.Op}
		})
	})
	cli := newTestTransport(t, func(c *Config) { c.ConnsPerPeer = 1 })
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error, 1)
	go func() {
		_, err := cli.Call(ctx, addrOf(srv), Request{Op: 1})
		res <- err
	}()
	<-started
	cancel()
	require.ErrorIs(t, <-res, context.Canceled)
	require.ErrorIs(t, <-handlerErr, context.Canceled, "CANCEL frame reaches the handler")
	assert.Equal(t, uint64(1), cli.Stats().Cancelled)
	// The connection stays usable.
	resp, err := cli.Call(context.Background(), addrOf(srv), Request{Op: 2})
	require.NoError(t, err)
	assert.Equal(t, uint8(2), resp.Status)
	assert.Equal(t, uint64(1), cli.Stats().ConnsDialed)
}

func TestServerOverloaded(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 8)
	srv := newTestTransport(t, func(c *Config) {
		c.MaxConcurrentRequests = 2
		c.Handler = HandlerFunc(func(_ context.Context, req Request) Response {
			if req.Op == 1 {
				entered <- struct{}{}
				<-release
			}
			return Response{Status: req.Op}
		})
	})
	cli := newTestTransport(t, nil)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			_, err := cli.Call(context.Background(), addrOf(srv), Request{Op: 1})
			assert.NoError(t, err)
		})
	}
	<-entered
	<-entered
	_, err := cli.Call(context.Background(), addrOf(srv), Request{Op: 2})
	require.ErrorIs(t, err, ErrPeerOverloaded)
	assert.Equal(t, uint64(1), srv.Stats().RejectedOverloaded)
	assert.Equal(t, uint64(1), cli.Stats().Overloaded)
	close(release)
	wg.Wait()
	resp, err := cli.Call(context.Background(), addrOf(srv), Request{Op: 2})
	require.NoError(t, err)
	assert.Equal(t, uint8(2), resp.Status)
}

func TestClientInflightLimit(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	srv := newTestTransport(t, func(c *Config) {
		c.Handler = HandlerFunc(func(context.Context, Request) Response {
			entered <- struct{}{}
			<-release
			return Response{}
		})
	})
	cli := newTestTransport(t, func(c *Config) { c.MaxInflightPerPeer = 1 })
	done := make(chan error, 1)
	go func() {
		_, err := cli.Call(context.Background(), addrOf(srv), Request{})
		done <- err
	}()
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	_, err := cli.Call(ctx, addrOf(srv), Request{})
	require.ErrorIs(t, err, ErrPeerOverloaded)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	close(release)
	require.NoError(t, <-done)
}

func TestPeerDownFailsFast(t *testing.T) {
	cli := newTestTransport(t, nil)
	// A port that was bound and released: connection refused.
	gone := newTestTransport(t, nil)
	addr := addrOf(gone)
	require.NoError(t, gone.Shutdown())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err := cli.Call(ctx, addr, Request{})
	require.ErrorIs(t, err, ErrPeerUnavailable)
	// During backoff the next calls fail at once, without dialing.
	for range 10 {
		_, err = cli.Call(ctx, addr, Request{})
		require.ErrorIs(t, err, ErrPeerUnavailable)
	}
	assert.Less(t, time.Since(start), 5*time.Second, "never waits for the caller's deadline")
	assert.LessOrEqual(t, cli.Stats().DialFailures, uint64(2))
}

func TestPeerRestartRedials(t *testing.T) {
	srv := newTestTransport(t, func(c *Config) { c.Handler = echo })
	cli := newTestTransport(t, nil)
	addr := addrOf(srv)
	_, err := cli.Call(context.Background(), addr, Request{})
	require.NoError(t, err)
	require.NoError(t, srv.Shutdown())
	// The pooled conns break; calls fail with ErrPeerUnavailable, not hang.
	require.Eventually(t, func() bool {
		_, err := cli.Call(context.Background(), addr, Request{})
		return errors.Is(err, ErrPeerUnavailable)
	}, 5*time.Second, 5*time.Millisecond)
	// A new server on the same port is reached after the backoff.
	cfg := DefaultConfig()
	cfg.Label, cfg.Handler, cfg.BindPort = "test", echo, srv.BoundPort()
	srv2, err := New(cfg)
	if err != nil {
		t.Skipf("port %d was taken by another process meanwhile: %v", cfg.BindPort, err)
	}
	t.Cleanup(func() { require.NoError(t, srv2.Shutdown()) })
	require.Equal(t, addr, addrOf(srv2))
	require.Eventually(t, func() bool {
		resp, err := cli.Call(context.Background(), addr, Request{Op: 9})
		return err == nil && resp.Status == 9
	}, 5*time.Second, 10*time.Millisecond)
}

func TestClosePeer(t *testing.T) {
	entered := make(chan struct{})
	srv := newTestTransport(t, func(c *Config) {
		c.Handler = HandlerFunc(func(ctx context.Context, req Request) Response {
			if req.Op == 1 {
				close(entered)
				<-ctx.Done()
			}
			return Response{Status: req.Op}
		})
	})
	cli := newTestTransport(t, nil)
	res := make(chan error, 1)
	go func() {
		_, err := cli.Call(context.Background(), addrOf(srv), Request{Op: 1})
		res <- err
	}()
	<-entered
	cli.ClosePeer(addrOf(srv))
	require.ErrorIs(t, <-res, ErrPeerUnavailable)
	resp, err := cli.Call(context.Background(), addrOf(srv), Request{Op: 2})
	require.NoError(t, err)
	assert.Equal(t, uint8(2), resp.Status)
	cli.ClosePeer("127.0.0.1:1") // unknown peer: no-op
}

func TestLabelMismatch(t *testing.T) {
	srv := newTestTransport(t, func(c *Config) { c.Handler = echo; c.Label = "cluster-a" })
	cli := newTestTransport(t, func(c *Config) { c.Label = "cluster-b" })
	_, err := cli.Call(context.Background(), addrOf(srv), Request{})
	require.ErrorIs(t, err, ErrLabelMismatch)
	require.ErrorIs(t, err, ErrPeerUnavailable)
	assert.Contains(t, err.Error(), "cluster-b")
	assert.Zero(t, srv.Stats().ConnsAccepted)
}

func TestNoHandler(t *testing.T) {
	srv := newTestTransport(t, nil)
	cli := newTestTransport(t, nil)
	_, err := cli.Call(context.Background(), addrOf(srv), Request{})
	require.ErrorIs(t, err, ErrNoHandler)
	srv.SetHandler(echo)
	_, err = cli.Call(context.Background(), addrOf(srv), Request{})
	require.NoError(t, err)
}

func TestHandlerPanic(t *testing.T) {
	srv := newTestTransport(t, func(c *Config) {
		c.Handler = HandlerFunc(func(context.Context, Request) Response { panic("boom") })
	})
	cli := newTestTransport(t, nil)
	_, err := cli.Call(context.Background(), addrOf(srv), Request{})
	require.ErrorIs(t, err, ErrHandlerPanic)
	assert.Equal(t, uint64(1), srv.Stats().HandlerPanics)
}

func TestFrameTooLarge(t *testing.T) {
	srv := newTestTransport(t, func(c *Config) {
		c.MaxFrameBytes = 1024
		c.Handler = HandlerFunc(func(_ context.Context, req Request) Response {
			return Response{Payload: make([]byte, int(req.Op)*100)}
		})
	})
	cli := newTestTransport(t, func(c *Config) { c.MaxFrameBytes = 4096 })

	// Client side: refused before sending.
	_, err := cli.Call(context.Background(), addrOf(srv), Request{Payload: make([]byte, 4096)})
	require.ErrorIs(t, err, ErrFrameTooLarge)
	assert.Zero(t, cli.Stats().ConnsDialed)

	// Response larger than the server's limit: an error frame instead.
	_, err = cli.Call(context.Background(), addrOf(srv), Request{Op: 20})
	require.ErrorIs(t, err, ErrFrameTooLarge)

	// Server side: a request within the client's limit but beyond the server's closes the conn,
	// after telling the caller why.
	_, err = cli.Call(context.Background(), addrOf(srv), Request{Payload: make([]byte, 2000)})
	require.ErrorIs(t, err, ErrFrameTooLarge)
	// And the client recovers with a new connection.
	require.Eventually(t, func() bool {
		_, err := cli.Call(context.Background(), addrOf(srv), Request{Op: 1})
		return err == nil
	}, 5*time.Second, 10*time.Millisecond)

	// Response larger than the client's limit.
	srv2 := newTestTransport(t, func(c *Config) {
		c.Handler = HandlerFunc(func(context.Context, Request) Response { return Response{Payload: make([]byte, 8000)} })
	})
	_, err = cli.Call(context.Background(), addrOf(srv2), Request{})
	require.ErrorIs(t, err, ErrFrameTooLarge)
}

func TestDrain(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	srv := newTestTransport(t, func(c *Config) {
		c.Handler = HandlerFunc(func(_ context.Context, req Request) Response {
			if req.Op == 1 {
				close(entered)
				<-release
			}
			return Response{Status: req.Op}
		})
	})
	cli := newTestTransport(t, nil)
	res := make(chan error, 1)
	go func() {
		resp, err := cli.Call(context.Background(), addrOf(srv), Request{Op: 1})
		if err == nil && resp.Status != 1 {
			err = fmt.Errorf("status %d", resp.Status)
		}
		res <- err
	}()
	<-entered

	// Drain with a short ctx: the handler is still running.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, srv.Drain(ctx), context.DeadlineExceeded)

	// New requests are refused with ErrShuttingDown, on existing and on new connections.
	_, err := cli.Call(context.Background(), addrOf(srv), Request{Op: 2})
	require.ErrorIs(t, err, ErrShuttingDown)
	other := newTestTransport(t, nil)
	_, err = other.Call(context.Background(), addrOf(srv), Request{Op: 2})
	require.ErrorIs(t, err, ErrShuttingDown)

	drained := make(chan error, 1)
	go func() { drained <- srv.Drain(context.Background()) }()
	close(release)
	require.NoError(t, <-drained)
	require.NoError(t, <-res, "in-flight request completes normally")
	assert.Zero(t, srv.Stats().ActiveHandlers)
}

func TestShutdown(t *testing.T) {
	entered := make(chan struct{})
	handlerErr := make(chan error, 1)
	srv := newTestTransport(t, func(c *Config) {
		c.Handler = HandlerFunc(func(ctx context.Context, _ Request) Response {
			close(entered)
			<-ctx.Done()
			handlerErr <- ctx.Err()
			return Response{}
		})
	})
	cli := newTestTransport(t, nil)
	res := make(chan error, 1)
	go func() {
		_, err := cli.Call(context.Background(), addrOf(srv), Request{})
		res <- err
	}()
	<-entered
	require.NoError(t, srv.Shutdown())
	require.ErrorIs(t, <-handlerErr, context.Canceled, "Shutdown cancels running handlers")
	require.ErrorIs(t, <-res, ErrPeerUnavailable)
	require.NoError(t, srv.Shutdown(), "idempotent")

	require.NoError(t, cli.Shutdown())
	_, err := cli.Call(context.Background(), addrOf(srv), Request{})
	require.ErrorIs(t, err, ErrClosed)
	cli.ClosePeer(addrOf(srv))
	_ = cli.Stats()
}

func TestShutdownFailsPendingCalls(t *testing.T) {
	entered := make(chan struct{})
	srv := newTestTransport(t, func(c *Config) {
		c.Handler = HandlerFunc(func(ctx context.Context, _ Request) Response {
			close(entered)
			<-ctx.Done()
			return Response{}
		})
	})
	cli := newTestTransport(t, nil)
	res := make(chan error, 1)
	go func() {
		_, err := cli.Call(context.Background(), addrOf(srv), Request{})
		res <- err
	}()
	<-entered
	require.NoError(t, cli.Shutdown())
	require.ErrorIs(t, <-res, ErrClosed)
}

func TestSetBlocked(t *testing.T) {
	srv := newTestTransport(t, func(c *Config) { c.Handler = echo })
	cli := newTestTransport(t, nil)
	addr := addrOf(srv)
	_, err := cli.Call(context.Background(), addr, Request{})
	require.NoError(t, err)

	cli.SetBlocked(func(a string) bool { return a == addr })
	_, err = cli.Call(context.Background(), addr, Request{})
	require.ErrorIs(t, err, ErrPeerUnavailable)
	_, err = cli.DialTimeout(addr, time.Second)
	require.ErrorIs(t, err, ErrPeerUnavailable)
	_, err = cli.WriteTo([]byte("x"), addr)
	require.NoError(t, err, "packets are dropped silently")
	assert.Equal(t, uint64(1), cli.Stats().PacketsDropped)

	cli.SetBlocked(nil)
	_, err = cli.Call(context.Background(), addr, Request{})
	require.NoError(t, err)
}

func TestConfigValidate(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate())
	require.NoError(t, Config{BindAddr: "0.0.0.0"}.Validate(), "zero values mean defaults")
	bad := Config{
		BindPort:      70000,
		Label:         string(make([]byte, 300)),
		ConnsPerPeer:  -1,
		MaxFrameBytes: 10,
		DialTimeout:   -time.Second,
		ServerTLS:     nil,
	}
	err := bad.Validate()
	require.Error(t, err)
	for _, want := range []string{"BindAddr is required", "BindPort", "Label", "ConnsPerPeer", "MaxFrameBytes", "DialTimeout"} {
		assert.Contains(t, err.Error(), want)
	}
	_, err = New(bad)
	require.Error(t, err)
	require.ErrorContains(t, Config{BindAddr: "localhost"}.Validate(), "not an IP")
}

func TestInlineHandler(t *testing.T) {
	srv := newTestTransport(t, func(c *Config) { c.Handler = inlineEcho{} })
	cli := newTestTransport(t, nil)
	resp, err := cli.Call(context.Background(), addrOf(srv), Request{Op: 1, Payload: []byte("fast")})
	require.NoError(t, err)
	assert.Equal(t, uint8(1), resp.Status, "served inline")
	assert.Equal(t, "fast", string(resp.Payload))

	resp, err = cli.Call(context.Background(), addrOf(srv), Request{Op: 3, Payload: []byte("slow")})
	require.NoError(t, err)
	assert.Equal(t, uint8(103), resp.Status, "declined inline, served by ServeRPC")
	assert.Equal(t, "slow", string(resp.Payload))

	_, err = cli.Call(context.Background(), addrOf(srv), Request{Op: 2})
	require.ErrorIs(t, err, ErrHandlerPanic)
	assert.Equal(t, uint64(2), srv.Stats().Requests)
}

func TestCallDeadline(t *testing.T) {
	release := make(chan struct{})
	srv := newTestTransport(t, func(c *Config) {
		c.Handler = HandlerFunc(func(ctx context.Context, req Request) Response {
			dl, ok := ctx.Deadline()
			if !ok || time.Until(dl) > time.Second {
				return Response{Status: 9} // the deadline did not travel
			}
			if req.Op == 1 {
				<-release // never answer in time, whatever the handler's ctx says
			}
			return Response{Status: req.Op}
		})
	})
	t.Cleanup(func() { close(release) }) // runs before srv's Shutdown (LIFO)
	cli := newTestTransport(t, nil)
	start := time.Now()
	_, err := cli.CallDeadline(context.Background(), addrOf(srv), Request{Op: 1}, time.Now().Add(50*time.Millisecond))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), time.Second)
	// The earlier of ctx's deadline and the explicit one wins.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	_, err = cli.CallDeadline(ctx, addrOf(srv), Request{Op: 1}, time.Now().Add(time.Hour))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	// Answered in time: the status comes back.
	for range 3 {
		resp, err := cli.CallDeadline(context.Background(), addrOf(srv), Request{Op: 2}, time.Now().Add(500*time.Millisecond))
		require.NoError(t, err)
		require.EqualValues(t, 2, resp.Status)
	}
	// With nothing in flight the sweeper plans no scan.
	require.Eventually(t, func() bool { return cli.sweep.next.Load() == 0 }, 5*time.Second, time.Millisecond)
}

// Many calls with staggered deadlines against a handler that never answers
// in time: each fails with DeadlineExceeded, none before its deadline, and
// the server is told to stop working on each one.
func TestCallDeadlineSweeper(t *testing.T) {
	release := make(chan struct{})
	var cancelled sync.WaitGroup
	srv := newTestTransport(t, func(c *Config) {
		c.Handler = HandlerFunc(func(ctx context.Context, _ Request) Response {
			<-ctx.Done() // by its budget or by our CANCEL
			cancelled.Done()
			<-release // never answer: only the client's sweeper ends the call
			return Response{}
		})
	})
	t.Cleanup(func() { close(release) })
	cli := newTestTransport(t, nil)
	const calls = 40
	cancelled.Add(calls)
	var wg sync.WaitGroup
	for i := range calls {
		wg.Go(func() {
			deadline := time.Now().Add(time.Duration(20+5*i) * time.Millisecond)
			_, err := cli.CallDeadline(context.Background(), addrOf(srv), Request{Op: 1}, deadline)
			assert.ErrorIs(t, err, context.DeadlineExceeded)
			assert.False(t, time.Now().Before(deadline), "failed before its deadline")
		})
	}
	wg.Wait()
	cancelled.Wait() // every handler's ctx ended: by our CANCEL, or by its own budget first
	assert.Positive(t, cli.Stats().Cancelled)
	assert.LessOrEqual(t, cli.Stats().Cancelled, uint64(calls))
	require.Eventually(t, func() bool { return cli.sweep.next.Load() == 0 }, 5*time.Second, time.Millisecond)
}

// The sweeper scans at the earliest pending deadline, not at a fixed
// interval: a call answered long before its deadline leaves one scan
// planned at that deadline, and a later call with an earlier deadline
// brings the scan forward, so it still fails on time.
func TestSweepPlansAtEarliestDeadline(t *testing.T) {
	release := make(chan struct{})
	srv := newTestTransport(t, func(c *Config) {
		c.Handler = HandlerFunc(func(_ context.Context, req Request) Response {
			if req.Op == 1 {
				<-release // never answer, whatever the handler's ctx says
			}
			return Response{Status: req.Op}
		})
	})
	t.Cleanup(func() { close(release) })
	var hung sync.WaitGroup
	t.Cleanup(hung.Wait) // after cli's Shutdown (LIFO), which ends the hung call
	cli := newTestTransport(t, nil)

	far := time.Now().Add(time.Hour)
	_, err := cli.CallDeadline(context.Background(), addrOf(srv), Request{Op: 2}, far)
	require.NoError(t, err)
	require.Equal(t, cli.mono(far), cli.sweep.next.Load())
	require.Never(t, func() bool { return cli.sweep.next.Load() != cli.mono(far) }, 100*time.Millisecond, time.Millisecond,
		"no scan before the earliest deadline")

	hung.Go(func() { _, _ = cli.CallDeadline(context.Background(), addrOf(srv), Request{Op: 1}, far) })
	start := time.Now()
	_, err = cli.CallDeadline(context.Background(), addrOf(srv), Request{Op: 1}, start.Add(50*time.Millisecond))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), time.Second)
}

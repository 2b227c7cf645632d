package transport

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// gatedConn is a net.Conn whose Writes record what they wrote, in order, and can be held
// at a gate or made to fail.
type gatedConn struct {
	net.Conn // nil: only Write, SetWriteDeadline and Close are used

	gate    chan struct{} // non-nil: each Write waits for a receive
	entered chan struct{} // a Write has started (buffered)
	fail    error

	mu      sync.Mutex
	written []byte
	writes  int
	closed  atomic.Bool
}

func newGatedConn(gated bool) *gatedConn {
	c := &gatedConn{entered: make(chan struct{}, 16)}
	if gated {
		c.gate = make(chan struct{})
	}
	return c
}

func (c *gatedConn) Write(p []byte) (int, error) {
	c.entered <- struct{}{}
	if c.gate != nil {
		<-c.gate
	}
	if c.fail != nil {
		return 0, c.fail
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.written = append(c.written, p...)
	c.writes++
	return len(p), nil
}

func (c *gatedConn) SetWriteDeadline(time.Time) error { return nil }
func (c *gatedConn) Close() error                     { c.closed.Store(true); return nil }

// ids decodes the frames written so far and returns their ids, in order.
func (c *gatedConn) ids(t *testing.T) []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ids []uint64
	for b := c.written; len(b) > 0; {
		h, err := decodeHeader(b, 1<<20)
		require.NoError(t, err)
		ids = append(ids, h.id)
		b = b[frameHeaderLen+int(h.length):]
	}
	return ids
}

func respFrame(id uint64, payload []byte) frameHeader {
	return frameHeader{typ: frameResp, id: id, length: uint32(len(payload))}
}

// An idle connection's frame is written by its sender, before send returns, with no
// writer goroutine involved; enqueue leaves it to the writer.
func TestSendWritesInPlaceWhenIdle(t *testing.T) {
	conn := newGatedConn(false)
	w := newConnWriter(conn, time.Second, new(atomic.Uint64), 1<<20)
	require.True(t, w.send(respFrame(1, []byte("a")), nil, []byte("a"), true))
	require.Equal(t, []uint64{1}, conn.ids(t), "written in place, without the writer goroutine")
	require.Zero(t, w.queued.Load())

	require.True(t, w.enqueue(respFrame(2, nil), nil))
	require.Equal(t, []uint64{1}, conn.ids(t), "enqueue only queues")
	// With a frame queued the connection is no longer idle: send queues behind it.
	require.True(t, w.send(respFrame(3, nil), nil, nil, true))
	require.Equal(t, []uint64{1}, conn.ids(t))

	done := make(chan struct{})
	go func() { defer close(done); w.loop(func(error) {}) }()
	require.Eventually(t, func() bool { return len(conn.ids(t)) == 3 }, 5*time.Second, time.Millisecond)
	require.Equal(t, []uint64{1, 2, 3}, conn.ids(t))
	w.finish()
	<-done
	require.True(t, conn.closed.Load())
}

// Frames queued while a sender writes in place go out after its frame, from the writer
// goroutine, never interleaved with it.
func TestSendInPlaceThenWriterCarriesTheRest(t *testing.T) {
	conn := newGatedConn(true)
	w := newConnWriter(conn, time.Second, new(atomic.Uint64), 1<<20)
	done := make(chan struct{})
	go func() { defer close(done); w.loop(func(error) {}) }()

	sent := make(chan bool)
	go func() { sent <- w.send(respFrame(1, []byte("x")), nil, []byte("x"), true) }()
	<-conn.entered // the sender is in Write
	require.True(t, w.enqueue(respFrame(2, nil), nil))
	require.True(t, w.send(respFrame(3, nil), nil, nil, true), "a send during a Write queues")
	select {
	case <-conn.entered:
		t.Fatal("the writer started a Write while the sender's was in progress")
	case <-time.After(20 * time.Millisecond): // a negative check: give the writer a chance
	}
	conn.gate <- struct{}{}
	require.True(t, <-sent)
	<-conn.entered // the writer's Write, with both queued frames
	conn.gate <- struct{}{}
	require.Eventually(t, func() bool { return len(conn.ids(t)) == 3 }, 5*time.Second, time.Millisecond)
	require.Equal(t, []uint64{1, 2, 3}, conn.ids(t))
	conn.mu.Lock()
	require.Equal(t, 2, conn.writes, "the two queued frames go out in one Write")
	conn.mu.Unlock()

	w.finish()
	<-done
}

// A finish that comes during an in-place Write is carried out after it: what was queued
// is flushed, then the connection closes.
func TestFinishDuringInPlaceWrite(t *testing.T) {
	conn := newGatedConn(true)
	w := newConnWriter(conn, time.Second, new(atomic.Uint64), 1<<20)
	done := make(chan struct{})
	go func() { defer close(done); w.loop(func(error) {}) }()

	go w.send(respFrame(1, nil), nil, nil, true)
	<-conn.entered
	require.True(t, w.enqueue(respFrame(2, nil), nil))
	w.finish()
	require.False(t, w.send(respFrame(3, nil), nil, nil, true), "refused once finishing")
	conn.gate <- struct{}{}
	<-conn.entered
	conn.gate <- struct{}{}
	<-done
	require.Equal(t, []uint64{1, 2}, conn.ids(t))
	require.True(t, conn.closed.Load())
}

// A failed in-place Write closes the connection and reaches the writer's onErr, as a
// failed Write of the writer goroutine does; later frames are refused.
func TestInPlaceWriteFailureIsReported(t *testing.T) {
	conn := newGatedConn(false)
	conn.fail = errors.New("broken pipe")
	w := newConnWriter(conn, time.Second, new(atomic.Uint64), 1<<20)
	reported := make(chan error, 1)
	done := make(chan struct{})
	go func() { defer close(done); w.loop(func(err error) { reported <- err }) }()

	require.True(t, w.send(respFrame(1, nil), nil, nil, true), "accepted: the failure is the connection's")
	select {
	case err := <-reported:
		require.ErrorIs(t, err, conn.fail)
	case <-time.After(5 * time.Second):
		t.Fatal("the failed in-place write was not reported")
	}
	<-done
	require.True(t, conn.closed.Load())
	require.False(t, w.send(respFrame(2, nil), nil, nil, true))
	require.False(t, w.enqueue(respFrame(3, nil), nil))
}

// An aborted writer does not report the in-place Write that failed because of the abort.
func TestAbortDuringInPlaceWriteIsNotReported(t *testing.T) {
	conn := newGatedConn(true)
	conn.fail = net.ErrClosed
	w := newConnWriter(conn, time.Second, new(atomic.Uint64), 1<<20)
	reported := make(chan error, 1)
	done := make(chan struct{})
	go func() { defer close(done); w.loop(func(err error) { reported <- err }) }()

	sent := make(chan bool)
	go func() { sent <- w.send(respFrame(1, nil), nil, nil, true) }()
	<-conn.entered
	w.abort()
	conn.gate <- struct{}{}
	require.True(t, <-sent)
	<-done
	select {
	case err := <-reported:
		t.Fatalf("abort reported as a write error: %v", err)
	default:
	}
}

// Large frames are never written in place: the caller would sit in Write past its own
// deadline while the peer is slow to read. Nor are frames that may batch.
func TestSendQueuesLargeFrames(t *testing.T) {
	conn := newGatedConn(false)
	w := newConnWriter(conn, time.Second, new(atomic.Uint64), 1<<20)
	big := make([]byte, maxDirectFrame)
	require.True(t, w.send(respFrame(1, big), nil, big, true))
	require.Empty(t, conn.ids(t), "queued for the writer")
	require.Equal(t, int64(frameHeaderLen+len(big)), w.queued.Load())

	// Nor a frame whose sender is not alone on a quiet connection (inPlace false).
	conn = newGatedConn(false)
	w = newConnWriter(conn, time.Second, new(atomic.Uint64), 1<<20)
	require.True(t, w.send(respFrame(2, nil), nil, nil, false))
	require.Empty(t, conn.ids(t), "queued for the writer")
}

// Calls on a connection that keeps switching between a trickle (frames written in place)
// and bursts (frames queued for the writer) all get their own answer: no frame is lost,
// duplicated or interleaved on either side, whichever goroutine wrote it. Callers alternate
// spells of calls made one at a time (an exclusive lock) with spells made together.
func TestCallsAcrossQuietAndBusySpells(t *testing.T) {
	srv := newTestTransport(t, func(c *Config) {
		c.Handler = HandlerFunc(func(_ context.Context, req Request) Response {
			if req.Op%7 == 0 {
				time.Sleep(200 * time.Microsecond) // handlers overlap now and then
			}
			return Response{Status: req.Op, Payload: req.Payload}
		})
	})
	cli := newTestTransport(t, func(c *Config) { c.ConnsPerPeer = 1 })
	const callers, perCaller = 16, 300
	var (
		wg    sync.WaitGroup
		spell sync.RWMutex
	)
	errs := make(chan error, callers)
	for g := range callers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for i := range perCaller {
				alone := (i/20)%2 == 0
				if alone {
					spell.Lock()
				} else {
					spell.RLock()
				}
				want := fmt.Sprintf("g%d-i%d-%s", g, i, strings.Repeat("x", rng.IntN(64)))
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				resp, err := cli.Call(ctx, addrOf(srv), Request{Op: uint8(i), Payload: []byte(want)})
				cancel()
				if alone {
					spell.Unlock()
				} else {
					spell.RUnlock()
				}
				if err := echoed(resp, err, want, uint8(i)); err != nil {
					errs <- fmt.Errorf("call %d of caller %d: %w", i, g, err)
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
	require.Equal(t, uint64(callers*perCaller), srv.Stats().Requests)
}

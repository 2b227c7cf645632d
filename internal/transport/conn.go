package transport

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Writer states.
const (
	writerOpen      = iota
	writerFinishing // flush what is queued, then close the connection
	writerClosed
)

// Writer batching: yield at most maxYields times while frames keep arriving, and stop
// yielding once yieldFlushBytes are queued.
const (
	maxYields       = 4
	yieldFlushBytes = 64 << 10
)

// maxSpareWriteBuf is the largest write buffer kept for reuse after a flush.
const maxSpareWriteBuf = 1 << 20

// connWriter serialises frames onto one connection. Senders append encoded frames to a
// shared buffer under a mutex and wake the writer goroutine, which swaps the buffer out and
// writes everything queued with one Write call. Frames queued while a Write is in progress
// go out together in the next one, so a busy connection batches many frames per syscall and
// an idle one writes a lone frame at once: batching without a Nagle-style delay.
//
// A call or a reply alone on a quiet connection (no other call pending or handler
// running, and few as a rule: trickle) goes through send, which writes a small frame in
// place when the writer is idle (nothing queued, no Write in progress, the writer not
// woken): handing it to the writer goroutine cost a wake-up and a trip through the run
// queue per frame, and on a large cluster, where each connection carries a trickle, most
// frames are alone. Frames that arrive during that Write queue for the writer goroutine as
// before, and frames with company always queue, since they batch. Only callers and handler
// goroutines may write in place: a reader that blocked in Write (its peer not reading)
// would stop reading, and two such readers facing each other would never resume.
//
// queued counts the bytes queued or being written, so that a server reader can stop
// reading a connection whose peer does not read its replies (waitRoom).
type connWriter struct {
	conn    net.Conn
	timeout time.Duration
	bytes   *atomic.Uint64
	limit   int64 // waitRoom blocks while queued >= limit
	queued  atomic.Int64

	mu       sync.Mutex
	buf      []byte
	signaled bool // a wake token is pending or the writer is about to swap
	state    int
	wake     chan struct{} // capacity 1
	room     *sync.Cond    // on mu: queued dropped below limit, or the writer stopped
	// waiting is set by a reader about to wait on room. The reader stores it before
	// re-reading queued, and the writer lowers queued before loading it, so either the
	// reader sees the room or the writer sees the waiter; the writer takes mu only then.
	waiting atomic.Bool
	// writing is set (under mu) while a Write is in progress, by the writer goroutine or
	// by a sender writing in place; whoever set it owns conn's write side and refreshAt.
	writing   bool
	refreshAt time.Time // when the write deadline is next pushed forward
	err       error     // a failed in-place Write, for the writer goroutine to report
}

func newConnWriter(conn net.Conn, timeout time.Duration, bytes *atomic.Uint64, limit int) *connWriter {
	w := &connWriter{conn: conn, timeout: timeout, bytes: bytes, limit: int64(limit), wake: make(chan struct{}, 1), buf: make([]byte, 0, 4096)}
	w.room = sync.NewCond(&w.mu)
	return w
}

// enqueue appends one frame (header plus payload, copied) and reports whether the writer
// accepted it (false once the connection is closing).
func (w *connWriter) enqueue(h frameHeader, payload []byte) bool {
	return w.enqueueTraced(h, nil, payload)
}

// enqueueTraced is enqueue for a REQ frame that may carry a trace field (h's length and
// flags already account for it; see frameLen).
func (w *connWriter) enqueueTraced(h frameHeader, trace, payload []byte) bool {
	w.mu.Lock()
	if w.state != writerOpen {
		w.mu.Unlock()
		return false
	}
	w.buf = appendHeader(w.buf, h)
	if len(trace) > 0 {
		w.buf = appendTraceField(w.buf, trace)
	}
	w.buf = append(w.buf, payload...)
	w.queued.Add(int64(frameHeaderLen + frameLen(trace, payload)))
	if !w.writing { // else whoever is writing takes it up when its Write returns
		w.signalLocked()
	}
	w.mu.Unlock()
	return true
}

// maxDirectFrame is the largest frame a sender writes in place (send); a larger one could
// keep the caller in Write well past its own deadline, which the writer goroutine's queue
// does not.
const maxDirectFrame = 16 << 10

// send is enqueueTraced for a caller or a handler, which with inPlace (it is alone on a
// quiet connection) writes the frame itself while the connection is idle (see
// connWriter). Never pass inPlace from a connection's reader.
func (w *connWriter) send(h frameHeader, trace, payload []byte, inPlace bool) bool {
	w.mu.Lock()
	if !inPlace || w.writing || w.signaled || len(w.buf) > 0 || w.state != writerOpen || frameHeaderLen+frameLen(trace, payload) > maxDirectFrame {
		w.mu.Unlock()
		return w.enqueueTraced(h, trace, payload)
	}
	out := appendHeader(w.buf, h)
	if len(trace) > 0 {
		out = appendTraceField(out, trace)
	}
	out = append(out, payload...)
	w.buf = nil
	w.writing = true
	w.queued.Add(int64(len(out)))
	w.mu.Unlock()

	err := w.write(out)

	w.mu.Lock()
	w.writing = false
	if w.buf == nil && w.state == writerOpen {
		w.buf = out[:0] // reuse the buffer unless frames came meanwhile
	}
	if err != nil && w.state != writerClosed {
		w.err = err
		w.state = writerClosed
		w.buf = nil
		w.wakeReaderLocked()
	}
	if len(w.buf) > 0 || w.state != writerOpen {
		w.signalLocked() // frames that came meanwhile, or a finish or failure to carry out
	}
	w.mu.Unlock()
	return true
}

// write writes out, pushing the write deadline forward once per half timeout, and
// releases its bytes from queued. The caller holds writing.
func (w *connWriter) write(out []byte) error {
	if now := time.Now(); now.After(w.refreshAt) {
		_ = w.conn.SetWriteDeadline(now.Add(w.timeout))
		w.refreshAt = now.Add(w.timeout / 2)
	}
	n, err := w.conn.Write(out)
	w.bytes.Add(uint64(n))
	if w.queued.Add(-int64(len(out))) < w.limit && w.waiting.Load() {
		w.mu.Lock()
		w.wakeReaderLocked()
		w.mu.Unlock()
	}
	return err
}

// full reports whether the queue has reached its limit.
func (w *connWriter) full() bool { return w.queued.Load() >= w.limit }

// waitRoom blocks while the queue is full and reports whether the writer is still open.
// The fast path is one atomic load. paused counts the waits.
func (w *connWriter) waitRoom(paused *atomic.Uint64) bool {
	if !w.full() {
		return true
	}
	paused.Add(1)
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.state == writerOpen {
		w.waiting.Store(true)
		if !w.full() {
			break
		}
		w.room.Wait()
	}
	w.waiting.Store(false)
	return w.state == writerOpen
}

// wakeReaderLocked wakes a reader blocked in waitRoom. w.mu must be held.
func (w *connWriter) wakeReaderLocked() {
	if w.waiting.Load() {
		w.room.Broadcast()
	}
}

// signalLocked wakes the writer unless a wake-up is already pending. w.mu must be held.
func (w *connWriter) signalLocked() {
	if w.signaled {
		return
	}
	w.signaled = true
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// finish stops accepting frames; the writer flushes what is queued (bounded by the write
// deadline) and closes the connection.
func (w *connWriter) finish() {
	w.mu.Lock()
	if w.state == writerOpen {
		w.state = writerFinishing
		w.signalLocked()
		w.wakeReaderLocked()
	}
	w.mu.Unlock()
}

// abort stops the writer and closes the connection at once, dropping queued frames.
func (w *connWriter) abort() {
	w.mu.Lock()
	if w.state != writerClosed {
		w.state = writerClosed
		w.buf = nil
		w.signalLocked()
		w.wakeReaderLocked()
	}
	w.mu.Unlock()
	_ = w.conn.Close()
}

// loop runs the writer until finish, abort or a write error. It always closes the
// connection on exit and reports a write error (not caused by abort) to onErr, including
// one met by a sender writing in place.
func (w *connWriter) loop(onErr func(error)) {
	defer func() {
		w.mu.Lock()
		w.state = writerClosed
		w.buf = nil
		err := w.err
		w.err = nil
		w.wakeReaderLocked()
		w.mu.Unlock()
		_ = w.conn.Close()
		if err != nil {
			onErr(err)
		}
	}()
	var spare []byte
	again := false // frames were queued during the last Write: no wake-up comes for them
	for {
		if !again {
			<-w.wake
		}
		again = false
		// Let goroutines that are already runnable (callers, handlers) queue their frames
		// first, and keep yielding (bounded) while that adds frames: under load one Write
		// carries dozens of frames; on an idle connection this costs one Gosched.
		w.mu.Lock()
		n := len(w.buf)
		w.mu.Unlock()
		for range maxYields {
			runtime.Gosched()
			w.mu.Lock()
			grew := len(w.buf) > n
			n = len(w.buf)
			w.mu.Unlock()
			if !grew || n >= yieldFlushBytes {
				break
			}
		}
		w.mu.Lock()
		state := w.state
		if state == writerClosed {
			w.mu.Unlock()
			return
		}
		if w.writing {
			// A sender is writing in place (this wake-up came from finish or abort); it
			// wakes the writer again when it is done if frames are queued or the
			// connection is finishing.
			w.signaled = false
			w.mu.Unlock()
			continue
		}
		out := w.buf
		w.buf = spare[:0]
		w.signaled = false
		w.writing = len(out) > 0
		w.mu.Unlock()
		if len(out) > 0 {
			err := w.write(out)
			w.mu.Lock()
			w.writing = false
			if err != nil {
				if w.state != writerClosed { // not aborted
					w.err = err
				}
				w.mu.Unlock()
				return
			}
			if len(w.buf) > 0 && !w.signaled {
				w.signaled, again = true, true
			}
			w.mu.Unlock()
		}
		if state == writerFinishing {
			return
		}
		if cap(out) <= maxSpareWriteBuf {
			spare = out
		} else {
			spare = nil
		}
	}
}

// deadlineReader refreshes the connection's read deadline while reading, so that a
// connection that receives nothing for between idle/2 and idle fails its Read. Keepalive
// pings guarantee traffic on a healthy connection. While a large frame is read, its
// own deadline (setFrameDeadline) applies instead. It also counts bytes read.
type deadlineReader struct {
	conn      net.Conn
	idle      time.Duration // 0 = no deadline
	refreshAt time.Time
	bytes     *atomic.Uint64
	frameDL   time.Time // non-zero while a large frame is read
	frameSet  bool      // frameDL is installed on conn
}

func (r *deadlineReader) Read(p []byte) (int, error) {
	switch {
	case !r.frameDL.IsZero():
		if !r.frameSet {
			_ = r.conn.SetReadDeadline(r.frameDL)
			r.frameSet = true
		}
	case r.idle > 0:
		if now := time.Now(); now.After(r.refreshAt) {
			_ = r.conn.SetReadDeadline(now.Add(r.idle))
			r.refreshAt = now.Add(r.idle / 2)
		}
	}
	n, err := r.conn.Read(p)
	r.bytes.Add(uint64(n))
	return n, err
}

// setFrameDeadline makes reads fail after dl until clearFrameDeadline.
func (r *deadlineReader) setFrameDeadline(dl time.Time) { r.frameDL, r.frameSet = dl, false }

// clearFrameDeadline restores the idle deadline (refreshed on the next Read).
func (r *deadlineReader) clearFrameDeadline() {
	if r.frameSet {
		if r.idle > 0 {
			r.refreshAt = time.Time{}
		} else {
			_ = r.conn.SetReadDeadline(time.Time{})
		}
	}
	r.frameDL, r.frameSet = time.Time{}, false
}

// directPayloadBytes is the largest payload allocated at its full length as soon as its
// header arrives; larger ones grow as their bytes arrive.
const directPayloadBytes = 64 << 10

// frameReader reads frames from one connection: headers, and payloads into buffers that
// grow as bytes arrive, so a header announcing 16 MiB allocates nothing until the bytes
// come. With a budget (server side), a large payload first reserves its announced length
// from the node-wide budget (bookkeeping, not memory), waiting for it at most until the
// frame deadline. Reserving the whole frame at once, rather than growing the reservation
// with the buffer, keeps many half-sent frames from each holding part of the budget and
// all waiting for more: the budget goes to a few frames that can complete.
type frameReader struct {
	br      *bufio.Reader
	dr      *deadlineReader
	timeout time.Duration   // bounds one large frame, header to last byte
	budget  *byteBudget     // nil: no budget (client side)
	ctx     context.Context // ends budget waits at shutdown
}

func newFrameReader(conn net.Conn, idle, timeout time.Duration, bytes *atomic.Uint64, budget *byteBudget, ctx context.Context) *frameReader {
	dr := &deadlineReader{conn: conn, idle: idle, bytes: bytes}
	return &frameReader{br: bufio.NewReaderSize(dr, readBufSize), dr: dr, timeout: timeout, budget: budget, ctx: ctx}
}

// payload reads an n-byte payload.
func (r *frameReader) payload(n int) ([]byte, error) {
	if n <= directPayloadBytes {
		p := make([]byte, n)
		_, err := io.ReadFull(r.br, p)
		return p, err
	}
	deadline := time.Now().Add(r.timeout)
	r.dr.setFrameDeadline(deadline)
	defer r.dr.clearFrameDeadline()
	if r.budget != nil {
		if err := r.reserve(int64(n), deadline); err != nil {
			return nil, err
		}
		defer r.budget.release(int64(n))
	}
	var buf []byte
	for len(buf) < n {
		if len(buf) == cap(buf) {
			// Grow only once the next byte is here: a peer that stops mid-frame does not get
			// the next doubling allocated for bytes it never sends.
			if _, err := r.br.Peek(1); err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return nil, err
			}
			nb := make([]byte, len(buf), min(max(2*cap(buf), directPayloadBytes), n))
			copy(nb, buf)
			buf = nb
		}
		m, err := r.br.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err != nil && len(buf) < n {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return buf, nil
}

// reserve takes n bytes of the budget, waiting at most until deadline.
func (r *frameReader) reserve(n int64, deadline time.Time) error {
	if r.budget.tryAcquire(n) {
		return nil
	}
	ctx, cancel := context.WithDeadline(r.ctx, deadline)
	defer cancel()
	if err := r.budget.acquire(ctx, n); err != nil {
		return fmt.Errorf("%w: no room for a %d byte frame in MaxReceiveBufferBytes within %v: %w", ErrPeerOverloaded, n, r.timeout, err)
	}
	return nil
}

// prefixConn replays the byte the classifier read before handing the connection to
// memberlist, and frees the connection's limiter slot when memberlist closes it.
type prefixConn struct {
	net.Conn
	first    byte
	replayed bool
	slot     *connSlot
}

func (c *prefixConn) Close() error {
	c.slot.release()
	return c.Conn.Close()
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if !c.replayed && len(p) > 0 {
		c.replayed = true
		p[0] = c.first
		return 1, nil
	}
	return c.Conn.Read(p)
}

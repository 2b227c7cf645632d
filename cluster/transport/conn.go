package transport

import (
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
type connWriter struct {
	conn    net.Conn
	timeout time.Duration
	bytes   *atomic.Uint64

	mu       sync.Mutex
	buf      []byte
	signaled bool // a wake token is pending or the writer is about to swap
	state    int
	wake     chan struct{} // capacity 1
}

func newConnWriter(conn net.Conn, timeout time.Duration, bytes *atomic.Uint64) *connWriter {
	return &connWriter{conn: conn, timeout: timeout, bytes: bytes, wake: make(chan struct{}, 1), buf: make([]byte, 0, 4096)}
}

// enqueue appends one frame (header plus payload, copied) and reports whether the writer
// accepted it (false once the connection is closing).
func (w *connWriter) enqueue(h frameHeader, payload []byte) bool {
	w.mu.Lock()
	if w.state != writerOpen {
		w.mu.Unlock()
		return false
	}
	w.buf = appendHeader(w.buf, h)
	w.buf = append(w.buf, payload...)
	w.signalLocked()
	w.mu.Unlock()
	return true
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
	}
	w.mu.Unlock()
	_ = w.conn.Close()
}

// loop runs the writer until finish, abort or a write error. It always closes the
// connection on exit and reports a write error (not caused by abort) to onErr.
func (w *connWriter) loop(onErr func(error)) {
	defer func() { _ = w.conn.Close() }()
	var spare []byte
	var refreshAt time.Time
	for range w.wake {
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
		out := w.buf
		w.buf = spare[:0]
		w.signaled = false
		state := w.state
		if state == writerClosed {
			w.buf = nil
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		if len(out) > 0 {
			if now := time.Now(); now.After(refreshAt) {
				_ = w.conn.SetWriteDeadline(now.Add(w.timeout))
				refreshAt = now.Add(w.timeout / 2)
			}
			n, err := w.conn.Write(out)
			w.bytes.Add(uint64(n))
			if err != nil {
				w.mu.Lock()
				aborted := w.state == writerClosed
				w.state = writerClosed
				w.buf = nil
				w.mu.Unlock()
				if !aborted {
					onErr(err)
				}
				return
			}
		}
		if state == writerFinishing {
			w.mu.Lock()
			w.state = writerClosed
			w.buf = nil
			w.mu.Unlock()
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
// pings guarantee traffic on a healthy connection. It also counts bytes read.
type deadlineReader struct {
	conn      net.Conn
	idle      time.Duration // 0 = no deadline
	refreshAt time.Time
	bytes     *atomic.Uint64
}

func (r *deadlineReader) Read(p []byte) (int, error) {
	if r.idle > 0 {
		if now := time.Now(); now.After(r.refreshAt) {
			_ = r.conn.SetReadDeadline(now.Add(r.idle))
			r.refreshAt = now.Add(r.idle / 2)
		}
	}
	n, err := r.conn.Read(p)
	r.bytes.Add(uint64(n))
	return n, err
}

// prefixConn replays the byte the classifier read before handing the connection to memberlist.
type prefixConn struct {
	net.Conn
	first    byte
	replayed bool
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if !c.replayed && len(p) > 0 {
		c.replayed = true
		p[0] = c.first
		return 1, nil
	}
	return c.Conn.Read(p)
}

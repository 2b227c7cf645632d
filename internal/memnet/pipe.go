package memnet

import (
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// pipeBufferBytes is how many unread bytes one direction of a connection holds before
// writes block, standing in for the kernel's socket buffers.
const pipeBufferBytes = 1 << 20

// newPipe returns the two ends of a connection from a to b.
func newPipe(a, b net.Addr) (*conn, *conn) {
	ab, ba := newHalf(), newHalf()
	ca := &conn{in: ba, out: ab, local: a, remote: b, rd: newDeadline(), wd: newDeadline(), done: make(chan struct{})}
	cb := &conn{in: ab, out: ba, local: b, remote: a, rd: newDeadline(), wd: newDeadline(), done: make(chan struct{})}
	return ca, cb
}

// half is one direction of a connection: bytes written by one end, not yet read by the
// other. Waiters take the current changed channel under mu and wait on it; every change
// closes it and installs a new one, so any number of waiters wake (a sync.Cond would not
// count as durably blocked inside a synctest bubble).
type half struct {
	mu         sync.Mutex // guards the fields below
	buf        []byte     // unread bytes are buf[off:]
	off        int
	eof        bool // the writing end closed: reads drain buf, then return io.EOF
	readerGone bool // the reading end closed: writes fail
	changed    chan struct{}
}

func newHalf() *half { return &half{changed: make(chan struct{})} }

// notifyLocked wakes every waiter.
func (h *half) notifyLocked() {
	close(h.changed)
	h.changed = make(chan struct{})
}

// conn is one end of an in-memory connection; it implements net.Conn.
type conn struct {
	in, out       *half
	local, remote net.Addr
	rd, wd        *deadline

	closeOnce sync.Once
	done      chan struct{} // closed by Close
}

func (c *conn) isClosed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func (c *conn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "memnet", Source: c.local, Addr: c.remote, Err: err}
}

// Read reads what the other end wrote; io.EOF once it closed and everything was read.
func (c *conn) Read(b []byte) (int, error) {
	h := c.in
	for {
		if c.isClosed() {
			return 0, c.opErr("read", net.ErrClosed)
		}
		if expired(c.rd.wait()) {
			return 0, c.opErr("read", os.ErrDeadlineExceeded)
		}
		h.mu.Lock()
		if h.off < len(h.buf) {
			n := copy(b, h.buf[h.off:])
			h.off += n
			if h.off == len(h.buf) {
				h.buf, h.off = h.buf[:0], 0
			}
			h.notifyLocked()
			h.mu.Unlock()
			return n, nil
		}
		if h.eof {
			h.mu.Unlock()
			return 0, io.EOF
		}
		if len(b) == 0 {
			h.mu.Unlock()
			return 0, nil
		}
		ch := h.changed
		h.mu.Unlock()
		select {
		case <-ch:
		case <-c.rd.wait():
		case <-c.done:
		}
	}
}

// Write queues b for the other end, blocking while its unread bytes fill the buffer.
func (c *conn) Write(b []byte) (int, error) {
	h := c.out
	n := 0
	for {
		if c.isClosed() {
			return n, c.opErr("write", net.ErrClosed)
		}
		if expired(c.wd.wait()) {
			return n, c.opErr("write", os.ErrDeadlineExceeded)
		}
		h.mu.Lock()
		if h.readerGone {
			h.mu.Unlock()
			return n, c.opErr("write", io.ErrClosedPipe)
		}
		if room := pipeBufferBytes - (len(h.buf) - h.off); room > 0 {
			k := min(room, len(b)-n)
			if h.off > 0 && len(h.buf)+k > cap(h.buf) {
				// Reuse the space already read rather than growing.
				h.buf, h.off = h.buf[:copy(h.buf, h.buf[h.off:])], 0
			}
			h.buf = append(h.buf, b[n:n+k]...)
			n += k
			h.notifyLocked()
		}
		if n == len(b) {
			h.mu.Unlock()
			return n, nil
		}
		ch := h.changed
		h.mu.Unlock()
		select {
		case <-ch:
		case <-c.wd.wait():
		case <-c.done:
		}
	}
}

// Close closes this end: the other end reads what was written, then io.EOF, and its
// writes fail. Blocked Reads and Writes on this end return net.ErrClosed.
func (c *conn) Close() error {
	first := false
	c.closeOnce.Do(func() {
		first = true
		close(c.done)
		c.out.mu.Lock()
		c.out.eof = true
		c.out.notifyLocked()
		c.out.mu.Unlock()
		c.in.mu.Lock()
		c.in.readerGone = true
		c.in.buf, c.in.off = nil, 0
		c.in.notifyLocked()
		c.in.mu.Unlock()
		c.rd.set(time.Time{})
		c.wd.set(time.Time{})
	})
	if !first {
		return c.opErr("close", net.ErrClosed)
	}
	return nil
}

func (c *conn) LocalAddr() net.Addr  { return c.local }
func (c *conn) RemoteAddr() net.Addr { return c.remote }

func (c *conn) SetDeadline(t time.Time) error {
	if c.isClosed() {
		return c.opErr("set deadline", net.ErrClosed)
	}
	c.rd.set(t)
	c.wd.set(t)
	return nil
}

func (c *conn) SetReadDeadline(t time.Time) error {
	if c.isClosed() {
		return c.opErr("set deadline", net.ErrClosed)
	}
	c.rd.set(t)
	return nil
}

func (c *conn) SetWriteDeadline(t time.Time) error {
	if c.isClosed() {
		return c.opErr("set deadline", net.ErrClosed)
	}
	c.wd.set(t)
	return nil
}

// deadline is a settable point in time whose wait channel is closed once it passes (the
// scheme of net.Pipe: a timer closes the channel; moving the deadline replaces it).
type deadline struct {
	mu     sync.Mutex // guards timer and cancel
	timer  *time.Timer
	cancel chan struct{}
}

func newDeadline() *deadline { return &deadline{cancel: make(chan struct{})} }

// set moves the deadline to t (zero: none).
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // the timer fired: wait until its func has closed cancel
	}
	d.timer = nil
	closed := expired(d.cancel)
	if t.IsZero() {
		if closed {
			d.cancel = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.cancel = make(chan struct{})
		}
		cancel := d.cancel
		d.timer = time.AfterFunc(dur, func() { close(cancel) })
		return
	}
	if !closed {
		close(d.cancel)
	}
}

// wait returns a channel closed once the deadline passes.
func (d *deadline) wait() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel
}

func expired(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

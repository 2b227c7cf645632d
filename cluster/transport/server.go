package transport

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// acceptRPC runs the server side of the handshake on a classified connection (its magic
// byte already read), then serves it on this goroutine until it closes. stop cancels the
// classifier's close-on-shutdown hook.
func (t *Transport) acceptRPC(c net.Conn, stop func() bool) {
	remote := c.RemoteAddr().String()
	fail := func(msg string, args ...any) {
		stop()
		_ = c.Close()
		t.log.Warn(msg, append([]any{"remote", remote}, args...)...)
	}
	h, err := readHello(c)
	if err != nil {
		fail("refused RPC connection: malformed handshake", "err", err)
		return
	}
	status := checkHello(h, t.cfg.Label, t.cfg.ServerTLS != nil)
	if status == hsOK && (t.draining.Load() || t.shut.Load()) {
		status = hsShuttingDown
	}
	_ = c.SetWriteDeadline(time.Now().Add(t.cfg.HandshakeTimeout))
	if _, err := c.Write([]byte{magic, status}); err != nil {
		fail("RPC handshake reply failed", "err", err)
		return
	}
	t.st.bytesIn.Add(uint64(helloFixedLen + len(h.label)))
	t.st.bytesOut.Add(helloReplyLen)
	switch status {
	case hsOK:
	case hsBadLabel:
		fail("refused RPC connection: cluster label mismatch", "their_label", h.label, "our_label", t.cfg.Label)
		return
	case hsShuttingDown:
		stop()
		_ = c.Close()
		return
	default:
		fail("refused RPC connection", "status", status, "version", h.version, "flags", h.flags)
		return
	}
	conn := c
	if t.cfg.ServerTLS != nil {
		tc := tls.Server(c, t.cfg.ServerTLS)
		ctx, cancel := context.WithTimeout(t.baseCtx, t.cfg.HandshakeTimeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			fail("refused RPC connection: TLS handshake failed", "err", err)
			return
		}
		conn = tc
	}
	_ = c.SetDeadline(time.Time{})
	if !stop() {
		_ = c.Close()
		return // shut down meanwhile
	}
	sc := &serverConn{t: t, conn: conn, remote: remote, running: make(map[uint64]*reqCtx)}
	sc.w = newConnWriter(conn, t.cfg.WriteTimeout, &t.st.bytesOut)
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		_ = conn.Close()
		return
	}
	t.sconns[sc] = struct{}{}
	t.wg.Add(1) // safe: this goroutine is tracked
	t.mu.Unlock()
	t.st.connsAccepted.Add(1)
	if t.goAwayed.Load() {
		sc.w.enqueue(frameHeader{typ: frameGoAway}, nil)
	}
	go func() {
		defer t.wg.Done()
		sc.w.loop(func(err error) {
			t.st.connsBroken.Add(1)
			t.log.Debug("RPC connection write failed", "remote", remote, "err", err)
		})
	}()
	sc.readLoop()
}

// serverConn is one accepted RPC connection: a reader (the accepting goroutine) dispatching
// each request to its own goroutine, and a writer.
type serverConn struct {
	t      *Transport
	conn   net.Conn
	remote string
	w      *connWriter

	// mu guards running and closed.
	mu      sync.Mutex
	running map[uint64]*reqCtx // request id -> its handler ctx
	closed  bool
}

// close cancels running handlers and closes the connection at once (Shutdown).
func (sc *serverConn) close() {
	sc.cancelAll()
	sc.w.abort()
}

func (sc *serverConn) cancelAll() {
	sc.mu.Lock()
	sc.closed = true
	running := sc.running
	sc.running = nil
	sc.mu.Unlock()
	for _, rc := range running {
		rc.cancel(context.Canceled)
	}
}

func (sc *serverConn) readLoop() {
	t := sc.t
	defer func() {
		sc.cancelAll()
		sc.w.finish() // flush queued replies (e.g. the frame-too-large error), then close
		t.mu.Lock()
		delete(t.sconns, sc)
		t.mu.Unlock()
	}()
	br := bufio.NewReaderSize(&deadlineReader{conn: sc.conn, idle: t.readIdle, bytes: &t.st.bytesIn}, readBufSize)
	var hb [frameHeaderLen]byte
	for {
		if _, err := io.ReadFull(br, hb[:]); err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				t.st.connsBroken.Add(1)
				t.log.Debug("RPC connection read failed", "remote", sc.remote, "err", err)
			}
			return
		}
		h, err := decodeHeader(hb[:], t.maxFrame)
		if err != nil {
			if errors.Is(err, ErrFrameTooLarge) && h.typ == frameReq {
				msg := fmt.Sprintf("request of %d bytes exceeds the peer's %d byte frame limit", int(h.length)+frameHeaderLen, t.maxFrame)
				sc.w.enqueue(frameHeader{typ: frameErr, code: errCodeFrameTooLarge, id: h.id, length: uint32(len(msg))}, []byte(msg))
			}
			t.st.connsBroken.Add(1)
			t.log.Warn("bad frame from peer, closing connection", "remote", sc.remote, "err", err)
			return
		}
		switch h.typ {
		case frameReq:
			var payload []byte
			if h.length > 0 {
				payload = make([]byte, h.length)
				if _, err := io.ReadFull(br, payload); err != nil {
					return
				}
			}
			if !sc.dispatch(h, payload) {
				return
			}
		case frameCancel:
			sc.mu.Lock()
			rc := sc.running[h.id]
			sc.mu.Unlock()
			if rc != nil {
				rc.cancel(context.Canceled)
			}
		case framePing:
			sc.w.enqueue(frameHeader{typ: framePong, id: h.id}, nil)
		case framePong, frameGoAway:
		default:
			t.st.connsBroken.Add(1)
			t.log.Warn("bad frame from peer, closing connection", "remote", sc.remote,
				"err", fmt.Errorf("%w: unexpected frame type %d from client", ErrBadFrame, h.typ))
			return
		}
	}
}

// dispatch admits a request and starts its handler, or answers with a transport error at
// once. It returns false on a protocol violation (duplicate request id).
func (sc *serverConn) dispatch(h frameHeader, payload []byte) bool {
	t := sc.t
	if n := t.active.Add(1); n > t.maxActive {
		t.handlerDone()
		t.st.rejectedOverloaded.Add(1)
		sc.reject(h.id, errCodeOverloaded)
		return true
	}
	if t.draining.Load() {
		t.handlerDone()
		t.st.rejectedShuttingDown.Add(1)
		sc.reject(h.id, errCodeShuttingDown)
		return true
	}
	hb := t.handler.Load()
	if hb == nil {
		t.handlerDone()
		sc.reject(h.id, errCodeNoHandler)
		return true
	}
	if hb.inline != nil && sc.serveInline(hb.inline, h, payload) {
		t.handlerDone()
		return true
	}
	rc := &reqCtx{sc: sc, handler: hb.h, hdr: h, payload: payload}
	if h.budget > 0 {
		rc.deadline = time.Now().Add(time.Duration(h.budget) * time.Microsecond)
	}
	sc.mu.Lock()
	_, dup := sc.running[h.id]
	if sc.closed || dup {
		sc.mu.Unlock()
		t.handlerDone()
		if dup {
			t.log.Warn("duplicate request id from peer, closing connection", "remote", sc.remote, "id", h.id)
		}
		return !dup
	}
	sc.running[h.id] = rc
	sc.mu.Unlock()
	t.wg.Add(1) // safe: called from the tracked reader goroutine
	go rc.serve()
	return true
}

// serveInline tries the handler's fast path on the reader goroutine and, if it handled
// the request, queues the reply.
func (sc *serverConn) serveInline(ih InlineHandler, h frameHeader, payload []byte) bool {
	resp, handled, panicked := runInline(ih, Request{Op: h.code, Flags: h.flags, Payload: payload})
	if panicked != nil {
		sc.t.st.handlerPanics.Add(1)
		sc.t.log.Error("RPC inline handler panicked", "remote", sc.remote, "op", h.code, "panic", panicked)
		sc.reject(h.id, errCodeHandlerPanic)
		return true
	}
	if handled {
		sc.reply(h.id, resp)
	}
	return handled
}

func runInline(ih InlineHandler, req Request) (resp Response, handled bool, panicked any) {
	defer func() {
		if r := recover(); r != nil {
			panicked = r
		}
	}()
	resp, handled = ih.ServeInline(req)
	return resp, handled, nil
}

// reply queues a handler's response, or a frame-too-large error in its place.
func (sc *serverConn) reply(id uint64, resp Response) {
	t := sc.t
	if len(resp.Payload) > t.maxFrame-frameHeaderLen {
		msg := fmt.Sprintf("response of %d bytes exceeds the %d byte frame limit", len(resp.Payload)+frameHeaderLen, t.maxFrame)
		sc.w.enqueue(frameHeader{typ: frameErr, code: errCodeFrameTooLarge, id: id, length: uint32(len(msg))}, []byte(msg))
		return
	}
	t.st.requests.Add(1)
	sc.w.enqueue(frameHeader{typ: frameResp, code: resp.Status, id: id, length: uint32(len(resp.Payload))}, resp.Payload)
}

func (sc *serverConn) reject(id uint64, code byte) {
	sc.w.enqueue(frameHeader{typ: frameErr, code: code, id: id}, nil)
}

// serve runs one handler and queues its reply.
func (rc *reqCtx) serve() {
	sc := rc.sc
	t := sc.t
	h := rc.hdr
	defer t.wg.Done()
	defer t.handlerDone()
	resp, panicked := runHandler(rc, rc.handler, Request{Op: h.code, Flags: h.flags, Payload: rc.payload})
	sc.mu.Lock()
	if sc.running != nil {
		delete(sc.running, h.id)
	}
	sc.mu.Unlock()
	rc.cancel(context.Canceled) // releases the timer and derived contexts, if any
	if panicked != nil {
		t.st.handlerPanics.Add(1)
		t.log.Error("RPC handler panicked", "remote", sc.remote, "op", h.code, "panic", panicked)
		sc.reject(h.id, errCodeHandlerPanic)
		return
	}
	sc.reply(h.id, resp)
}

func runHandler(ctx context.Context, h Handler, req Request) (resp Response, panicked any) {
	defer func() {
		if r := recover(); r != nil {
			panicked = r
		}
	}()
	return h.ServeRPC(ctx, req), nil
}

// handlerDone releases one admission slot and wakes Drain when the last one goes.
func (t *Transport) handlerDone() {
	if t.active.Add(-1) == 0 && t.draining.Load() {
		select {
		case t.idleCh <- struct{}{}:
		default:
		}
	}
}

// Drain stops serving new requests (remote callers get ErrShuttingDown; new connections
// are refused) and waits until running handlers have finished and queued their replies, or
// ctx ends. Outgoing Calls keep working. Follow it with Shutdown.
func (t *Transport) Drain(ctx context.Context) error {
	t.draining.Store(true)
	if !t.goAwayed.Swap(true) {
		t.mu.Lock()
		for sc := range t.sconns {
			sc.w.enqueue(frameHeader{typ: frameGoAway}, nil)
		}
		t.mu.Unlock()
	}
	for {
		n := t.active.Load()
		if n <= 0 {
			return nil
		}
		select {
		case <-t.idleCh:
		case <-ctx.Done():
			return fmt.Errorf("transport: drain: %d handlers still running: %w", n, ctx.Err())
		}
	}
}

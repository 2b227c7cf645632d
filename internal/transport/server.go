package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// acceptRPC runs the server side of the handshake on a classified connection (its magic
// byte already read), then serves it on this goroutine until it closes. stop cancels the
// classifier's close-on-shutdown hook; deadline bounds the whole handshake.
func (t *Transport) acceptRPC(c net.Conn, stop func() bool, slot *connSlot, deadline time.Time) {
	remote := c.RemoteAddr().String()
	conn, from, err := t.serverHandshake(c, deadline)
	if err != nil {
		stop()
		_ = c.Close()
		slot.release()
		switch {
		case errors.Is(err, ErrShuttingDown):
		case errors.Is(err, ErrAuthFailed), errors.Is(err, ErrLabelMismatch):
			t.st.authFailures.Add(1)
			t.logRefused(remote, err)
		default:
			t.log.Debug("refused RPC connection", "remote", remote, "err", err)
		}
		return
	}
	_ = c.SetDeadline(time.Time{})
	slot.settle()
	if !stop() {
		_ = c.Close()
		slot.release()
		return // shut down meanwhile
	}
	sc := &serverConn{t: t, conn: conn, remote: remote, from: from, slot: slot, running: make(map[uint64]*reqCtx)}
	sc.w = newConnWriter(conn, t.cfg.WriteTimeout, &t.st.bytesOut, t.cfg.MaxQueuedBytesPerConn)
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		_ = conn.Close()
		slot.release()
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

// logRefused reports a connection refused for its credentials: at warn level at most once
// a second (a misconfigured node shows up in the log; a flood of bad handshakes does not
// flood it), at debug level otherwise. Stats.AuthFailures counts them all.
func (t *Transport) logRefused(remote string, err error) {
	level := slog.LevelDebug
	now := time.Now().UnixNano()
	if last := t.lastRefusalWarn.Load(); now-last >= int64(time.Second) && t.lastRefusalWarn.CompareAndSwap(last, now) {
		level = slog.LevelWarn
	}
	t.log.Log(context.Background(), level, "refused RPC connection", "remote", remote, "err", err)
}

// serverHandshake reads the hello, answers it, and runs TLS, the caller's identity and the
// secret-based authentication as configured, all before deadline. It returns the
// connection to serve (TLS or plain) and the caller's node name, or an error saying why the
// peer was refused. Nothing it reads is sized by the peer beyond the 255-byte label and
// name, so an unauthenticated connection costs a goroutine and a few hundred bytes for at
// most HandshakeTimeout.
func (t *Transport) serverHandshake(c net.Conn, deadline time.Time) (net.Conn, string, error) {
	h, err := readHello(c)
	if err != nil {
		return nil, "", err
	}
	status := checkHello(h, t.cfg.Label, t.cfg.ServerTLS != nil, t.auth != nil)
	if status == hsOK && (t.draining.Load() || t.shut.Load()) {
		status = hsShuttingDown
	}
	reply := make([]byte, 0, helloReplyLen+nonceLen)
	reply = append(reply, magic, status)
	var ns [nonceLen]byte
	auth := status == hsOK && h.flags&hsFlagAuth != 0
	if auth {
		ns = newNonce()
		reply = append(reply, ns[:]...)
	}
	if _, err := c.Write(reply); err != nil {
		return nil, "", fmt.Errorf("%w: sending reply: %w", ErrBadHandshake, err)
	}
	t.st.bytesIn.Add(uint64(helloLen(h)))
	t.st.bytesOut.Add(uint64(len(reply)))
	switch status {
	case hsOK:
	case hsBadLabel:
		return nil, "", fmt.Errorf("%w: peer's label %q, ours %q", ErrLabelMismatch, h.label, t.cfg.Label)
	case hsShuttingDown:
		return nil, "", ErrShuttingDown
	case hsAuthRequired:
		return nil, "", fmt.Errorf("%w: peer has no cluster secret", ErrAuthFailed)
	case hsAuthUnavailable:
		return nil, "", fmt.Errorf("%w: peer has a cluster secret and we have none", ErrAuthFailed)
	default:
		return nil, "", fmt.Errorf("%w: status %d (version %d, flags %#x)", ErrBadHandshake, status, h.version, h.flags)
	}
	conn := c
	if t.cfg.ServerTLS != nil {
		tc := tls.Server(c, t.cfg.ServerTLS)
		ctx, cancel := context.WithDeadline(t.baseCtx, deadline)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			return nil, "", fmt.Errorf("%w: TLS handshake: %w", ErrAuthFailed, err)
		}
		conn = tc
	}
	from, err := t.readIdentity(conn, h, auth, &ns)
	if err != nil {
		return nil, "", err
	}
	return conn, from, nil
}

// serverConn is one accepted RPC connection: a reader (the accepting goroutine) dispatching
// each request to its own goroutine, and a writer.
type serverConn struct {
	t      *Transport
	conn   net.Conn
	remote string
	from   string // the caller's node name (identity.go)
	w      *connWriter
	slot   *connSlot // released when the connection ends
	reqs   atomic.Uint64

	// Idle tracking, touched only by the maintenance goroutine (checkIdle).
	idleReqs   uint64    // reqs when last seen changing
	idleSince  time.Time // when reqs last changed (zero: not yet observed)
	idleGoAway bool      // GOAWAY sent for idleness

	// mu guards running, load and closed.
	mu      sync.Mutex
	running map[uint64]*reqCtx // request id -> its handler ctx
	load    trickle            // handlers running, for reply
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
		sc.slot.release()
	}()
	fr := newFrameReader(sc.conn, t.readIdle, t.cfg.ReadTimeout, &t.st.bytesIn, t.budget, t.baseCtx)
	var hb [frameHeaderLen]byte
	for {
		// A peer that does not read its replies stops being read: TCP backpressure
		// instead of an unbounded reply queue.
		if !sc.w.waitRoom(&t.st.readsPaused) {
			return
		}
		if _, err := io.ReadFull(fr.br, hb[:]); err != nil {
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
			sc.reqs.Add(1)
			var payload []byte
			if h.length > 0 {
				if payload, err = fr.payload(int(h.length)); err != nil {
					t.st.connsBroken.Add(1)
					t.log.Debug("RPC connection read failed", "remote", sc.remote, "err", err)
					return
				}
			}
			trace, body, err := splitBody(h, payload)
			if err != nil {
				t.st.connsBroken.Add(1)
				t.log.Warn("bad frame from peer, closing connection", "remote", sc.remote, "err", err)
				return
			}
			if !sc.dispatch(h, trace, body) {
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
			if !sc.w.full() {
				sc.w.enqueue(frameHeader{typ: framePong, id: h.id}, nil)
			}
		case framePong, frameGoAway:
		default:
			t.st.connsBroken.Add(1)
			t.log.Warn("bad frame from peer, closing connection", "remote", sc.remote,
				"err", fmt.Errorf("%w: unexpected frame type %d from client", ErrBadFrame, h.typ))
			return
		}
	}
}

// checkIdle expires a connection that has served no request for idle: the first check past
// it sends GOAWAY (the client stops sending on it and dials anew when it needs to), a later
// one closes it once nothing runs on it. Called by the maintenance goroutine under t.mu.
func (sc *serverConn) checkIdle(now time.Time, idle time.Duration) {
	if n := sc.reqs.Load(); n != sc.idleReqs || sc.idleSince.IsZero() {
		sc.idleReqs, sc.idleSince = n, now
		if !sc.idleGoAway {
			return
		}
		// A request raced with our GOAWAY: the client has it now and sends no more.
	}
	if now.Sub(sc.idleSince) < idle {
		return
	}
	if !sc.idleGoAway {
		sc.idleGoAway = true
		sc.w.enqueue(frameHeader{typ: frameGoAway}, nil)
		return
	}
	sc.mu.Lock()
	busy := len(sc.running) > 0
	sc.mu.Unlock()
	if !busy {
		sc.t.st.connsIdleClosed.Add(1)
		sc.w.finish()
	}
}

// dispatch admits a request and starts its handler, or answers with a transport error at
// once. It returns false on a protocol violation (duplicate request id).
func (sc *serverConn) dispatch(h frameHeader, trace, payload []byte) bool {
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
	req := Request{Op: h.code, Flags: h.flags &^ frameFlagTrace, Trace: trace, Payload: payload, From: sc.from}
	if hb.inline != nil && sc.serveInline(hb.inline, h, req) {
		t.handlerDone()
		return true
	}
	rc := &reqCtx{sc: sc, handler: hb.h, hdr: h, req: req}
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
	sc.load.observe(len(sc.running))
	sc.mu.Unlock()
	t.wg.Add(1) // safe: called from the tracked reader goroutine
	t.startHandler(rc)
	return true
}

// serveInline tries the handler's fast path on the reader goroutine and, if it handled
// the request, queues the reply.
func (sc *serverConn) serveInline(ih InlineHandler, h frameHeader, req Request) bool {
	resp, handled, panicked := runInline(ih, req)
	if panicked != nil {
		sc.t.st.handlerPanics.Add(1)
		sc.t.log.Error("RPC inline handler panicked", "remote", sc.remote, "op", h.code, "panic", panicked)
		sc.reject(h.id, errCodeHandlerPanic)
		return true
	}
	if handled {
		sc.reply(h.id, resp, false)
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

// reply queues a handler's response, or a frame-too-large error in its place. direct lets
// a handler goroutine write it in place (connWriter.send), which it does when it is alone
// on a quiet connection (trickle); the reader, which runs inline handlers, must not.
func (sc *serverConn) reply(id uint64, resp Response, direct bool) {
	t := sc.t
	if len(resp.Payload) > t.maxFrame-frameHeaderLen {
		msg := fmt.Sprintf("response of %d bytes exceeds the %d byte frame limit", len(resp.Payload)+frameHeaderLen, t.maxFrame)
		sc.w.enqueue(frameHeader{typ: frameErr, code: errCodeFrameTooLarge, id: id, length: uint32(len(msg))}, []byte(msg))
		return
	}
	t.st.requests.Add(1)
	sc.w.send(frameHeader{typ: frameResp, code: resp.Status, id: id, length: uint32(len(resp.Payload))}, nil, resp.Payload, direct)
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
	resp, panicked := runHandler(rc, rc.handler, rc.req)
	sc.mu.Lock()
	if sc.running != nil {
		delete(sc.running, h.id)
	}
	alone := len(sc.running) == 0 && sc.load.quiet()
	sc.mu.Unlock()
	rc.cancel(context.Canceled) // releases the timer and derived contexts, if any
	if panicked != nil {
		t.st.handlerPanics.Add(1)
		t.log.Error("RPC handler panicked", "remote", sc.remote, "op", h.code, "panic", panicked)
		sc.reject(h.id, errCodeHandlerPanic)
		return
	}
	sc.reply(h.id, resp, alone)
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

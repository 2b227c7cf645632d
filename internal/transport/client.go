package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Dial backoff after a failed dial: Calls fail fast with ErrPeerUnavailable until it passes.
const (
	minDialBackoff = 50 * time.Millisecond
	maxDialBackoff = time.Second
	// maxPickAttempts bounds how often one Call waits for a fresh dial.
	maxPickAttempts = 3
	// readBufSize is the bufio.Reader size per connection.
	readBufSize = 32 << 10
)

// call is one pending request; pooled per transport.
type call struct {
	ch   chan struct{} // capacity 1: completion signal
	resp Response
	err  error
}

func (t *Transport) getCall() *call { return t.callPool.Get().(*call) }

func (t *Transport) putCall(c *call) {
	c.resp, c.err = Response{}, nil
	t.callPool.Put(c)
}

// Call sends req to the peer at addr ("host:port" of its memberlist port) and waits for the
// response, ctx's deadline or cancellation. The deadline travels with the request and bounds
// the handler there. Transport-level failures are returned as errors wrapping ErrPeerUnavailable,
// ErrPeerOverloaded, ErrShuttingDown, ErrFrameTooLarge, ErrClosed, ErrLabelMismatch, ErrNoHandler,
// ErrHandlerPanic or ctx.Err(); the handler's Status is returned untouched. req.Payload is not
// retained after Call returns; the returned Payload belongs to the caller.
func (t *Transport) Call(ctx context.Context, addr string, req Request) (Response, error) {
	return t.CallDeadline(ctx, addr, req, time.Time{})
}

// CallDeadline is Call with an extra deadline that is enforced like a
// ctx deadline (the earlier of the two is sent to the peer and waited for;
// expiry gives an error wrapping context.DeadlineExceeded) but costs no
// context and no timer: the transport's sweeper fails calls whose deadline
// has passed, as soon as the runtime's timer fires (see sweep.go). The zero deadline
// means none. It is for hot paths that would otherwise wrap every call in
// context.WithTimeout.
func (t *Transport) CallDeadline(ctx context.Context, addr string, req Request, deadline time.Time) (Response, error) {
	t.st.calls.Add(1)
	resp, err := t.call(ctx, addr, req, deadline)
	if err != nil {
		t.st.callErrors.Add(1)
		if errors.Is(err, ErrPeerOverloaded) {
			t.st.overloaded.Add(1)
		}
	}
	return resp, err
}

func (t *Transport) call(ctx context.Context, addr string, req Request, deadline time.Time) (Response, error) {
	if t.shut.Load() {
		return Response{}, ErrClosed
	}
	if req.Flags&frameFlagTrace != 0 {
		return Response{}, fmt.Errorf("transport: request flags %#x use bit 15, which the transport reserves", req.Flags)
	}
	if len(req.Trace) > MaxTraceBytes {
		return Response{}, fmt.Errorf("%w: %d byte trace context, limit %d", ErrFrameTooLarge, len(req.Trace), MaxTraceBytes)
	}
	if n := frameLen(req.Trace, req.Payload); n > t.maxFrame-frameHeaderLen {
		return Response{}, fmt.Errorf("%w: %d byte request payload, limit %d", ErrFrameTooLarge, n, t.maxFrame-frameHeaderLen)
	}
	if t.isBlocked(addr) {
		return Response{}, fmt.Errorf("%w (%s): blocked by SetBlocked", ErrPeerUnavailable, addr)
	}
	var budget uint32
	if dl, ok := ctx.Deadline(); ok && (deadline.IsZero() || dl.Before(deadline)) {
		deadline = dl
	}
	if !deadline.IsZero() {
		d := time.Until(deadline)
		if d <= 0 {
			return Response{}, fmt.Errorf("transport: call %s: %w", addr, context.DeadlineExceeded)
		}
		budget = budgetFromDeadline(d)
	}
	if err := ctx.Err(); err != nil {
		return Response{}, fmt.Errorf("transport: call %s: %w", addr, err)
	}
	p, err := t.peerFor(addr)
	if err != nil {
		return Response{}, err
	}

	// Backpressure: at most MaxInflightPerPeer calls in flight to this peer.
	if err := p.inflight.acquire(ctx, deadline); err != nil {
		return Response{}, fmt.Errorf("%w (%s): %d calls in flight: %w", ErrPeerOverloaded, addr, p.inflight.max, err)
	}
	defer p.inflight.release()

	cc, err := p.pick(ctx)
	if err != nil {
		return Response{}, err
	}
	c := t.getCall()
	var dl int64
	if !deadline.IsZero() {
		dl = t.mono(deadline)
	}
	id, alone, ok := cc.register(c, dl)
	if !ok {
		t.putCall(c)
		return Response{}, cc.failErr()
	}
	if dl != 0 {
		t.planSweep(dl)
	}
	h := frameHeader{length: uint32(frameLen(req.Trace, req.Payload)), typ: frameReq, code: req.Op, flags: req.Flags, id: id, budget: budget}
	if len(req.Trace) > 0 {
		h.flags |= frameFlagTrace
	}
	// A call alone on a quiet connection writes its frame itself (connWriter.send); with
	// others in flight, more frames are likely to follow at once and the writer batches them.
	if !cc.w.send(h, req.Trace, req.Payload, alone) {
		if cc.unregister(id) {
			t.putCall(c)
			return Response{}, cc.failErr()
		}
		<-c.ch // failed by close meanwhile
	} else if done := ctx.Done(); done == nil {
		<-c.ch // a response, a failure, or the sweeper at the deadline
	} else {
		select {
		case <-c.ch:
		case <-done:
			if cc.unregister(id) {
				cc.w.enqueue(frameHeader{typ: frameCancel, id: id}, nil)
				t.putCall(c)
				t.st.cancelled.Add(1)
				return Response{}, fmt.Errorf("transport: call %s: %w", addr, ctx.Err())
			}
			<-c.ch // the response (or the sweeper) won the race; use it
		}
	}
	resp, err := c.resp, c.err
	t.putCall(c)
	return resp, err
}

// peerFor returns the pool for addr, creating it on first use.
func (t *Transport) peerFor(addr string) (*peer, error) {
	if m := t.peers.Load(); m != nil {
		if p := (*m)[addr]; p != nil {
			return p, nil
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, ErrClosed
	}
	var old map[string]*peer
	if m := t.peers.Load(); m != nil {
		old = *m
		if p := old[addr]; p != nil {
			return p, nil
		}
	}
	p := &peer{
		t:        t,
		addr:     addr,
		inflight: newLimiter(t.cfg.MaxInflightPerPeer),
		conns:    make([]atomic.Pointer[clientConn], t.cfg.ConnsPerPeer),
		all:      make(map[*clientConn]struct{}),
	}
	m := make(map[string]*peer, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[addr] = p
	t.peers.Store(&m)
	return p, nil
}

// ClosePeer drops the pooled connections to addr (a peer that left): calls in flight to it
// fail with ErrPeerUnavailable. A later Call to addr dials afresh.
func (t *Transport) ClosePeer(addr string) {
	t.mu.Lock()
	var p *peer
	if m := t.peers.Load(); m != nil && (*m)[addr] != nil {
		p = (*m)[addr]
		nm := make(map[string]*peer, len(*m))
		for k, v := range *m {
			if k != addr {
				nm[k] = v
			}
		}
		t.peers.Store(&nm)
	}
	t.mu.Unlock()
	if p != nil {
		p.close(fmt.Errorf("%w (%s): closed by ClosePeer", ErrPeerUnavailable, addr))
	}
}

// ResetBackoff ends the dial backoff of addr's pool, if it has one: the
// membership layer calls it when it hears that the member at addr is alive
// again (a restart at the same address), so that the next Call dials at
// once instead of failing with the error of a dial to its previous life.
func (t *Transport) ResetBackoff(addr string) {
	m := t.peers.Load()
	if m == nil {
		return
	}
	if p := (*m)[addr]; p != nil {
		p.mu.Lock()
		p.lastErr, p.backoff, p.retryAt = nil, 0, time.Time{}
		p.mu.Unlock()
	}
}

// peer is the connection pool for one remote address.
type peer struct {
	t        *Transport
	addr     string
	inflight *limiter
	conns    []atomic.Pointer[clientConn]
	rr       atomic.Uint32

	// mu guards the fields below.
	mu       sync.Mutex
	all      map[*clientConn]struct{} // every open conn, also ones evicted from conns by GOAWAY
	closed   bool
	closeErr error
	dialing  bool
	dialDone chan struct{}
	lastErr  error
	retryAt  time.Time
	backoff  time.Duration
}

// pick returns a usable connection, round-robin, dialing if none is (callers wait for at
// most one dial in progress per peer; during backoff after a failure they fail at once).
func (p *peer) pick(ctx context.Context) (*clientConn, error) {
	n := uint32(len(p.conns))
	i := uint32(0)
	if n > 1 {
		i = p.rr.Add(1) % n
	}
	if cc := p.conns[i].Load(); cc != nil && cc.usable() {
		return cc, nil
	}
	for attempt := 0; ; attempt++ {
		// Scan under p.mu: dial stores a new conn under it, so a scan outside the lock could
		// miss a conn stored just before this caller sees dialing == false and give up.
		p.mu.Lock()
		var found *clientConn
		for j := range p.conns {
			if cc := p.conns[j].Load(); cc != nil && cc.usable() {
				found = cc
				break
			}
		}
		if p.closed {
			err := p.closeErr
			p.mu.Unlock()
			return nil, err
		}
		if !p.dialing && p.hasFreeSlotLocked() && !time.Now().Before(p.retryAt) {
			p.dialing = true
			p.dialDone = make(chan struct{})
			if !p.t.goTracked(p.dial) {
				p.dialing = false
				close(p.dialDone)
				p.mu.Unlock()
				return nil, ErrClosed
			}
		}
		if found != nil {
			p.mu.Unlock()
			return found, nil
		}
		if !p.dialing || attempt >= maxPickAttempts {
			err := p.lastErr
			p.mu.Unlock()
			if err == nil {
				err = errors.New("no usable connection")
			}
			return nil, fmt.Errorf("%w (%s): %w", ErrPeerUnavailable, p.addr, err)
		}
		done := p.dialDone
		p.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return nil, fmt.Errorf("transport: call %s: waiting for dial: %w", p.addr, ctx.Err())
		}
	}
}

func (p *peer) hasFreeSlotLocked() bool {
	for j := range p.conns {
		if cc := p.conns[j].Load(); cc == nil || !cc.usable() {
			return true
		}
	}
	return false
}

// dial runs on its own goroutine: one dial at a time per peer.
func (p *peer) dial() {
	t := p.t
	cc, err := t.dialConn(p)
	p.mu.Lock()
	defer p.mu.Unlock()
	// Waiters re-scan p.conns when dialDone closes: close it after storing the new conn.
	defer close(p.dialDone)
	p.dialing = false
	if err != nil {
		t.st.dialFailures.Add(1)
		p.lastErr = err
		p.backoff = min(max(2*p.backoff, minDialBackoff), maxDialBackoff)
		p.retryAt = time.Now().Add(p.backoff)
		t.log.Debug("dial failed", "peer", p.addr, "backoff", p.backoff, "err", err)
		return
	}
	slot := -1
	for j := range p.conns {
		if old := p.conns[j].Load(); old == nil || !old.usable() {
			slot = j
			break
		}
	}
	if p.closed || slot < 0 {
		_ = cc.conn.Close()
		return
	}
	t.st.connsDialed.Add(1)
	p.lastErr, p.backoff, p.retryAt = nil, 0, time.Time{}
	cc.slot = slot
	p.all[cc] = struct{}{}
	t.wg.Add(2) // safe: this goroutine is tracked, so the counter is positive
	go func() {
		defer t.wg.Done()
		cc.w.loop(func(err error) { cc.close(fmt.Errorf("%w (%s): write: %w", ErrPeerUnavailable, p.addr, err), true) })
	}()
	go func() {
		defer t.wg.Done()
		cc.readLoop()
	}()
	p.conns[slot].Store(cc)
}

// close fails every connection of the pool with err and refuses new calls.
func (p *peer) close(err error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed, p.closeErr = true, err
	conns := make([]*clientConn, 0, len(p.all))
	for cc := range p.all {
		conns = append(conns, cc)
	}
	p.mu.Unlock()
	for _, cc := range conns {
		cc.close(err, false)
	}
}

func (p *peer) forEachConn(fn func(*clientConn)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for cc := range p.all {
		fn(cc)
	}
}

func (p *peer) remove(cc *clientConn) {
	p.mu.Lock()
	delete(p.all, cc)
	p.conns[cc.slot].CompareAndSwap(cc, nil)
	p.mu.Unlock()
}

// dialConn dials the peer and runs the client side of the handshake, bounded by
// DialTimeout and Shutdown.
func (t *Transport) dialConn(p *peer) (*clientConn, error) {
	conn, err := t.dialHandshake(t.baseCtx, p.addr)
	if err != nil {
		return nil, err
	}
	cc := &clientConn{
		p:    p,
		conn: conn,
	}
	cc.w = newConnWriter(conn, t.cfg.WriteTimeout, &t.st.bytesOut, t.cfg.MaxQueuedBytesPerConn)
	return cc, nil
}

// dialHandshake dials addr and completes the handshake (label, TLS, secret), bounded by
// parent, DialTimeout and Shutdown. The returned connection has no deadline.
func (t *Transport) dialHandshake(parent context.Context, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(parent, t.cfg.DialTimeout)
	defer cancel()
	if parent != t.baseCtx {
		defer context.AfterFunc(t.baseCtx, cancel)()
	}
	raw, err := t.nt.DialContext(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("transport: dial %s: %w", addr, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = raw.Close() })
	conn, err := t.clientHandshake(ctx, raw, addr)
	if !stop() && err == nil {
		err = fmt.Errorf("transport: dial %s: %w", addr, ctx.Err())
	}
	if err != nil {
		_ = raw.Close()
		return nil, err
	}
	_ = raw.SetDeadline(time.Time{})
	return conn, nil
}

// Probe dials addr, completes the RPC handshake (cluster label, TLS and the shared secret,
// as configured) and closes the connection. A nil error means that the peer is a member of
// this cluster in the same security mode: it proved the secret or presented a trusted
// certificate, and accepted ours. The cluster admits a member into the ring only after a
// successful Probe. It fails with ErrPeerUnavailable for addresses blocked by SetBlocked.
func (t *Transport) Probe(ctx context.Context, addr string) error {
	if t.shut.Load() {
		return ErrClosed
	}
	if t.isBlocked(addr) {
		return fmt.Errorf("%w (%s): blocked by SetBlocked", ErrPeerUnavailable, addr)
	}
	conn, err := t.dialHandshake(ctx, addr)
	if err != nil {
		return fmt.Errorf("%w (%s): %w", ErrPeerUnavailable, addr, err)
	}
	return conn.Close()
}

func (t *Transport) clientHandshake(ctx context.Context, raw net.Conn, addr string) (net.Conn, error) {
	if dl, ok := ctx.Deadline(); ok {
		_ = raw.SetDeadline(dl)
	}
	h := hello{version: protoVersion, label: t.cfg.Label}
	if t.clientTLS != nil {
		h.flags |= hsFlagTLS
	}
	if t.auth != nil {
		h.flags |= hsFlagAuth
		h.nonce = newNonce()
	}
	buf := appendHello(make([]byte, 0, helloLen(h)), h)
	if _, err := raw.Write(buf); err != nil {
		return nil, fmt.Errorf("transport: dial %s: send handshake: %w", addr, err)
	}
	var reply [helloReplyLen + nonceLen]byte
	if _, err := io.ReadFull(raw, reply[:helloReplyLen]); err != nil {
		return nil, fmt.Errorf("transport: dial %s: read handshake reply: %w", addr, err)
	}
	t.st.bytesOut.Add(uint64(len(buf)))
	t.st.bytesIn.Add(helloReplyLen)
	if err := decodeHelloReply(reply[:helloReplyLen], t.cfg.Label); err != nil {
		return nil, fmt.Errorf("transport: dial %s: %w", addr, err)
	}
	var ns [nonceLen]byte
	if t.auth != nil {
		if _, err := io.ReadFull(raw, ns[:]); err != nil {
			return nil, fmt.Errorf("transport: dial %s: read handshake nonce: %w", addr, err)
		}
	}
	conn := raw
	if t.clientTLS != nil {
		cfg := t.clientTLS
		if cfg.ServerName == "" {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				host = addr
			}
			cfg = cfg.Clone()
			cfg.ServerName = host
		}
		tc := tls.Client(raw, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, fmt.Errorf("transport: dial %s: TLS handshake: %w", addr, err)
		}
		conn = tc
	}
	if err := t.sendIdentity(conn, h, &ns); err != nil {
		return nil, fmt.Errorf("transport: dial %s: %w", addr, err)
	}
	return conn, nil
}

// clientConn is one multiplexed connection to a peer: callers register a pending call and
// enqueue a REQ frame; the reader goroutine routes RESP/ERR frames back by request id.
type clientConn struct {
	p      *peer
	conn   net.Conn
	w      *connWriter
	slot   int
	dead   atomic.Bool
	goaway atomic.Bool

	// mu guards the fields below.
	mu      sync.Mutex
	pending pendingTable
	load    trickle // calls pending, for send
	closed  bool
	err     error
}

func (cc *clientConn) usable() bool { return !cc.dead.Load() && !cc.goaway.Load() }

func (cc *clientConn) register(c *call, deadline int64) (id uint64, alone, ok bool) {
	cc.mu.Lock()
	if cc.closed {
		cc.mu.Unlock()
		return 0, false, false
	}
	id = cc.pending.add(c, deadline)
	n := cc.pending.len()
	cc.load.observe(n)
	alone = n == 1 && cc.load.quiet()
	cc.mu.Unlock()
	return id, alone, true
}

// unregister removes a pending call and reports whether it was still pending (if not,
// the reader or close has completed it or is about to).
func (cc *clientConn) unregister(id uint64) bool {
	cc.mu.Lock()
	c := cc.pending.take(id)
	cc.mu.Unlock()
	return c != nil
}

func (cc *clientConn) take(id uint64) *call {
	cc.mu.Lock()
	c := cc.pending.take(id)
	cc.mu.Unlock()
	return c
}

func (cc *clientConn) failErr() error {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.err != nil {
		return cc.err
	}
	return fmt.Errorf("%w (%s): connection closed", ErrPeerUnavailable, cc.p.addr)
}

// close fails all pending calls with err and closes the connection. broken counts it in Stats.
func (cc *clientConn) close(err error, broken bool) {
	cc.mu.Lock()
	if cc.closed {
		cc.mu.Unlock()
		return
	}
	cc.closed, cc.err = true, err
	pending := cc.pending.drain()
	cc.mu.Unlock()
	cc.dead.Store(true)
	cc.w.abort()
	if broken {
		cc.p.t.st.connsBroken.Add(1)
		cc.p.t.log.Debug("connection to peer lost", "peer", cc.p.addr, "err", err)
	}
	for _, c := range pending {
		c.err = err
		c.ch <- struct{}{}
	}
	cc.p.remove(cc)
}

// readLoop routes responses to pending calls until the connection fails.
func (cc *clientConn) readLoop() {
	t := cc.p.t
	fr := newFrameReader(cc.conn, t.readIdle, t.cfg.ReadTimeout, &t.st.bytesIn, nil, t.baseCtx)
	var hb [frameHeaderLen]byte
	for {
		if _, err := io.ReadFull(fr.br, hb[:]); err != nil {
			cc.close(fmt.Errorf("%w (%s): read: %w", ErrPeerUnavailable, cc.p.addr, err), true)
			return
		}
		h, err := decodeHeader(hb[:], t.maxFrame)
		if err != nil {
			if errors.Is(err, ErrFrameTooLarge) && (h.typ == frameResp || h.typ == frameErr) {
				if c := cc.take(h.id); c != nil {
					c.err = fmt.Errorf("transport: response from %s: %w", cc.p.addr, err)
					c.ch <- struct{}{}
				}
			}
			t.log.Warn("bad frame from peer, closing connection", "peer", cc.p.addr, "err", err)
			cc.close(fmt.Errorf("%w (%s): %w", ErrPeerUnavailable, cc.p.addr, err), true)
			return
		}
		switch h.typ {
		case frameResp, frameErr:
			var payload []byte
			if h.length > 0 {
				if payload, err = fr.payload(int(h.length)); err != nil {
					cc.close(fmt.Errorf("%w (%s): read: %w", ErrPeerUnavailable, cc.p.addr, err), true)
					return
				}
			}
			c := cc.take(h.id)
			if c == nil {
				continue // cancelled or timed out; late response dropped
			}
			if h.typ == frameResp {
				c.resp = Response{Status: h.code, Payload: payload}
			} else {
				c.err = errFromCode(cc.p.addr, h.code, payload)
			}
			c.ch <- struct{}{}
		case framePing:
			if !cc.w.full() { // a peer that pings and never reads gets no answers
				cc.w.enqueue(frameHeader{typ: framePong, id: h.id}, nil)
			}
		case framePong:
		case frameGoAway:
			cc.goaway.Store(true)
		default:
			err := fmt.Errorf("%w: unexpected frame type %d from server", ErrBadFrame, h.typ)
			t.log.Warn("bad frame from peer, closing connection", "peer", cc.p.addr, "err", err)
			cc.close(fmt.Errorf("%w (%s): %w", ErrPeerUnavailable, cc.p.addr, err), true)
			return
		}
	}
}

// errFromCode maps a frameErr code to the error the caller sees.
func errFromCode(addr string, code byte, msg []byte) error {
	var base error
	switch code {
	case errCodeOverloaded:
		base = ErrPeerOverloaded
	case errCodeShuttingDown:
		base = ErrShuttingDown
	case errCodeNoHandler:
		base = ErrNoHandler
	case errCodeFrameTooLarge:
		base = ErrFrameTooLarge
	case errCodeHandlerPanic:
		base = ErrHandlerPanic
	default:
		return fmt.Errorf("transport: peer %s: unknown error code %d: %q", addr, code, msg)
	}
	if len(msg) > 0 {
		return fmt.Errorf("%w (%s): %s", base, addr, msg)
	}
	return fmt.Errorf("%w (%s)", base, addr)
}

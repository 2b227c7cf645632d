package transport

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// Transport carries memberlist's gossip and this package's RPCs on one port. It implements
// memberlist.NodeAwareTransport: set it as memberlist.Config.Transport. See the package doc.
type Transport struct {
	cfg       Config
	log       *slog.Logger
	nt        network // memberlist's NetTransport, or an in-memory host (Config.Network)
	clientTLS *tls.Config
	auth      *authenticator // nil: no shared secret
	limiter   *connLimiter   // MaxConnsPerIP, MaxPendingConns
	budget    *byteBudget    // MaxReceiveBufferBytes

	packetCh chan *memberlist.Packet
	streamCh chan net.Conn

	handler atomic.Pointer[handlerBox]
	blocked atomic.Pointer[blockFunc]

	// baseCtx is cancelled by Shutdown; it bounds dials, handshakes and the maintenance loop.
	baseCtx    context.Context
	baseCancel context.CancelFunc
	// ntDone is closed once the wrapped NetTransport has shut down; the pumps drain its
	// channels until then so that its listener goroutines never block.
	ntDone       chan struct{}
	shutdownOnce sync.Once
	shutdownErr  error
	shut         atomic.Bool

	// mu guards closed, writes to peers, and sconns.
	mu     sync.Mutex
	closed bool
	peers  atomic.Pointer[map[string]*peer] // copy-on-write
	sconns map[*serverConn]struct{}
	// wg owns every goroutine this transport starts.
	wg sync.WaitGroup

	draining        atomic.Bool
	goAwayed        atomic.Bool
	lastRefusalWarn atomic.Int64  // unix ns of the last refusal logged at warn level
	active          atomic.Int64  // handlers running
	idleWorkers     chan *reqCtx  // unbuffered: handler workers waiting for a request (handler_workers.go)
	idleCh          chan struct{} // signalled when active drops to 0 while draining
	callPool        sync.Pool
	sweep           sweeper // expires calls at their deadline
	st              counters
	readIdle        time.Duration
	maxFrame        int
	maxActive       int64
}

type handlerBox struct {
	h      Handler
	inline InlineHandler // h's fast path, if it has one
}

func newHandlerBox(h Handler) *handlerBox {
	b := &handlerBox{h: h}
	b.inline, _ = h.(InlineHandler)
	return b
}

type blockFunc func(addr string) bool

var _ memberlist.NodeAwareTransport = (*Transport)(nil)

// New validates cfg, binds TCP and UDP on BindAddr:BindPort through memberlist's
// NetTransport (or binds that address on Config.Network), and starts serving. Call Shutdown (or memberlist's Shutdown) to release it.
func New(cfg Config) (*Transport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	auth, err := newAuthenticator(cfg.AuthSecret)
	if err != nil {
		return nil, err
	}
	nt, err := listen(cfg)
	if err != nil {
		return nil, err
	}
	t := &Transport{
		cfg:       cfg,
		log:       cfg.Logger.With("component", "transport"),
		nt:        nt,
		auth:      auth,
		limiter:   newConnLimiter(cfg.MaxConnsPerIP, cfg.MaxPendingConns),
		budget:    newByteBudget(cfg.MaxReceiveBufferBytes),
		packetCh:  make(chan *memberlist.Packet),
		streamCh:  make(chan net.Conn),
		ntDone:    make(chan struct{}),
		sconns:    make(map[*serverConn]struct{}),
		idleCh:    make(chan struct{}, 1),
		maxFrame:  cfg.MaxFrameBytes,
		maxActive: int64(cfg.MaxConcurrentRequests),
	}
	if cfg.ClientTLS != nil {
		t.clientTLS = cfg.ClientTLS.Clone()
	}
	if cfg.KeepaliveInterval > 0 {
		t.readIdle = 3 * cfg.KeepaliveInterval
	}
	t.baseCtx, t.baseCancel = context.WithCancel(context.Background())
	t.idleWorkers = make(chan *reqCtx)
	t.callPool.New = func() any { return &call{ch: make(chan struct{}, 1)} }
	if cfg.Handler != nil {
		t.handler.Store(newHandlerBox(cfg.Handler))
	}
	t.sweep.init()
	t.goTracked(t.packetPump)
	t.goTracked(t.streamPump)
	t.goTracked(t.sweepLoop)
	if cfg.KeepaliveInterval > 0 || cfg.IdleTimeout > 0 {
		t.goTracked(t.maintenanceLoop)
	}
	return t, nil
}

// goTracked runs fn on a goroutine owned by t.wg, unless the transport is shut down.
func (t *Transport) goTracked(fn func()) bool {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return false
	}
	t.wg.Add(1)
	t.mu.Unlock()
	go func() {
		defer t.wg.Done()
		fn()
	}()
	return true
}

// SetHandler installs the handler for incoming requests (nil removes it: requests then
// fail with ErrNoHandler). Safe to call at any time.
func (t *Transport) SetHandler(h Handler) {
	if h == nil {
		t.handler.Store(nil)
		return
	}
	t.handler.Store(newHandlerBox(h))
}

// BoundPort returns the TCP/UDP port actually bound (useful with BindPort 0).
func (t *Transport) BoundPort() int { return t.nt.GetAutoBindPort() }

// SetBlocked installs a test hook that simulates a network partition: UDP packets to and
// from addresses for which block(addr) is true are dropped, memberlist stream dials to them
// and Calls to them fail with ErrPeerUnavailable. Incoming TCP connections come from
// ephemeral ports and cannot be matched, so block on both sides for a full partition.
// nil removes the hook. Addresses are "host:port" of the peer's memberlist port.
func (t *Transport) SetBlocked(block func(addr string) bool) {
	if block == nil {
		t.blocked.Store(nil)
		return
	}
	f := blockFunc(block)
	t.blocked.Store(&f)
}

func (t *Transport) isBlocked(addr string) bool {
	f := t.blocked.Load()
	return f != nil && (*f)(addr)
}

// FinalAdvertiseAddr implements memberlist.Transport (delegated to NetTransport).
func (t *Transport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	return t.nt.FinalAdvertiseAddr(ip, port)
}

// WriteTo implements memberlist.Transport: it sends a UDP packet (dropped silently when blocked).
func (t *Transport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress implements memberlist.NodeAwareTransport.
func (t *Transport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	if t.isBlocked(a.Addr) {
		t.st.packetsDropped.Add(1)
		return time.Now(), nil
	}
	return t.nt.WriteToAddress(b, a)
}

// PacketCh implements memberlist.Transport.
func (t *Transport) PacketCh() <-chan *memberlist.Packet { return t.packetCh }

// DialTimeout implements memberlist.Transport: a memberlist stream connection (not pooled).
func (t *Transport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout implements memberlist.NodeAwareTransport.
func (t *Transport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if t.shut.Load() {
		return nil, ErrClosed
	}
	if t.isBlocked(a.Addr) {
		return nil, fmt.Errorf("%w (%s): blocked by SetBlocked", ErrPeerUnavailable, a.Addr)
	}
	if timeout <= 0 {
		timeout = t.cfg.DialTimeout
	}
	return t.nt.DialAddressTimeout(a, timeout)
}

// StreamCh implements memberlist.Transport: accepted connections that are not RPC.
func (t *Transport) StreamCh() <-chan net.Conn { return t.streamCh }

// Shutdown stops everything: listeners, pooled and accepted connections (in-flight Calls
// fail with ErrClosed, running handlers see ctx cancelled), and waits until every goroutine
// the transport started has exited, including handlers. It is idempotent and is called by
// memberlist's Shutdown. Call Drain first for a graceful stop.
func (t *Transport) Shutdown() error {
	t.shutdownOnce.Do(func() {
		t.shut.Store(true)
		t.mu.Lock()
		t.closed = true
		var peers map[string]*peer
		if m := t.peers.Load(); m != nil {
			peers = *m
		}
		sconns := make([]*serverConn, 0, len(t.sconns))
		for sc := range t.sconns {
			sconns = append(sconns, sc)
		}
		t.mu.Unlock()

		t.baseCancel()
		if err := t.nt.Shutdown(); err != nil {
			t.shutdownErr = fmt.Errorf("transport: shutdown: %w", err)
		}
		close(t.ntDone)
		for _, p := range peers {
			p.close(ErrClosed)
		}
		for _, sc := range sconns {
			sc.close()
		}
		t.wg.Wait()
	})
	return t.shutdownErr
}

// packetPump forwards UDP packets from NetTransport to memberlist, dropping blocked ones.
func (t *Transport) packetPump() {
	in := t.nt.PacketCh()
	for {
		select {
		case p := <-in:
			if f := t.blocked.Load(); f != nil && p.From != nil && (*f)(p.From.String()) {
				t.st.packetsDropped.Add(1)
				continue
			}
			select {
			case t.packetCh <- p:
			case <-t.baseCtx.Done():
			}
		case <-t.ntDone:
			return
		}
	}
}

// streamPump takes accepted TCP connections from NetTransport (whose accept loop blocks
// on an unbuffered channel), applies the connection limits, and classifies each admitted
// connection on its own goroutine.
func (t *Transport) streamPump() {
	in := t.nt.StreamCh()
	for {
		select {
		case c := <-in:
			slot, reason := t.limiter.admit(c)
			if slot == nil {
				t.st.connsRefused.Add(1)
				t.log.Debug("refused connection", "remote", c.RemoteAddr().String(), "reason", reason)
				_ = c.Close()
				continue
			}
			if !t.goTracked(func() { t.classify(c, slot) }) {
				slot.release()
				_ = c.Close()
			}
		case <-t.ntDone:
			return
		}
	}
}

// classify reads the first byte of an accepted connection: the RPC magic byte starts the
// RPC handshake; anything else is memberlist's, replayed and handed to StreamCh. The whole
// handshake, RPC or not, must complete within HandshakeTimeout of the accept.
func (t *Transport) classify(c net.Conn, slot *connSlot) {
	stop := context.AfterFunc(t.baseCtx, func() { _ = c.Close() })
	deadline := time.Now().Add(t.cfg.HandshakeTimeout)
	_ = c.SetDeadline(deadline)
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		stop()
		_ = c.Close()
		slot.release()
		return
	}
	if b[0] == magic {
		t.acceptRPC(c, stop, slot, deadline)
		return
	}
	_ = c.SetDeadline(time.Time{})
	slot.settle()
	pc := &prefixConn{Conn: c, first: b[0], slot: slot}
	if !stop() {
		_ = pc.Close() // shut down meanwhile
		return
	}
	select {
	case t.streamCh <- pc:
		t.st.streamsForwarded.Add(1)
	case <-t.baseCtx.Done():
		_ = pc.Close()
	}
}

// maintenanceLoop pings every RPC connection each KeepaliveInterval (the peer's PONG keeps
// our read deadline fresh, so a half-open connection fails its reads) and expires idle
// accepted connections (IdleTimeout).
func (t *Transport) maintenanceLoop() {
	tick := t.cfg.KeepaliveInterval
	if tick <= 0 {
		tick = t.cfg.IdleTimeout / 2
	}
	tk := time.NewTicker(tick)
	defer tk.Stop()
	ping := frameHeader{typ: framePing}
	for {
		var now time.Time
		select {
		case now = <-tk.C:
		case <-t.baseCtx.Done():
			return
		}
		if t.cfg.KeepaliveInterval > 0 {
			if m := t.peers.Load(); m != nil {
				for _, p := range *m {
					p.forEachConn(func(cc *clientConn) {
						if !cc.w.full() {
							cc.w.enqueue(ping, nil)
						}
					})
				}
			}
		}
		t.mu.Lock()
		for sc := range t.sconns {
			if t.cfg.KeepaliveInterval > 0 && !sc.w.full() {
				sc.w.enqueue(ping, nil)
			}
			if t.cfg.IdleTimeout > 0 {
				sc.checkIdle(now, t.cfg.IdleTimeout)
			}
		}
		t.mu.Unlock()
	}
}

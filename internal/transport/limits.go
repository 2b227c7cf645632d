package transport

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// connLimiter enforces MaxConnsPerIP and MaxPendingConns on accepted connections. It is
// consulted by the stream pump before a goroutine is spent on a new connection, so a flood
// of connections costs a map update and a close each.
type connLimiter struct {
	maxPerIP   int // <= 0: no limit
	maxPending int // <= 0: no limit

	// mu guards perIP and pending.
	mu      sync.Mutex
	perIP   map[netip.Addr]int
	pending int
}

func newConnLimiter(maxPerIP, maxPending int) *connLimiter {
	return &connLimiter{maxPerIP: maxPerIP, maxPending: maxPending, perIP: make(map[netip.Addr]int)}
}

// admit counts a new accepted connection from c's remote address as open and pending, or
// returns nil and the reason when a limit is reached.
func (l *connLimiter) admit(c net.Conn) (*connSlot, string) {
	ip := remoteIP(c)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.maxPending > 0 && l.pending >= l.maxPending {
		return nil, "too many connections in their handshake (MaxPendingConns)"
	}
	if l.maxPerIP > 0 && l.perIP[ip] >= l.maxPerIP {
		return nil, "too many connections from one IP address (MaxConnsPerIP)"
	}
	l.pending++
	l.perIP[ip]++
	return &connSlot{l: l, ip: ip}, ""
}

// pendingConns and openConns report the counts (for tests and Stats).
func (l *connLimiter) counts() (pending, open int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, n := range l.perIP {
		open += n
	}
	return l.pending, open
}

func remoteIP(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// connSlot is one accepted connection's place in the limiter: pending until settle (its
// handshake is done or it went to memberlist), open until release. Both are idempotent.
type connSlot struct {
	l        *connLimiter
	ip       netip.Addr
	settled  atomic.Bool
	released atomic.Bool
}

// settle ends the pending phase.
func (s *connSlot) settle() {
	if s == nil || s.settled.Swap(true) {
		return
	}
	s.l.mu.Lock()
	s.l.pending--
	s.l.mu.Unlock()
}

// release frees the slot (and settles it if it was still pending).
func (s *connSlot) release() {
	if s == nil || s.released.Swap(true) {
		return
	}
	s.settle()
	s.l.mu.Lock()
	if n := s.l.perIP[s.ip] - 1; n > 0 {
		s.l.perIP[s.ip] = n
	} else {
		delete(s.l.perIP, s.ip)
	}
	s.l.mu.Unlock()
}

// byteBudget is a weighted semaphore of bytes (MaxReceiveBufferBytes): large frames being
// received take their buffer size from it. Waiters are served in order, so a large request
// is not starved by a stream of small ones.
type byteBudget struct {
	max int64
	// mu guards used and waiters.
	mu      sync.Mutex
	used    int64
	waiters []*budgetWaiter
	inUse   atomic.Int64 // mirror of used, for Stats
}

type budgetWaiter struct {
	n     int64
	ready chan struct{} // closed when the bytes were granted
}

func newByteBudget(max int) *byteBudget { return &byteBudget{max: int64(max)} }

// tryAcquire takes n bytes if they are free and nobody is waiting.
func (b *byteBudget) tryAcquire(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.waiters) == 0 && b.used+n <= b.max {
		b.used += n
		b.inUse.Store(b.used)
		return true
	}
	return false
}

// acquire takes n bytes (n <= max), waiting until they are free or ctx ends.
func (b *byteBudget) acquire(ctx context.Context, n int64) error {
	if b.tryAcquire(n) {
		return nil
	}
	b.mu.Lock()
	if len(b.waiters) == 0 && b.used+n <= b.max { // freed meanwhile
		b.used += n
		b.inUse.Store(b.used)
		b.mu.Unlock()
		return nil
	}
	w := &budgetWaiter{n: n, ready: make(chan struct{})}
	b.waiters = append(b.waiters, w)
	b.mu.Unlock()
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
	}
	b.mu.Lock()
	select {
	case <-w.ready: // granted while we were giving up: keep it
		b.mu.Unlock()
		return nil
	default:
	}
	for i, x := range b.waiters {
		if x == w {
			b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
			break
		}
	}
	if len(b.waiters) > 0 { // we may have been blocking the head
		b.grantLocked()
	}
	b.mu.Unlock()
	return ctx.Err()
}

// release returns n bytes and wakes the waiters they satisfy.
func (b *byteBudget) release(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	b.grantLocked()
	b.inUse.Store(b.used)
	b.mu.Unlock()
}

// grantLocked grants waiters in order while their bytes fit. b.mu must be held.
func (b *byteBudget) grantLocked() {
	for len(b.waiters) > 0 {
		w := b.waiters[0]
		if b.used+w.n > b.max {
			return
		}
		b.used += w.n
		b.waiters[0] = nil
		b.waiters = b.waiters[1:]
		close(w.ready)
	}
	b.inUse.Store(b.used)
}

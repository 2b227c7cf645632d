package transport

import (
	"context"
	"sync/atomic"
	"time"
)

// pendingTable maps request ids to waiting calls. An id carries a slot index in its low 32
// bits and a sequence number above, so a lookup is an index and a comparison rather than a
// hash, and a late response for a recycled slot never matches. Not safe for concurrent use:
// clientConn.mu guards it.
type pendingTable struct {
	slots []pendingSlot
	free  []uint32
	seq   uint64
}

type pendingSlot struct {
	id uint64 // 0 = empty
	c  *call
	// deadline is when the call expires, in the transport's monotonic clock
	// (see Transport.monoNow); 0 = none. The sweeper enforces it.
	deadline int64
}

const slotMask = 1<<32 - 1

func (p *pendingTable) add(c *call, deadline int64) uint64 {
	if len(p.free) == 0 {
		old := len(p.slots)
		n := max(2*old, 16)
		p.slots = append(p.slots, make([]pendingSlot, n-old)...)
		for s := n - 1; s >= old; s-- {
			p.free = append(p.free, uint32(s))
		}
	}
	s := p.free[len(p.free)-1]
	p.free = p.free[:len(p.free)-1]
	p.seq++
	id := p.seq<<32 | uint64(s)
	p.slots[s] = pendingSlot{id: id, c: c, deadline: deadline}
	return id
}

// len is the number of pending calls.
func (p *pendingTable) len() int { return len(p.slots) - len(p.free) }

// expire removes the calls whose deadline is at or before now and appends
// them and their ids to calls and ids; next is the earliest deadline among
// the calls that remain (0: none).
func (p *pendingTable) expire(now int64, calls []*call, ids []uint64) (_ []*call, _ []uint64, next int64) {
	for i := range p.slots {
		s := &p.slots[i]
		switch {
		case s.c == nil || s.deadline == 0:
		case s.deadline > now:
			next = earlier(next, s.deadline)
		default:
			ids = append(ids, s.id)
			calls = append(calls, s.c)
			*s = pendingSlot{}
			p.free = append(p.free, uint32(i))
		}
	}
	return calls, ids, next
}

// take removes and returns the call for id, or nil if it is not pending.
func (p *pendingTable) take(id uint64) *call {
	s := id & slotMask
	if s >= uint64(len(p.slots)) || p.slots[s].id != id || id == 0 {
		return nil
	}
	c := p.slots[s].c
	p.slots[s] = pendingSlot{}
	p.free = append(p.free, uint32(s))
	return c
}

// drain removes and returns every pending call.
func (p *pendingTable) drain() []*call {
	var out []*call
	for i := range p.slots {
		if p.slots[i].c != nil {
			out = append(out, p.slots[i].c)
		}
	}
	p.slots, p.free = nil, nil
	return out
}

// limiter bounds calls in flight to one peer. The fast path is one atomic add; callers that
// find it full wait for a release or their ctx.
type limiter struct {
	n       atomic.Int64
	max     int64
	waiters atomic.Int32
	freed   chan struct{} // capacity 1: "a slot may be free"
}

func newLimiter(max int) *limiter {
	return &limiter{max: int64(max), freed: make(chan struct{}, 1)}
}

func (l *limiter) tryAcquire() bool {
	if l.n.Add(1) <= l.max {
		return true
	}
	l.n.Add(-1)
	return false
}

// acquire takes a slot, waiting until ctx ends or the deadline (zero:
// none) passes.
func (l *limiter) acquire(ctx context.Context, deadline time.Time) error {
	if l.tryAcquire() {
		return nil
	}
	l.waiters.Add(1)
	defer l.waiters.Add(-1)
	var expired <-chan time.Time
	if !deadline.IsZero() {
		tm := time.NewTimer(time.Until(deadline)) // slow path only: the peer is saturated
		defer tm.Stop()
		expired = tm.C
	}
	for {
		// Registered as a waiter before retrying: a release either is seen here or signals us.
		if l.tryAcquire() {
			if l.waiters.Load() > 1 {
				l.signal() // several releases may have collapsed into one token: pass it on
			}
			return nil
		}
		select {
		case <-l.freed:
		case <-ctx.Done():
			return ctx.Err()
		case <-expired:
			return context.DeadlineExceeded
		}
	}
}

func (l *limiter) release() {
	l.n.Add(-1)
	if l.waiters.Load() > 0 {
		l.signal()
	}
}

func (l *limiter) signal() {
	select {
	case l.freed <- struct{}{}:
	default:
	}
}

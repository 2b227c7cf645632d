package transport

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// sweeper enforces call deadlines without a timer per call. Each pending
// call records its deadline in its slot of the connection's pending table;
// one goroutine per transport sleeps until the earliest deadline it knows
// of, then scans the tables, fails the calls past their deadline and
// sleeps until the earliest deadline that remains.
//
// Why not a timer per call: every wait would arm and stop a runtime timer,
// two trips through the P's timer heap lock, a visible share of a remote
// Get's CPU under many callers, for a deadline that almost never fires.
// Why not a scan at a fixed interval: a scan walks every connection to
// every peer, so its cost grows with the cluster while calls, whose
// deadlines are seconds away, almost never expire. Scanning at the
// earliest deadline costs one scan per read timeout under steady load and
// one atomic load per call.
type sweeper struct {
	epoch time.Time // the origin of deadlines in pending slots (monotonic)
	// next is the sweeper's next scan, on its clock; 0 means none planned.
	// Every pending call with a deadline d has next in (0, d], or arrived
	// after the scan in progress began and will set next itself.
	next atomic.Int64
	wake chan struct{} // capacity 1: next was lowered, plan again
}

func (s *sweeper) init() {
	s.epoch = time.Now()
	s.wake = make(chan struct{}, 1)
}

// mono converts a deadline to the sweeper's clock; never 0 (0 means none).
func (t *Transport) mono(deadline time.Time) int64 {
	return max(int64(deadline.Sub(t.sweep.epoch)), 1)
}

// planSweep is called after registering a call with deadline dl (on the
// sweeper's clock): it makes sure a scan is planned at or before dl. The
// call is in its table before next is read, and the sweeper clears next
// before it scans, so either that scan finds the call or this sees the
// cleared (or a later) value and plans a scan itself.
func (t *Transport) planSweep(dl int64) {
	if t.lowerNext(dl) {
		select {
		case t.sweep.wake <- struct{}{}:
		default:
		}
	}
}

// lowerNext sets next to dl unless a scan at or before dl is planned; it
// reports whether it changed next.
func (t *Transport) lowerNext(dl int64) bool {
	for {
		cur := t.sweep.next.Load()
		if cur != 0 && cur <= dl {
			return false
		}
		if t.sweep.next.CompareAndSwap(cur, dl) {
			return true
		}
	}
}

// sweepLoop runs until Shutdown.
func (t *Transport) sweepLoop() {
	tm := time.NewTimer(time.Hour)
	tm.Stop()
	defer tm.Stop()
	for {
		var fire <-chan time.Time
		if next := t.sweep.next.Load(); next != 0 {
			tm.Reset(time.Duration(next - t.mono(time.Now())))
			fire = tm.C
		}
		select {
		case <-fire:
		case <-t.sweep.wake:
			tm.Stop()
			continue
		case <-t.baseCtx.Done():
			return
		}
		t.sweep.next.Store(0)
		if next := t.expireCalls(); next != 0 {
			t.lowerNext(next)
		}
	}
}

// expireCalls fails every pending call past its deadline and returns the
// earliest deadline among the calls that remain (0: none).
func (t *Transport) expireCalls() int64 {
	m := t.peers.Load()
	if m == nil {
		return 0
	}
	now := t.mono(time.Now())
	var next int64
	for _, p := range *m {
		p.forEachConn(func(cc *clientConn) { next = earlier(next, cc.expire(now)) })
	}
	return next
}

// earlier returns the earlier of two deadlines, where 0 means none.
func earlier(a, b int64) int64 {
	if a == 0 || (b != 0 && b < a) {
		return b
	}
	return a
}

// expire fails the calls of cc whose deadline is at or before now (and
// tells the server to stop working on them); it returns the earliest
// deadline among the calls that remain (0: none).
func (cc *clientConn) expire(now int64) int64 {
	cc.mu.Lock()
	calls, ids, next := cc.pending.expire(now, nil, nil)
	cc.mu.Unlock()
	for i, c := range calls {
		cc.w.enqueue(frameHeader{typ: frameCancel, id: ids[i]}, nil)
		c.err = fmt.Errorf("transport: call %s: %w", cc.p.addr, context.DeadlineExceeded)
		c.ch <- struct{}{}
	}
	if len(calls) > 0 {
		cc.p.t.st.cancelled.Add(uint64(len(calls)))
	}
	return next
}

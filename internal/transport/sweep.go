package transport

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// sweepInterval is how often the sweeper looks for calls past their
// deadline while any call with a deadline is pending: a call fails at most
// about this long after its deadline.
const sweepInterval = time.Millisecond

// sweeper enforces call deadlines without a timer per call. Each pending
// call records its deadline in its slot of the connection's pending table;
// one goroutine per transport scans the tables every sweepInterval while
// calls with deadlines are pending, and sleeps otherwise.
//
// Why not a timer per call: every wait would arm and stop a runtime timer,
// two trips through the P's timer heap lock, a visible share of a remote
// Get's CPU under many callers, for a deadline that almost never fires. A scan per millisecond costs
// a lock and a walk of the in-flight slots of each connection.
type sweeper struct {
	epoch time.Time     // the origin of deadlines in pending slots (monotonic)
	idle  atomic.Bool   // the sweeper is waiting on wake; callers must wake it
	wake  chan struct{} // capacity 1
}

func (s *sweeper) init() {
	s.epoch = time.Now()
	s.idle.Store(true)
	s.wake = make(chan struct{}, 1)
}

// mono converts a deadline to the sweeper's clock; never 0 (0 means none).
func (t *Transport) mono(deadline time.Time) int64 {
	return max(int64(deadline.Sub(t.sweep.epoch)), 1)
}

// wakeSweeper is called after registering a call with a deadline. The call
// is in its table before idle is read, and the sweeper sets idle before its
// last scan, so either that scan finds the call or this sees idle and wakes it.
func (t *Transport) wakeSweeper() {
	if t.sweep.idle.Load() && t.sweep.idle.CompareAndSwap(true, false) {
		select {
		case t.sweep.wake <- struct{}{}:
		default:
		}
	}
}

// sweepLoop runs until Shutdown.
func (t *Transport) sweepLoop() {
	tm := time.NewTimer(sweepInterval)
	defer tm.Stop()
	for {
		select {
		case <-t.sweep.wake:
		case <-t.baseCtx.Done():
			return
		}
		for {
			tm.Reset(sweepInterval)
			select {
			case <-tm.C:
			case <-t.baseCtx.Done():
				return
			}
			if t.expireCalls() > 0 {
				continue
			}
			t.sweep.idle.Store(true)
			if t.expireCalls() == 0 || !t.sweep.idle.CompareAndSwap(true, false) {
				// Idle; or a caller has just woken us (its token is in wake).
				break
			}
		}
	}
}

// expireCalls fails every pending call past its deadline and returns how
// many calls with a deadline are still pending.
func (t *Transport) expireCalls() int {
	m := t.peers.Load()
	if m == nil {
		return 0
	}
	now := t.mono(time.Now())
	live := 0
	for _, p := range *m {
		p.forEachConn(func(cc *clientConn) { live += cc.expire(now) })
	}
	return live
}

// expire fails the calls of cc whose deadline is at or before now (and
// tells the server to stop working on them); it returns how many calls
// with a deadline remain.
func (cc *clientConn) expire(now int64) int {
	cc.mu.Lock()
	calls, ids, live := cc.pending.expire(now, nil, nil)
	cc.mu.Unlock()
	for i, c := range calls {
		cc.w.enqueue(frameHeader{typ: frameCancel, id: ids[i]}, nil)
		c.err = fmt.Errorf("transport: call %s: %w", cc.p.addr, context.DeadlineExceeded)
		c.ch <- struct{}{}
	}
	if len(calls) > 0 {
		cc.p.t.st.cancelled.Add(uint64(len(calls)))
	}
	return live
}

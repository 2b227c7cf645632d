package transport

import "time"

// Handlers run on worker goroutines that outlive their request for
// handlerIdle; the next request goes to one that is waiting, with the stack
// it grew (DESIGN.md says why). The pool has no size of its own: admission
// (MaxConcurrentRequests) bounds the handlers running, and a worker with
// nothing to do for handlerIdle exits, as do all at Shutdown.

// handlerIdle is how long a worker waits for another request before it
// exits.
const handlerIdle = time.Second

// startHandler serves rc on a waiting worker, or on a new one. It is called
// by a connection's reader, a goroutine the transport tracks (wg.Add is
// safe there).
func (t *Transport) startHandler(rc *reqCtx) {
	select {
	case t.idleWorkers <- rc:
	default:
		t.wg.Add(1)
		go t.handlerWorker(rc)
	}
}

// handlerWorker serves rc, then the requests handed to it while it waits,
// until it has waited handlerIdle or the transport shuts down.
func (t *Transport) handlerWorker(rc *reqCtx) {
	defer t.wg.Done()
	var idle *time.Timer
	for {
		rc.serve()
		if idle == nil {
			idle = time.NewTimer(handlerIdle)
		} else {
			idle.Reset(handlerIdle)
		}
		select {
		case rc = <-t.idleWorkers:
		case <-idle.C:
			return
		case <-t.baseCtx.Done():
			idle.Stop()
			return
		}
	}
}

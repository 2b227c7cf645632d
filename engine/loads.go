package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/distcache/distcache/cache"
)

// Loads run user code (DataSource.Fetch) that may ignore its context. So a
// load is abandoned, not waited for, once its context ends (its keyspace
// read timeout, or Stop): its waiters get the context's error at once, its
// key leaves the flight table (the next Get starts a fresh load), and
// whatever the fetch returns later is dropped. Stop waits for load
// goroutines only until its context ends, then reports how many it left
// behind: those goroutines are blocked in user code, which alone can end
// them.

// loadGrace is how long Stop waits for cancelled loads even when its
// context has already ended: a DataSource that honours its context returns
// within it, and is then not reported as abandoned.
const loadGrace = 100 * time.Millisecond

// loadTracker counts the load goroutines (guarded by Engine.spawnMu).
type loadTracker struct {
	running int
	idle    chan struct{} // made by Stop; closed once running is 0
}

// spawnLoad runs fn on a tracked load goroutine, unless Stop has begun.
func (e *Engine) spawnLoad(fn func()) bool {
	e.spawnMu.Lock()
	defer e.spawnMu.Unlock()
	if e.stopping {
		return false
	}
	e.loads.running++
	go func() {
		defer e.loadEnded()
		fn()
	}()
	return true
}

func (e *Engine) loadEnded() {
	e.spawnMu.Lock()
	defer e.spawnMu.Unlock()
	e.loads.running--
	if e.loads.running == 0 && e.loads.idle != nil {
		close(e.loads.idle)
		e.loads.idle = nil
	}
}

// stopLoadsLocked is called by Stop with spawnMu held, once stopping is
// set (no load starts any more). It returns a channel closed once no load goroutine runs.
func (e *Engine) stopLoadsLocked() <-chan struct{} {
	idle := make(chan struct{})
	if e.loads.running == 0 {
		close(idle)
	} else {
		e.loads.idle = idle
	}
	return idle
}

// awaitLoads waits for the load goroutines (their contexts are cancelled
// already) until ctx ends, and at least loadGrace; the error counts the
// loads left running.
func (e *Engine) awaitLoads(ctx context.Context, idle <-chan struct{}) error {
	grace := time.NewTimer(loadGrace)
	defer grace.Stop()
	select {
	case <-idle:
		return nil
	case <-grace.C:
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
	}
	e.spawnMu.Lock()
	n := e.loads.running
	e.spawnMu.Unlock()
	if n == 0 {
		return nil
	}
	e.log.Error("stop: abandoned loads whose DataSource ignores its cancelled context", "loads", n)
	return fmt.Errorf("%d loads abandoned: their DataSource.Fetch ignored its cancelled context and is still running", n)
}

// abandonLoad ends flight f of key when its load's context ends before the
// fetch returned: the waiters get err (or the stale value, as for a failed
// fetch) and the key is free for a fresh load. A load that finished first
// wins; see runLoad.
func (e *Engine) abandonLoad(st *ksState, key string, f *flight, stale *cache.Entry, err error) {
	s := st.loads.stripe(key)
	s.mu.Lock()
	if f.finished {
		s.mu.Unlock()
		return
	}
	f.finished, f.abandoned = true, true
	if s.flights[key] == f {
		delete(s.flights, key)
	}
	s.mu.Unlock()
	// (Debug: a DataSource that honours its context ends at this moment
	// too; Stop reports the loads still running at its end.)
	e.log.Debug("load abandoned: its context ended before DataSource.Fetch returned",
		"keyspace", st.name, "err", err)
	e.publish(st, f, stale, nil, err)
}

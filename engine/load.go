package engine

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/distcache/distcache/internal/cache"
	"github.com/distcache/distcache/internal/flight"
	"github.com/distcache/distcache/keyspace"
	"go.opentelemetry.io/otel/trace"
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
func (e *Engine) abandonLoad(st *ksState, key string, f *flight.Flight, stale *cache.Entry, err error) {
	l := st.loads.Lock(key)
	won := l.Abandon(f)
	l.Unlock()
	if !won {
		return
	}
	// (Debug: a DataSource that honours its context ends at this moment
	// too; Stop reports the loads still running at its end.)
	e.log.Debug("load abandoned: its context ended before DataSource.Fetch returned",
		"keyspace", st.name, "err", err)
	e.publish(st, f, stale, nil, err)
}

// load coalesces concurrent misses of key into one DataSource fetch that
// runs on an engine goroutine: every waiter returns when the fetch ends or
// its own ctx does, and one caller giving up does not cancel the fetch for
// the others.
//
// The same reasoning as groupcache's load: between our store miss and taking
// the stripe lock, another load or a Put may have filled the store, so we
// look again under the lock before starting a flight.
func (e *Engine) load(ctx context.Context, st *ksState, key string, stale *cache.Entry) ([]byte, error) {
	l := st.loads.Lock(key)
	f := l.Current()
	if f == nil {
		if ent, ok := e.peek(st, key); ok && ent.Fresh() {
			l.Unlock()
			if ent.Negative {
				return nil, keyspace.ErrNotFound
			}
			return ent.Value, nil
		}
		f = l.Lead(e.flushGen())
		l.Unlock()
		parent := e.obs.loadParent(ctx)
		if !e.spawnLoad(func() { e.runLoad(st, key, f, stale, parent) }) {
			l = st.loads.Lock(key)
			l.Unlink(f)
			l.Unlock()
			f.Publish(nil, ErrEngineStopped)
		}
	} else {
		l.Unlock()
		st.stats.fetchesCoalesced.Add(1)
	}
	select {
	case <-f.Done():
		return f.Result()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// runLoad fetches key and publishes the result to the flight's waiters,
// unless the load's context ended first and the flight was abandoned (see
// loads.go): its result is then dropped. The fetch's span goes under
// parent, the span of the caller that started the load.
func (e *Engine) runLoad(st *ksState, key string, f *flight.Flight, stale *cache.Entry, parent trace.SpanContext) {
	ctx, cancel := context.WithTimeout(e.base, st.settings.ReadTimeout)
	defer cancel()
	// Runs only if ctx ends while the fetch runs (stop is called before
	// cancel, which the defers run last).
	staleAtStart := stale
	stop := context.AfterFunc(ctx, func() { e.abandonLoad(st, key, f, staleAtStart, ctx.Err()) })
	defer stop()
	// A key this node is taking over is asked of its previous holders
	// first (takeover.go): no fetch, and no value older than theirs.
	val, exp, took, err := e.takeOver(ctx, st, key)
	if !took && err == nil {
		fctx, end := e.obs.startFetch(ctx, parent, st.name)
		val, err = e.fetch(fctx, st, key)
		end(err)
	}
	var ent cache.Entry
	store := false
	switch {
	case err == nil:
		if !took {
			if exp, err = e.expiry(ctx, st, key, time.Time{}); err != nil {
				val = nil
				break
			}
		}
		ent = cache.Entry{Value: val, ExpiresAt: exp}
		store = true
	case errors.Is(err, keyspace.ErrNotFound):
		if st.settings.NegativeTTL > 0 {
			ent = cache.Entry{Negative: true, ExpiresAt: time.Now().Add(st.settings.NegativeTTL)}
			store = true
		}
	}
	l := st.loads.Lock(key)
	if !l.Finish(f) {
		l.Unlock()
		return // abandoned: its waiters are gone, and its key may be loading afresh
	}
	switch {
	case l.Superseded(f):
		// A write replaced the key while this load ran. Its waiters began
		// before that write was applied, so the key's answer now is a
		// valid answer for them, and it must be the answer: the fetch may
		// have read a database value newer than that answer (writers
		// update the database before the cache, and a fetch may start
		// late), and handing that out while later Gets read the older one
		// would let reads go back in time.
		l.Unlock()
		val, stale, err = e.supersededAnswer(ctx, st, key, val, stale, err)
		e.publish(st, f, stale, val, err)
		return
	case store && f.Gen() == e.flushGen() && !e.cachingPaused() && e.ownsNow(key):
		// (A load that began before a flush decision may have read a value
		// replaced while this node was not listening: its waiters get it,
		// the store does not keep it. Nor does a node that is not the key's
		// owner keep what it loaded (a degraded load, or a peer's request
		// under another ring): the owner, which does not know of that copy,
		// would not invalidate it.)
		if serr := st.store.Set(key, ent); serr != nil {
			st.stats.rejected.Add(1)
		} else {
			if took && st.rep != nil {
				st.rep.store.Delete(key) // owned now: the copy it came from goes
			}
			e.fillReplicas(st, key, ent)
		}
	}
	l.Unlock()
	e.publish(st, f, stale, val, err)
}

// supersededAnswer is what a superseded load's waiters get (see runLoad):
// what the store holds now; else the result of the key's current load,
// which began after the write and may have read an older database value
// than this fetch did; else, with neither (the write was a Delete and no
// Get has come since), the fetched value val (or err): any later Get loads
// afresh, from a database at least as new.
func (e *Engine) supersededAnswer(ctx context.Context, st *ksState, key string, val []byte, stale *cache.Entry, err error) ([]byte, *cache.Entry, error) {
	for {
		l := st.loads.Lock(key)
		if cur, ok := e.peek(st, key); ok && cur.Fresh() {
			l.Unlock()
			if cur.Negative {
				return nil, nil, keyspace.ErrNotFound
			}
			return cur.Value, nil, nil
		}
		next := l.Current()
		l.Unlock()
		if next == nil {
			return val, stale, err
		}
		select {
		case <-next.Done():
		case <-ctx.Done():
			return nil, stale, ctx.Err()
		}
		if v, nerr := next.Result(); nerr == nil || errors.Is(nerr, keyspace.ErrNotFound) {
			return v, nil, nerr
		}
		// The next load failed (its waiters got no value): look again.
	}
}

// ownsNow reports whether this node's ring makes it key's owner.
func (e *Engine) ownsNow(key string) bool {
	return e.cl == nil || e.cl.Ring().Owner(key).Name == e.selfName
}

// publish hands a load's outcome to its waiters, falling back to the stale
// value a failed refetch may serve.
func (e *Engine) publish(st *ksState, f *flight.Flight, stale *cache.Entry, val []byte, err error) {
	if err != nil && stale != nil && serveStale(err) && time.Now().Before(stale.ExpiresAt.Add(st.settings.MaxStale)) {
		st.stats.staleServed.Add(1)
		e.log.Debug("serving stale value", "keyspace", st.name, "err", err)
		val, err = stale.Value, nil
	}
	f.Publish(val, err)
}

// serveStale reports whether a failed refetch may fall back to a stale
// value: DataSource failures and protections do, a definite "not found" and
// an engine shutdown do not.
func serveStale(err error) bool {
	return !errors.Is(err, keyspace.ErrNotFound) && !errors.Is(err, context.Canceled)
}

// fetch calls the DataSource under the keyspace protections, turning a panic
// into an error so that a faulty DataSource cannot take the node down.
func (e *Engine) fetch(ctx context.Context, st *ksState, key string) (val []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			e.log.Error("datasource panicked", "keyspace", st.name, "panic", r, "stack", string(debug.Stack()))
			val, err = nil, fmt.Errorf("distcache: datasource of keyspace %q panicked: %v", st.name, r)
		}
	}()
	st.stats.fetches.Add(1)
	start := time.Now()
	val, err = st.protect.fetch(ctx, st.ks.DataSource(), key, &st.settings)
	e.obs.fetched(ctx, st.name, time.Since(start), err)
	switch {
	case err == nil:
		if len(val) > e.cfg.MaxValueBytes {
			return nil, fmt.Errorf("%w: datasource returned %d bytes for %q, limit %d", ErrValueTooLarge, len(val), key, e.cfg.MaxValueBytes)
		}
		if val == nil {
			val = []byte{}
		}
	case errors.Is(err, ErrDataSourceRateLimited):
		st.stats.rateLimited.Add(1)
	case errors.Is(err, ErrDataSourceCircuitOpen):
		st.stats.circuitOpen.Add(1)
	case !errors.Is(err, keyspace.ErrNotFound):
		st.stats.fetchErrors.Add(1)
	}
	return val, err
}

// expiry resolves an entry's absolute expiry: the explicit one, else
// KeySpace.ExpiresAt, else now + the keyspace default TTL, else never.
// A panic in ExpiresAt (user code) is an error for this entry, logged with
// its stack: the value is then neither stored nor served, because caching
// it with another expiry than the user's code meant could serve it past
// its intended lifetime.
func (e *Engine) expiry(ctx context.Context, st *ksState, key string, explicit time.Time) (t time.Time, err error) {
	if !explicit.IsZero() {
		return explicit, nil
	}
	defer func() {
		if r := recover(); r != nil {
			e.log.Error("keyspace ExpiresAt panicked", "keyspace", st.name, "panic", r, "stack", string(debug.Stack()))
			t, err = time.Time{}, fmt.Errorf("distcache: ExpiresAt of keyspace %q panicked: %v", st.name, r)
		}
	}()
	if t := st.ks.ExpiresAt(ctx, key); !t.IsZero() {
		return t, nil
	}
	if st.settings.DefaultTTL > 0 {
		return time.Now().Add(st.settings.DefaultTTL), nil
	}
	return time.Time{}, nil
}

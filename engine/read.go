package engine

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/distcache/distcache/cache"
	"github.com/distcache/distcache/cluster"
	"github.com/distcache/distcache/internal/transport"
	"github.com/distcache/distcache/keyspace"
)

// Get returns the value of key in the named keyspace, loading it through the
// keyspace's DataSource on a miss (once per key cluster-wide, on the key's
// owner). A missing key gives an error for which errors.Is(err,
// keyspace.ErrNotFound) holds, on every node. The returned slice is the
// caller's own. The keyspace read timeout bounds the call.
func (e *Engine) Get(ctx context.Context, ks, key string) ([]byte, error) {
	return e.GetAppend(ctx, ks, key, nil)
}

// GetAppend is Get that appends the value to dst and returns the extended
// slice (like strconv.AppendInt): a caller that reuses its buffer pays no
// allocation on a local hit. With a nil dst it is exactly Get. On error dst
// is returned unchanged.
func (e *Engine) GetAppend(ctx context.Context, ks, key string, dst []byte) ([]byte, error) {
	if err := e.checkState(); err != nil {
		return dst, err
	}
	st, err := e.keyspace(ks)
	if err != nil {
		return dst, err
	}
	if err := e.checkKey(key); err != nil {
		return dst, err
	}
	e.recordAccess(st, key)
	// The ring lookup comes first (a hash and an index, lock-free): a node
	// never serves a key it does not own from its own store, and a non-owner
	// does not spend a store lookup (nor feed its admission counters) on a
	// key that lives elsewhere.
	ring := e.cl.Ring()
	owner := ring.Owner(key)
	self := owner.Name == e.selfName
	var (
		ent   cache.Entry
		found bool
	)
	if self {
		// Fast path: a fresh local entry needs no context, span, timer or
		// shared counter (the store counts hits on its reader slot).
		// e.lookup, spelled out: it does not inline, and this is the hot path.
		if e.storeTrusted() {
			ent, found = st.store.Get(key)
		} else {
			ent, found = lookupSinceFlush(st, key)
		}
		if found && ent.Fresh() {
			return st.hit(key, ent, dst)
		}
	} else {
		st.stats.remoteGets.Add(1)
		if st.near != nil {
			e.checkPause()
			if out, ok := nearGet(st, ring, e.flushGen(), key, dst); ok {
				return out, nil
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return dst, err // no fetch or forward for a caller that has gone
	}
	// The read timeout is a deadline passed down, not a context.WithTimeout:
	// a forwarded Get then costs no context, timer or Done channel of its own.
	deadline := time.Now().Add(st.settings.ReadTimeout)
	ctx, done := e.obs.start(ctx, "get", ks)
	var (
		val   []byte
		owned bool
	)
	if self {
		lctx, cancel := context.WithDeadline(ctx, deadline)
		val, err = e.load(lctx, st, key, st.staleCandidate(ent, found))
		cancel()
	} else {
		val, owned, err = e.forwardGet(ctx, deadline, st, key, owner, ring.Version())
	}
	done(err)
	if err != nil {
		return dst, err
	}
	if owned && dst == nil {
		return val, nil // a response buffer nobody else holds
	}
	return appendValue(dst, val), nil
}

// appendValue appends v to dst; a nil dst gets a fresh copy that is non-nil
// even for an empty value.
func appendValue(dst, v []byte) []byte {
	if dst == nil {
		return bytes.Clone(v)
	}
	return append(dst, v...)
}

// hit appends a fresh entry to dst (or returns ErrNotFound for a remembered
// miss).
func (st *ksState) hit(key string, ent cache.Entry, dst []byte) ([]byte, error) {
	if ent.Negative {
		st.stats.negativeHits.Add(1)
		return dst, fmt.Errorf("%w: %q (cached)", keyspace.ErrNotFound, key)
	}
	return appendValue(dst, ent.Value), nil
}

// getLocal is the owner's read path: store, then a coalesced load.
// The lookup is counted by the store (hits and misses).
func (e *Engine) getLocal(ctx context.Context, st *ksState, key string) ([]byte, error) {
	ent, ok := e.lookup(st, key, true)
	if ok && ent.Fresh() {
		if ent.Negative {
			st.stats.negativeHits.Add(1)
			return nil, keyspace.ErrNotFound
		}
		return ent.Value, nil
	}
	return e.load(ctx, st, key, st.staleCandidate(ent, ok))
}

// staleCandidate returns the expired entry a failed refetch may fall back
// to, when stale-on-error is on.
func (st *ksState) staleCandidate(ent cache.Entry, found bool) *cache.Entry {
	if found && !ent.Negative && st.settings.MaxStale > 0 {
		return &ent
	}
	return nil
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
	s := st.loads.stripe(key)
	s.mu.Lock()
	f := s.flights[key]
	if f == nil {
		if ent, ok := e.lookup(st, key, false); ok && ent.Fresh() {
			s.mu.Unlock()
			if ent.Negative {
				return nil, keyspace.ErrNotFound
			}
			return ent.Value, nil
		}
		f = &flight{done: make(chan struct{}), gen: e.flushGen()}
		s.flights[key] = f
		s.mu.Unlock()
		if !e.spawnLoad(func() { e.runLoad(st, key, f, stale) }) {
			s.mu.Lock()
			if s.flights[key] == f {
				delete(s.flights, key)
			}
			s.mu.Unlock()
			f.err = ErrEngineStopped
			close(f.done)
		}
	} else {
		s.mu.Unlock()
		st.stats.loadsDeduped.Add(1)
	}
	select {
	case <-f.done:
		return f.val, f.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// runLoad fetches key and publishes the result to the flight's waiters,
// unless the load's context ended first and the flight was abandoned (see
// loads.go): its result is then dropped.
func (e *Engine) runLoad(st *ksState, key string, f *flight, stale *cache.Entry) {
	ctx, cancel := context.WithTimeout(e.base, st.settings.ReadTimeout)
	defer cancel()
	// Runs only if ctx ends while the fetch runs (stop is called before
	// cancel, which the defers run last).
	staleAtStart := stale
	stop := context.AfterFunc(ctx, func() { e.abandonLoad(st, key, f, staleAtStart, ctx.Err()) })
	defer stop()
	val, err := e.fetch(ctx, st, key)
	var ent cache.Entry
	store := false
	switch {
	case err == nil:
		var exp time.Time
		if exp, err = e.expiry(ctx, st, key, time.Time{}); err != nil {
			val = nil
			break
		}
		ent = cache.Entry{Value: val, ExpiresAt: exp}
		store = true
	case errors.Is(err, keyspace.ErrNotFound):
		if st.settings.NegativeTTL > 0 {
			ent = cache.Entry{Negative: true, ExpiresAt: time.Now().Add(st.settings.NegativeTTL)}
			store = true
		}
	}
	s := st.loads.stripe(key)
	s.mu.Lock()
	if f.abandoned {
		s.mu.Unlock()
		return // its waiters are gone, and its key may be loading afresh
	}
	f.finished = true
	if s.flights[key] == f {
		delete(s.flights, key)
	}
	switch {
	case f.superseded:
		// A write replaced the key while this load ran. Its waiters began
		// before that write was applied, so what the store holds now is a
		// valid answer for them, and it must be the answer: the fetch may
		// have read a database value newer than the store's (writers update
		// the database before the cache), and handing that out while later
		// Gets read the store's older value would let reads go back in
		// time. With nothing stored (a Delete), the fetched value stands.
		if cur, ok := e.lookup(st, key, false); ok && cur.Fresh() {
			val, err, stale = cur.Value, nil, nil
			if cur.Negative {
				val, err = nil, keyspace.ErrNotFound
			}
		}
	case store && f.gen == e.flushGen() && !e.cachingPaused():
		// (A load that began before a flush decision may have read a value
		// replaced while this node was not listening: its waiters get it,
		// the store does not keep it.)
		if serr := st.store.Set(key, ent); serr != nil {
			st.stats.rejected.Add(1)
		}
	}
	s.mu.Unlock()
	e.publish(st, f, stale, val, err)
}

// publish hands a load's outcome to its waiters, falling back to the stale
// value a failed refetch may serve.
func (e *Engine) publish(st *ksState, f *flight, stale *cache.Entry, val []byte, err error) {
	if err != nil && stale != nil && serveStale(err) && time.Now().Before(stale.ExpiresAt.Add(st.settings.MaxStale)) {
		st.stats.staleServed.Add(1)
		e.log.Debug("serving stale value", "keyspace", st.name, "err", err)
		val, err = stale.Value, nil
	}
	f.val, f.err = val, err
	close(f.done)
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

// forwardGet asks the owner for key, coalescing concurrent callers on this
// node into one request. The owner serves it from its store or its own
// coalesced load and never forwards again (one hop, even when its ring
// disagrees). If the owner is unreachable, overloaded or shutting down, this
// node loads the key itself (degraded, counted). owned reports that val is
// the caller's alone (a response nobody else waited for), so Get need not
// copy it again.
func (e *Engine) forwardGet(ctx context.Context, deadline time.Time, st *ksState, key string, owner cluster.Member, ringVersion uint64) (val []byte, owned bool, err error) {
	s := st.forwards.stripe(key)
	s.mu.Lock()
	f := s.flights[key]
	if f == nil {
		f = &flight{done: make(chan struct{}), gen: e.flushGen()}
		s.flights[key] = f
		s.mu.Unlock()
		// The leader forwards under its own ctx; followers wait on the flight
		// or their own ctx (and retry if only the leader's ctx expired).
		var exp time.Time
		val, owned, exp, err = e.forwardOnce(ctx, deadline, st, key, owner)
		s.mu.Lock()
		if s.flights[key] == f {
			delete(s.flights, key)
		}
		if owned && st.near != nil && !f.superseded && f.gen == e.flushGen() && !e.cachingPaused() {
			nearPut(st, key, val, exp, ringVersion, f.gen)
		}
		// Followers join under the stripe lock, and none can join now.
		owned = owned && f.waiters.Load() == 0
		s.mu.Unlock()
		f.val, f.err = val, err
		close(f.done)
		return val, owned, err
	}
	f.waiters.Add(1)
	s.mu.Unlock()
	st.stats.forwardsDeduped.Add(1)
	// No timer: the leader returns by its deadline (the call and a degraded
	// load are both bounded by it), and a follower came later under the same
	// keyspace read timeout (fixed for the engine's life), so its deadline is
	// not earlier than the leader's. Followers of hot keys are the common
	// case under load; a pooled timer each cost ~10% of the 64-caller remote
	// Get benchmark.
	select {
	case <-f.done:
		if f.err != nil && ctx.Err() == nil && time.Now().Before(deadline) && isContextErr(f.err) {
			// The leader's own deadline expired; ours has not: try ourselves.
			val, owned, _, err = e.forwardOnce(ctx, deadline, st, key, owner)
			return val, owned, err
		}
		return f.val, false, f.err
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// forwardOnce sends one Get to owner. owned reports that val is a fresh
// response buffer from the owner (not shared with the cache, and not a
// degraded local load); exp is then the entry's expiry if a near cache asked
// for it.
func (e *Engine) forwardOnce(ctx context.Context, deadline time.Time, st *ksState, key string, owner cluster.Member) (val []byte, owned bool, exp time.Time, err error) {
	if e.missed.pending(owner.Name) {
		val, err = e.degradeBy(ctx, deadline, st, key, owner, errOwnerNotFlushed)
		return val, false, exp, err
	}
	st.stats.forwarded.Add(1)
	req := transport.Request{Op: opGet, Payload: encodeKeys(st.name, []string{key})}
	if st.near != nil {
		req.Flags = getFlagExpiry
	}
	resp, err := e.cl.Transport().CallDeadline(ctx, owner.Addr, req, deadline)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, false, exp, cerr
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, false, exp, err // our read timeout: no budget left to degrade
		}
		st.stats.forwardErrors.Add(1)
		val, err = e.degradeBy(ctx, deadline, st, key, owner, err)
		return val, false, exp, err
	}
	err = errorOf(owner.Name, resp.Status, resp.Payload)
	switch {
	case err == nil:
		val = resp.Payload
		if req.Flags&getFlagExpiry != 0 {
			if val, exp, err = splitExpiry(val); err != nil {
				return nil, false, exp, fmt.Errorf("distcache: get %q from %s: %w", key, owner.Name, err)
			}
		}
		if val == nil {
			val = []byte{} // an empty value is non-nil on every path
		}
		return val, true, exp, nil
	case errors.Is(err, ErrEngineStopped), errors.Is(err, ErrKeySpaceNotFound):
		// The owner is leaving, or lacks the keyspace (a rolling config
		// change): serve from here rather than fail.
		val, err = e.degradeBy(ctx, deadline, st, key, owner, err)
		return val, false, exp, err
	}
	return nil, false, exp, err
}

// degradeBy is degrade under a deadline; first, if the owner announced a
// graceful leave, it asks the key's next owner (see fromNextOwner).
func (e *Engine) degradeBy(ctx context.Context, deadline time.Time, st *ksState, key string, owner cluster.Member, cause error) ([]byte, error) {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	if e.leftGracefully(owner.Name) {
		if val, ok, err := e.fromNextOwner(ctx, st, key, owner); ok {
			return val, err
		}
	}
	return e.degrade(ctx, st, key, owner, cause)
}

// maxLeaveWait bounds how long a Get waits for the ring to move past an
// owner that is leaving gracefully.
const maxLeaveWait = 3 * time.Second

// fromNextOwner serves a Get whose owner is leaving gracefully and no
// longer answers: it waits (within ctx, at most maxLeaveWait) for this
// node's ring to move the key, then reads it on its new owner, which the
// leaver handed its entries to. Loading from the DataSource instead would
// answer with an older value than an acknowledged write the leaver held.
// ok is false when the ring did not move in time or the new owner failed
// too: the caller then degrades.
func (e *Engine) fromNextOwner(ctx context.Context, st *ksState, key string, leaver cluster.Member) (val []byte, ok bool, err error) {
	wait, cancel := context.WithTimeout(ctx, maxLeaveWait)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	next := e.cl.Ring().Owner(key)
	for next.Name == leaver.Name {
		select {
		case <-wait.Done():
			return nil, false, nil
		case <-tick.C:
		}
		next = e.cl.Ring().Owner(key)
	}
	if next.Name == e.selfName {
		val, err = e.load(ctx, st, key, nil)
		return val, true, err
	}
	resp, err := e.cl.Call(ctx, next, transport.Request{Op: opGet, Payload: encodeKeys(st.name, []string{key})})
	if err != nil {
		return nil, false, nil
	}
	if err := errorOf(next.Name, resp.Status, resp.Payload); err != nil {
		if errors.Is(err, ErrEngineStopped) || errors.Is(err, ErrKeySpaceNotFound) {
			return nil, false, nil
		}
		return nil, true, err
	}
	if resp.Payload == nil {
		return []byte{}, true, nil
	}
	return resp.Payload, true, nil
}

// degrade loads key on this node because its owner could not serve it.
func (e *Engine) degrade(ctx context.Context, st *ksState, key string, owner cluster.Member, cause error) ([]byte, error) {
	st.stats.degraded.Add(1)
	e.log.Debug("owner unavailable, loading locally", "keyspace", st.name, "peer", owner.Name, "err", cause)
	return e.load(ctx, st, key, nil)
}

// GetMany returns the values of keys: found keys are in the map, keys the
// DataSource does not have are absent, and every other failure is joined
// into the error, each naming its key (see KeyError); the map holds the
// successes even when the error is non-nil. Keys are grouped by owner: one
// request per remote owner, all owners in parallel.
func (e *Engine) GetMany(ctx context.Context, ks string, keys []string) (map[string][]byte, error) {
	if err := e.checkState(); err != nil {
		return nil, err
	}
	st, err := e.keyspace(ks)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if err := e.checkKey(k); err != nil {
			return nil, &KeyError{Key: k, Err: err}
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err // no fetch or forward for a caller that has gone
	}
	ctx, cancel := context.WithTimeout(ctx, st.settings.ReadTimeout)
	defer cancel()
	ctx, done := e.obs.start(ctx, "get_many", ks)
	out, err := e.getMany(ctx, st, keys)
	done(err)
	return out, err
}

type manyResult struct {
	mu   sync.Mutex
	vals map[string][]byte
	errs []error
}

// add records one key's outcome; shared values (from a store or a flight)
// are copied, owned ones (a peer's response buffer) are kept as they are.
func (r *manyResult) add(key string, val []byte, err error) { r.put(key, val, err, false) }

func (r *manyResult) put(key string, val []byte, err error, owned bool) {
	if err == nil && !owned {
		val = bytes.Clone(val)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case err == nil:
		r.vals[key] = val
	case errors.Is(err, keyspace.ErrNotFound):
	default:
		r.errs = append(r.errs, &KeyError{Key: key, Err: err})
	}
}

func (e *Engine) getMany(ctx context.Context, st *ksState, keys []string) (map[string][]byte, error) {
	keys = dedupe(keys)
	res := &manyResult{vals: make(map[string][]byte, len(keys))}
	ring := e.cl.Ring()
	groups := groupByOwner(ring, keys)
	self := e.cl.Self().Name
	var wg sync.WaitGroup
	for owner, group := range groups {
		if owner.Name == self {
			// Hits are answered inline; only misses get a goroutine each,
			// so that their loads run in parallel.
			for _, k := range group {
				ent, ok := e.lookup(st, k, true)
				if ok && ent.Fresh() {
					v, err := st.hit(k, ent, nil) // a copy
					res.put(k, v, err, true)
					continue
				}
				stale := st.staleCandidate(ent, ok)
				wg.Go(func() {
					v, err := e.load(ctx, st, k, stale)
					res.add(k, v, err)
				})
			}
			continue
		}
		st.stats.remoteGets.Add(int64(len(group)))
		if st.near != nil {
			e.checkPause()
			gen := e.flushGen()
			// Near copies answer here; the rest go to the owner. (GetMany
			// does not fill the near cache: its answers carry no expiry.)
			rest := group[:0:0]
			for _, k := range group {
				if v, ok := nearGet(st, ring, gen, k, nil); ok {
					res.put(k, v, nil, true)
				} else {
					rest = append(rest, k)
				}
			}
			if group = rest; len(group) == 0 {
				continue
			}
		}
		// Owners refuse requests of more than maxKeysPerRequest keys.
		for batch := range slices.Chunk(group, maxKeysPerRequest) {
			wg.Go(func() { e.forwardMany(ctx, st, owner, batch, res) })
		}
	}
	wg.Wait()
	return res.vals, errors.Join(res.errs...)
}

// forwardMany asks owner for keys, in as many requests as the owner needs
// to keep each answer within a frame (it omits what does not fit, see
// omitOverBudget); a failure to reach the owner degrades to local loads of
// the keys not yet answered, like Get.
func (e *Engine) forwardMany(ctx context.Context, st *ksState, owner cluster.Member, keys []string, res *manyResult) {
	var err error
	for len(keys) > 0 {
		var rest []string
		if rest, err = e.forwardManyOnce(ctx, st, owner, keys, res); err != nil {
			break
		}
		keys = rest
	}
	if err == nil {
		return
	}
	if ctx.Err() != nil || !degradable(err) {
		for _, k := range keys {
			res.add(k, nil, cmp.Or(ctx.Err(), err))
		}
		return
	}
	st.stats.forwardErrors.Add(1)
	var wg sync.WaitGroup
	for _, k := range keys {
		wg.Go(func() {
			v, err := e.degrade(ctx, st, k, owner, err)
			res.add(k, v, err)
		})
	}
	wg.Wait()
}

// forwardManyOnce sends one GetMany request and records the answers; it
// returns the keys the owner omitted, or the error that kept it from
// answering at all.
func (e *Engine) forwardManyOnce(ctx context.Context, st *ksState, owner cluster.Member, keys []string, res *manyResult) (omitted []string, err error) {
	if e.missed.pending(owner.Name) {
		return nil, errOwnerNotFlushed
	}
	st.stats.forwarded.Add(1)
	resp, err := e.cl.Call(ctx, owner, transport.Request{Op: opGetMany, Payload: encodeKeys(st.name, keys)})
	if err == nil {
		err = errorOf(owner.Name, resp.Status, resp.Payload)
	}
	if err != nil {
		return nil, err
	}
	rs, err := decodeResults(resp.Payload, len(keys))
	if err != nil {
		return nil, err
	}
	for i, r := range rs {
		if r.status == statusOmitted {
			omitted = append(omitted, keys[i])
			continue
		}
		val := r.data
		if val == nil {
			val = []byte{}
		}
		// Each value is a slice of this response's own buffer.
		res.put(keys[i], val, errorOf(owner.Name, r.status, r.data), true)
	}
	if len(omitted) == len(keys) {
		return nil, fmt.Errorf("distcache: get many from %s: answer omitted every key", owner.Name)
	}
	return omitted, nil
}

// errOwnerNotFlushed: the owner has yet to acknowledge a flush notice
// (missedPeers): it came back from a partition or pause, or missed an
// invalidation, and may still serve what it held before.
var errOwnerNotFlushed = errors.New("distcache: owner not yet flushed after missing writes")

// degradable reports failures to reach an owner, after which the caller
// loads locally; an answer that was too large, or malformed, is not one:
// loading locally then could return another value than the owner holds.
func degradable(err error) bool {
	return !errors.Is(err, transport.ErrFrameTooLarge) && !errors.Is(err, errBadPayload)
}

// groupByOwner splits keys by their owner in ring.
func groupByOwner(ring *cluster.Ring, keys []string) map[cluster.Member][]string {
	groups := map[cluster.Member][]string{}
	for _, k := range keys {
		o := ring.Owner(k)
		groups[o] = append(groups[o], k)
	}
	return groups
}

func dedupe(keys []string) []string {
	seen := make(map[string]struct{}, len(keys))
	out := keys[:0:0]
	for _, k := range keys {
		if _, ok := seen[k]; !ok {
			seen[k] = struct{}{}
			out = append(out, k)
		}
	}
	return out
}

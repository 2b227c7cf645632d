package engine

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/distcache/distcache/internal/cache"
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
			st.tel.uncountedLookups.Add(1)
			ent, found = lookupSinceFlush(st, key)
		}
		if found && ent.Fresh() {
			return st.hit(key, ent, dst)
		}
	} else {
		st.stats.remoteGets.Add(1)
		if st.near != nil {
			e.checkPause()
			if out, ok := e.nearGet(st, ring, e.flushGen(), key, dst, owner); ok {
				return out, nil
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return dst, err // no fetch or forward for a caller that has gone
	}
	// The read timeout is a deadline passed down, not a context.WithTimeout:
	// a forwarded Get then costs no context, timer or Done channel of its own.
	start := time.Now()
	deadline := start.Add(st.settings.ReadTimeout)
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
	st.tel.getLatency.record(time.Since(start))
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
	ent, ok := e.lookup(st, key)
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

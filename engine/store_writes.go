package engine

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/distcache/distcache/internal/cache"
)

// putLocal applies a Put on this node (the owner): it supersedes any
// in-flight load of the key and stores the value, both under the key's
// stripe lock (see internal/flight).
func (e *Engine) putLocal(ctx context.Context, st *ksState, en Entry) error {
	exp, err := e.expiry(ctx, st, en.Key, en.Expiry)
	if err != nil {
		// The value it replaces must not be served either: the write failed,
		// and the next Get loads afresh.
		e.deleteLocal(st, en.Key)
		return err
	}
	if !exp.IsZero() && !exp.After(time.Now()) {
		// Already expired: equivalent to a delete.
		e.deleteLocal(st, en.Key)
		return nil
	}
	val := bytes.Clone(en.Value)
	if val == nil {
		val = []byte{}
	}
	l := st.loads.Lock(en.Key)
	l.Supersede()
	err = st.store.Set(en.Key, cache.Entry{Value: val, ExpiresAt: exp})
	if errors.Is(err, cache.ErrRejected) {
		// The value it replaces must not be served either: the write failed,
		// and the next Get loads afresh.
		st.store.Delete(en.Key)
	}
	e.noteWrite(st, en.Key, writeNote{})
	l.Unlock()
	st.stats.puts.Add(1)
	switch {
	case errors.Is(err, cache.ErrRejected):
		st.stats.rejected.Add(1)
		return ErrRejected
	case errors.Is(err, cache.ErrClosed):
		return ErrEngineStopped
	}
	return err
}

// deleteLocal removes key on this node, its owner, and supersedes its
// in-flight load.
func (e *Engine) deleteLocal(st *ksState, key string) {
	e.removeWritten(st, []string{key}, writeNote{})
	st.stats.deletes.Add(1)
}

// removeWritten drops keys for a write (a delete here, or an owner's
// invalidation; n is its note): it supersedes each key's in-flight load,
// notes the write against stale hand-offs, and drops the key's near copy
// and supersedes its forward in flight (see dropNear), so a Get after the
// write cannot join a forward that may carry the old value. It returns once
// no near copy of the keys filled before can reappear (one settle for
// them all).
func (e *Engine) removeWritten(st *ksState, keys []string, n writeNote) {
	for _, key := range keys {
		l := st.loads.Lock(key)
		l.Supersede()
		st.store.Delete(key)
		e.noteWrite(st, key, n)
		l.Unlock()
		dropNear(st, key, n.ver, n.by != "")
	}
	if st.near != nil {
		st.near.Settle()
	}
}

// dropNotOwned drops key after the ring moved it elsewhere, superseding its
// in-flight load; nothing was written, so no note and the near copy (tagged
// with the ring it was fetched under) stays to the near purge.
func (e *Engine) dropNotOwned(st *ksState, key string) {
	l := st.loads.Lock(key)
	l.Supersede()
	st.store.Delete(key)
	l.Unlock()
}

// flushLocal is the partition flush of one key: it removes the entry only
// if it was stored before the flush decision (version <= upTo), so a write
// acknowledged since is kept.
func (e *Engine) flushLocal(st *ksState, key string, upTo uint64) {
	l := st.loads.Lock(key)
	if _, v, ok := st.store.PeekVersion(key); ok && v <= upTo {
		// Only the entry: a load in flight began after the flush decision
		// (earlier ones are not kept, see flight.Gen), so its value is
		// trusted.
		st.store.Delete(key)
	}
	l.Unlock()
}

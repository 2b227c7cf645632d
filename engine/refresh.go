package engine

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/distcache/distcache/internal/cache"
	"github.com/distcache/distcache/keyspace"
)

// Refresh-ahead (warmup.Config.RefreshInterval): every interval, each node
// refetches the hot keys it owns, so that hot keys never go cold and a row
// changed in the DataSource reaches every node within about one interval
// without a Put.
//
// Only a key's owner refreshes it (one fetch per hot key per interval for
// the whole cluster), and only keys it holds: a key its tracker counts at
// or above MinHits but that is not cached here is loaded by the next Get as
// usual. A remembered miss (a negative entry) is refreshed like a value,
// so that a row created in the DataSource reaches every node as a changed
// one does. A refresh is a load: it leads the key's flight (Gets that miss
// meanwhile join it instead of fetching), and goes through the keyspace's
// rate limiter and circuit breaker. Its outcome:
//
//   - the fetch failed: the current value stays (stale-on-error rules
//     apply when it expires);
//   - the DataSource no longer has the key (keyspace.ErrNotFound, which is
//     an answer, not a failure): the row was deleted, and the key is
//     deleted as the owner applies a Delete (below), unless a write came
//     first; the next Get loads it afresh (and caches the absence under
//     the negative TTL);
//   - a write or another store of the key happened meanwhile (the entry's
//     store version moved): that one wins;
//   - the same value, or still no row for a remembered miss: stored again
//     with a fresh expiry (the negative TTL for a miss), and sent to the
//     replicas;
//   - a new value: applied as the owner applies a write (claim, replicas,
//     invalidation of every copy, near copies included, then the store),
//     unless a write of the key came first; so refreshes keep writes
//     linearizable and no node keeps serving the old value.

// refreshLoop runs a refresh round every RefreshInterval.
func (w *warmer) refreshLoop() { every(w.ctx, w.cfg.RefreshInterval, w.refreshRound) }

// refreshRound refreshes the hot keys this node owns, at most Concurrency
// at a time.
func (w *warmer) refreshRound() {
	e := w.e
	if w.cfg.MaxHotKeys <= 0 || e.cachingPaused() {
		return
	}
	ring := e.cl.Ring()
	sem := make(chan struct{}, max(w.cfg.Concurrency, 1))
	var wg sync.WaitGroup
	defer wg.Wait()
	table := *e.keyspaces.Load()
	for name, tr := range w.trackers {
		st := table[name]
		if st == nil {
			continue
		}
		for _, hk := range tr.Hot(w.cfg.MaxHotKeys, w.cfg.MinHits) {
			if ring.Owner(hk.Key).Name != e.selfName {
				continue
			}
			select {
			case sem <- struct{}{}:
			case <-w.ctx.Done():
				return
			}
			key, c := hk.Key, w.counters[name]
			wg.Go(func() {
				defer func() { <-sem }()
				e.refreshKey(w.ctx, st, key, c)
			})
		}
	}
}

// refreshKey refetches one key this node owns and holds (see the file
// comment for what it then stores).
func (e *Engine) refreshKey(ctx context.Context, st *ksState, key string, c *warmCounters) {
	if !e.storeTrusted() {
		return
	}
	_, ver0, ok := st.store.PeekVersion(key)
	if !ok {
		return
	}
	l := st.loads.Lock(key)
	if l.Current() != nil {
		l.Unlock()
		return // being loaded already
	}
	f := l.Lead(e.flushGen())
	l.Unlock()
	c.refreshed.Add(1)
	fctx, cancel := context.WithTimeout(ctx, st.settings.ReadTimeout)
	val, err := e.fetch(fctx, st, key)
	cancel()
	gone := errors.Is(err, keyspace.ErrNotFound)

	l = st.loads.Lock(key)
	l.Finish(f) // a refresh is never abandoned: it has no AfterFunc
	cur, ver, held := st.store.PeekVersion(key)
	// Gets that joined the refresh get the key's answer now (see
	// supersededAnswer) whenever the refresh does not store what it read.
	current := func() ([]byte, error) {
		v, _, err := e.supersededAnswer(ctx, st, key, val, nil, err)
		return v, err
	}
	switch {
	case err != nil && !gone:
		c.refreshFailed.Add(1)
		fallthrough
	case l.Superseded(f) || !held || ver != ver0 || f.Gen() != e.flushGen():
		l.Unlock()
		f.Publish(current())
		return
	case gone && cur.Negative:
		// Still absent: the remembered miss lives another negative TTL.
		ent := cache.Entry{Negative: true, ExpiresAt: time.Now().Add(st.settings.NegativeTTL)}
		if st.store.Set(key, ent) == nil {
			e.fillReplicas(st, key, ent)
		}
		l.Unlock()
		f.Publish(nil, err)
		return
	case !gone && !cur.Negative && bytes.Equal(val, cur.Value):
		if exp, xerr := e.expiry(ctx, st, key, time.Time{}); xerr == nil {
			ent := cache.Entry{Value: val, ExpiresAt: exp}
			if st.store.Set(key, ent) == nil {
				e.fillReplicas(st, key, ent)
			}
		}
		l.Unlock()
		f.Publish(val, nil)
		return
	}
	l.Unlock()
	c.changed.Add(1)
	if e.applyRefresh(ctx, st, key, val, gone, ver0) {
		f.Publish(val, err)
		return
	}
	f.Publish(current())
}

// applyRefresh stores a changed value of key found by a refresh, or
// deletes the key when the DataSource no longer has it (gone), as the
// owner applies a write (see applyAsOwner), unless the entry changed since
// the refresh began (store version ver0): false when it did not apply it.
func (e *Engine) applyRefresh(ctx context.Context, st *ksState, key string, val []byte, gone bool, ver0 uint64) bool {
	ctx, cancel := context.WithTimeout(ctx, st.settings.WriteTimeout)
	defer cancel()
	release, err := st.pending.claim(ctx, []string{key})
	if err != nil {
		return false
	}
	defer release()
	if _, v, ok := st.store.PeekVersion(key); !ok || v != ver0 {
		return false // written meanwhile: that write wins
	}
	en, kind := []Entry{{Key: key, Value: val}}, writePut
	if gone {
		en, kind = []Entry{{Key: key}}, writeDelete
	}
	return e.applyClaimed(ctx, st, en, kind)[0] == nil
}

package engine

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
)

// pendingWrites holds, on a key's owner, the keys whose write is between
// "copies invalidated" and "applied" (see applyAsOwner). While a key is
// pending, peers' Gets of it wait for the write to be applied instead of
// reading the value it replaces: a copy refilled from that old value after
// the invalidation would outlive the write. Writes of one key are
// serialised by the same slot, so each owner applies a key's writes in one
// order (single-key writes that wait for it are combined, see writeRound).
type pendingWrites struct {
	// n counts pending keys: 0 (the common case) lets the serving path skip
	// the map and its lock.
	n    atomic.Int32
	mu   sync.Mutex
	keys map[string]chan struct{} // closed when the key's write is applied
	// next holds, per pending key, the round of single-key writes that
	// arrived meanwhile and will be applied as one (see writeRound).
	next map[string]*writeRound
}

// claim takes the slots of keys, waiting for earlier writes of the same
// keys to finish. Keys are claimed in sorted order so that two batches
// sharing keys cannot deadlock. On error (ctx ended) nothing stays claimed.
// release must be called exactly once after a nil error.
func (p *pendingWrites) claim(ctx context.Context, keys []string) (release func(), err error) {
	sorted := slices.Clone(keys)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	releases := make([]func(), 0, len(sorted))
	release = func() {
		for _, r := range releases {
			r()
		}
	}
	for _, k := range sorted {
		for {
			p.mu.Lock()
			p.initLocked()
			busy := p.keys[k]
			if busy == nil {
				releases = append(releases, p.takeLocked(k))
				p.mu.Unlock()
				break
			}
			p.mu.Unlock()
			select {
			case <-busy:
			case <-ctx.Done():
				release()
				return nil, ctx.Err()
			}
		}
	}
	return release, nil
}

// initLocked makes the maps on first use; the caller holds p.mu.
func (p *pendingWrites) initLocked() {
	if p.keys == nil {
		p.keys, p.next = map[string]chan struct{}{}, map[string]*writeRound{}
	}
}

// takeLocked claims the free key and returns its release; the caller holds
// p.mu.
func (p *pendingWrites) takeLocked(key string) (release func()) {
	ch := make(chan struct{})
	p.keys[key] = ch
	p.n.Add(1)
	return func() {
		p.mu.Lock()
		delete(p.keys, key)
		p.mu.Unlock()
		close(ch)
		p.n.Add(-1)
	}
}

// busy reports whether key has a write pending.
func (p *pendingWrites) busy(key string) bool {
	if p.n.Load() == 0 {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.keys[key] != nil
}

// wait returns once key has no write pending, or with ctx's error.
func (p *pendingWrites) wait(ctx context.Context, key string) error {
	for p.n.Load() != 0 {
		p.mu.Lock()
		ch := p.keys[key]
		p.mu.Unlock()
		if ch == nil {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

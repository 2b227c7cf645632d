package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/distcache/distcache/cache"
	"github.com/distcache/distcache/cluster"
	"github.com/distcache/distcache/cluster/transport"
)

// Entry is a key/value pair to Put. A zero Expiry means: KeySpace.ExpiresAt,
// then the keyspace default TTL, then no expiry. Expiry is absolute: nodes'
// clocks are assumed to agree to well within the TTLs used.
type Entry struct {
	Key    string
	Value  []byte
	Expiry time.Time
}

// Put stores entry on the key's owner and drops any copy other nodes hold.
// Once Put returns nil, every Get of the key anywhere in a healthy cluster
// returns the new value until it expires or is evicted, and no load that
// started earlier can overwrite it. The value is copied.
func (e *Engine) Put(ctx context.Context, ks string, entry Entry) error {
	return e.PutMany(ctx, ks, []Entry{entry})
}

// PutMany stores entries; entries are grouped by owner (one request per
// owner, in parallel). Failures are joined, each naming its key; entries
// without an error were stored. Later entries of a repeated key win.
func (e *Engine) PutMany(ctx context.Context, ks string, entries []Entry) error {
	if err := e.checkState(); err != nil {
		return err
	}
	st, err := e.keyspace(ks)
	if err != nil {
		return err
	}
	for _, en := range entries {
		if err := e.checkKey(en.Key); err != nil {
			return &KeyError{Key: en.Key, Err: err}
		}
		if len(en.Value) > e.cfg.MaxValueBytes {
			return &KeyError{Key: en.Key, Err: fmt.Errorf("%w: %d bytes, limit %d", ErrValueTooLarge, len(en.Value), e.cfg.MaxValueBytes)}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, st.settings.WriteTimeout)
	defer cancel()
	ctx, done := e.obs.start(ctx, "put", ks)
	err = e.putMany(ctx, st, lastWins(entries))
	done(err)
	return err
}

func lastWins(entries []Entry) []Entry {
	if len(entries) < 2 {
		return entries
	}
	idx := make(map[string]int, len(entries))
	out := make([]Entry, 0, len(entries))
	for _, en := range entries {
		if i, ok := idx[en.Key]; ok {
			out[i] = en
			continue
		}
		idx[en.Key] = len(out)
		out = append(out, en)
	}
	return out
}

// putMany writes entries to their owners. Entries whose owner is leaving
// or unreachable are retried once the ring has moved them to another owner
// (a graceful leave takes the ring about a gossip round), within the write
// deadline: a Put racing a node's departure lands on the new owner instead
// of failing.
func (e *Engine) putMany(ctx context.Context, st *ksState, entries []Entry) error {
	var errs []error
	written := map[cluster.Member][]Entry{} // every owner that was sent a write, all attempts
	for attempt := 0; ; attempt++ {
		groups, failed := e.putOnce(ctx, st, entries)
		for o, g := range groups {
			written[o] = append(written[o], g...)
		}
		var retry []Entry
		for _, en := range entries {
			if err, ok := failed[en.Key]; ok && retryablePut(err) && attempt < maxPutAttempts-1 {
				retry = append(retry, en)
			} else if ok {
				errs = append(errs, &KeyError{Key: en.Key, Err: err})
			}
		}
		if len(retry) == 0 {
			break
		}
		if !e.awaitNewOwners(ctx, retry, groups) {
			for _, en := range retry {
				errs = append(errs, &KeyError{Key: en.Key, Err: failed[en.Key]})
			}
			break
		}
		entries = retry
	}
	// Drop stale copies elsewhere (former owners, degraded loads): after the
	// owner has the new value, no other node may answer with an old one.
	keys := map[string]bool{}
	for _, g := range written {
		for _, en := range g {
			keys[en.Key] = true
		}
	}
	e.invalidateOthers(ctx, st, slices.Collect(maps.Keys(keys)), written)
	return errors.Join(errs...)
}

// maxPutAttempts bounds the retries of a Put whose owner left.
const maxPutAttempts = 3

// retryablePut reports failures that a new owner may not have: the owner
// is leaving, or could not be reached.
func retryablePut(err error) bool {
	return errors.Is(err, ErrPeerUnavailable) || errors.Is(err, ErrEngineStopped)
}

// awaitNewOwners waits until the ring gives every entry an owner other than
// the one that failed it, polling the lock-free ring snapshot; false when
// ctx ends first.
func (e *Engine) awaitNewOwners(ctx context.Context, entries []Entry, failedGroups map[cluster.Member][]Entry) bool {
	old := map[string]cluster.Member{}
	for o, g := range failedGroups {
		for _, en := range g {
			old[en.Key] = o
		}
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		ring := e.cl.Ring()
		moved := true
		for _, en := range entries {
			if ring.Owner(en.Key) == old[en.Key] {
				moved = false
				break
			}
		}
		if moved {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}

// putOnce sends entries to their current owners, one request per owner in
// parallel, and returns the grouping and the failures by key.
func (e *Engine) putOnce(ctx context.Context, st *ksState, entries []Entry) (map[cluster.Member][]Entry, map[string]error) {
	ring := e.cl.Ring()
	groups := map[cluster.Member][]Entry{}
	for _, en := range entries {
		o := ring.Owner(en.Key)
		groups[o] = append(groups[o], en)
	}
	var (
		mu     sync.Mutex
		failed = map[string]error{}
		wg     sync.WaitGroup
	)
	fail := func(key string, err error) {
		mu.Lock()
		failed[key] = err
		mu.Unlock()
	}
	self := e.cl.Self()
	put := func(owner cluster.Member, group []Entry) {
		if owner == self {
			for _, en := range group {
				if err := e.putLocal(ctx, st, en); err != nil {
					fail(en.Key, err)
				}
			}
			return
		}
		e.putRemote(ctx, st, owner, group, fail)
	}
	if len(groups) == 1 {
		// One owner (every single-key Put): no goroutine to wait for.
		for owner, group := range groups {
			put(owner, group)
		}
		return groups, failed
	}
	for owner, group := range groups {
		wg.Go(func() { put(owner, group) })
	}
	wg.Wait()
	return groups, failed
}

func (e *Engine) putRemote(ctx context.Context, st *ksState, owner cluster.Member, group []Entry, fail func(string, error)) {
	resp, err := e.cl.Call(ctx, owner, transport.Request{Op: opPut, Payload: encodePut(st.name, group)})
	if err == nil {
		err = errorOf(owner.Name, resp.Status, resp.Payload)
	}
	if err != nil {
		if !isContextErr(err) && ctx.Err() == nil && !isRemote(err) {
			err = fmt.Errorf("%w: %s: %w", ErrPeerUnavailable, owner.Name, err)
		}
		for _, en := range group {
			fail(en.Key, err)
		}
		return
	}
	rs, err := decodeResults(resp.Payload, len(group))
	if err != nil {
		for _, en := range group {
			fail(en.Key, err)
		}
		return
	}
	for i, r := range rs {
		if err := errorOf(owner.Name, r.status, r.data); err != nil {
			fail(group[i].Key, err)
		}
	}
}

// isRemote reports errors that came back from a peer as an answer, as
// opposed to a failure to reach it.
func isRemote(err error) bool {
	var re *RemoteError
	if errors.As(err, &re) {
		return true
	}
	for _, se := range statusErrors {
		if errors.Is(err, se.err) {
			return true
		}
	}
	return false
}

// putLocal applies a Put on this node (the owner): it supersedes any
// in-flight load of the key and stores the value, both under the key's
// stripe lock (see flightTable).
func (e *Engine) putLocal(ctx context.Context, st *ksState, en Entry) error {
	exp := e.expiry(ctx, st, en.Key, en.Expiry)
	if !exp.IsZero() && !exp.After(time.Now()) {
		// Already expired: equivalent to a delete.
		e.deleteLocal(st, en.Key)
		return nil
	}
	val := bytes.Clone(en.Value)
	if val == nil {
		val = []byte{}
	}
	s := st.loads.stripe(en.Key)
	s.mu.Lock()
	if f := s.flights[en.Key]; f != nil {
		f.superseded = true
		delete(s.flights, en.Key)
	}
	err := st.store.Set(en.Key, cache.Entry{Value: val, ExpiresAt: exp})
	e.noteWrite(st, en.Key)
	s.mu.Unlock()
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

// deleteLocal removes key on this node and supersedes its in-flight load.
func (e *Engine) deleteLocal(st *ksState, key string) {
	e.removeLocal(st, key, true)
	st.stats.deletes.Add(1)
}

// removeLocal drops key and supersedes its in-flight load; a delete that
// is a write (not an ownership purge) is noted against stale hand-offs, and
// also drops the key's near copy and supersedes its forward in flight (see
// dropNear): a Get after the write must not join a forward that may carry
// the old value.
func (e *Engine) removeLocal(st *ksState, key string, write bool) {
	s := st.loads.stripe(key)
	s.mu.Lock()
	removeLocked(st, s, key)
	if write {
		e.noteWrite(st, key)
	}
	s.mu.Unlock()
	if write {
		dropNear(st, key)
	}
}

// flushLocal is the partition flush of one key: it removes the entry only
// if it was stored before the flush decision (version <= upTo), so a write
// acknowledged since is kept.
func (e *Engine) flushLocal(st *ksState, key string, upTo uint64) {
	s := st.loads.stripe(key)
	s.mu.Lock()
	if _, v, ok := st.store.PeekVersion(key); ok && v <= upTo {
		removeLocked(st, s, key)
	}
	s.mu.Unlock()
}

// removeLocked supersedes key's in-flight load and deletes its entry; the
// caller holds the key's load stripe lock s.
func removeLocked(st *ksState, s *flightStripe, key string) {
	if f := s.flights[key]; f != nil {
		f.superseded = true
		delete(s.flights, key)
	}
	st.store.Delete(key)
}

// Delete removes key from every node: its owner and any node holding a
// copy. After it returns nil, no Get in a healthy cluster returns the old
// value (a later Get loads afresh).
func (e *Engine) Delete(ctx context.Context, ks, key string) error {
	return e.DeleteMany(ctx, ks, []string{key})
}

// DeleteMany removes keys from every node, with one request per member in
// parallel. The owners must acknowledge; failures are joined, each naming
// its key. Unreachable non-owners are skipped (a node that cannot be reached
// is not serving reads either; a node rejoining starts without the keys'
// ownership changes racing it, see DESIGN.md).
func (e *Engine) DeleteMany(ctx context.Context, ks string, keys []string) error {
	if err := e.checkState(); err != nil {
		return err
	}
	st, err := e.keyspace(ks)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := e.checkKey(k); err != nil {
			return &KeyError{Key: k, Err: err}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, st.settings.WriteTimeout)
	defer cancel()
	ctx, done := e.obs.start(ctx, "delete", ks)
	keys = dedupe(keys)
	err = e.deleteEverywhere(ctx, st, keys)
	done(err)
	return err
}

// deleteEverywhere deletes keys locally and on every other member; errors
// from a key's owner are reported, others only logged.
func (e *Engine) deleteEverywhere(ctx context.Context, st *ksState, keys []string) error {
	for _, k := range keys {
		e.deleteLocal(st, k)
	}
	ring := e.cl.Ring()
	self := e.cl.Self()
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	payload := encodeKeys(st.name, keys)
	for _, m := range ring.Members() {
		if m == self {
			continue
		}
		wg.Go(func() {
			err := e.call(ctx, m, opDelete, payload)
			if err == nil || errors.Is(err, ErrKeySpaceNotFound) {
				return
			}
			owned := false
			for _, k := range keys {
				if ring.Owner(k) == m {
					owned = true
					mu.Lock()
					errs = append(errs, &KeyError{Key: k, Err: fmt.Errorf("%w: owner %s: %w", ErrPeerUnavailable, m.Name, err)})
					mu.Unlock()
				}
			}
			if !owned {
				e.log.Warn("delete: could not reach non-owner", "peer", m.Name, "err", err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// invalidateOthers drops keys on every member other than the owners in
// groups (which were just written) and this node... unless this node is not
// an owner, in which case its own copies go too.
func (e *Engine) invalidateOthers(ctx context.Context, st *ksState, keys []string, groups map[cluster.Member][]Entry) {
	self := e.cl.Self()
	byOwner := map[cluster.Member]map[string]bool{}
	for o, g := range groups {
		set := map[string]bool{}
		for _, en := range g {
			set[en.Key] = true
		}
		byOwner[o] = set
	}
	var wg sync.WaitGroup
	for _, m := range e.cl.Ring().Members() {
		var drop []string
		for _, k := range keys {
			if !byOwner[m][k] {
				drop = append(drop, k)
			}
		}
		if len(drop) == 0 {
			continue
		}
		if m == self {
			for _, k := range drop {
				e.deleteLocal(st, k)
			}
			continue
		}
		wg.Go(func() {
			if err := e.call(ctx, m, opDelete, encodeKeys(st.name, drop)); err != nil && !errors.Is(err, ErrKeySpaceNotFound) {
				e.log.Warn("put: could not invalidate copies on peer", "peer", m.Name, "err", err)
			}
		})
	}
	wg.Wait()
}

// call sends one request and turns the answer's status into an error.
func (e *Engine) call(ctx context.Context, m cluster.Member, op uint8, payload []byte) error {
	resp, err := e.cl.Call(ctx, m, transport.Request{Op: op, Payload: payload})
	if err != nil {
		return err
	}
	return errorOf(m.Name, resp.Status, resp.Payload)
}

package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/distcache/distcache/cluster"
)

// Entry is a key/value pair to Put. A zero Expiry means: KeySpace.ExpiresAt,
// then the keyspace default TTL, then no expiry. Expiry is absolute: nodes'
// clocks are assumed to agree to well within the TTLs used.
type Entry struct {
	Key    string
	Value  []byte
	Expiry time.Time
}

// Put stores entry on the key's owner and drops every copy other nodes
// hold. Once Put returns nil, every Get of the key anywhere in a healthy
// cluster returns the new value until it expires or is evicted, and no load
// that started earlier can overwrite it. The value is copied; a nil or empty
// value is stored as an empty one. An Expiry already past makes Put a Delete.
// With a ctx that is already done nothing is written; a ctx that ends during
// the call makes it return ctx's error, and the write may or may not have
// been applied (see the package doc, "Writes").
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
	st.tel.calls[callPut].Add(1)
	if err := ctx.Err(); err != nil {
		return err // not attempted
	}
	ctx, cancel := context.WithTimeout(ctx, st.settings.WriteTimeout)
	defer cancel()
	ctx, done := e.obs.start(ctx, "put", ks)
	err = e.writeMany(ctx, st, lastWins(entries), writePut)
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

// Delete removes key from every node: its owner and any node holding a
// copy. After it returns nil, no Get in a healthy cluster returns the old
// value (a later Get loads afresh). ctx is treated as by Put.
func (e *Engine) Delete(ctx context.Context, ks, key string) error {
	return e.DeleteMany(ctx, ks, []string{key})
}

// DeleteMany removes keys from every node, grouped by owner (one request
// per owner, in parallel). Failures are joined, each naming its key.
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
	st.tel.calls[callDelete].Add(1)
	if err := ctx.Err(); err != nil {
		return err // not attempted
	}
	ctx, cancel := context.WithTimeout(ctx, st.settings.WriteTimeout)
	defer cancel()
	ctx, done := e.obs.start(ctx, "delete", ks)
	keys = dedupe(keys)
	dels := make([]Entry, len(keys))
	for i, k := range keys {
		dels[i].Key = k
	}
	err = e.writeMany(ctx, st, dels, writeDelete)
	done(err)
	return err
}

// writeMany sends each owner its share of a batch of puts or deletes
// (kind) and waits for every answer. Entries whose owner is
// leaving or unreachable are retried once the ring has moved them to
// another owner (a graceful leave takes the ring about a gossip round),
// within the write deadline: a write racing a node's departure lands on the
// new owner instead of failing.
func (e *Engine) writeMany(ctx context.Context, st *ksState, entries []Entry, kind writeKind) error {
	var errs []error
	for attempt := 0; ; attempt++ {
		groups, failed := e.writeOnce(ctx, st, entries, kind)
		var retry []Entry
		for _, en := range entries {
			if err, ok := failed[en.Key]; ok && retryableWrite(err) && attempt < maxWriteAttempts-1 {
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
	return errors.Join(errs...)
}

// maxWriteAttempts bounds the retries of a write whose owner left.
const maxWriteAttempts = 3

// retryableWrite reports failures that a new owner may not have: the owner
// is leaving, or could not be reached.
func retryableWrite(err error) bool {
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

// writeOnce sends entries to their current owners, one request per owner
// in parallel, and returns the grouping and the failures by key (both nil
// when a single write succeeds).
func (e *Engine) writeOnce(ctx context.Context, st *ksState, entries []Entry, kind writeKind) (map[cluster.Member][]Entry, map[string]error) {
	ring := e.cl.Ring()
	if len(entries) == 1 {
		// Every Put and Delete: one owner, and no map or goroutine.
		owner := ring.Owner(entries[0].Key)
		var err error
		if owner.Name == e.selfName {
			err = e.applyAsOwner(ctx, st, entries, kind)[0]
		} else {
			e.writeRemote(ctx, st, owner, entries, kind, func(_ string, ferr error) { err = ferr })
		}
		if err == nil {
			return nil, nil
		}
		return map[cluster.Member][]Entry{owner: entries}, map[string]error{entries[0].Key: err}
	}
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
	write := func(owner cluster.Member, group []Entry) {
		if owner.Name == e.selfName {
			for i, err := range e.applyAsOwner(ctx, st, group, kind) {
				if err != nil {
					fail(group[i].Key, err)
				}
			}
			return
		}
		e.writeRemote(ctx, st, owner, group, kind, fail)
	}
	if len(groups) == 1 {
		// One owner: no goroutine to wait for.
		for owner, group := range groups {
			if len(group) <= maxKeysPerRequest {
				write(owner, group)
				return groups, failed
			}
		}
	}
	// A peer refuses requests of more than maxKeysPerRequest keys, and an
	// owner's invalidations carry its batch's keys: larger groups go in
	// several batches.
	for owner, group := range groups {
		for batch := range slices.Chunk(group, maxKeysPerRequest) {
			wg.Go(func() { write(owner, batch) })
		}
	}
	wg.Wait()
	return groups, failed
}

// writeRemote sends one owner its group (opPut or opDelete) and reports
// each key's outcome through fail.
func (e *Engine) writeRemote(ctx context.Context, st *ksState, owner cluster.Member, group []Entry, kind writeKind, fail func(string, error)) {
	deadline, _ := ctx.Deadline() // always set: PutMany and DeleteMany bound every write
	rs, err := e.peers.write(ctx, owner, st.name, group, kind, deadline)
	if err != nil {
		if !isContextErr(err) && ctx.Err() == nil && !isRemote(err) {
			err = fmt.Errorf("%w: %s: %w", ErrPeerUnavailable, owner.Name, err)
		}
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

func keysOf(entries []Entry) []string {
	keys := make([]string, len(entries))
	for i, en := range entries {
		keys[i] = en.Key
	}
	return keys
}

// applyAsOwner applies a batch of writes on this node, the keys' owner (or
// the node the writer took for it: a forwarded write is never forwarded
// again). The order makes the write linearizable with every Get:
//
//  1. claim the keys' pending slots: from now on peers' Gets of them wait
//     (pendingWrites) instead of reading the value being replaced (a
//     write of one key that finds its slot taken joins the key's next
//     round instead, see writeRound);
//  2. invalidate every copy on the other nodes that may hold one (the
//     holders it recorded, see copyHolders; opInvalidate: main-store
//     copies, near copies, and forwards in flight there, whose answers may
//     predate the write);
//  3. apply the write here (superseding any load in flight);
//  4. release the slots.
//
// No node can see the new value before step 3, and after step 2 no node
// holds, or can refill, a copy of the old one; so once any Get has returned
// the new value, every later Get does too. A member that cannot be reached
// in step 2 is recorded and told to flush before it is trusted again (see
// missedInvalidation); if ctx ends before step 3, nothing is applied and
// every key reports ctx's error.
func (e *Engine) applyAsOwner(ctx context.Context, st *ksState, entries []Entry, kind writeKind) []error {
	if e.cachingPaused() {
		return sameErr(len(entries), fmt.Errorf("%w: this node cannot reach half of the cluster; writes are refused until it can", ErrClusterQuorum))
	}
	if len(entries) == 1 {
		return []error{e.applyOneAsOwner(ctx, st, entries[0], kind)}
	}
	release, err := st.pending.claim(ctx, keysOf(entries))
	if err != nil {
		return sameErr(len(entries), err)
	}
	defer release()
	return e.applyClaimed(ctx, st, entries, kind)
}

// applyClaimed is applyAsOwner's steps 2 and 3, for keys whose pending
// slots the caller holds.
func (e *Engine) applyClaimed(ctx context.Context, st *ksState, entries []Entry, kind writeKind) []error {
	keys := keysOf(entries)
	// With replicas, the write itself goes to them meanwhile (replicas.go).
	rep := e.replicateWrite(ctx, st, entries, kind)
	reached, err := e.invalidateCopies(ctx, st, keys)
	rep.wait(err == nil)
	if err != nil {
		return sameErr(len(entries), err)
	}
	errs := make([]error, len(entries))
	for i, en := range entries {
		if kind == writeDelete {
			e.deleteLocal(st, en.Key)
		} else {
			errs[i] = e.putLocal(ctx, st, en)
		}
	}
	if kind == writePut && len(entries) == 1 && errs[0] == nil {
		e.pushWritten(st, keys[0], reached)
	}
	if ring := e.cl.Ring(); kind == writePut && !e.ownsAll(ring, keys) {
		e.handoffWritten(ctx, st, ring, keys)
	}
	return errs
}

// sameErr is the outcome of a batch of n writes that all failed with err.
func sameErr(n int, err error) []error {
	errs := make([]error, n)
	for i := range errs {
		errs[i] = err
	}
	return errs
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

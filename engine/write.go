package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/distcache/distcache/cluster"
	"github.com/distcache/distcache/internal/cache"
	"github.com/distcache/distcache/internal/membership"
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
// in parallel, and returns the grouping and the failures by key.
func (e *Engine) writeOnce(ctx context.Context, st *ksState, entries []Entry, kind writeKind) (map[cluster.Member][]Entry, map[string]error) {
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
		// One owner (every single-key write): no goroutine to wait for.
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
//     (pendingWrites) instead of reading the value being replaced;
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
	errs := make([]error, len(entries))
	fillAll := func(err error) []error {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	if e.cachingPaused() {
		return fillAll(fmt.Errorf("%w: this node cannot reach half of the cluster; writes are refused until it can", ErrClusterQuorum))
	}
	keys := keysOf(entries)
	release, err := st.pending.claim(ctx, keys)
	if err != nil {
		return fillAll(err)
	}
	defer release()
	// With replicas, the write itself goes to them meanwhile (replicas.go).
	rep := e.replicateWrite(ctx, st, entries, kind)
	err = e.invalidateCopies(ctx, st, keys)
	rep.wait(err == nil)
	if err != nil {
		return fillAll(err)
	}
	for i, en := range entries {
		if kind == writeDelete {
			e.deleteLocal(st, en.Key)
		} else {
			errs[i] = e.putLocal(ctx, st, en)
		}
	}
	return errs
}

// invalidateCopies drops keys' copies on the other nodes that may hold one
// (copyHolders), in parallel, and returns ctx's error if ctx ended before
// every one answered. Members that fail otherwise (unreachable, leaving) are
// recorded by missedInvalidation; a member without the keyspace holds no
// copy.
func (e *Engine) invalidateCopies(ctx context.Context, st *ksState, keys []string) error {
	var (
		wg      sync.WaitGroup
		payload []byte
	)
	for _, t := range e.copyHolders(st, keys) {
		if payload == nil {
			// Our store version now: the write will be stored above it, so
			// a receiver refuses our hand-offs of older entries.
			payload = encodeInvalidate(st.name, e.selfName, st.store.Version(), keys)
		}
		st.stats.invalidationsSent.Add(1)
		m := t.Member
		wg.Go(func() {
			ctx := ctx
			if t.departed {
				// Most likely gone for good: a short try, then a flush
				// notice should it come back.
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, departedCallTimeout)
				defer cancel()
			}
			err := e.peers.invalidate(ctx, m, payload)
			if err != nil && !errors.Is(err, ErrKeySpaceNotFound) && (ctx.Err() == nil || t.departed) {
				e.missedInvalidation(m, err)
			}
		})
	}
	wg.Wait()
	return ctx.Err()
}

// copyHolders returns the other nodes a write of keys must invalidate: the
// holders this node recorded for the keys (holders.go), whose records it
// takes. It returns every member of the ring and of gossip too while a Get
// was answered without a record (the table was full) or while this node's
// view of the cluster is not settled (see settled). A recorded holder that
// left the ring is still tried (a member declared failed may be alive: a
// flapping member keeps serving its copies), and one this node never knew
// the address of is told to flush if it comes back.
func (e *Engine) copyHolders(st *ksState, keys []string) []invalidationTarget {
	var names []string
	for _, k := range keys {
		names = st.holders.take(k, names)
	}
	ring := e.cl.Ring()
	gossip := e.cl.Members()
	var targets []invalidationTarget
	add := func(m cluster.Member, departed bool) {
		if m.Name != e.selfName && !slices.ContainsFunc(targets, func(t invalidationTarget) bool { return t.Name == m.Name }) {
			targets = append(targets, invalidationTarget{m, departed})
		}
	}
	if st.holders.broadcasting() || !e.settled(ring, gossip) {
		// The ring's members and every member gossip knows of: around a
		// partition's heal a member can hold copies before this node's ring
		// (rebuilt after a debounce, or an admission probe) has it again.
		for _, m := range ring.Members() {
			add(m, false)
		}
		for _, m := range gossip {
			add(m, false)
		}
	}
	for _, name := range names {
		if m, ok := ring.Member(name); ok {
			add(m, false)
		} else if i := slices.IndexFunc(gossip, func(g cluster.Member) bool { return g.Name == name }); i >= 0 {
			add(gossip[i], false)
		} else if m, ok := e.departedMember(name); ok {
			add(m, true)
		} else if name != e.selfName {
			e.missed.add(name)
		}
	}
	return targets
}

// invalidationTarget is a node a write invalidates; departed: it has left
// this node's ring.
type invalidationTarget struct {
	cluster.Member
	departed bool
}

// departedCallTimeout bounds an invalidation sent to a member that left the
// ring: a write does not wait long for a node that is most likely gone.
const departedCallTimeout = 250 * time.Millisecond

// departedMax bounds the departed members remembered.
const departedMax = 4096

// noteDeparted remembers the members of prev that next lacks.
func (e *Engine) noteDeparted(prev, next *membership.Ring) {
	e.departedMu.Lock()
	defer e.departedMu.Unlock()
	for _, m := range prev.Members() {
		if next.Contains(m.Name) {
			continue
		}
		if e.departed == nil || len(e.departed) >= departedMax {
			e.departed = map[string]cluster.Member{}
		}
		e.departed[m.Name] = m
	}
}

// departedMember returns the member called name that left the ring.
func (e *Engine) departedMember(name string) (cluster.Member, bool) {
	e.departedMu.Lock()
	defer e.departedMu.Unlock()
	m, ok := e.departed[name]
	return m, ok
}

// settleWindow is how long after its ring changes a node's writes still
// invalidate every member: other members may move to the same ring a
// little earlier or later, and meanwhile disagree on a key's owner (so a
// node may hold a copy its writer's owner never recorded). It is also the
// hand-off window, in which receivers guard against stale hand-offs by the
// writes they were told of.
const settleWindow = handoffWindow

// settled reports whether this node's view of the cluster has been stable
// for settleWindow: its ring has not changed (nor has a peer announced a
// graceful leave), gossip knows exactly the ring's members (a join or a
// failure not in the ring yet means other members may have rebuilt theirs
// already), and this node is not stopping.
func (e *Engine) settled(ring *membership.Ring, gossip []cluster.Member) bool {
	if time.Since(time.Unix(0, e.ringChangedAt.Load())) < time.Duration(e.settle.Load()) || e.state.Load() >= stateStopping {
		return false
	}
	if len(gossip) != ring.Len() {
		return false
	}
	for _, m := range gossip {
		if !ring.Contains(m.Name) {
			return false
		}
	}
	return true
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
	e.removeWritten(st, key, writeNote{})
	st.stats.deletes.Add(1)
}

// removeWritten drops key for a write (a delete here, or an owner's
// invalidation; n is its note): it supersedes the key's in-flight load, notes
// the write against stale hand-offs, and drops the key's near copy and
// supersedes its forward in flight (see dropNear), so a Get after the write
// cannot join a forward that may carry the old value.
func (e *Engine) removeWritten(st *ksState, key string, n writeNote) {
	l := st.loads.Lock(key)
	l.Supersede()
	st.store.Delete(key)
	e.noteWrite(st, key, n)
	l.Unlock()
	dropNear(st, key)
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

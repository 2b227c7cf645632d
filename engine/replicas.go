package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distcache/distcache/cluster"
	"github.com/distcache/distcache/internal/cache"
	"github.com/distcache/distcache/internal/membership"
	"github.com/distcache/distcache/internal/transport"
)

// Replicas: with WithReplicas(n) (or WithKeySpaceReplicas), each entry
// lives on n members: its owner and the next n-1 members of
// membership.Ring.Replicas (each the member that would own the key if those
// before it were gone), the same on every node. When the owner fails, the
// rebuilt ring makes the first replica the owner, and it already holds the
// entry.
//
// Where copies live. A node keeps the copies it holds for other owners in a
// store of their own (replicaState.store), apart from the entries it owns:
// Gets never read it on their fast path, and the owner's invalidations,
// which drop other members' copies, do not touch it. It is read only (a) by
// a Get whose owner cannot be reached, which asks the key's replicas before
// degrading to a local load (opHeld, readReplicas), and (b) when this node
// becomes a key's owner: it takes its copy over instead of loading the key
// (takeOver, and the promotion after each ring change, repair.go). The
// keyspace budget (MaxBytes) is split: 1/n for owned entries, (n-1)/n for
// copies. So each copy counts against the budget of the node that holds
// it, and a node's memory does not grow with n.
//
// Writes. applyAsOwner, holding the keys' claim, sends the write itself
// (opReplicate) to the other holders while it invalidates copies, and
// applies it locally once both are done: a Put or Delete is acknowledged
// once the owner and every reachable replica applied it. A replica that
// cannot be reached, or does not answer within the write's deadline, does
// not fail the write: the owner acknowledges and queues the keys for repair
// (repair.go), which pushes the owner's state to that replica until it is
// taken or the replica leaves the ring. (Until then a Get whose owner is
// unreachable too could read that replica's older copy: a double failure.)
//
// Loads. A miss loads once, on the owner (one DataSource fetch per key
// cluster-wide, as with one copy); the owner then sends the value to the
// replicas in the background (a fill).
//
// Ordering. Every replica message carries a tag from its sender (a counter
// seeded from the clock at New, so a restarted node's tags exceed its
// earlier life's) and a deadline at most replicaMsgTTL ahead, after which
// the receiver refuses it. Write and repair tags are taken under the keys'
// claim, fill tags under the key's stripe lock and only while no write of it
// is claimed: so a later tag from one owner always carries a later state.
// A receiver keeps each copy's tag and owner, and for replicaNoteWindow the
// tag of each delete (a tombstone). It refuses a write older than its copy
// from the same owner, and a fill that is not newer than what it holds or
// saw deleted (from any owner): a late replication can never bring back an
// older value. A message older than the window cannot arrive, its deadline
// having passed, so the tombstones need not outlive it.

// maxReplicas bounds WithReplicas.
const maxReplicas = 5

// replicaMsgTTL bounds how long a replica message may take to arrive;
// replicaNoteWindow is how long tombstones are kept: the TTL plus a margin
// for clock differences between nodes.
const (
	replicaMsgTTL     = 5 * time.Second
	replicaNoteWindow = 15 * time.Second
)

// WithReplicas sets how many copies of each entry the cluster keeps, the
// owner's included: 1 (the default) keeps one; at most 5; more than the
// live members means all of them. Every node must use the same value. See
// the package doc ("Replicas") for what a write waits for and what a copy
// costs.
func WithReplicas(n int) Option { return func(c *Config) { c.Replicas = n } }

// WithKeySpaceReplicas overrides WithReplicas for one keyspace.
func WithKeySpaceReplicas(keyspace string, n int) Option {
	return func(c *Config) { c.keyspaceConfig(keyspace).Replicas = &n }
}

// replicaProblems validates the replica counts.
func (c *Config) replicaProblems() []error {
	var errs []error
	if c.Replicas < 1 || c.Replicas > maxReplicas {
		//lint:ignore ST1005 validation errors start with the Config field they name
		errs = append(errs, fmt.Errorf("Replicas must be in [1, %d], got %d", maxReplicas, c.Replicas))
	}
	for name, o := range c.KeySpaceConfigs {
		if o != nil && o.Replicas != nil && (*o.Replicas < 1 || *o.Replicas > maxReplicas) {
			errs = append(errs, fmt.Errorf("keyspace %q: Replicas must be in [1, %d], got %d", name, maxReplicas, *o.Replicas))
		}
	}
	return errs
}

// replicasFor is the replica count of keyspace name.
func (c *Config) replicasFor(name string) int {
	if o := c.KeySpaceConfigs[name]; o != nil && o.Replicas != nil {
		return *o.Replicas
	}
	return max(c.Replicas, 1)
}

// replicaState is a keyspace's replication on this node (nil with one copy).
type replicaState struct {
	n int
	// store holds copies of entries owned by other members; values are
	// encoded by encodeCopy.
	store *cache.Store
	// tombs are the deletes applied to store (see the file comment).
	tombs tombstones
	// missed are keys whose replication to a member failed (repair.go).
	missed missedReplicas
	// flushFrom is store's version at the latest flush decision (see
	// ksState.flushFrom): copies stored since were sent by their owners
	// after it, and are kept and served.
	flushFrom atomic.Uint64
	// lastRing is the ring the copies were last re-established for.
	lastRing atomic.Pointer[membership.Ring]

	writes, fills, reads, repairs atomic.Int64
}

// replicaBudget splits a keyspace's budget between owned entries and
// copies (see the file comment).
func replicaBudget(maxBytes int64, n int) (owned, copies int64) {
	if n <= 1 {
		return maxBytes, 0
	}
	copies = maxBytes / int64(n) * int64(n-1)
	return max(maxBytes-copies, 1), max(copies, 1)
}

// placement is the members that keep key in st: its owner and replicas.
func (st *ksState) placement(ring *membership.Ring, key string) []cluster.Member {
	if st.rep == nil {
		return []cluster.Member{ring.Owner(key)}
	}
	return ring.Replicas(key, st.rep.n)
}

// holds reports whether name is one of key's holders in ring.
func (st *ksState) holds(ring *membership.Ring, key, name string) bool {
	for _, m := range st.placement(ring, key) {
		if m.Name == name {
			return true
		}
	}
	return false
}

// A copy in replicaState.store is its owner's tag, the owner's name and
// the value.
func encodeCopy(from string, tag uint64, val []byte) []byte {
	b := make([]byte, 8, 8+binary.MaxVarintLen16+len(from)+len(val))
	binary.BigEndian.PutUint64(b, tag)
	b = binary.AppendUvarint(b, uint64(len(from)))
	b = append(b, from...)
	return append(b, val...)
}

func decodeCopy(b []byte) (from string, tag uint64, val []byte, ok bool) {
	if len(b) < 9 {
		return "", 0, nil, false
	}
	tag = binary.BigEndian.Uint64(b)
	n, k := binary.Uvarint(b[8:])
	if k <= 0 || n > uint64(len(b)-8-k) {
		return "", 0, nil, false
	}
	rest := b[8+k:]
	return string(rest[:n]), tag, rest[n:], true
}

// copyOf returns this node's fresh copy of key, if any. While a flush is
// pending (trusted false), only copies stored since its decision count.
func (r *replicaState) copyOf(key string, trusted bool) (from string, tag uint64, ent cache.Entry, ok bool) {
	ent, ver, ok := r.store.PeekVersion(key)
	if !ok || !ent.Fresh() || (!trusted && ver <= r.flushFrom.Load()) {
		return "", 0, cache.Entry{}, false
	}
	from, tag, val, ok := decodeCopy(ent.Value)
	ent.Value = val
	return from, tag, ent, ok
}

// tombstones remembers, for replicaNoteWindow, the deletes applied to a
// replica store: key -> the owner and tag of the delete.
type tombstones struct {
	mu       sync.Mutex // guards the fields below
	keys     map[string]tombstone
	prunedAt time.Time
}

type tombstone struct {
	from string
	tag  uint64
	at   time.Time
}

// maxTombstones bounds the set; past it, fills are refused (safe: the
// owner holds the value, a copy is only missing).
const maxTombstones = 1 << 16

// add records a delete; false if the set is full.
func (t *tombstones) add(key, from string, tag uint64, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.keys == nil {
		t.keys = map[string]tombstone{}
	}
	if _, ok := t.keys[key]; !ok && len(t.keys) >= maxTombstones {
		if now.Sub(t.prunedAt) < time.Second {
			return false
		}
		t.prunedAt = now
		for k, ts := range t.keys {
			if now.Sub(ts.at) > replicaNoteWindow {
				delete(t.keys, k)
			}
		}
		if len(t.keys) >= maxTombstones {
			return false
		}
	}
	t.keys[key] = tombstone{from: from, tag: tag, at: now}
	return true
}

// get returns key's tombstone within the window; full reports a full set
// (which must be read as "maybe deleted").
func (t *tombstones) get(key string, now time.Time) (ts tombstone, ok, full bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ts, ok = t.keys[key]
	if ok && now.Sub(ts.at) > replicaNoteWindow {
		delete(t.keys, key)
		ok = false
	}
	return ts, ok, len(t.keys) >= maxTombstones
}

// pendingReplication is a write's replication in progress (see
// replicateWrite); the zero value, for one copy, does nothing.
type pendingReplication struct {
	st     *ksState
	wg     *sync.WaitGroup
	keys   []string
	failed *[]string // members that did not take the write
	mu     *sync.Mutex
	all    []string // every member sent to
}

// replicateWrite sends a batch of writes, whose keys this node has
// claimed as their owner, to the keys' other holders, in the background:
// wait ends it. Values are encoded before it returns.
func (e *Engine) replicateWrite(ctx context.Context, st *ksState, entries []Entry, kind writeKind) pendingReplication {
	if st.rep == nil {
		return pendingReplication{}
	}
	ring := e.cl.Ring()
	tag := e.replicaTag()
	now := time.Now()
	byMember := map[cluster.Member][]replicaItem{}
	for _, en := range entries {
		it := replicaItem{Entry: Entry{Key: en.Key}, tag: tag, del: kind == writeDelete}
		if kind == writePut {
			exp, err := e.expiry(ctx, st, en.Key, en.Expiry)
			if err != nil || (!exp.IsZero() && !exp.After(now)) {
				it.del = true // the owner deletes too (see putLocal)
			} else {
				it.Value, it.Expiry = en.Value, exp
			}
		}
		for _, m := range ring.Replicas(en.Key, st.rep.n) {
			if m.Name != e.selfName {
				byMember[m] = append(byMember[m], it)
			}
		}
	}
	p := pendingReplication{st: st, wg: &sync.WaitGroup{}, keys: keysOf(entries), failed: new([]string), mu: &sync.Mutex{}}
	deadline := now.Add(replicaMsgTTL)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	for m, items := range byMember {
		p.all = append(p.all, m.Name)
		payload := encodeReplicate(st.name, e.selfName, replicaWrite, items)
		p.wg.Go(func() {
			if err := e.peers.replicate(ctx, m, payload, deadline); err != nil {
				e.log.Debug("replication failed; queued for repair", "keyspace", st.name, "peer", m.Name, "err", err)
				p.mu.Lock()
				*p.failed = append(*p.failed, m.Name)
				p.mu.Unlock()
			}
		})
	}
	return p
}

// wait waits for the replication's answers. Members that did not take the
// write, and every member when the owner did not apply it (applied false:
// its ctx ended first), get the keys queued for repair, which pushes the
// owner's state. Once applied, this node owns the keys: its own copies of
// them (from an earlier owner) are dropped.
func (p pendingReplication) wait(applied bool) {
	if p.st == nil {
		return
	}
	p.wg.Wait()
	repair := *p.failed
	if !applied {
		repair = p.all
	}
	for _, name := range repair {
		p.st.rep.missed.add(name, p.keys)
	}
	if applied {
		for _, k := range p.keys {
			p.st.rep.store.Delete(k)
		}
	}
}

// replicaTag returns a new tag for a replica message from this node.
func (e *Engine) replicaTag() uint64 { return e.replTags.Add(1) }

// fillReplicas sends a value this node (the owner) just stored from a load
// to the key's other holders, in the background. Called under the key's
// stripe lock, after the store: a write of the key claimed meanwhile will
// replicate itself with a later tag, so the fill is skipped then.
func (e *Engine) fillReplicas(st *ksState, key string, ent cache.Entry) {
	if st.rep == nil || ent.Negative || st.pending.busy(key) {
		return
	}
	ring := e.cl.Ring()
	holders := ring.Replicas(key, st.rep.n)
	if len(holders) < 2 || holders[0].Name != e.selfName {
		return
	}
	it := replicaItem{Entry: Entry{Key: key, Value: ent.Value, Expiry: ent.ExpiresAt}, tag: e.replicaTag()}
	payload := encodeReplicate(st.name, e.selfName, replicaFill, []replicaItem{it})
	deadline := time.Now().Add(replicaMsgTTL)
	e.spawn(func() {
		ctx, cancel := context.WithDeadline(e.base, deadline)
		defer cancel()
		for _, m := range holders[1:] {
			if err := e.peers.replicate(ctx, m, payload, deadline); err != nil {
				e.log.Debug("replica fill failed", "keyspace", st.name, "peer", m.Name, "err", err)
			}
		}
	})
}

// serveReplicate applies copies sent by their owner (see the file comment
// for what is refused); a copy of a key this node does not hold in its own
// ring is refused too, and the answer says how many were.
func (e *Engine) serveReplicate(st *ksState, r replicateRequest) transport.Response {
	if st.rep == nil {
		return transport.Response{Status: statusOK}
	}
	now := time.Now()
	paused := e.cachingPaused()
	ring := e.cl.Ring()
	notHeld := 0
	for _, it := range r.items {
		if e.checkKey(it.Key) != nil || len(it.Value) > e.cfg.MaxValueBytes {
			continue
		}
		l := st.loads.Lock(it.Key)
		switch {
		case paused:
			// Caching nothing while cut off, but the copy held is older
			// than this message: it goes.
			st.rep.store.Delete(it.Key)
		case !it.del && !st.holds(ring, it.Key, e.selfName):
			// Not a holder in this node's ring (the sender's ring differs):
			// a copy kept now would outlive the writes that go to the
			// key's holders, and be promoted if this node became its owner
			// again. Refused; the sender repairs it once the rings agree.
			// A delete is always applied: dropping a copy is safe.
			st.rep.store.Delete(it.Key)
			notHeld++
		default:
			e.applyCopy(st, r.from, r.kind, it, now)
		}
		l.Unlock()
	}
	return transport.Response{Status: statusOK, Payload: encodeReplicateAnswer(notHeld)}
}

// applyCopy applies one replicated item under its key's stripe lock.
func (e *Engine) applyCopy(st *ksState, from string, kind uint8, it replicaItem, now time.Time) {
	rep := st.rep
	curFrom, curTag, _, held := rep.copyOf(it.Key, true)
	ts, dead, full := rep.tombs.get(it.Key, now)
	if held && curFrom == from && (curTag > it.tag || (kind == replicaFill && curTag == it.tag)) {
		return // older than the copy held
	}
	if dead && ts.from == from && ts.tag >= it.tag && !it.del {
		return // older than a delete seen
	}
	if kind == replicaFill && ((dead && ts.from != from) || full) {
		return // may be older than a delete by another owner
	}
	if it.del {
		rep.store.Delete(it.Key)
		if !rep.tombs.add(it.Key, from, it.tag, now) {
			e.log.Debug("replica tombstones full; later fills are refused for a while", "keyspace", st.name)
		}
		rep.writes.Add(1)
		return
	}
	err := rep.store.Set(it.Key, cache.Entry{Value: encodeCopy(from, it.tag, it.Value), ExpiresAt: it.Expiry})
	if errors.Is(err, cache.ErrRejected) {
		rep.store.Delete(it.Key) // the copy it replaces is older
	}
	if kind == replicaFill {
		rep.fills.Add(1)
	} else {
		rep.writes.Add(1)
	}
}

// serveHeld answers opHeld: what this node holds of a key, owned or as a
// copy, without loading it. Nothing is answered while the stores are not
// trusted (this node may have missed writes). While a write of the key is
// in progress here, it waits for the write, up to heldWaitMax, and then
// answers busy: the key's value is about to change, and "absent" would
// let the asker load the DataSource's older value.
//
// The asker is taking the key over: it will keep what this node answers,
// or what it loads if this node has nothing. It may have rebuilt its ring
// on a membership event this node has not heard of yet, so that this node
// still owns the key in its own ring and may write it: the asker is
// recorded as a holder (before the value is read, as serveGet does), and
// such a write invalidates it, until this node's ring catches up (then
// writes broadcast for the settle window).
func (e *Engine) serveHeld(ctx context.Context, st *ksState, r keysRequest, from string) transport.Response {
	if len(r.keys) != 1 {
		return transport.Response{Status: statusBadRequest}
	}
	st.holders.record(r.keys[0], from, takeoverLease)
	if st.pending.busy(r.keys[0]) {
		wctx, cancel := context.WithTimeout(ctx, heldWaitMax)
		_ = st.pending.wait(wctx, r.keys[0])
		cancel()
	}
	return transport.Response{Status: statusOK, Payload: encodeHeld(e.held(st, r.keys[0]))}
}

// takeoverLease is how long a node that answered a takeover records the
// asker as a holder: long enough for gossip to bring it the membership
// event the asker acted on (a few gossip rounds).
const takeoverLease = 5 * time.Second

// heldWaitMax bounds how long serveHeld waits for a write in progress:
// well within the asker's takeoverAskTimeout, so that it hears "busy"
// rather than nothing.
const heldWaitMax = takeoverAskTimeout / 2

func (e *Engine) held(st *ksState, key string) heldAnswer {
	if st.pending.busy(key) {
		return heldAnswer{busy: true}
	}
	trusted := e.storeTrusted()
	if ent, ver, ok := st.store.PeekVersion(key); ok && ent.Fresh() && !ent.Negative && (trusted || ver > st.flushFrom.Load()) {
		return heldAnswer{found: true, fromStore: true, ver: ver, expiry: ent.ExpiresAt, value: ent.Value}
	}
	if st.rep != nil {
		if _, _, ent, ok := st.rep.copyOf(key, trusted); ok {
			st.rep.reads.Add(1)
			return heldAnswer{found: true, expiry: ent.ExpiresAt, value: ent.Value}
		}
	}
	if me, ok := st.moved.get(key, time.Now()); ok && trusted && !st.recent.noteSince(key, me.at) {
		return heldAnswer{found: true, fromStore: true, ver: me.ver, expiry: me.exp, value: me.val}
	}
	return heldAnswer{}
}

// readReplicas serves a Get whose owner could not be reached from the
// key's other holders, in ring order (this node's own copy first, if it is
// one): ok is false when none holds the key, and the caller degrades. A
// holder that answers busy is writing the key as its new owner (its ring
// already dropped the unreachable one): it is asked again until it answers
// or ctx ends, and then err is set, since degrading would load a value
// older than that write.
func (e *Engine) readReplicas(ctx context.Context, st *ksState, key string, owner cluster.Member) ([]byte, bool, error) {
	if st.rep == nil {
		return nil, false, nil
	}
	for _, m := range e.cl.Ring().Replicas(key, st.rep.n) {
		if m.Name == owner.Name {
			continue
		}
		var a heldAnswer
		if m.Name == e.selfName {
			a = e.held(st, key)
		} else {
			var err error
			if a, err = e.heldPastWrites(ctx, st, m, key, 0); err != nil {
				continue
			}
			if a.busy {
				return nil, false, errWriteInProgress(ctx, m)
			}
		}
		if a.found {
			return a.value, true, nil
		}
	}
	return nil, false, nil
}

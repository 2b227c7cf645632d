package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distcache/distcache/cluster"
	"github.com/distcache/distcache/internal/transport"
)

// forwardGet asks the owner for key, coalescing concurrent callers on this
// node into one request. The owner serves it from its store or its own
// coalesced load and never forwards again (one hop, even when its ring
// disagrees). If the owner is unreachable, overloaded or shutting down, this
// node loads the key itself (degraded, counted). owned reports that val is
// the caller's alone (a response nobody else waited for), so Get need not
// copy it again.
func (e *Engine) forwardGet(ctx context.Context, deadline time.Time, st *ksState, key string, owner cluster.Member, ringVersion uint64) (val []byte, owned bool, err error) {
	l := st.forwards.Lock(key)
	if cur := l.Current(); cur != nil && time.Since(cur.Started()) > forwardJoinWindow {
		// Its answer may predate a write this node was not told of: the
		// owner records a forward's asker for forwardJoinWindow only
		// (holders.go). Its own waiters still get it; it stores nothing.
		l.Supersede()
	}
	f := l.Join()
	if f == nil {
		f = l.Lead(e.flushGen())
		l.Unlock()
		// The leader forwards under its own ctx; followers wait on the flight
		// or their own ctx (and retry if only the leader's ctx expired).
		var exp time.Time
		val, owned, exp, err = e.forwardOnce(ctx, deadline, st, key, owner)
		if h := forwardAnswered.Load(); h != nil {
			(*h)(key)
		}
		l = st.forwards.Lock(key)
		l.Unlink(f)
		if owned && st.near != nil && e.nearKeepable(l, f) {
			nearPut(st, key, val, exp, ringVersion, f.Gen())
		}
		// Followers join under the lock, and none can join now.
		owned = owned && f.Waiters() == 0
		l.Unlock()
		f.Publish(val, err)
		return val, owned, err
	}
	l.Unlock()
	st.stats.forwardsCoalesced.Add(1)
	// No timer: the leader returns by its deadline (the call and a degraded
	// load are both bounded by it), and a follower came later under the same
	// keyspace read timeout (fixed for the engine's life), so its deadline is
	// not earlier than the leader's. Followers of hot keys are the common
	// case under load, and a timer each would be a cost on that path.
	select {
	case <-f.Done():
		val, err := f.Result()
		if err != nil && ctx.Err() == nil && time.Now().Before(deadline) && (isContextErr(err) || errors.Is(err, errRenewalFailed)) {
			// The leader's own deadline expired, or it was a renewal that got
			// no answer (near_renew.go); ours has not: try ourselves.
			val, owned, _, err = e.forwardOnce(ctx, deadline, st, key, owner)
			return val, owned, err
		}
		return val, false, err
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
}

// forwardJoinWindow is how long after a forward started later Gets of the
// key on this node may join it; the key's owner records the asker for as
// long (holderLease), so a write acknowledged before a Get joined reached
// the forward. A forward that takes longer is not joined: the next Get
// sends its own.
const forwardJoinWindow = 250 * time.Millisecond

// forwardAnswered, when set (by tests, see export_test.go), runs when a
// forward's answer has arrived, before the forward keeps it or hands it to
// the Gets that joined it: a test holds it there, as a slow network would.
var forwardAnswered atomic.Pointer[func(key string)]

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// forwardOnce sends one Get to owner. owned reports that val is a fresh
// response buffer from the owner (not shared with the cache, and not a
// degraded local load); exp is then, if a near cache asked for it, the
// entry's expiry or the end of the owner's lease, whichever comes first.
func (e *Engine) forwardOnce(ctx context.Context, deadline time.Time, st *ksState, key string, owner cluster.Member) (val []byte, owned bool, exp time.Time, err error) {
	if e.missed.pending(owner.Name) {
		// The owner missed writes (or is unreachable): a replica got them.
		if val, ok, err := e.readReplicas(ctx, st, key, owner); ok || err != nil {
			return val, false, exp, err
		}
		val, err = e.degradeBy(ctx, deadline, st, key, owner, errOwnerNotFlushed)
		return val, false, exp, err
	}
	st.stats.forwarded.Add(1)
	withExpiry := st.near != nil
	sent := time.Now() // the owner's lease runs from a later moment
	payload, err := e.peers.get(ctx, owner, st.name, key, withExpiry, deadline)
	if err != nil && !isRemote(err) {
		if cerr := ctx.Err(); cerr != nil {
			return nil, false, exp, cerr
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, false, exp, err // our read timeout: no budget left to degrade
		}
		st.stats.forwardErrors.Add(1)
		if val, ok, err := e.readReplicas(ctx, st, key, owner); ok || err != nil {
			return val, false, exp, err
		}
		val, err = e.degradeBy(ctx, deadline, st, key, owner, err)
		return val, false, exp, err
	}
	switch {
	case err == nil:
		val = payload
		if withExpiry {
			if val, exp, err = nearAnswer(val, sent); err != nil {
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
	payload, err := e.peers.get(ctx, next, st.name, key, false, time.Time{})
	switch {
	case err != nil && (!isRemote(err) || errors.Is(err, ErrEngineStopped) || errors.Is(err, ErrKeySpaceNotFound)):
		return nil, false, nil
	case err != nil:
		return nil, true, err
	case payload == nil:
		return []byte{}, true, nil
	}
	return payload, true, nil
}

// degrade loads key on this node because its owner could not serve it.
func (e *Engine) degrade(ctx context.Context, st *ksState, key string, owner cluster.Member, cause error) ([]byte, error) {
	st.stats.degraded.Add(1)
	e.log.Debug("owner unavailable, loading locally", "keyspace", st.name, "peer", owner.Name, "err", cause)
	return e.load(ctx, st, key, nil)
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
	rs, err := e.peers.getMany(ctx, owner, st.name, keys)
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

func deadlineOr(ctx context.Context, def time.Time) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return def
}

package engine

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/distcache/distcache/cluster"
	"github.com/distcache/distcache/internal/membership"
	"github.com/distcache/distcache/internal/transport"
)

// invalidateCopies drops keys' copies on the other nodes that may hold one
// (copyHolders), in parallel, and returns the recorded holders that
// answered (for the push of the written value, near_push.go), or ctx's
// error if ctx ended before every one answered: the write is then not
// applied, so no copy went stale and nobody needs to flush. A member that failed otherwise (unreachable,
// leaving) may still serve its copy until the lease it was granted ends:
// the call returns once every such lease has lapsed (ctx's error if ctx
// ends first), and then records those members by missedInvalidation. A
// member that has not answered by then is given up in the same way (it
// answers within invalidationPatience, or serves no copy past its lease
// and is told to flush): a paused or silently cut-off holder delays the
// write, and holds the key's claim, for the rest of its lease, not until
// the write's deadline. A write that fails puts back the records it took.
// A member without the keyspace, or that is stopping (servesNoCopy),
// serves no copy.
func (e *Engine) invalidateCopies(ctx context.Context, st *ksState, keys []string) (reached []invalidationTarget, err error) {
	targets, unknown := e.copyHolders(st, keys)
	if len(targets) == 0 && len(unknown) == 0 {
		return nil, ctxEnded(ctx) // nobody holds a copy (no allocation below)
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed []failedInvalidation
	)
	// Each target's call has a deadline of its own, passed to the transport
	// rather than as a derived context (no timer, no allocation per call).
	// The last target is served in this goroutine.
	for i, t := range targets {
		one := func() {
			var err error
			if t.departed {
				// Most likely gone for good: a short try on its own, then a
				// flush notice should it come back.
				err = e.sendInvalidation(ctx, st, t.Member, keys, time.Now().Add(departedCallTimeout))
			} else {
				err = e.invalidate(ctx, st, t.Member, keys, later(t.leaseEnd, time.Now().Add(invalidationPatience)))
			}
			fail := err != nil && !errors.Is(err, ErrKeySpaceNotFound)
			noCopy := fail && e.servesNoCopy(t.Member, err) // it copies the member list: not under mu
			mu.Lock()
			switch {
			case err == nil && t.recorded && !t.departed:
				reached = append(reached, t)
			case fail:
				failed = append(failed, failedInvalidation{t, err, time.Now(), noCopy})
			}
			mu.Unlock()
		}
		if i == len(targets)-1 {
			one()
		} else {
			wg.Go(one)
		}
	}
	wg.Wait()
	var lapse time.Time
	for _, f := range failed {
		if !f.noCopy {
			lapse = later(lapse, f.leaseEnd)
		}
	}
	for _, h := range unknown {
		lapse = later(lapse, h.until)
	}
	if ctxEnded(ctx) == nil {
		awaitLapse(ctx, lapse)
	}
	// The transport fails a call at the write's deadline a moment before
	// ctx reports it: a call that failed then is the write's timeout, not
	// the member's.
	if err := ctxEnded(ctx); err != nil {
		// Unapplied, but the records are taken: the next write of the
		// keys must still reach these members.
		for _, f := range failed {
			restoreHolders(st, keys, f.Name, f.leaseEnd)
		}
		for _, h := range unknown {
			restoreHolders(st, keys, h.node, h.until)
		}
		return nil, err
	}
	for _, f := range failed {
		if !f.noCopy {
			e.missedInvalidation(f.Member, f.err, f.at)
		}
	}
	return reached, nil
}

// invalidationPatience is the least time a write waits for a member's
// answer to its invalidation, even once the member's lease has lapsed: one
// that answers later is told to flush, which a healthy but busy member
// should not pay for.
const invalidationPatience = time.Second

// servesNoCopy reports whether m, whose invalidation failed with err, no
// longer serves copies to its callers: a node refuses their Gets from the
// moment it starts stopping, before it announces its leave and drains its
// transport. So: it answered that it has stopped, its transport refused the
// call while draining (unless ours is: then the error is our own), or it
// announced a graceful leave and gossip no longer lists it (a new
// incarnation under its name shows up in gossip first).
func (e *Engine) servesNoCopy(m cluster.Member, err error) bool {
	switch {
	case isRemote(err) && errors.Is(err, ErrEngineStopped):
		return true
	case errors.Is(err, transport.ErrShuttingDown) && e.state.Load() < stateStopping:
		return true
	case e.leftGracefully(m.Name):
		return !slices.ContainsFunc(e.cl.Members(), func(g cluster.Member) bool { return g.Name == m.Name })
	}
	return false
}

// failedInvalidation is a target whose invalidation failed, why and when
// (the flush notice says when: see serveFlush). noCopy: it serves no copy
// (servesNoCopy), so the write need not wait for its lease, nor tell it to
// flush: it is stopping or gone, and the next process under its name
// starts as empty as any new node. (Told to flush, that process dropped the
// hand-offs and writes it had taken since it started: acknowledged writes
// lost in chaos term.)
type failedInvalidation struct {
	invalidationTarget
	err    error
	at     time.Time
	noCopy bool
}

// ctxEnded returns ctx's error, or context.DeadlineExceeded once its
// deadline has passed even if ctx has not noticed yet.
func ctxEnded(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// restoreHolders records node again as a holder of keys until until.
func restoreHolders(st *ksState, keys []string, node string, until time.Time) {
	for _, k := range keys {
		st.holders.restore(k, node, until)
	}
}

// awaitLapse waits until the lease ending at until has lapsed, or ctx ends.
func awaitLapse(ctx context.Context, until time.Time) {
	d := time.Until(until)
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// copyHolders returns the other nodes a write of keys must invalidate,
// each with the end of the lease it may hold a copy under: the holders this
// node recorded for the keys (holders.go), whose records it takes. It
// returns every member of the ring and of gossip too, with the longest
// lease an owner grants, while a Get was answered without a record (the
// table was full), while this node's view of the cluster is not settled
// (see settled), and when its ring gives a key to another member
// (ownsAll). A recorded holder that left the ring is still tried (a
// member declared failed may be alive: a flapping member keeps serving its
// copies); those this node never knew the address of (unknown) are told to
// flush if they come back.
func (e *Engine) copyHolders(st *ksState, keys []string) (targets []invalidationTarget, unknown []heldCopy) {
	var held []heldCopy
	for _, k := range keys {
		held = st.holders.take(k, held)
	}
	ring := e.cl.Ring()
	var gossip []cluster.Member // read only when needed: it copies every member
	add := func(m cluster.Member, departed, recorded bool, until time.Time) {
		if m.Name == e.selfName {
			return
		}
		if i := slices.IndexFunc(targets, func(t invalidationTarget) bool { return t.Name == m.Name }); i >= 0 {
			targets[i].leaseEnd = later(targets[i].leaseEnd, until)
			targets[i].recorded = targets[i].recorded || recorded
			return
		}
		targets = append(targets, invalidationTarget{m, departed, recorded, until})
	}
	if st.holders.broadcasting() || !e.settled() || !e.ownsAll(ring, keys) {
		gossip = e.cl.Members()
		// The ring's members and every member gossip knows of: around a
		// partition's heal a member can hold copies before this node's ring
		// (rebuilt after a debounce, or an admission probe) has it again.
		// Such a copy was granted by some owner, for at most the longest
		// lease.
		until := time.Now().Add(holderLease(st, getFlagExpiry))
		for _, m := range ring.Members() {
			add(m, false, false, until)
		}
		for _, m := range gossip {
			add(m, false, false, until)
		}
	}
	for _, h := range held {
		if m, ok := ring.Member(h.node); ok {
			add(m, false, true, h.until)
			continue
		}
		if gossip == nil {
			gossip = e.cl.Members()
		}
		if i := slices.IndexFunc(gossip, func(g cluster.Member) bool { return g.Name == h.node }); i >= 0 {
			add(gossip[i], false, true, h.until)
		} else if m, ok := e.departedMember(h.node); ok {
			add(m, true, true, h.until)
		} else if h.node != e.selfName {
			e.missed.add(h.node)
			unknown = append(unknown, h)
		}
	}
	return targets, unknown
}

// ownsAll reports whether ring makes this node the owner of every key. A
// write it applies as owner of a key its ring gives to another member (a
// peer forwarded it under a newer or older ring) must reach that member
// too, whose entry no record here covers: such a write broadcasts.
func (e *Engine) ownsAll(ring *membership.Ring, keys []string) bool {
	for _, k := range keys {
		if ring.Owner(k).Name != e.selfName {
			return false
		}
	}
	return true
}

// invalidationTarget is a node a write invalidates; departed: it has left
// this node's ring; recorded: this node answered it a Get of one of the
// keys (holders.go), rather than invalidating it for want of records;
// leaseEnd: until when it may hold a copy.
type invalidationTarget struct {
	cluster.Member
	departed, recorded bool
	leaseEnd           time.Time
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
func (e *Engine) settled() bool {
	return time.Since(time.Unix(0, e.ringChangedAt.Load())) >= time.Duration(e.settle.Load()) &&
		e.state.Load() < stateStopping && e.cl.RingMatchesGossip()
}

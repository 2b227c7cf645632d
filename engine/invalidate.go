package engine

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/distcache/distcache/cluster"
	"github.com/distcache/distcache/internal/membership"
)

// invalidateCopies drops keys' copies on the other nodes that may hold one
// (copyHolders), in parallel, and returns ctx's error if ctx ended before
// every one answered: the write is then not applied, so no copy went stale
// and nobody needs to flush. Otherwise members that failed (unreachable,
// leaving) are recorded by missedInvalidation; a member without the
// keyspace holds no copy.
func (e *Engine) invalidateCopies(ctx context.Context, st *ksState, keys []string) error {
	var (
		wg      sync.WaitGroup
		payload []byte
		mu      sync.Mutex
		missed  []cluster.Member
		errs    []error
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
			if err := e.peers.invalidate(ctx, m, payload); err != nil && !errors.Is(err, ErrKeySpaceNotFound) {
				mu.Lock()
				missed, errs = append(missed, m), append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	// The transport fails a call at the write's deadline a moment before
	// ctx reports it: a call that failed then is the write's timeout, not
	// the member's.
	if err := ctxEnded(ctx); err != nil {
		return err
	}
	for i, m := range missed {
		e.missedInvalidation(m, errs[i])
	}
	return nil
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

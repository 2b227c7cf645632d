package engine

import (
	"bytes"
	"context"
)

// A writeRound combines the single-key writes (Put or Delete of one key)
// that reach a key's owner while an earlier write of the key is being
// applied. They would otherwise queue on the key's pending slot and each
// pay a round of invalidations in turn; under a skewed workload the hottest
// key's writes then serialise behind one another's network round trips.
// Instead, the first of them leads the round: once the slot is free it
// claims it, closes the round to newcomers, and applies only the latest
// write joined (one invalidation round, one store write); every write of
// the round gets its outcome.
//
// This is linearizable: every write of the round is in flight when the
// round is applied (each joined before the claim, and returns after the
// apply), so they can be ordered one after another at that instant, the
// latest joined last; a Get sees the value before them all or the latest,
// and no Get can fall between them.
type writeRound struct {
	en   Entry // the latest write joined; its value is the round's own copy
	kind writeKind
	n    int           // writes joined
	done chan struct{} // closed once err is set
	err  error
}

// applyOneAsOwner is applyAsOwner for one key: alone when the key is free,
// in the key's next round when a write of it is in progress here.
func (e *Engine) applyOneAsOwner(ctx context.Context, st *ksState, en Entry, kind writeKind) error {
	for {
		release, r, lead := st.pending.claimOrJoin(en, kind)
		if release != nil {
			defer release()
			return e.applyClaimed(ctx, st, []Entry{en}, kind)[0]
		}
		if lead {
			return e.leadRound(ctx, st, r, en.Key)
		}
		select {
		case <-r.done:
		case <-ctx.Done():
			// Its round may still apply it: the outcome of a write whose
			// ctx ended is unknown to its caller (see Put).
			return ctx.Err()
		}
		if r.err != nil && isContextErr(r.err) && ctxEnded(ctx) == nil {
			continue // the leader's deadline passed before the round was applied; ours has not
		}
		countWrite(st, kind)
		return r.err
	}
}

// leadRound waits for key's slot, claims it for round r and applies r's
// latest write; the outcome is every joined write's.
func (e *Engine) leadRound(ctx context.Context, st *ksState, r *writeRound, key string) error {
	en, kind, release, err := st.pending.claimRound(ctx, r, key)
	if err == nil {
		// (applyClaimed counts the latest write; the others count
		// themselves when they return.)
		err = e.applyClaimed(ctx, st, []Entry{en}, kind)[0]
		release()
	}
	r.err = err
	close(r.done)
	return err
}

func countWrite(st *ksState, kind writeKind) {
	if kind == writeDelete {
		st.stats.deletes.Add(1)
	} else {
		st.stats.puts.Add(1)
	}
}

// claimOrJoin claims en's key when it is free (release is then non-nil),
// or adds the write to the key's next round: lead reports that it opened
// the round and must lead it (leadRound).
func (p *pendingWrites) claimOrJoin(en Entry, kind writeKind) (release func(), r *writeRound, lead bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.initLocked()
	r = p.next[en.Key]
	if r == nil && p.keys[en.Key] == nil {
		return p.takeLocked(en.Key), nil, false
	}
	// The request buffer a peer's write arrived in may be reused once its
	// caller gives up; the round keeps its own copy.
	en.Value = bytes.Clone(en.Value)
	if r != nil {
		// Joined even if the key has just been freed: the round's leader is
		// about to claim it, and a newcomer must not overtake the round.
		r.en, r.kind = en, kind
		r.n++
		return nil, r, false
	}
	r = &writeRound{en: en, kind: kind, n: 1, done: make(chan struct{})}
	p.next[en.Key] = r
	return nil, r, true
}

// claimRound waits until r's key is free, claims it and closes r to
// joiners, returning the write to apply (r's fields change under p.mu
// until then). If ctx ends first the round is withdrawn (nothing of it is
// applied).
func (p *pendingWrites) claimRound(ctx context.Context, r *writeRound, key string) (en Entry, kind writeKind, release func(), err error) {
	for {
		p.mu.Lock()
		busy := p.keys[key]
		if busy == nil {
			release = p.takeLocked(key)
			delete(p.next, key)
			en, kind = r.en, r.kind
			p.mu.Unlock()
			return en, kind, release, nil
		}
		p.mu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			p.mu.Lock()
			if p.next[key] == r {
				delete(p.next, key)
			}
			p.mu.Unlock()
			return en, kind, nil, ctx.Err()
		}
	}
}

package engine

import (
	"context"
	"sync"
	"time"

	"github.com/distcache/distcache/cluster"
)

// Invalidations to one member are batched. Under a write-heavy load an
// owner sends the same few holders an invalidation per write, each a
// request the holder dispatches and answers on its own; most of the cost
// of a write of a widely read key was those requests. So while
// maxInvalidationsInFlight requests to a member (for one keyspace) are
// unanswered, further invalidations for it wait and go together, as one
// request, when one of those answers: a write then waits at most for the
// answer in flight plus its own, and a lone write goes out at once.
//
// A batch is sent under the latest deadline of the writes in it, with the
// store version read when it is sent: none of its writes is applied yet
// (each waits for the answer), so the version is below each write's, as
// serveInvalidate's hand-off guard requires. A write whose ctx ends while
// it waits gets ctx's error, as an unanswered direct call would.
const maxInvalidationsInFlight = 1

// invalidationLines holds one line per member and keyspace with batches
// in flight or waiting.
type invalidationLines struct {
	mu    sync.Mutex
	lines map[invalidationDest]*invalidationLine
}

type invalidationDest struct {
	m  cluster.Member
	st *ksState
}

type invalidationLine struct {
	inFlight int
	next     *invalidationBatch // open to writes until it is sent
}

type invalidationBatch struct {
	keys     []string
	deadline time.Time
	done     chan struct{} // closed once err is set
	err      error
}

// invalidate tells m to drop its copies of st's keys, in a batch with
// other writes' keys when requests to m are already in flight; the
// answer is waited for until ctx ends or deadline passes.
func (e *Engine) invalidate(ctx context.Context, st *ksState, m cluster.Member, keys []string, deadline time.Time) error {
	d := invalidationDest{m, st}
	l := &e.invalidations
	l.mu.Lock()
	if l.lines == nil {
		l.lines = map[invalidationDest]*invalidationLine{}
	}
	line := l.lines[d]
	if line == nil {
		line = &invalidationLine{}
		l.lines[d] = line
	}
	if line.inFlight < maxInvalidationsInFlight || len(keys) > maxKeysPerRequest/2 {
		line.inFlight++
		l.mu.Unlock()
		err := e.sendInvalidation(ctx, st, m, keys, deadline)
		e.invalidationAnswered(d)
		return err
	}
	b := line.next
	if b == nil || len(b.keys)+len(keys) > maxKeysPerRequest {
		if b != nil {
			// Full: it goes now, beside the one in flight.
			line.inFlight++
			e.startBatch(d, b)
		}
		b = &invalidationBatch{done: make(chan struct{})}
		line.next = b
	}
	b.keys = append(b.keys, keys...)
	if dl, ok := ctx.Deadline(); ok && (deadline.IsZero() || dl.Before(deadline)) {
		deadline = dl
	}
	if deadline.IsZero() {
		deadline = time.Now().Add(defaultWriteTimeout)
	}
	b.deadline = later(b.deadline, deadline)
	l.mu.Unlock()
	// Waiting for a batch needs a timer for the deadline (made out of the
	// lock, which every write's invalidations take).
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	select {
	case <-b.done:
		return b.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sendInvalidation is one opInvalidate request, answered by deadline.
func (e *Engine) sendInvalidation(ctx context.Context, st *ksState, m cluster.Member, keys []string, deadline time.Time) error {
	st.stats.invalidationsSent.Add(1)
	// Our store version now: the writes will be stored above it, so the
	// receiver refuses our hand-offs of older entries.
	return e.peers.invalidate(ctx, m, encodeInvalidate(st.name, e.selfName, st.store.Version(), keys), deadline)
}

// invalidationAnswered ends a request in flight to d, and sends d's
// waiting batch in its place.
func (e *Engine) invalidationAnswered(d invalidationDest) {
	l := &e.invalidations
	l.mu.Lock()
	line := l.lines[d]
	b := line.next
	if b == nil {
		line.inFlight--
		if line.inFlight == 0 {
			delete(l.lines, d)
		}
		l.mu.Unlock()
		return
	}
	line.next = nil
	l.mu.Unlock()
	e.startBatch(d, b)
}

// startBatch sends b on an engine goroutine; once Stop has begun, b fails
// at once.
func (e *Engine) startBatch(d invalidationDest, b *invalidationBatch) {
	if !e.spawn(func() { e.sendBatch(d, b) }) {
		b.err = ErrEngineStopped
		close(b.done)
		e.invalidationAnswered(d)
	}
}

// sendBatch sends b, a request counted in flight to d.
func (e *Engine) sendBatch(d invalidationDest, b *invalidationBatch) {
	b.err = e.sendInvalidation(e.base, d.st, d.m, b.keys, b.deadline) // Stop does not wait for it
	close(b.done)
	e.invalidationAnswered(d)
}

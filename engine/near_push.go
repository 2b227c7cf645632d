package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distcache/distcache/cluster"
	"github.com/distcache/distcache/internal/cache"
	"github.com/distcache/distcache/internal/transport"
)

// After a Put, the owner pushes the new value to the nodes whose near
// copies the write invalidated (opPush), so that they need not forward
// their next Get to refill them. Under a skewed workload the keys written
// most are the keys read most, and such refills were most of the forwards:
// each a Get that waited on the network.
//
// The push is sent after the write is applied, and asynchronously; these
// rules keep reads linearizable:
//   - an invalidation replaces a holder's copy with a tombstone
//     (nearTombstone) that is never served: the copy's ring and flush tags,
//     its expiry, and the owner's store version that the invalidation
//     carries;
//   - a holder installs a push only over a tombstone with the current tags,
//     only from the key's owner in its own ring, and only if the pushed
//     entry's store version is above the tombstone's. The next write's
//     invalidation carries a version at or above that entry's (the owner
//     stored the entry before it), so a push that arrives after it is
//     refused, and one that arrives before it is dropped by it;
//   - the pushed copy expires with the tombstone: pushLease after the holder
//     took the invalidation, or with the lease the holder was granted
//     (holders.go) if that ends first; the owner records the holder again
//     before the write releases the key, until pushLease from then (after
//     the holder took the invalidation, whose answer the owner has) or that
//     lease's end, whichever comes first, so the next write invalidates
//     it. The short lease bounds what a push adds to the records: a holder
//     that leaves or is cut off after a write is waited for (by the next
//     write, see invalidateCopies) at most pushLease, not a near lease.
//
// A push that is lost or refused costs only the forward it would have
// saved.

// pushTimeout bounds a push: a late one is refused or useless anyway.
const pushTimeout = time.Second

// pushLease is how long a pushed copy may live after its holder took the
// invalidation. Hot keys are pushed again at every write; a key written
// less often goes back to being fetched, with a full near lease.
const pushLease = 500 * time.Millisecond

// pushesOff, set by tests (see export_test.go), skips pushes: the
// holder's tombstone then waits for a push the test sends itself.
var pushesOff atomic.Bool

// nearTombstone is the stored form of an invalidated near copy: the
// copy's tags (ring version, flush generation), then the store version of
// the owner that invalidated it. It expires pushLease after the
// invalidation, or with the copy if that comes first, and a pushed copy
// with it.
func nearTombstone(tags []byte, ver uint64) []byte {
	return binary.BigEndian.AppendUint64(bytes.Clone(tags[:nearTagLen]), ver)
}

// nearTombstoneLen is the length of nearTombstone's form.
const nearTombstoneLen = nearTagLen + 8

// pushWritten records the holders that the write of key reached (reached)
// again, until their leases end, and pushes them the entry the store now
// holds. The caller holds key's pending slot and has just stored it.
func (e *Engine) pushWritten(st *ksState, key string, reached []invalidationTarget) {
	if len(reached) == 0 {
		return
	}
	en, ok := handoffEntryOf(st, key, time.Now())
	if !ok {
		return
	}
	until := time.Now().Add(pushLease)
	for _, t := range reached {
		st.holders.restore(key, t.Name, earlier(t.leaseEnd, until))
	}
	if pushesOff.Load() {
		return
	}
	for _, t := range reached {
		e.queuePush(invalidationDest{t.Member, st}, en)
	}
}

// Pushes to one member (for one keyspace) go one request at a time: those
// queued while one is in flight go together in the next, so that under a
// write-heavy load pushes cost few requests. A line holds at most
// maxKeysPerRequest entries; pushes beyond are dropped (the holder then
// forwards its next Get).
type pushLines struct {
	mu    sync.Mutex
	lines map[invalidationDest]*pushLine
}

type pushLine struct {
	queued []handoffEntry
}

// queuePush queues en for d, starting d's sender if none runs.
func (e *Engine) queuePush(d invalidationDest, en handoffEntry) {
	p := &e.pushes
	p.mu.Lock()
	if p.lines == nil {
		p.lines = map[invalidationDest]*pushLine{}
	}
	line, running := p.lines[d]
	if !running {
		line = &pushLine{}
		p.lines[d] = line
	}
	if len(line.queued) < maxKeysPerRequest {
		line.queued = append(line.queued, en)
	}
	p.mu.Unlock()
	if !running && !e.spawn(func() { e.sendPushes(d, line) }) {
		p.mu.Lock()
		delete(p.lines, d)
		p.mu.Unlock()
	}
}

// sendPushes sends line's queued pushes until none is left, then retires
// the line.
func (e *Engine) sendPushes(d invalidationDest, line *pushLine) {
	p := &e.pushes
	for {
		p.mu.Lock()
		batch := line.queued
		line.queued = nil
		if len(batch) == 0 {
			delete(p.lines, d)
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		if e.peers.push(e.base, d.m, encodeHandoff(d.st.name, e.selfName, batch), time.Now().Add(pushTimeout)) == nil {
			d.st.stats.pushesSent.Add(int64(len(batch)))
		}
	}
}

// servePush installs pushed entries over this node's tombstones of them
// (see the rules above).
func (e *Engine) servePush(st *ksState, r handoffRequest) transport.Response {
	if st.near == nil {
		return transport.Response{Status: statusOK}
	}
	ring, gen := e.cl.Ring(), e.flushGen()
	for _, en := range r.entries {
		if ring.Owner(en.Key).Name != r.from {
			continue
		}
		l := st.forwards.Lock(en.Key)
		if tomb, ok := st.near.Peek(en.Key); ok && tomb.Negative && tomb.Fresh() && len(tomb.Value) == nearTombstoneLen &&
			nearCurrent(tomb.Value, ring, gen) && binary.BigEndian.Uint64(tomb.Value[nearTagLen:]) < en.ver {
			until := tomb.ExpiresAt
			if !en.Expiry.IsZero() {
				until = earlier(until, en.Expiry)
			}
			// In place of the tombstone at once, with no wait for ristretto's
			// buffer. (Were the tombstone evicted meanwhile, the copy is
			// queued instead; a later invalidation's delete is queued behind
			// it and settled before that write proceeds.)
			buf := append(bytes.Clone(tomb.Value[:nearTagLen]), en.Value...)
			st.near.SetAsync(en.Key, cache.Entry{Value: buf, ExpiresAt: until})
			st.stats.pushesTaken.Add(1)
		}
		l.Unlock()
	}
	return transport.Response{Status: statusOK}
}

// push sends m an opPush payload (encodeHandoff's form), answered by
// deadline.
func (p peers) push(ctx context.Context, m cluster.Member, payload []byte, deadline time.Time) error {
	_, err := p.send(ctx, m, transport.Request{Op: opPush, Payload: payload}, deadline)
	return err
}

package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distcache/distcache/internal/cache"
	"github.com/distcache/distcache/internal/transport"
)

// rpcHandler serves peers: ServeInline answers remote Gets that hit the
// store on the connection's reader goroutine (no goroutine, no context);
// everything else goes to serveRPC on its own goroutine.
type rpcHandler struct{ e *Engine }

var _ transport.InlineHandler = rpcHandler{}

// ServeRPC serves one request, under a server span when it carries the
// caller's trace context.
func (h rpcHandler) ServeRPC(ctx context.Context, req transport.Request) transport.Response {
	if !h.e.serving.Load() {
		// The transport listens before Start has published the cluster
		// handle: answer as a node that cannot serve, and the caller
		// degrades.
		return statusResponse(ErrEngineStopped)
	}
	ctx, span := h.e.obs.incoming(ctx, req)
	resp := h.e.serveRPC(ctx, req)
	endIncoming(span, resp.Status)
	return resp
}

// ServeInline must never block: a store lookup is all it does. A traced
// request goes to ServeRPC, which records its span.
func (h rpcHandler) ServeInline(req transport.Request) (transport.Response, bool) {
	e := h.e
	if req.Op != opGet || !e.serving.Load() || e.state.Load() == stateStopped || !e.storeTrusted() {
		return transport.Response{}, false
	}
	if len(req.Trace) > 0 && e.obs.tracer != nil {
		return transport.Response{}, false
	}
	r, err := decodeKeys(req.Payload)
	if err != nil || len(r.keys) != 1 {
		return transport.Response{}, false
	}
	st := (*e.keyspaces.Load())[r.keyspace]
	if st == nil {
		return transport.Response{}, false
	}
	// Recorded before the pending check: see holders.go. (A Get that goes on
	// to serveGet is recorded there again, which only extends the lease.)
	st.holders.record(r.keys[0], req.From, holderLease(st, req.Flags))
	if st.pending.busy(r.keys[0]) {
		return transport.Response{}, false // serveGet waits for the write
	}
	ent, ok := st.store.Get(r.keys[0])
	if !ok || !ent.Fresh() {
		// serveGet looks the key up again, and the store counts both
		// lookups: this one must not count as a second Get.
		if ok {
			st.stats.relookedHits.Add(1)
		} else {
			st.stats.relookedMisses.Add(1)
		}
		return transport.Response{}, false
	}
	e.recordAccess(st, r.keys[0])
	st.stats.served.Add(1)
	if ent.Negative {
		st.stats.negativeHits.Add(1)
		return transport.Response{Status: statusNotFound}, true
	}
	if req.Flags&getFlagExpiry != 0 {
		// A near cache asks for the expiry: a fresh buffer, on its misses only.
		return transport.Response{Status: statusOK, Payload: withExpiry(ent.ExpiresAt, nearLease(st), ent.Value)}, true
	}
	// Stored values are immutable, so the transport may read this slice
	// while framing the response.
	return transport.Response{Status: statusOK, Payload: ent.Value}, true
}

// serveRPC answers requests from peers. Everything it does is local to this
// node: a forwarded request is never forwarded again (one hop), even when
// this node's ring disagrees with the sender's about the owner.
func (e *Engine) serveRPC(ctx context.Context, req transport.Request) transport.Response {
	// Serve from New until the end of Stop: peers may call while Start is
	// still joining, and while Stop has left but peers have not re-routed
	// yet (the transport's Drain then refuses new requests).
	if e.state.Load() == stateStopped {
		return statusResponse(ErrEngineStopped)
	}
	if resp, refused := e.refuseControl(req); refused {
		return resp
	}
	switch req.Op {
	case opGet:
		return scoped(e, req.Payload, decodeKeys, func(st *ksState, r keysRequest) transport.Response {
			return e.serveGet(ctx, st, r, req.Flags, req.From)
		})
	case opGetMany:
		return scoped(e, req.Payload, decodeKeys, func(st *ksState, r keysRequest) transport.Response {
			return e.serveGetMany(ctx, st, r)
		})
	case opPut, opDelete:
		deadline, inner, refusal, ok := inTime(req.Payload)
		if !ok {
			return refusal
		}
		ctx, cancel := context.WithDeadline(ctx, deadline)
		defer cancel()
		if req.Op == opPut {
			return scoped(e, inner, decodePut, func(st *ksState, r putRequest) transport.Response {
				return e.serveWrite(ctx, st, r.entries, writePut)
			})
		}
		return scoped(e, inner, decodeKeys, func(st *ksState, r keysRequest) transport.Response {
			return e.serveWrite(ctx, st, deletes(r.keys), writeDelete)
		})
	case opInvalidate:
		return scoped(e, req.Payload, decodeInvalidate, e.serveInvalidate)
	case opPush:
		return scoped(e, req.Payload, decodeHandoff, e.servePush)
	case opDeleteKeySpace:
		return e.serveDeleteKeySpace(req.Payload)
	case opHandoff:
		return scoped(e, req.Payload, decodeHandoff, e.serveHandoff)
	case opReplicate:
		_, inner, refusal, ok := inTime(req.Payload)
		if !ok {
			return refusal
		}
		return scoped(e, inner, decodeReplicate, e.serveReplicate)
	case opHeld:
		return scoped(e, req.Payload, decodeKeys, func(st *ksState, r keysRequest) transport.Response { return e.serveHeld(ctx, st, r, req.From) })
	case opRingInfo:
		return transport.Response{Status: statusOK, Payload: binary.BigEndian.AppendUint64(nil, e.cl.Ring().Fingerprint())}
	case opClusterView:
		return e.serveClusterView()
	case opFlush:
		name, missedAt, err := decodeFlush(req.Payload)
		if err != nil {
			return transport.Response{Status: statusBadRequest}
		}
		e.serveFlush(name, missedAt)
		return transport.Response{Status: statusOK}
	case opLeaving:
		name, err := decodeName(req.Payload)
		if err != nil {
			return transport.Response{Status: statusBadRequest}
		}
		e.noteLeaving(name)
		return transport.Response{Status: statusOK}
	}
	return transport.Response{Status: statusBadRequest}
}

// inTime decodes a write's deadline (opPut, opDelete, opReplicate) and
// refuses the write once it has passed: a write is applied by its writer's
// deadline or never, because a request delayed in the network (a partition
// that heals, a retransmission) must not land after the writer gave up and
// wrote a newer value. (The transport's own budget starts when the frame
// arrives.) Without ok, refusal is the answer.
func inTime(p []byte) (deadline time.Time, inner []byte, refusal transport.Response, ok bool) {
	deadline, inner, err := decodeWriteDeadline(p)
	if err != nil {
		return deadline, nil, transport.Response{Status: statusBadRequest}, false
	}
	if !time.Now().Before(deadline) {
		return deadline, nil, statusResponse(context.DeadlineExceeded), false
	}
	return deadline, inner, transport.Response{}, true
}

func statusResponse(err error) transport.Response {
	st, msg := statusOf(err)
	return transport.Response{Status: st, Payload: []byte(msg)}
}

// scopedRequest is a decoded request about one keyspace's keys.
type scopedRequest interface{ keySpace() string }

func (r keysRequest) keySpace() string       { return r.keyspace }
func (r putRequest) keySpace() string        { return r.keyspace }
func (r invalidateRequest) keySpace() string { return r.keyspace }
func (r handoffRequest) keySpace() string    { return r.keyspace }

// scoped decodes a keyspace-scoped request and resolves its keyspace, then
// serves it; a malformed request or an unknown keyspace gets its status.
func scoped[R scopedRequest](e *Engine, p []byte, decode func([]byte) (R, error), serve func(*ksState, R) transport.Response) transport.Response {
	r, err := decode(p)
	if err != nil {
		return statusResponse(err)
	}
	st, err := e.keyspace(r.keySpace())
	if err != nil {
		return statusResponse(err)
	}
	return serve(st, r)
}

// serveGet answers a peer's Get of one key. from, the asker, is recorded as
// a holder of the key before the value is read (holders.go).
func (e *Engine) serveGet(ctx context.Context, st *ksState, r keysRequest, flags uint16, from string) transport.Response {
	if len(r.keys) != 1 {
		return transport.Response{Status: statusBadRequest}
	}
	if err := e.checkKey(r.keys[0]); err != nil {
		return statusResponse(err)
	}
	st.stats.served.Add(1)
	e.recordAccess(st, r.keys[0])
	st.holders.record(r.keys[0], from, holderLease(st, flags))
	// A write of the key in progress here has invalidated the asker's
	// copies: answering with the value it replaces could refill one.
	if err := st.pending.wait(ctx, r.keys[0]); err != nil {
		return statusResponse(err)
	}
	val, err := e.getLocal(ctx, st, r.keys[0])
	if err != nil {
		return statusResponse(err)
	}
	if flags&getFlagExpiry != 0 {
		// The expiry of what the store now holds, if it holds this value:
		// a value it does not hold (rejected, superseded, stale) must not
		// be kept in the asker's near cache.
		exp := time.Unix(0, expiryUnknown)
		if ent, ok := st.store.Peek(r.keys[0]); ok && !ent.Negative && bytes.Equal(ent.Value, val) {
			exp = ent.ExpiresAt
		}
		return transport.Response{Status: statusOK, Payload: withExpiry(exp, nearLease(st), val)}
	}
	// Stored and loaded values are immutable: the transport may read val
	// while framing the response, and the bytes never alias caller memory.
	return transport.Response{Status: statusOK, Payload: val}
}

// serveGetMany answers a batch (at most maxKeysPerRequest keys, checked by
// decodeKeys).
func (e *Engine) serveGetMany(ctx context.Context, st *ksState, r keysRequest) transport.Response {
	rs := make([]result, len(r.keys))
	// Each distinct valid key is looked up once: hits are answered here,
	// misses (and keys with a write pending) go to at most
	// maxServeWorkers goroutines, whatever the peer sent.
	first := make(map[string]int, len(r.keys))
	var misses []miss
	for i, k := range r.keys {
		if err := e.checkKey(k); err != nil {
			s, msg := statusOf(err)
			rs[i] = result{status: s, data: []byte(msg)}
			continue
		}
		if _, dup := first[k]; dup {
			continue
		}
		first[k] = i
		st.stats.served.Add(1)
		e.recordAccess(st, k)
		if st.pending.busy(k) {
			misses = append(misses, miss{i: i, pending: true})
			continue
		}
		ent, ok := e.lookup(st, k)
		if ok && ent.Fresh() {
			rs[i] = hitResult(st, ent)
			continue
		}
		misses = append(misses, miss{i: i, stale: st.staleCandidate(ent, ok)})
	}
	e.serveMisses(ctx, st, r.keys, misses, rs)
	for i, k := range r.keys {
		if j, ok := first[k]; ok && j != i {
			rs[i] = rs[j]
		}
	}
	omitOverBudget(rs, maxWireValueBytes)
	return transport.Response{Status: statusOK, Payload: encodeResults(rs)}
}

// maxServeWorkers bounds the goroutines one GetMany request may occupy on
// its server (misses wait for writes and loads there).
const maxServeWorkers = 64

// miss is a key of a GetMany request that the store did not answer.
type miss struct {
	i       int          // its index in the request
	pending bool         // a write of it was pending: wait, then read again
	stale   *cache.Entry // see staleCandidate
}

// serveMisses fills rs for each miss from the owner's read path, on at
// most maxServeWorkers goroutines.
func (e *Engine) serveMisses(ctx context.Context, st *ksState, keys []string, misses []miss, rs []result) {
	if len(misses) == 0 {
		return
	}
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range min(len(misses), maxServeWorkers) {
		wg.Go(func() {
			for {
				n := int(next.Add(1)) - 1
				if n >= len(misses) {
					return
				}
				m := misses[n]
				i := m.i
				val, err := func() ([]byte, error) {
					if !m.pending {
						return e.load(ctx, st, keys[i], m.stale)
					}
					if err := st.pending.wait(ctx, keys[i]); err != nil {
						return nil, err
					}
					return e.getLocal(ctx, st, keys[i])
				}()
				if err != nil {
					s, msg := statusOf(err)
					rs[i] = result{status: s, data: []byte(msg)}
					continue
				}
				rs[i] = result{status: statusOK, data: val}
			}
		})
	}
	wg.Wait()
}

// hitResult answers a fresh entry.
func hitResult(st *ksState, ent cache.Entry) result {
	if ent.Negative {
		st.stats.negativeHits.Add(1)
		return result{status: statusNotFound}
	}
	return result{status: statusOK, data: ent.Value}
}

// omitOverBudget keeps a batch answer within budget bytes of values: the
// first result always goes (a single value fits a frame, see
// maxWireValueBytes), and from the first one that would overflow the budget
// on, values are replaced by statusOmitted, which the asker requests again.
// So a GetMany of many large values is answered in several rounds instead
// of failing for exceeding the frame.
func omitOverBudget(rs []result, budget int) {
	used := 0
	for i := range rs {
		used += len(rs[i].data) + 16
		if i > 0 && used > budget {
			for j := i; j < len(rs); j++ {
				rs[j] = result{status: statusOmitted}
			}
			return
		}
	}
}

// deletes is keys as the entries of a Delete batch.
func deletes(keys []string) []Entry {
	dels := make([]Entry, len(keys))
	for i, k := range keys {
		dels[i].Key = k
	}
	return dels
}

// serveWrite applies a forwarded batch of writes as their owner (see
// applyAsOwner; putLocal copies values out of the request buffer) and
// answers with each key's outcome. Keys and values are held to the same
// limits as the public API; a key repeated in the batch is written once,
// with its last entry (as PutMany does), and every copy reports that
// outcome.
func (e *Engine) serveWrite(ctx context.Context, st *ksState, entries []Entry, kind writeKind) transport.Response {
	rs := make([]result, len(entries))
	valid := make([]Entry, 0, len(entries))
	idx := make([]int, 0, len(entries))
	at := make(map[string]int, len(entries)) // key -> its index in valid
	for i, en := range entries {
		err := e.checkKey(en.Key)
		if err == nil && len(en.Value) > e.cfg.MaxValueBytes {
			err = fmt.Errorf("%w: %d bytes for %q, limit %d", ErrValueTooLarge, len(en.Value), en.Key, e.cfg.MaxValueBytes)
		}
		if err != nil {
			s, msg := statusOf(err)
			rs[i] = result{status: s, data: []byte(msg)}
			continue
		}
		if j, dup := at[en.Key]; dup {
			valid[j], idx[j] = en, i
			continue
		}
		at[en.Key] = len(valid)
		valid = append(valid, en)
		idx = append(idx, i)
	}
	for j, err := range e.applyAsOwner(ctx, st, valid, kind) {
		s, msg := statusOf(err)
		rs[idx[j]] = result{status: s, data: []byte(msg)}
	}
	if len(valid) < len(entries) {
		for i, en := range entries {
			if j, ok := at[en.Key]; ok && idx[j] != i {
				rs[i] = rs[idx[j]]
			}
		}
	}
	return transport.Response{Status: statusOK, Payload: encodeResults(rs)}
}

// invalidationReceived, when set (by tests, see export_test.go), runs on
// the receiving node before it handles an invalidation: a test holds it
// there, as a frozen node would.
var invalidationReceived atomic.Pointer[func(node string)]

// serveInvalidate drops this node's copies of keys (main store, near
// cache, loads and forwards in flight) at the request of their owner,
// which is applying a write of them.
func (e *Engine) serveInvalidate(st *ksState, r invalidateRequest) transport.Response {
	if h := invalidationReceived.Load(); h != nil {
		(*h)(e.selfName)
	}
	e.removeWritten(st, r.keys, writeNote{by: r.from, ver: r.ver})
	return transport.Response{Status: statusOK}
}

func (e *Engine) serveDeleteKeySpace(p []byte) transport.Response {
	name, err := decodeName(p)
	if err != nil {
		return transport.Response{Status: statusBadRequest}
	}
	return statusResponse(e.deleteKeySpaceLocal(name))
}

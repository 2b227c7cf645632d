package engine

import (
	"context"
	"errors"
	"sync"

	"github.com/distcache/distcache/cluster/transport"
)

// serveRPC answers requests from peers. Everything it does is local to this
// node: a forwarded request is never forwarded again (one hop), even when
// this node's ring disagrees with the sender's about the owner.
func (e *Engine) serveRPC(ctx context.Context, req transport.Request) transport.Response {
	if err := e.checkState(); err != nil {
		if errors.Is(err, ErrEngineNotStarted) {
			// Joined but Start has not returned yet: serve anyway, the
			// keyspaces exist from New on.
		} else {
			return statusResponse(ErrEngineStopped)
		}
	}
	switch req.Op {
	case opGet:
		return e.serveGet(ctx, req.Payload)
	case opGetMany:
		return e.serveGetMany(ctx, req.Payload)
	case opPut:
		return e.servePut(ctx, req.Payload)
	case opDelete:
		return e.serveDelete(req.Payload)
	case opDeleteKeySpace:
		return e.serveDeleteKeySpace(req.Payload)
	}
	return transport.Response{Status: statusBadRequest}
}

func statusResponse(err error) transport.Response {
	st, msg := statusOf(err)
	return transport.Response{Status: st, Payload: []byte(msg)}
}

func (e *Engine) serveGet(ctx context.Context, p []byte) transport.Response {
	r, err := decodeKeys(p)
	if err != nil || len(r.keys) != 1 {
		return transport.Response{Status: statusBadRequest}
	}
	st, err := e.keyspace(r.keyspace)
	if err != nil {
		return statusResponse(err)
	}
	st.stats.served.Add(1)
	val, err := e.getLocal(ctx, st, r.keys[0])
	if err != nil {
		return statusResponse(err)
	}
	// The transport copies the payload into its frame before we return, so
	// the cache's bytes never leave this node by reference.
	return transport.Response{Status: statusOK, Payload: val}
}

func (e *Engine) serveGetMany(ctx context.Context, p []byte) transport.Response {
	r, err := decodeKeys(p)
	if err != nil {
		return transport.Response{Status: statusBadRequest}
	}
	st, err := e.keyspace(r.keyspace)
	if err != nil {
		return statusResponse(err)
	}
	st.stats.served.Add(1)
	rs := make([]result, len(r.keys))
	var wg sync.WaitGroup
	for i, k := range r.keys {
		wg.Go(func() {
			val, err := e.getLocal(ctx, st, k)
			if err != nil {
				s, msg := statusOf(err)
				rs[i] = result{status: s, data: []byte(msg)}
				return
			}
			rs[i] = result{status: statusOK, data: val}
		})
	}
	wg.Wait()
	return transport.Response{Status: statusOK, Payload: encodeResults(rs)}
}

func (e *Engine) servePut(ctx context.Context, p []byte) transport.Response {
	r, err := decodePut(p)
	if err != nil {
		return transport.Response{Status: statusBadRequest}
	}
	st, err := e.keyspace(r.keyspace)
	if err != nil {
		return statusResponse(err)
	}
	rs := make([]result, len(r.entries))
	for i, en := range r.entries {
		if err := e.checkKey(en.Key); err != nil {
			rs[i] = result{status: statusError, data: []byte(err.Error())}
			continue
		}
		s, msg := statusOf(e.putLocal(ctx, st, en)) // putLocal copies the value
		rs[i] = result{status: s, data: []byte(msg)}
	}
	return transport.Response{Status: statusOK, Payload: encodeResults(rs)}
}

func (e *Engine) serveDelete(p []byte) transport.Response {
	r, err := decodeKeys(p)
	if err != nil {
		return transport.Response{Status: statusBadRequest}
	}
	st, err := e.keyspace(r.keyspace)
	if err != nil {
		return statusResponse(err)
	}
	for _, k := range r.keys {
		e.deleteLocal(st, k)
	}
	return transport.Response{Status: statusOK}
}

func (e *Engine) serveDeleteKeySpace(p []byte) transport.Response {
	d := decoder{b: p}
	name := d.str()
	if d.done() != nil {
		return transport.Response{Status: statusBadRequest}
	}
	return statusResponse(e.deleteKeySpaceLocal(name))
}

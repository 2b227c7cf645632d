package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/distcache/distcache/chaos/internal/ctlapi"
	"github.com/distcache/distcache/chaos/internal/stall"
	"github.com/distcache/distcache/engine"
	"github.com/distcache/distcache/internal/enginehook"
)

// control serves the driver's calls (ctlapi) on this node's engine.
type control struct {
	e      *engine.Engine
	stalls *stall.Detector
}

func newControl(e *engine.Engine, stalls *stall.Detector) http.Handler {
	c := &control{e: e, stalls: stalls}
	mux := http.NewServeMux()
	mux.HandleFunc(ctlapi.PathOp, c.op)
	mux.HandleFunc(ctlapi.PathStatus, c.status)
	return mux
}

// op runs one Get, Put or Delete under the deadline the driver chose, so
// the driver measures the engine's own deadline handling.
func (c *control) op(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	key := q.Get("key")
	ms, err := strconv.ParseInt(q.Get("timeout_ms"), 10, 64)
	if err != nil || ms <= 0 {
		http.Error(w, "bad timeout_ms", http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Duration(ms)*time.Millisecond)
	defer cancel()
	var res ctlapi.OpResult
	switch q.Get("op") {
	case ctlapi.OpGet:
		var v []byte
		v, err = c.e.Get(ctx, ctlapi.KeySpace, key)
		res.Value = string(v)
	case ctlapi.OpPut:
		var ver uint64
		ver, err = strconv.ParseUint(q.Get("version"), 10, 64)
		if err != nil {
			http.Error(w, "bad version", http.StatusBadRequest)
			return
		}
		err = c.e.Put(ctx, ctlapi.KeySpace, engine.Entry{Key: key, Value: ctlapi.Value(key, ver)})
	case ctlapi.OpDelete:
		err = c.e.Delete(ctx, ctlapi.KeySpace, key)
	default:
		http.Error(w, "bad op", http.StatusBadRequest)
		return
	}
	res.OK = err == nil
	if err != nil {
		res.Err, res.Msg = classify(err), err.Error()
	}
	writeJSON(w, res)
}

func (c *control) status(w http.ResponseWriter, _ *http.Request) {
	ring := enginehook.Cluster(c.e).Ring()
	st := ctlapi.Status{Name: c.e.NodeName(), RingMembers: ring.Len(), Fingerprint: ring.Fingerprint(), Stalls: c.stalls.Stalls()}
	if ks, ok := c.e.Stats().KeySpace(ctlapi.KeySpace); ok {
		st.Fetches, st.Degraded, st.Entries = ks.Fetches, ks.Degraded, ks.Entries
	}
	writeJSON(w, st)
}

// classify maps an engine error to its ctlapi class.
func classify(err error) string {
	var re *engine.RemoteError
	switch {
	case errors.Is(err, engine.ErrPeerUnavailable):
		return ctlapi.ErrPeerUnavailable
	case errors.Is(err, context.DeadlineExceeded):
		return ctlapi.ErrDeadline
	case errors.Is(err, engine.ErrEngineStopped):
		return ctlapi.ErrStopped
	case errors.Is(err, engine.ErrEngineNotStarted):
		return ctlapi.ErrNotStarted
	case errors.Is(err, engine.ErrNotFound):
		return ctlapi.ErrNotFound
	case errors.Is(err, engine.ErrRejected):
		return ctlapi.ErrRejected
	case errors.As(err, &re):
		return ctlapi.ErrRemote
	}
	return ctlapi.ErrOther
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

package engine

import (
	"context"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Public calls counted per keyspace, apart from Get (see getCalls).
const (
	callGetMany = iota
	callPut
	callDelete
	numCalls
)

// callNames are the distcache.operation values of the counted calls.
var callNames = [numCalls]string{callGetMany: "get_many", callPut: "put", callDelete: "delete"}

// ksTelemetry is a keyspace's share of the engine's telemetry: call counts,
// the Get latency histogram, and what the observable Get count last read.
type ksTelemetry struct {
	calls [numCalls]atomic.Int64
	// getManyKeys counts the (distinct) keys GetMany asked for: Stats.Gets
	// counts them with Get's keys, getCalls takes them out again.
	getManyKeys atomic.Int64
	// uncountedLookups counts the lookups the store does not count: those
	// made while a flush is pending (see lookupSinceFlush). Stats adds them
	// to Gets.
	uncountedLookups atomic.Int64
	getLatency       latencyHist

	// mu guards lastGets, the highest Get count reported (getCalls).
	mu       sync.Mutex
	lastGets int64
}

// getCalls is the number of Get calls on this keyspace, derived from the
// counters Stats reads (Gets less GetMany's keys) so that a local hit costs
// no counter of its own: the store counts it on its reader slot. A Get that
// is between two of those counters can make the difference dip by one for a
// moment; the count reported never goes below an earlier report, so the
// counter stays monotonic.
func (st *ksState) getCalls(snap *KeySpaceStats) int64 {
	n := snap.Gets - st.tel.getManyKeys.Load()
	t := &st.tel
	t.mu.Lock()
	defer t.mu.Unlock()
	if n < t.lastGets {
		return t.lastGets
	}
	t.lastGets = n
	return n
}

// instruments are the engine's observable instruments, read at collection
// time from the same counters as Stats and the admin endpoints.
type instruments struct {
	requests, hits, misses, nearHits, fetches, fetchErrors, handoffs, degraded metric.Int64ObservableCounter
	entries, bytes, members                                                    metric.Int64ObservableGauge
}

// registerInstruments creates the observable instruments on m and the
// callback that reads them; unregister it at Stop.
func (e *Engine) registerInstruments(m metric.Meter) (metric.Registration, error) {
	var (
		ins instruments
		err error
	)
	counter := func(dst *metric.Int64ObservableCounter, name, unit, desc string) {
		if err == nil {
			*dst, err = m.Int64ObservableCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		}
	}
	gauge := func(dst *metric.Int64ObservableGauge, name, unit, desc string) {
		if err == nil {
			*dst, err = m.Int64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
		}
	}
	counter(&ins.requests, "distcache.engine.requests", "{request}",
		"Public engine calls, local and near hits included, by distcache.operation and keyspace.")
	counter(&ins.hits, "distcache.engine.hits", "{lookup}",
		"Lookups in this node's store that found a fresh entry, for this node's Gets and for peers' (Stats Hits).")
	counter(&ins.misses, "distcache.engine.misses", "{lookup}",
		"Lookups in this node's store that found nothing fresh (Stats Misses).")
	counter(&ins.nearHits, "distcache.engine.near_hits", "{get}",
		"Gets of keys owned elsewhere answered from this node's near cache (Stats NearHits).")
	counter(&ins.fetches, "distcache.datasource.fetches", "{fetch}",
		"DataSource calls made by this node, after coalescing, refused ones included (Stats Fetches).")
	counter(&ins.fetchErrors, "distcache.datasource.errors", "{fetch}",
		"DataSource calls that failed, by error.type: error, rate_limited, circuit_open (not-found is not a failure).")
	counter(&ins.handoffs, "distcache.engine.handoffs", "{entry}",
		"Entries handed to a new owner (distcache.direction=sent) or taken from a leaving one (received).")
	counter(&ins.degraded, "distcache.engine.degraded", "{load}",
		"Local loads made because the key's owner could not serve (Stats Degraded).")
	gauge(&ins.entries, "distcache.engine.entries", "{entry}",
		"Entries in this node's store, counted at most once a second.")
	gauge(&ins.bytes, "distcache.engine.bytes", "By",
		"Bytes used by this node's store (distcache.store=main) and near cache (near).")
	gauge(&ins.members, "distcache.cluster.members", "{member}",
		"Members in this node's ring.")
	if err != nil {
		return nil, err
	}
	return m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		e.observe(o, &ins)
		return nil
	}, ins.requests, ins.hits, ins.misses, ins.nearHits, ins.fetches, ins.fetchErrors, ins.handoffs, ins.degraded,
		ins.entries, ins.bytes, ins.members)
}

// Attribute keys of the engine's instruments.
const (
	attrOperation = attribute.Key("distcache.operation")
	attrKeySpace  = attribute.Key("distcache.keyspace")
)

// observe reports every instrument's current value.
func (e *Engine) observe(o metric.Observer, ins *instruments) {
	if e.checkState() == nil {
		o.ObserveInt64(ins.members, int64(e.cl.Ring().Len()))
	}
	o.ObserveInt64(ins.requests, e.obs.deleteKeySpaces.Load(), metric.WithAttributeSet(attribute.NewSet(attrOperation.String("delete_keyspaces"))))
	o.ObserveInt64(ins.requests, e.obs.updateKeySpace.Load(), metric.WithAttributeSet(attribute.NewSet(attrOperation.String("update_keyspace"))))
	for _, st := range *e.keyspaces.Load() {
		snap := st.counters()
		ks := attrKeySpace.String(st.name)
		only := metric.WithAttributeSet(attribute.NewSet(ks))
		op := func(name string) metric.ObserveOption {
			return metric.WithAttributeSet(attribute.NewSet(attrOperation.String(name), ks))
		}
		o.ObserveInt64(ins.requests, st.getCalls(&snap), op("get"))
		for i, name := range callNames {
			o.ObserveInt64(ins.requests, st.tel.calls[i].Load(), op(name))
		}
		o.ObserveInt64(ins.hits, snap.Hits, only)
		o.ObserveInt64(ins.misses, snap.Misses, only)
		o.ObserveInt64(ins.nearHits, snap.NearHits, only)
		o.ObserveInt64(ins.fetches, snap.Fetches, only)
		for _, fe := range []struct {
			typ string
			n   int64
		}{{"error", snap.FetchErrors}, {"rate_limited", snap.RateLimited}, {"circuit_open", snap.CircuitOpen}} {
			o.ObserveInt64(ins.fetchErrors, fe.n, metric.WithAttributeSet(attribute.NewSet(ks, attribute.String("error.type", fe.typ))))
		}
		o.ObserveInt64(ins.handoffs, snap.HandedOff, metric.WithAttributeSet(attribute.NewSet(ks, attribute.String("distcache.direction", "sent"))))
		o.ObserveInt64(ins.handoffs, snap.HandoffsTaken, metric.WithAttributeSet(attribute.NewSet(ks, attribute.String("distcache.direction", "received"))))
		o.ObserveInt64(ins.degraded, snap.Degraded, only)
		o.ObserveInt64(ins.entries, st.adminEntries.get(st.store), only)
		o.ObserveInt64(ins.bytes, snap.UsedBytes, metric.WithAttributeSet(attribute.NewSet(ks, attribute.String("distcache.store", "main"))))
		if st.near != nil {
			o.ObserveInt64(ins.bytes, snap.NearUsedBytes, metric.WithAttributeSet(attribute.NewSet(ks, attribute.String("distcache.store", "near"))))
		}
	}
}

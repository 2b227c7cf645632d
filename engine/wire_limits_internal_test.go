package engine

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/distcache/distcache/discovery/static"
	"github.com/distcache/distcache/internal/transport"
	"github.com/distcache/distcache/keyspace"
	"github.com/stretchr/testify/require"
)

// heldSource is a DataSource that counts its fetches and, while held,
// blocks every fetch until released (or its ctx ends).
type heldSource struct {
	fetches, inFlight atomic.Int64
	mu                sync.Mutex
	gate              chan struct{} // nil: not held
}

func (h *heldSource) Fetch(ctx context.Context, key string) ([]byte, error) {
	h.fetches.Add(1)
	h.inFlight.Add(1)
	defer h.inFlight.Add(-1)
	h.mu.Lock()
	gate := h.gate
	h.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return []byte("v-" + key), nil
}

func (h *heldSource) hold() (release func()) {
	gate := make(chan struct{})
	h.mu.Lock()
	h.gate = gate
	h.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			h.mu.Lock()
			h.gate = nil
			h.mu.Unlock()
			close(gate)
		})
	}
}

// startWireNode starts a single loopback engine over ds, with small key
// and value limits, and returns a function that sends it one raw request
// through the real transport (as any peer would).
func startWireNode(t *testing.T, ds keyspace.DataSource) (*Engine, func(op uint8, payload []byte) transport.Response) {
	t.Helper()
	ctx := context.Background()
	e, err := New(NewConfig(static.NewDiscovery(nil), []keyspace.KeySpace{keyspace.New("t", 64<<20, ds)},
		WithBindAddr("127.0.0.1"), WithBindPort(0), WithLabel("wire-"+t.Name()),
		WithMaxKeyBytes(64), WithMaxValueBytes(1<<10), WithReadTimeout(30*time.Second)))
	require.NoError(t, err)
	require.NoError(t, e.Start(ctx))
	t.Cleanup(func() { _ = e.Stop(ctx) })
	send := func(op uint8, payload []byte) transport.Response {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		resp, err := e.cl.Transport().Call(cctx, e.Addr(), transport.Request{Op: op, Payload: payload})
		require.NoError(t, err)
		return resp
	}
	return e, send
}

// manyKeys returns n distinct keys.
func manyKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%d", i)
	}
	return keys
}

// One hostile GetMany frame costs a bounded amount on its server: 200k keys
// are refused before a fetch or a goroutine; the largest accepted request
// occupies at most maxServeWorkers goroutines and fetches each distinct
// key once; the node keeps serving meanwhile.
func TestWireGetManyBounded(t *testing.T) {
	ds := &heldSource{}
	e, send := startWireNode(t, ds)

	resp := send(opGetMany, encodeKeys("t", manyKeys(200_000)))
	require.ErrorIs(t, errorOf("self", resp.Status, resp.Payload), errTooManyKeys)
	resp = send(opGetMany, encodeKeys("t", make([]string, 600_000))) // 600k empty keys
	require.ErrorIs(t, errorOf("self", resp.Status, resp.Payload), errTooManyKeys)
	require.Zero(t, ds.fetches.Load(), "a refused request fetches nothing")

	// The largest request, every key a miss, with the DataSource stuck.
	release := ds.hold()
	defer release()
	base := runtime.NumGoroutine()
	keys := manyKeys(maxKeysPerRequest)
	answered := make(chan transport.Response, 1)
	go func() { answered <- send(opGetMany, encodeKeys("t", keys)) }()
	require.Eventually(t, func() bool { return ds.inFlight.Load() == maxServeWorkers },
		10*time.Second, time.Millisecond, "the request's workers reach the DataSource")
	// Its workers, their loads and their fetch timers, and the transport's
	// own: far fewer than one per key.
	require.Less(t, runtime.NumGoroutine()-base, 3*maxServeWorkers+20)
	require.EqualValues(t, maxServeWorkers, ds.fetches.Load(), "no key beyond the workers is fetched yet")

	// The node keeps answering other callers meanwhile.
	require.NoError(t, e.Put(context.Background(), "t", Entry{Key: "other", Value: []byte("x")}))
	v, err := e.Get(context.Background(), "t", "other")
	require.NoError(t, err)
	require.Equal(t, "x", string(v))

	release()
	resp = <-answered
	require.Equal(t, statusOK, resp.Status)
	rs, err := decodeResults(resp.Payload, len(keys))
	require.NoError(t, err)
	for i, r := range rs {
		require.Equal(t, statusOK, r.status, keys[i])
		require.Equal(t, "v-"+keys[i], string(r.data))
	}
	require.EqualValues(t, maxKeysPerRequest, ds.fetches.Load())

	// Duplicates are collapsed: one fetch, every copy answered.
	dup := make([]string, maxKeysPerRequest)
	for i := range dup {
		dup[i] = "same"
	}
	resp = send(opGetMany, encodeKeys("t", dup))
	require.Equal(t, statusOK, resp.Status)
	rs, err = decodeResults(resp.Payload, len(dup))
	require.NoError(t, err)
	for _, r := range rs {
		require.Equal(t, "v-same", string(r.data))
	}
	require.EqualValues(t, maxKeysPerRequest+1, ds.fetches.Load())
}

// Wire requests are held to the public API's limits, with the same typed
// errors: an empty key, a key over MaxKeyBytes and a value over
// MaxValueBytes never reach the DataSource or the store.
func TestWireRequestLimits(t *testing.T) {
	ds := &heldSource{}
	e, send := startWireNode(t, ds)
	long := strings.Repeat("k", 65)
	errOf := func(resp transport.Response) error { return errorOf("self", resp.Status, resp.Payload) }

	require.ErrorIs(t, errOf(send(opGet, encodeKeys("t", []string{""}))), ErrEmptyKey)
	err := errOf(send(opGet, encodeKeys("t", []string{long})))
	require.ErrorIs(t, err, ErrKeyTooLarge)
	require.Contains(t, err.Error(), "limit 64", "the message travels with the status")

	resp := send(opGetMany, encodeKeys("t", []string{"", long, "ok"}))
	require.Equal(t, statusOK, resp.Status)
	rs, err := decodeResults(resp.Payload, 3)
	require.NoError(t, err)
	require.ErrorIs(t, errorOf("self", rs[0].status, rs[0].data), ErrEmptyKey)
	require.ErrorIs(t, errorOf("self", rs[1].status, rs[1].data), ErrKeyTooLarge)
	require.Equal(t, "v-ok", string(rs[2].data))
	require.EqualValues(t, 1, ds.fetches.Load(), "only the valid key is fetched")

	put := func(entries []Entry) []result {
		resp := send(opPut, withWriteDeadline(time.Now().Add(10*time.Second), encodePut("t", entries)))
		require.Equal(t, statusOK, resp.Status, "%v", errOf(resp))
		rs, err := decodeResults(resp.Payload, len(entries))
		require.NoError(t, err)
		return rs
	}
	rs = put([]Entry{
		{Key: "big", Value: make([]byte, 1<<10+1)},
		{Key: "", Value: []byte("x")},
		{Key: long, Value: []byte("x")},
		{Key: "dup", Value: []byte("first")},
		{Key: "dup", Value: []byte("last")},
	})
	require.ErrorIs(t, errorOf("self", rs[0].status, rs[0].data), ErrValueTooLarge)
	require.ErrorIs(t, errorOf("self", rs[1].status, rs[1].data), ErrEmptyKey)
	require.ErrorIs(t, errorOf("self", rs[2].status, rs[2].data), ErrKeyTooLarge)
	require.Equal(t, statusOK, rs[3].status)
	require.Equal(t, statusOK, rs[4].status)
	st, err := e.keyspace("t")
	require.NoError(t, err)
	_, ok := st.store.Peek("big")
	require.False(t, ok, "an oversized value is not stored")
	v, err := e.Get(context.Background(), "t", "dup")
	require.NoError(t, err)
	require.Equal(t, "last", string(v), "a repeated key is written once, with its last entry")

	resp = send(opPut, withWriteDeadline(time.Now().Add(10*time.Second),
		encodePut("t", make([]Entry, maxKeysPerRequest+1))))
	require.ErrorIs(t, errOf(resp), errTooManyKeys)
	resp = send(opDelete, withWriteDeadline(time.Now().Add(10*time.Second), encodeKeys("t", manyKeys(maxKeysPerRequest+1))))
	require.ErrorIs(t, errOf(resp), errTooManyKeys)
	require.ErrorIs(t, errOf(send(opInvalidate, encodeInvalidate("t", e.selfName, 1, manyKeys(maxKeysPerRequest+1)))), errTooManyKeys)
	require.ErrorIs(t, errOf(send(opHandoff, encodeHandoff("t", e.selfName, make([]handoffEntry, maxKeysPerRequest+1)))), errTooManyKeys)
}

package engine

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/distcache/distcache/internal/cache"
	"github.com/distcache/distcache/internal/transport"

	"github.com/distcache/distcache/discovery/static"
	"github.com/distcache/distcache/keyspace"
	"github.com/stretchr/testify/require"
)

// While a partition flush is pending (decided when the ring grew back,
// run in the background), entries stored before the decision answer no
// reads and are flushed, and writes acknowledged since are served and kept.
func TestPartitionFlushKeepsNewerWrites(t *testing.T) {
	ctx := context.Background()
	e := startLone(t, fromDS)
	for _, k := range []string{"read-in-window", "never-read"} {
		require.NoError(t, e.Put(ctx, "t", Entry{Key: k, Value: []byte("stale")}))
	}

	// What onRingChange does when a node that missed writes reconnects; the
	// background flush has not run yet.
	st, err := e.keyspace("t")
	require.NoError(t, err)
	st.flushFrom.Store(st.store.Version())
	e.flushReq.Add(1)
	require.False(t, e.storeTrusted())

	v, err := e.Get(ctx, "t", "read-in-window")
	require.NoError(t, err)
	require.Equal(t, "from-ds", string(v), "an entry from before the decision is not served")
	require.NoError(t, e.Put(ctx, "t", Entry{Key: "written-in-window", Value: []byte("fresh")}))
	v, err = e.Get(ctx, "t", "written-in-window")
	require.NoError(t, err)
	require.Equal(t, "fresh", string(v), "a write acknowledged after the decision is served")
	got, err := e.GetMany(ctx, "t", []string{"read-in-window", "written-in-window"})
	require.NoError(t, err)
	require.Equal(t, "from-ds", string(got["read-in-window"]))
	require.Equal(t, "fresh", string(got["written-in-window"]))

	// The flush runs: it drops what predates the decision, keeps the rest.
	e.purgePending.Store(true)
	e.purgeRounds()
	require.True(t, e.storeTrusted())
	_, ok := st.store.Peek("never-read")
	require.False(t, ok, "an entry from before the decision is flushed")
	for k, want := range map[string]string{"read-in-window": "from-ds", "written-in-window": "fresh"} {
		ent, ok := st.store.Peek(k)
		require.True(t, ok, "%s kept", k)
		require.Equal(t, want, string(ent.Value))
	}
}

// A gap in the process's execution longer than the pause limit (as after
// SIGSTOP) is noticed by the first read after it, before the watchdog
// wakes: that read, and every later one, ignores what was stored before
// the gap; loads and near copies begun before it are not kept. (The chaos
// suite proves the same with real SIGSTOPped processes.)
func TestPauseMarksStoresUntrusted(t *testing.T) {
	ctx := context.Background()
	var fetches atomic.Int64
	ds := keyspace.DataSourceFunc(func(context.Context, string) ([]byte, error) {
		fetches.Add(1)
		return []byte("from-ds"), nil
	})
	e := startLone(t, ds, WithClusterTuning(ClusterTuning{PauseLimit: time.Hour})) // the watchdog stays quiet
	require.NoError(t, e.Put(ctx, "t", Entry{Key: "k", Value: []byte("before-pause")}))
	v, err := e.Get(ctx, "t", "k")
	require.NoError(t, err)
	require.Equal(t, "before-pause", string(v), "no pause: served from the store")
	require.Zero(t, fetches.Load())

	// The process "did not run" for longer than the limit.
	e.pause.beat.Store(e.pause.beat.Load() - int64(2*time.Hour))
	v, err = e.Get(ctx, "t", "k")
	require.NoError(t, err)
	require.Equal(t, "from-ds", string(v), "the first read after the gap does not serve the old entry")
	require.EqualValues(t, 1, fetches.Load())
	require.Eventually(t, e.storeTrusted, 5*time.Second, 10*time.Millisecond, "the flush ran")
	v, err = e.Get(ctx, "t", "k")
	require.NoError(t, err)
	require.Equal(t, "from-ds", string(v))
	require.EqualValues(t, 1, fetches.Load(), "what was loaded after the gap is kept")
}

// A write request that reaches its owner after the writer's deadline (held
// up by a partition, say, while the writer gave up and wrote again) is
// refused, never applied; one within its deadline is applied.
func TestLateWriteRequestRefused(t *testing.T) {
	ctx := context.Background()
	e := startLone(t, fromDS)
	put := func(deadline time.Time, v string) transport.Response {
		return e.serveRPC(ctx, transport.Request{Op: opPut,
			Payload: withWriteDeadline(deadline, encodePut("t", []Entry{{Key: "k", Value: []byte(v)}}))})
	}
	resp := put(time.Now().Add(-time.Millisecond), "late")
	require.ErrorIs(t, errorOf("self", resp.Status, resp.Payload), context.DeadlineExceeded)
	v, err := e.Get(ctx, "t", "k")
	require.NoError(t, err)
	require.Equal(t, "from-ds", string(v), "the late write was not applied")

	resp = put(time.Now().Add(time.Second), "on-time")
	require.Equal(t, statusOK, resp.Status)
	v, err = e.Get(ctx, "t", "k")
	require.NoError(t, err)
	require.Equal(t, "on-time", string(v))

	resp = e.serveRPC(ctx, transport.Request{Op: opDelete, Payload: encodeKeys("t", []string{"k"})})
	require.NotEqual(t, statusOK, resp.Status, "a write without a deadline is refused")
	v, err = e.Get(ctx, "t", "k")
	require.NoError(t, err)
	require.Equal(t, "on-time", string(v))
}

// BenchmarkCheckPause is the pause check every read pays (one monotonic
// clock read and an atomic load), for comparison with the local hit
// benchmarks.
func BenchmarkCheckPause(b *testing.B) {
	e := &Engine{}
	e.pause.t0 = time.Now()
	e.pause.limit = time.Hour
	for b.Loop() {
		e.checkPause()
	}
}

// A flush notice about a write missed before this engine existed concerns
// an earlier process under the same name (crashed or left, restarted): it
// flushes nothing, so that the hand-offs and replica copies a restarted
// node received are kept. A notice about a later miss flushes.
func TestFlushNoticeAboutEarlierProcessIgnored(t *testing.T) {
	e := startLone(t, fromDS)

	before := e.flushGen()
	e.serveFlush("peer", e.created.Add(-2*flushClockSkew))
	require.Equal(t, before, e.flushGen(), "a miss before this process existed flushes nothing")
	e.serveFlush("peer", e.created.Add(-flushClockSkew/2))
	require.Equal(t, before+1, e.flushGen(), "a miss within the clock skew of the start flushes")
	e.serveFlush("peer", time.Now())
	require.Equal(t, before+2, e.flushGen(), "a miss during this process's life flushes")
}

// A holder asked for a key it is writing waits for the write and answers
// with the written value; if the write outlasts heldWaitMax it answers
// busy, never "absent": an asker taking the key over would load the
// DataSource's older value. Every asker is recorded as a holder.
func TestHeldWaitsForWriteInProgress(t *testing.T) {
	ctx := context.Background()
	e := startLone(t, fromDS)
	st, err := e.keyspace("t")
	require.NoError(t, err)
	ask := func() heldAnswer {
		resp := e.serveHeld(ctx, st, keysRequest{keyspace: "t", keys: []string{"k"}}, "asker")
		require.Equal(t, statusOK, resp.Status)
		a, err := decodeHeld(resp.Payload)
		require.NoError(t, err)
		return a
	}
	require.False(t, ask().found, "nothing held yet")
	held := st.holders.take("k", nil)
	require.True(t, len(held) == 1 && held[0].node == "asker",
		"the asker takes the key over: a write here, under a ring that lacks it, must invalidate it (%v)", held)

	release, err := st.pending.claim(ctx, []string{"k"})
	require.NoError(t, err)
	a := ask()
	require.True(t, a.busy, "a write outlasting the wait: busy")
	require.False(t, a.found)

	// The write completes while the holder waits: its value is the answer.
	release, err = func() (func(), error) { release(); return st.pending.claim(ctx, []string{"k"}) }()
	require.NoError(t, err)
	done := make(chan transport.Response)
	go func() { done <- e.serveHeld(ctx, st, keysRequest{keyspace: "t", keys: []string{"k"}}, "asker") }()
	require.NoError(t, st.store.Set("k", cache.Entry{Value: []byte("written")}))
	release()
	a, err = decodeHeld((<-done).Payload)
	require.NoError(t, err)
	require.False(t, a.busy)
	require.True(t, a.found)
	require.Equal(t, "written", string(a.value))
}

// fromDS answers every key with "from-ds".
var fromDS = keyspace.DataSourceFunc(func(context.Context, string) ([]byte, error) { return []byte("from-ds"), nil })

// startLone starts one engine with keyspace "t" over ds, alone in its
// cluster on 127.0.0.1, and stops it at the end of the test.
func startLone(t *testing.T, ds keyspace.DataSource, opts ...Option) *Engine {
	t.Helper()
	ctx := context.Background()
	opts = append([]Option{WithBindAddr("127.0.0.1"), WithBindPort(0), WithLabel("lone-" + t.Name())}, opts...)
	e, err := New(NewConfig(static.NewDiscovery(nil), []keyspace.KeySpace{keyspace.New("t", 1<<20, ds)}, opts...))
	require.NoError(t, err)
	require.NoError(t, e.Start(ctx))
	t.Cleanup(func() { _ = e.Stop(ctx) })
	return e
}

package engine

import (
	"context"
	"testing"

	"github.com/distcache/distcache/discovery/static"
	"github.com/distcache/distcache/keyspace"
	"github.com/stretchr/testify/require"
)

// While a partition flush is pending (decided when the ring grew back,
// run in the background), entries stored before the decision answer no
// reads and are flushed, and writes acknowledged since are served and kept.
func TestPartitionFlushKeepsNewerWrites(t *testing.T) {
	ctx := context.Background()
	ds := keyspace.DataSourceFunc(func(context.Context, string) ([]byte, error) { return []byte("from-ds"), nil })
	e, err := New(NewConfig(static.NewDiscovery(nil), []keyspace.KeySpace{keyspace.New("t", 1<<20, ds)},
		WithBindAddr("127.0.0.1"), WithBindPort(0), WithLabel("flush-"+t.Name())))
	require.NoError(t, err)
	require.NoError(t, e.Start(ctx))
	t.Cleanup(func() { _ = e.Stop(ctx) })
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

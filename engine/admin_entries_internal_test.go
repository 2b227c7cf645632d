package engine

import (
	"context"
	"fmt"
	"testing"

	"github.com/distcache/distcache/discovery/static"
	"github.com/distcache/distcache/keyspace"
	"github.com/stretchr/testify/require"
)

// Polling the admin keyspaces does not walk the store per request: the
// entry count is taken at most once per adminEntriesEvery, so requests in
// between report the same count while the store changes.
func TestAdminKeySpacesDoNotWalkPerRequest(t *testing.T) {
	ctx := context.Background()
	ds := keyspace.DataSourceFunc(func(context.Context, string) ([]byte, error) { return []byte("v"), nil })
	e, err := New(NewConfig(static.NewDiscovery(nil), []keyspace.KeySpace{keyspace.New("t", 64<<20, ds)},
		WithBindAddr("127.0.0.1"), WithBindPort(0), WithLabel("admin-"+t.Name())))
	require.NoError(t, err)
	require.NoError(t, e.Start(ctx))
	t.Cleanup(func() { _ = e.Stop(ctx) })
	put := func(prefix string) {
		for i := range 100 {
			require.NoError(t, e.Put(ctx, "t", Entry{Key: fmt.Sprint(prefix, i), Value: []byte("x")}))
		}
	}
	put("a")
	src := adminSource{e}
	first := src.KeySpaces()[0].Entries
	require.EqualValues(t, 100, first)
	put("b")
	for range 50 {
		require.Equal(t, first, src.KeySpaces()[0].Entries, "no walk within the period")
	}
	st, err := e.keyspace("t")
	require.NoError(t, err)
	st.adminEntries.mu.Lock()
	st.adminEntries.at = st.adminEntries.at.Add(-adminEntriesEvery) // the period has passed
	st.adminEntries.mu.Unlock()
	require.EqualValues(t, 200, src.KeySpaces()[0].Entries)
}

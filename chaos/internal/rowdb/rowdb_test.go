package rowdb

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/distcache/distcache/chaos/internal/ctlapi"
	"github.com/distcache/distcache/keyspace"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRowsAndCounts: a fetch returns the row's current version (0 before
// any Set), or ErrNotFound once it is deleted, and is counted once, under
// its key and the fetching node.
func TestRowsAndCounts(t *testing.T) {
	db, err := Start()
	require.NoError(t, err)
	defer db.Close()
	a, err := NewSource(db.URL(), "node-0")
	require.NoError(t, err)
	defer a.CloseIdleConnections()
	b, err := NewSource(db.URL(), "node-1")
	require.NoError(t, err)
	defer b.CloseIdleConnections()
	ctx := context.Background()

	v, err := a.Fetch(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, ctlapi.Value("k", 0), v)
	db.Set("k", 3)
	v, err = b.Fetch(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, ctlapi.Value("k", 3), v)
	_, err = b.Fetch(ctx, "other")
	require.NoError(t, err)

	db.Delete("k")
	_, err = a.Fetch(ctx, "k")
	require.ErrorIs(t, err, keyspace.ErrNotFound)
	db.Set("k", 4)
	v, err = a.Fetch(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, ctlapi.Value("k", 4), v)

	require.Equal(t, map[string]map[string]int{
		"k":     {"node-0": 3, "node-1": 1},
		"other": {"node-1": 1},
	}, db.Fetches())
}

// TestBadURL: a malformed database URL is an error, not a panic later.
func TestBadURL(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:80", "ftp://x", "http://"} {
		_, err := NewSource(u, "n")
		require.Error(t, err, u)
	}
}

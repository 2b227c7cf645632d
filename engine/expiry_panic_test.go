package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/distcache/distcache/engine"
	"github.com/distcache/distcache/keyspace"
	"github.com/distcache/distcache/testutil"
	"github.com/stretchr/testify/require"
)

// panickyExpiry is a keyspace whose ExpiresAt panics for keys prefixed
// "boom".
type panickyExpiry struct{ keyspace.KeySpace }

func (p panickyExpiry) ExpiresAt(ctx context.Context, key string) time.Time {
	if len(key) >= 4 && key[:4] == "boom" {
		panic("ExpiresAt exploded")
	}
	return p.KeySpace.ExpiresAt(ctx, key)
}

// A panic in KeySpace.ExpiresAt (user code, run on the owner after a
// fetch or a Put) fails that load or write with an error naming the
// keyspace, on the owner and through a forwarded hop, and never kills the
// node: every node keeps serving, and nothing is cached for the key.
func TestClusterExpiresAtPanicIsAnError(t *testing.T) {
	var c *testutil.Cluster
	c = testutil.NewCluster(t, 3, testutil.ClusterConfig{KeySpaces: func(int) []keyspace.KeySpace {
		return []keyspace.KeySpace{panickyExpiry{keyspace.New(ks, 64<<20, keyspace.DataSourceFunc(
			func(ctx context.Context, key string) ([]byte, error) { return c.DataSource.Fetch(ctx, key) }))}}
	}})
	ctx := context.Background()
	keys := c.KeysOwnedBy(0, 2, "boom")
	owner, other := c.Node(0), c.Node(1)

	_, err := owner.Get(ctx, ks, keys[0]) // local load
	require.ErrorContains(t, err, "ExpiresAt")
	_, err = other.Get(ctx, ks, keys[1]) // forwarded to the owner
	require.ErrorContains(t, err, "ExpiresAt")
	_, err = other.GetMany(ctx, ks, keys)
	require.ErrorContains(t, err, "ExpiresAt")
	require.ErrorContains(t, other.Put(ctx, ks, engine.Entry{Key: keys[0], Value: []byte("x")}), "ExpiresAt")
	require.ErrorContains(t, owner.Put(ctx, ks, engine.Entry{Key: keys[1], Value: []byte("x")}), "ExpiresAt")

	// Nothing was cached: each Get fetches again.
	before := c.DataSource.Fetches(keys[0])
	_, err = other.Get(ctx, ks, keys[0])
	require.Error(t, err)
	require.Equal(t, before+1, c.DataSource.Fetches(keys[0]))

	// An explicit expiry needs no ExpiresAt; other keys are unaffected.
	require.NoError(t, other.Put(ctx, ks, engine.Entry{Key: keys[0], Value: []byte("x"), Expiry: time.Now().Add(time.Hour)}))
	for i := range 3 {
		v, err := c.Node(i).Get(ctx, ks, keys[0])
		require.NoError(t, err)
		require.Equal(t, "x", string(v))
		v, err = c.Node(i).Get(ctx, ks, "fine")
		require.NoError(t, err)
		require.Equal(t, string(testutil.ValueOf("fine")), string(v))
	}
}

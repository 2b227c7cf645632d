package static

import (
	"context"
	"testing"

	"github.com/distcache/distcache/discovery"
	"github.com/stretchr/testify/require"
)

func TestStatic(t *testing.T) {
	ctx := context.Background()
	d := NewDiscovery(&Config{Addresses: []string{"127.0.0.1:7946", "node-b:7946"}})
	require.NoError(t, d.Start(ctx, discovery.Self{Name: "a", Addr: "127.0.0.1:7946"}))
	got, err := d.DiscoverPeers(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"127.0.0.1:7946", "node-b:7946"}, got)
	got[0] = "mutated"
	again, _ := d.DiscoverPeers(ctx)
	require.Equal(t, "127.0.0.1:7946", again[0], "callers get a copy")

	require.NoError(t, d.SetAddresses([]string{"10.0.0.1:1"}))
	got, _ = d.DiscoverPeers(ctx)
	require.Equal(t, []string{"10.0.0.1:1"}, got)
	require.NoError(t, d.Stop(ctx))
	require.NoError(t, d.Stop(ctx))

	empty := NewDiscovery(nil)
	require.NoError(t, empty.Start(ctx, discovery.Self{}))
	got, err = empty.DiscoverPeers(ctx)
	require.NoError(t, err)
	require.Empty(t, got)
}

func TestStaticInvalid(t *testing.T) {
	for _, addr := range []string{"no-port", ":7946", "host:0", "host:70000", "host:abc"} {
		d := NewDiscovery(&Config{Addresses: []string{addr}})
		require.Error(t, d.Start(context.Background(), discovery.Self{}), addr)
		_, err := d.DiscoverPeers(context.Background())
		require.Error(t, err, addr)
		require.Error(t, d.SetAddresses([]string{addr}), addr)
	}
}

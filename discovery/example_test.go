package discovery_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/distcache/distcache/discovery"
	"github.com/distcache/distcache/discovery/static"
)

// ProviderFunc turns a function into a Provider (no-op Start and Stop), for
// a registry of your own: here, a comma-separated list such as an
// environment variable holds (os.Getenv("CACHE_PEERS")). Return every
// node's gossip address; the engine filters out its own.
func ExampleProviderFunc() {
	list := "10.0.0.1:7946,10.0.0.2:7946"
	p := discovery.ProviderFunc(func(ctx context.Context) ([]string, error) {
		return strings.Split(list, ","), nil
	})
	ctx := context.Background()
	if err := p.Start(ctx, discovery.Self{Name: "node-1", Addr: "10.0.0.1:7946"}); err != nil {
		fmt.Println(err)
	}
	peers, err := p.DiscoverPeers(ctx)
	fmt.Println(peers, err)
	// Output:
	// [10.0.0.1:7946 10.0.0.2:7946] <nil>
}

// The static provider serves a fixed list, which SetAddresses can replace
// while the engine runs (it polls every DiscoveryInterval). Every entry
// needs a port; a bad one is reported by Start or SetAddresses.
func Example_static() {
	p := static.NewDiscovery(&static.Config{Addresses: []string{"10.0.0.1:7946"}})
	ctx := context.Background()
	fmt.Println(p.Start(ctx, discovery.Self{}))
	_ = p.SetAddresses([]string{"10.0.0.1:7946", "10.0.0.2:7946"})
	peers, _ := p.DiscoverPeers(ctx)
	fmt.Println(peers)
	fmt.Println(p.SetAddresses([]string{"10.0.0.3"}))
	// Output:
	// <nil>
	// [10.0.0.1:7946 10.0.0.2:7946]
	// static: address "10.0.0.3": address 10.0.0.3: missing port in address
}

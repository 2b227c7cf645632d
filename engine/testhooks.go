package engine

import (
	"github.com/distcache/distcache/internal/memnet"
	"github.com/distcache/distcache/internal/testhooks"
)

// The in-memory network is reachable only through internal/testhooks (testutil uses it):
// tests run whole clusters without sockets, inside testing/synctest bubbles.
func init() {
	testhooks.EngineNetwork = func(nw *memnet.Network) any {
		return Option(func(c *Config) { c.network = nw })
	}
}

package testutil

import (
	"github.com/distcache/distcache/engine"
	"github.com/distcache/distcache/internal/memnet"
	"github.com/distcache/distcache/internal/testhooks"
)

// InMemory returns an engine option that puts the engine on a fresh in-memory network
// instead of sockets: gossip and peer RPCs travel through channels, no port is bound, and
// the engine can run inside a testing/synctest bubble (where a goroutine blocked on a
// real socket would keep the fake clock from advancing). Engines given the same option
// value share its network and reach each other; others cannot reach them. In a bubble,
// call InMemory inside it. Addresses look like loopback ones ("127.0.0.1:7000"), so
// LocalOptions apply unchanged.
func InMemory() engine.Option {
	return testhooks.EngineNetwork(memnet.New()).(engine.Option)
}

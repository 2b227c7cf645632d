// Package testhooks carries test-only settings from testutil into packages that keep
// them unexported, so that they never appear in the public API: the owning package
// installs a constructor here at init, and testutil, which imports that package, calls it.
package testhooks

import "github.com/distcache/distcache/internal/memnet"

// EngineNetwork returns an engine.Option that puts the engine's cluster, gossip and RPC
// alike, on the in-memory network nw instead of sockets. It is typed any because this
// package cannot import engine; package engine sets it at init.
var EngineNetwork func(nw *memnet.Network) any

// Package enginehook gives this repository's tests and tools what the
// engine's public API leaves out on purpose: the cluster under an engine
// (its ring, its transport's fault-injection hooks). Users cannot import it.
package enginehook

import "github.com/distcache/distcache/internal/membership"

// Cluster returns the cluster of e, which must be an *engine.Engine; nil
// before Start. Package engine sets it when it is initialized, and the
// argument is untyped because this package cannot import the engine.
var Cluster func(e any) *membership.Cluster

package engine

import (
	"github.com/distcache/distcache/cluster"
)

// Hooks for the optional subsystems (admin server, warmup). Each is called
// from one place in the engine; the implementations live in this file.

// recordAccess is called on every Get of key in st (hot path: keep it cheap,
// nil-safe when warmup is off).
func (e *Engine) recordAccess(st *ksState, key string) {}

// startExtras runs at the end of a successful Start (the engine is running).
func (e *Engine) startExtras() error { return nil }

// stopExtras runs first in Stop; it must release everything startExtras
// started and wait for its goroutines.
func (e *Engine) stopExtras() error { return nil }

// topologyChanged runs after each ring change (on the cluster's rebuild
// goroutine: return quickly, hand long work to e.spawn).
func (e *Engine) topologyChanged(prev, next *cluster.Ring) {}

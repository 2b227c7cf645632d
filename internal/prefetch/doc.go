// Package prefetch is the machinery behind package warmup: the hot-key
// [Tracker], the [Plan] of what a node prefetches after a ring change
// ([PlanFor]), and [Run], which prefetches with bounded concurrency. The
// engine drives it; package warmup holds the configuration users set and
// explains the mechanism.
//
// The package does not import the engine: the engine adapts its ring to
// [Ring] and supplies the fetch function.
package prefetch

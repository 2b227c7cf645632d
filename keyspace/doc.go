// Package keyspace defines what an application plugs into distcache: a
// [KeySpace] names a cache namespace and the [DataSource] that fills it on a
// miss, and [Settings] carries the per-keyspace knobs (byte budget, TTLs,
// timeouts, warm keys, DataSource protection) that the engine resolves from
// its options.
//
// The package is a leaf: it imports only the standard library, so DataSource
// implementations can depend on it without pulling in the engine.
package keyspace

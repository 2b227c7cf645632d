// Package keyspace defines what an application plugs into distcache: a
// [KeySpace] names a cache namespace and the [DataSource] that fills it on a
// miss. The per-keyspace knobs (TTLs, timeouts, warm keys, DataSource
// protection) are engine options (engine.WithKeySpaceDefaultTTL and the
// other WithKeySpace* options).
//
// The package is a leaf: it imports only the standard library, so DataSource
// implementations can depend on it without pulling in the engine.
package keyspace

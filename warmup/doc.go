// Package warmup keeps a cluster's cache warm across topology changes: it
// tracks which keys each node is asked for, and when members join or leave
// it prefetches, on their new owners, the keys that moved.
//
// # Tracking
//
// A tracker per keyspace counts accesses in 16 mutex-guarded shards of a
// bounded map (about 4 x MaxHotKeys candidates). A full shard replaces the
// least counted of five randomly sampled entries, so a stream of one-off
// keys cannot push a hot key out. Every DecayInterval each count is halved
// and zeros are dropped: a key's count approximates its hits over the last
// couple of intervals, and keys nobody asks for any more age out. With
// SampleEvery > 1 only a random fraction of accesses is recorded (counts are
// scaled back up), which divides the cost on very hot paths.
//
// The engine records an access on the node where Get is called and again
// on the owner that serves a forwarded request, so a key's owner sees all of
// its traffic, and every caller sees its own share.
//
// # Prefetching
//
// After each ring change every node computes a plan from the previous and
// the new ring:
//
//   - it loads, through its normal read path, the explicit warm keys
//     (engine.WithKeySpaceWarmKeys) and the hot keys it tracked that it owns
//     in the new ring;
//   - it asks the new owner of each hot key that moved away from it to load
//     that key; when a key's previous owner left the cluster, every node that
//     tracked the key asks (the owner coalesces the requests into one load).
//
// Keys are thus fetched once, by their new owner, not once per node. A round
// bounds how many prefetches are in flight (Concurrency) and gives each the
// smaller of Timeout and the keyspace read timeout. Rounds never overlap:
// changes that arrive during a round are merged into one more round.
//
// This package holds the configuration ([Config]); the engine runs the
// mechanism (with internal/prefetch) once engine.WithWarmup enables it, and
// reports the tracked keys through Engine.HotKeys ([HotKey]).
package warmup

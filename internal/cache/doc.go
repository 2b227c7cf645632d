// Package cache is the local store the engine keeps for each keyspace on one
// node: a dgraph-io/ristretto v2 cache with TTL and a byte budget, wrapped so
// that the engine can rely on three guarantees ristretto alone does not give:
//
//  1. Visibility. ristretto admits new keys asynchronously and may drop a Set
//     under contention. [Store.Set] waits for admission and verifies the entry
//     is readable, retrying a dropped Set, so an acknowledged write is visible
//     to the next Get on this node. While the store is under its byte budget an
//     entry is never silently dropped; over budget the TinyLFU admission policy
//     may refuse it, which Set reports as [ErrRejected].
//  2. Ordering. Every Set gets a version from a per-store counter and an older
//     version never replaces a newer one (ristretto's ShouldUpdate hook), so
//     two writes of one key racing inside ristretto's buffers end in the
//     newest. (The engine additionally orders Puts, Deletes and finishing loads
//     of one key with a striped lock; see the engine package.)
//  3. Safe close. ristretto panics when used concurrently with Close. A Store
//     guards every call with a read lock and Close with the write lock; after
//     Close every method is a harmless no-op.
//
// Entries carry an absolute expiry. The store keeps an entry for RetainExpired
// past that expiry (stale-on-error) and leaves the freshness decision to the
// caller. Values are stored as given: callers copy before Set and after Get.
//
// The public package distcache/cache wraps this store for users who want a
// single-node store with the same guarantees; the engine uses this one for
// the calls it alone needs (versions, ordered asynchronous sets, Range).
package cache

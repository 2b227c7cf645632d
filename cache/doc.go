// Package cache is a single-node, in-memory store with a byte budget and
// per-entry expiry: the store the engine keeps for each keyspace on each
// node, offered for programs that want one without a cluster.
//
// It is a dgraph-io/ristretto v2 cache with three guarantees ristretto alone
// does not give:
//
//  1. Visibility. [Store.Set] returns once the entry is readable by the next
//     [Store.Get] (ristretto admits new keys asynchronously and may drop a
//     set under contention; Set waits and retries). While the store is under
//     its byte budget an entry is never silently dropped; over budget the
//     TinyLFU admission policy may refuse it, which Set reports as
//     [ErrRejected].
//  2. Ordering. Two Sets of one key racing each other end in the later one.
//  3. Safe close. Every method is safe to call concurrently with [Store.Close]
//     and after it (ristretto panics then).
//
// Values are stored as given: copy a value before Set if you keep writing
// to it, and treat what Get returns as read-only.
package cache

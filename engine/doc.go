// Package engine is distcache's public face: an Engine is one node of a
// distributed read-through cache. Build it with New(NewConfig(provider,
// keyspaces, options...)), Start it, and call Get, GetMany, Put, PutMany,
// Delete and DeleteMany from any goroutine.
//
// # Read path
//
// Get(ctx, keyspace, key):
//
//  1. The keyspace is resolved from an immutable snapshot (an atomic
//     pointer): unknown names give ErrKeySpaceNotFound.
//  2. The owner comes from the current ring snapshot (an atomic pointer; a
//     hash and an index, no lock). On the owner, a fresh entry in the store
//     is returned at once: no context, span or timer. A node never answers
//     from its store for a key it does not own; after each ring change it
//     drops the entries of keys now owned elsewhere (purgeNotOwned).
//  3. On the owner, after a miss,
//     concurrent misses of one key join one flight: a single
//     DataSource.Fetch, run on an engine goroutine under the keyspace read
//     timeout and the DataSource protections (rate limiter, then circuit
//     breaker). Each caller waits for the flight or its own ctx, so one
//     caller giving up does not cancel the fetch for the others. The loaded
//     value goes to every waiter directly; storing it is a side effect
//     (ristretto admits asynchronously, so "set, then read back" would miss).
//     Before starting a flight the store is checked again under the key's
//     stripe lock, because a load or a Put may have finished since the miss
//     (the same race groupcache's load documents).
//  4. On another node, concurrent callers of one key join one forwarded
//     request. The owner answers from its store or its own flight and never
//     forwards again, even if its ring disagrees (one hop). If the owner is
//     unreachable, overloaded, leaving or lacks the keyspace, the caller loads
//     the key itself ("degraded", counted in Stats) rather than fail or hang.
//     With a near cache (WithKeySpaceNearCache) the node first looks for a
//     copy it fetched earlier under the same ring, and keeps the answer
//     (see near.go for when a copy may be served).
//  5. Errors travel typed: a status byte on the wire recreates the sentinel
//     (keyspace.ErrNotFound, ErrDataSourceRateLimited, ...) on the caller;
//     anything else arrives as *RemoteError.
//
// Bytes handed to a caller never alias bytes held in a store.
//
// # Write path
//
// Put groups entries by owner and sends one request per owner; the owner
// takes the key's stripe lock, marks any in-flight load of the key
// superseded (its result will not be stored), and stores the value
// synchronously (cache.Store waits for admission and verifies it). Then
// every other member is told to drop its copy (and its near copy, and to
// unlink its forward of the key in flight). Delete removes the key on
// every member. Hence: once Put returns, every Get anywhere returns the new
// value until it expires or is evicted; once Delete returns, no Get returns
// the old value; and a slow load never overwrites a newer write. Ordering
// uses per-store versions, never wall clocks.
//
// # Topology changes
//
// After each ring change a node drops the entries of keys it no longer owns
// and, with hand-off on (the default), first sends them to their new owner;
// a node leaving gracefully sends all of its entries. Receivers take an
// entry only if they could not have a newer write for the key (see
// handoff.go). A node that lost contact with half of the cluster it knew
// flushes its store when it reconnects, since invalidations may have missed
// it; until the background flush has run, its entries from before the
// reconnection answer no reads, and writes made since are kept.
//
// # Scope of keyspace operations
//
// DeleteKeySpace and DeleteKeySpaces act on the whole cluster.
// UpdateKeySpace acts on this node only, because a DataSource is code: roll
// it out to every node.
//
// # Lifecycle and concurrency
//
// Every method is safe for concurrent use. Methods before Start return
// ErrEngineNotStarted and after Stop ErrEngineStopped; none panics. Stop
// drains, leaves, and waits for every goroutine the engine started.
package engine

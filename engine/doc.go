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
// PutMany and DeleteMany group keys by owner and send one request per
// owner (opPut, opDelete), carrying the writer's deadline: the owner
// applies a write before it or never, so a request delayed in the network
// cannot land after the writer gave up and wrote again. The owner
// (applyAsOwner), for its keys:
//
//  1. claims them in pendingWrites: peers' Gets of them wait instead of
//     reading the value being replaced (which could refill a copy);
//  2. invalidates every copy on every other member (opInvalidate: store
//     copies, near copies, and forwards in flight there);
//  3. applies the write under the key's stripe lock, superseding any load
//     in flight (its result is not stored);
//  4. releases the keys and answers.
//
// No node sees the new value before step 3, and no copy of the old one
// exists or can be refilled after step 2, so writes are linearizable with
// Gets on every node (TestLinearizableWrites checks recorded histories
// with porcupine). A load superseded by a write hands its waiters what the
// store holds by then: it may have read a database value newer than the
// store's. A write with a done ctx writes nothing; one whose ctx ends in
// flight reports ctx's error and may or may not have been applied, but
// never leaves a copy older than what the owner holds. A member that step
// 2 cannot reach is told to flush before it is trusted again (below).
// Ordering uses per-store versions, never wall clocks (except the write
// deadline, like expiries).
//
// # Topology changes and trust
//
// After each ring change a node drops the entries of keys it no longer owns
// and, with hand-off on (the default), first sends them to their new owner;
// a node leaving gracefully sends all of its entries. Receivers take an
// entry only if they could not have a newer write for the key (see
// handoff.go).
//
// A node stops trusting its stores when it may have missed writes (see
// trust.go): it reconnects after losing contact with half of the cluster;
// its process did not run for longer than cluster.Config.PauseLimit
// (SIGSTOP, a VM pause; noticed by a watchdog and by every read); or a peer
// tells it to (opFlush: a write's owner could not invalidate it, or it came
// back after being declared failed). Until the background flush has run,
// entries from before the decision answer no reads; loads, forwards and
// near copies begun before it are not kept; writes made since are. While
// a node is cut off (its ring lost half of the members it knew, for at
// most 30 s; or most of its probes go unanswered, Cluster.HealthScore), it
// caches nothing and refuses writes as owner (ErrClusterQuorum): the
// majority goes on writing, and the cut-off node must have nothing stale
// to serve when the network heals, before it notices.
//
// Start returns only once this node's ring holds every member it joined
// and every member reports the same ring (opRingInfo), bounded by the
// bootstrap timeout; and it fails with cluster.ErrNameTaken when a live
// member already has this node's name.
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

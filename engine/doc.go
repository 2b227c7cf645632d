// Package engine is distcache's public face: an [Engine] is one node of a
// distributed read-through cache. Build it with [New] from a [NewConfig],
// start it with [Engine.Start], and call [Engine.Get], [Engine.GetMany],
// [Engine.Put], [Engine.PutMany], [Engine.Delete] and [Engine.DeleteMany]
// from any goroutine.
//
// # Read path
//
// [Engine.Get] of a key:
//
//  1. The keyspace is resolved from an immutable snapshot: an unknown name
//     gives [ErrKeySpaceNotFound].
//  2. The key's owner comes from the current ring snapshot (a hash and an
//     index, no lock). On the owner, a fresh entry in the store is returned
//     at once: no context, span or timer. A node never answers from its
//     store for a key it does not own; after each ring change it drops the
//     entries of keys now owned elsewhere.
//  3. On the owner, after a miss, concurrent misses of one key join one
//     flight: a single [keyspace.DataSource] Fetch, on an engine goroutine,
//     under the keyspace read timeout and the DataSource protections (rate
//     limiter, then circuit breaker; [ErrDataSourceRateLimited],
//     [ErrDataSourceCircuitOpen]). Each caller waits for the flight or its
//     own context, so one caller giving up does not cancel the fetch for the
//     others. A fetch that ignores its context is abandoned when the read
//     timeout ends: its waiters get the error and the key is free again.
//  4. On another node, concurrent callers of one key join one forwarded
//     request. The owner answers from its store or its own flight and never
//     forwards again, even if its ring disagrees (one hop). If the owner is
//     unreachable, overloaded or lacks the keyspace, the caller loads the key
//     itself ("degraded", counted in [Stats]) rather than fail or hang; if the
//     owner announced a graceful leave, the caller first waits briefly for the
//     ring to move and asks the new owner. With a near cache (on by
//     default, [WithKeySpaceNearCache]) the node first looks for a copy it
//     fetched earlier under the same ring, and keeps the answer.
//  5. Errors travel typed: the sentinel the owner returned
//     ([keyspace.ErrNotFound], [ErrDataSourceRateLimited], ...) is the one the
//     caller sees; anything else arrives as a [*RemoteError].
//
// Bytes handed to a caller never alias bytes held in a store.
//
// # Write path
//
// [Engine.PutMany] and [Engine.DeleteMany] group keys by owner and send
// each owner its group with the writer's deadline: the owner applies a
// write before that deadline or never, so a request delayed in the network
// cannot land after the writer gave up and wrote again. The owner, for its
// keys:
//
//  1. claims them: peers' Gets of them wait instead of reading the value
//     being replaced (which could refill a copy);
//  2. invalidates the copies on the nodes that may hold one (their stores,
//     near caches and forwards in flight): the nodes it answered a Get of
//     the keys for within their lease, or every member while its view of
//     the cluster is not settled (see holders.go);
//  3. applies the write under the key's lock, superseding any load in
//     flight, whose result is then not stored;
//  4. releases the keys and answers.
//
// No node sees the new value before step 3, and no copy of the old one
// exists or can be refilled after step 2 (a node not invalidated holds no
// copy: it never asked the owner, its lease lapsed, or it keeps nothing it
// loaded without being the owner), so writes are linearizable with
// Gets on every node. A load superseded by a write hands its waiters what
// the store holds by then, or else the key's next load's result: it may
// have read a database value newer than either. A write with a done context writes nothing; one whose
// context ends in flight reports the context's error and may or may not
// have been applied, but never leaves a copy older than what the owner
// holds. A member that step 2 cannot reach may still serve its copy until
// the lease it was granted ends, so the write waits until then before step
// 3 (failing unapplied if its deadline comes first), and the member is told
// to flush before it is trusted again (below). Ordering uses per-store versions, never wall
// clocks (except the write deadline, like expiries).
//
// # Topology changes and trust
//
// After each ring change a node drops the entries of keys it no longer
// owns and, with hand-off on ([WithHandoff], the default), first sends them
// to their new owner; a node leaving gracefully sends all of its entries.
// A receiver takes an entry only if it could not hold a newer write of the
// key, so a hand-off never resurrects a deleted or overwritten value.
//
// A node stops trusting its stores when it may have missed writes: it
// reconnects after losing contact with half of the cluster; its process did
// not run for longer than the pause limit (SIGSTOP, a VM pause; noticed by a
// watchdog and by every read); or a peer tells it to (a write's owner could
// not invalidate it, or it came back after being declared failed). Until
// the flush has run, entries from before the decision answer no reads, and
// loads, forwards and near copies begun before it are not kept; writes
// made since are. While a node is cut off (its ring lost half of the
// members it knew, for at most 30 s; or most of its probes go unanswered)
// it caches nothing and refuses writes as owner with [ErrClusterQuorum]:
// the majority goes on writing, and the cut-off node must have nothing
// stale to serve when the network heals, before it notices.
//
// [Engine.Start] returns only once this node's ring holds every member it
// joined and every member reports the same ring, bounded by the bootstrap
// timeout; it fails with [cluster.ErrNameTaken] when a live member already
// has this node's name. [Engine.Events] reports members joining, leaving
// and failing, and ring changes.
//
// # Replicas and takeover
//
// With WithReplicas(n), each entry also lives on the next n-1 members of
// its replica list in the ring, held apart from owned entries and within the
// holder's budget (MaxBytes is split 1/n owned, (n-1)/n copies). The owner
// sends each write to them while it invalidates copies, and acknowledges
// once every reachable replica applied it; an unreachable one is repaired
// afterwards. A miss still loads once, on the owner, which then fills the
// replicas. A Get whose owner cannot be reached reads a replica before
// degrading; when the owner fails, the first replica owns the key and
// already holds it. Replica messages carry the owner's tags and a
// deadline, so a late one never replaces a newer copy or undoes a delete.
// After each ring change copies are re-established (repair.go).
//
// Whatever n, a load on an owner first takes the key from where it lived
// (its own copy, a hand-off in transit, or the members that held it before
// the last ring change, asked without loading): a join or a planned leave
// does not make the new owner answer from the DataSource while a member
// still holds a newer value (see takeover.go).
//
// # Scope of keyspace operations
//
// [Engine.DeleteKeySpace] and [Engine.DeleteKeySpaces] act on the whole
// cluster. [Engine.UpdateKeySpace] acts on this node only, because a
// DataSource is code: roll it out to every node.
//
// # Observability
//
// With [WithMetrics], counts are observable OpenTelemetry instruments read
// at collection time from the counters [Engine.Stats] and the admin
// endpoints report, so all three agree: distcache.engine.requests (every
// public call, local and near hits included, by distcache.operation and,
// for data calls, distcache.keyspace), distcache.engine.hits, .misses,
// .near_hits, .degraded, .handoffs (distcache.direction sent or received),
// .entries and .bytes (distcache.store main or near),
// distcache.datasource.fetches and .errors (by error.type), and
// distcache.cluster.members. A local hit pays for none of them: the store
// counts it on its reader slot, and the Get count is derived from that.
// Calls that leave the fast path also record distcache.engine.duration and
// .errors, and fetches distcache.datasource.duration, in seconds, with
// buckets from 10 µs to 10 s. [KeySpaceStats].GetP99 comes from a
// per-keyspace histogram with the same bounds.
//
// With [WithTracing], a call that leaves the fast path opens a span
// (distcache.get, ...), each request to a peer a client span (distcache.call
// get), and a DataSource fetch a span (distcache.fetch) under the span of
// the call that started the load. A request to a peer carries the caller's
// W3C trace context (traceparent and tracestate) when ctx holds a sampled
// span, whether or not this engine traces; the owner then serves it under a
// server span (distcache.serve get) in the caller's trace. Untraced
// requests carry no trace field, and a local hit opens no span.
//
// # Lifecycle and concurrency
//
// Every method is safe for concurrent use. Methods before Start return
// [ErrEngineNotStarted] and after Stop [ErrEngineStopped]; none panics.
// [Engine.Stop] drains, hands off, leaves, and waits for every goroutine the
// engine started, up to its context: loads stuck in user code are
// abandoned and reported.
package engine

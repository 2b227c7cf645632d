// Package membership gives a distcache node its membership in a cluster and
// its view of placement: which node owns which key.
//
// # Membership
//
// A [Cluster] runs hashicorp/memberlist (SWIM gossip) over the transport of
// package [github.com/distcache/distcache/internal/transport], which also
// carries the nodes' RPC on the same port: memberlist's packets and streams
// pass through untouched, RPC connections are told apart by their first
// byte. Nodes are identified by stable names ([Config.NodeName]); a node
// restarted under the same name at a new address is re-admitted once its old
// incarnation has been dead for [Config.DeadNodeReclaimTime]. A cluster
// [Config.Label] keeps foreign clusters from merging and an optional
// [Config.SecretKey] encrypts gossip.
//
// Every node advertises, in its memberlist metadata, the cluster
// [ProtocolVersion] and a fingerprint of its placement config
// (PartitionCount, VirtualNodes, Load, hash function). A peer whose
// metadata differs is never admitted (memberlist's alive and merge hooks
// reject it, and Join through it fails with [ErrIncompatibleMember]): two
// nodes that disagree on placement would otherwise each believe they own
// the same keys.
//
// memberlist delivers membership events while holding its node lock, so the
// event hooks here only poke a goroutine through a one-slot channel. That
// goroutine waits [Config.RingDebounce] so a burst of events costs one
// rebuild, reads the full live member set, builds a new [Ring], swaps it in
// through an atomic pointer, closes pooled RPC connections to members that
// left, and calls [Config.OnRingChange]. A rebuild that fails keeps the
// previous ring and is logged.
//
// [Cluster.Join] contacts every given seed (skipping this node) and is
// meant to be called again periodically: memberlist never re-probes nodes
// it forgot, so partitions heal only through re-joins. [Cluster.Leave]
// broadcasts a graceful departure (peers drop the node within a gossip
// round); [Cluster.Shutdown] alone looks like a crash, detected by probes
// within a few seconds.
//
// # Placement
//
// A [Ring] is an immutable snapshot built by [NewRing]: consistent hashing
// with bounded loads, the placement of buraksezer/consistent over the
// xxhash64 hash, which is stable across processes. Keys hash to one of
// PartitionCount partitions (xxhash64(key) % PartitionCount). Each member
// puts VirtualNodes points on a 64-bit ring; each partition, in increasing
// order, goes to the first member clockwise from its hash that owns fewer
// than ceil(floor(PartitionCount/members) * Load) partitions. The ring is a
// pure function of the member names and the config, independent of the
// order in which members were seen, so every node with the same view
// computes the same owners, and [Ring.Fingerprint] lets two nodes compare
// views cheaply. The owner of each partition is copied into a table at
// build time, so [Ring.Owner] is one hash and one index: no lock, no
// allocation. Members are placed by name only; addresses can change
// without moving data. Building a ring hashes and sorts members x
// VirtualNodes points once.
//
// With the defaults (16381 partitions, 256 virtual nodes, Load 1.04) the
// load bound caps the busiest owner at 1.04x the mean (plus rounding to
// whole partitions), and many virtual nodes keep the spread below the cap
// narrow, so the bound seldom pushes a partition past its first choice and
// a join moves little more than the newcomer's share, P/(N+1) partitions.
//
// The partition count is a constant of the cluster, not a function of its
// size. A key's partition is its hash modulo the count, so changing the
// count moves nearly every key; a count derived from the member set would
// be computed alike on every node, but each join or leave that crossed a
// step would empty the cache, and a rolling deploy at a step would do it
// twice per node. The rule is therefore a fixed count of at least 16
// partitions per member at the largest size a cluster will reach (so that
// rounding to whole partitions costs at most about 6 %), preferably prime.
// The default serves up to 1,000 members; an explicit count
// ([Config.PartitionCount]) overrides it.
package membership

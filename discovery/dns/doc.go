// Package dns is a discovery provider that finds peers through DNS, using
// only the standard library.
//
// # Mechanism
//
// Every call to [Discovery.DiscoverPeers] resolves [Config.Name] afresh (the
// engine polls the provider periodically, so DNS changes are picked up
// without a restart). Two record kinds are supported, chosen by [Config.Port]:
//
//   - Port == 0: SRV records. Each record gives a target host and a port, and
//     becomes "target:port". This is the form to use when nodes may listen on
//     different ports, e.g. a Kubernetes headless Service with a named port
//     (_gossip._tcp.cache.ns.svc.cluster.local) or a Consul service
//     (cache.service.consul). Records whose target is "." (service
//     explicitly unavailable, RFC 2782) or whose port is 0 are skipped.
//   - Port > 0: A and AAAA records (restricted to one family with
//     [Config.Network]). Each address becomes "ip:Port". DNS address records
//     carry no port, so a port is mandatory here: the provider never returns
//     a bare IP (the reference system did, which forced every node onto one
//     shared port).
//
// The result is de-duplicated and sorted, so two calls over the same records
// return identical slices. The local node may be part of the answer; the
// engine filters out its own address.
//
// # Errors
//
// A name that does not exist (NXDOMAIN) or has no records of the requested
// kind yields an error matching [ErrNoRecords]; the underlying
// [*net.DNSError] stays reachable with errors.As. A lookup is bounded by the
// caller's context and by [Config.Timeout], whichever ends first. An empty
// answer is reported as an error rather than as "no peers" so that a typo in
// the name is visible; an engine that boots the first node of a cluster
// treats it as "no peers yet" and keeps polling.
//
// # Resolvers
//
// By default the system resolver ([net.DefaultResolver]) is used. Set
// [Config.Server] to query one DNS server directly (for example Consul's DNS
// interface on 127.0.0.1:8600), or [Config.Resolver] to inject any value with
// the [Resolver] methods, such as a [*net.Resolver] with a custom Dial.
//
// Start and Stop hold no resources: Start validates and marks the provider
// started (it performs no lookup, because the first node of a cluster often
// has no records yet), and Stop marks it stopped. DiscoverPeers outside
// Start/Stop returns [discovery.ErrNotStarted].
package dns

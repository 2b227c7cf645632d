// Package testutil builds real in-process distcache clusters for tests and
// examples: N engines on 127.0.0.1 with kernel-picked ports, joined through
// a static provider, with fast loopback gossip timings, stopped by
// t.Cleanup. With [InMemory] (or ClusterConfig.InMemory) the engines use an
// in-memory network instead of sockets, so that a test can run them inside a
// testing/synctest bubble ([Bubble]) and check time-dependent behaviour on
// a fake clock. It also provides a counting DataSource and a
// wait-for-condition helper. Nothing here sleeps for a fixed time: waits
// poll a condition until a deadline.
package testutil

// Package nats is a discovery provider that finds peers over a NATS server
// (github.com/nats-io/nats.go). It lives in its own Go module so that the
// core distcache module never depends on NATS.
//
// # Mechanism
//
// All nodes of one cluster share a base subject S ([Config.Subject]):
//
//   - S.discover: every node subscribes and answers each request with its
//     own {name, addr}. [Discovery.DiscoverPeers] publishes one request with
//     a fresh unique inbox as reply subject and gathers every answer that
//     arrives on it (the local node answers too, so it is in the result).
//   - S.announce: [Discovery.Start] publishes self here, with a private
//     inbox as reply subject; the nodes already running record the newcomer
//     and answer on that inbox, so the newcomer learns of them at once.
//     The announcement is repeated after every reconnect.
//   - S.leave: [Discovery.Stop] publishes self here after unsubscribing, so
//     that the others forget it; then it closes the connection.
//
// Payloads are small JSON objects {"v":1,"name":...,"addr":...}; malformed
// or oversized ones are dropped (and logged at debug level), never trusted.
//
// # The gather window
//
// A request/reply discovery cannot know how many nodes will answer. The
// reference system therefore always waited its full timeout. Here each node
// keeps a table of the peers it knows of (from announcements, hello
// answers, discovery requests and earlier replies, minus leaves), and a
// gather window ends at the first of:
//
//   - [Config.Timeout] (default 1s) or the caller's context deadline;
//   - [Config.QuietPeriod] (default 100ms) after the last reply, once every
//     known peer has replied.
//
// So a healthy cluster is discovered in about one round trip plus the
// quiet period. When a known peer crashed without leaving, one call waits
// the full Timeout and then forgets the peers that did not answer, so later
// calls are fast again. Reaching the end of the window is not an error; a
// cancelled context, a closed connection or a connection that is
// reconnecting are.
//
// # Connection
//
// Start connects with RetryOnFailedConnect off, so an unreachable server is
// an error from Start (the reference system swallowed it and panicked
// later). After an established connection is lost, nats.go reconnects
// ([Config.MaxReconnects], [Config.ReconnectWait]) and restores the
// subscriptions; the provider announces itself again. Authentication and
// TLS are set with [Config.Options].
//
// Node names must be unique within a subject (memberlist requires the same).
//
// # Goroutines
//
// A started provider owns one goroutine that serves the subscriptions,
// plus the nats.go client's own goroutines. Stop closes the connection,
// waits for its goroutine and for the client's closed callback (the last
// callback nats.go dispatches), so nothing of the provider runs afterwards.
// A provider can be started again after Stop.
package nats

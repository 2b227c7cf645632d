// Package admin serves a distcache node's diagnostics over HTTP: the
// cluster as this node sees it, every member's counters, its keyspaces
// with their settings and counters, liveness and readiness probes, and a
// live dashboard of the cluster.
//
// # Endpoints
//
// Every path is under a base path, DefaultBasePath ("/_distcache/admin")
// unless configured:
//
//	GET {base}/cluster           every member with its counters, gathered by this node
//	GET {base}/peers             members of this node's ring: name, addr, is_self, partitions
//	GET {base}/keyspaces         one object per keyspace: settings, sizes and stats
//	GET {base}/keyspaces/{name}  one keyspace
//	GET {base}/healthz           200 {"status":"ok"} while the node is alive, else 503
//	GET {base}/readyz            200 while the node is running and joined, else 503
//	GET {base}/                  the dashboard (HTML; its scripts under {base}/assets/)
//
// Responses are JSON unless noted and never cached. {base}/cluster is the
// only answer about other nodes: the node that serves it asks every member
// of its ring for its counters over the engine's peer protocol (all at
// once, each within a second) and lists a member that does not answer, or
// left recently, as unreachable with the reason. The other endpoints
// report only the node that serves them.
//
// # Hit ratio
//
// One ratio is reported everywhere, "DataSource avoided": 1 − fetches ÷
// gets, the share of gets that did not reach the DataSource
// ([DataSourceAvoided]). Per node, gets are the lookups the node handled;
// for the cluster, the Gets callers made, each counted once.
//
// # Dashboard
//
// The page polls {base}/cluster every two seconds (?interval=N for N
// seconds) and shows every member's entries, gets, ratio, fetches,
// forwards, degraded loads, near-cache hits, hand-offs and partitions,
// charts of the last five minutes (Gets/s, the ratio, fetches/s and the
// Get p99, rates computed in the browser from the counters), the hot keys,
// and links to each member's own page. Its scripts and styles are embedded
// in the binary (the charts are uPlot's): it loads nothing from elsewhere.
//
// # Wiring
//
// The package does not import the engine. It declares what it reports on,
// [Source], and the engine implements it: engine.WithAdminServer or
// engine.WithAdminConfig start a [Server] with the engine, and
// engine.AdminHandler returns the [http.Handler] for mounting on a mux of
// your own. [NewHandler] and [Server] also work with any other Source (a
// fake in tests, or an aggregate of several engines).
//
// # Security
//
// The endpoints list the members, their counters and hot key names. Bind
// them to loopback, or set Config.BearerToken (every endpoint then
// requires "Authorization: Bearer <token>") with Config.TLSConfig; a
// server on every interface without them logs a warning at Start. A
// browser does not send a bearer token by itself: reach the dashboard
// through a proxy that adds the header, or an SSH tunnel to a loopback
// bind.
package admin

// Package admin serves a distcache node's diagnostics over HTTP: the
// cluster as this node sees it, its keyspaces with their settings and
// counters, liveness and readiness probes, and a small HTML dashboard.
//
// # Endpoints
//
// Every path is under a base path, DefaultBasePath ("/_distcache/admin")
// unless configured:
//
//	GET {base}/peers             members of this node's ring: name, addr, is_self, partitions
//	GET {base}/keyspaces         one object per keyspace: settings, sizes and stats
//	GET {base}/keyspaces/{name}  one keyspace
//	GET {base}/healthz           200 {"status":"ok"} while the node is alive, else 503
//	GET {base}/readyz            200 while the node is running and joined, else 503
//	GET {base}/                  the dashboard (server-rendered HTML, no scripts)
//
// Responses are JSON unless noted, never cached, and every answer reflects
// only the node that serves it: ask each node for its own view.
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
// The endpoints are not authenticated: bind them to loopback or a private
// network, serve them with TLS (Config.TLSConfig, with ClientAuth for mTLS),
// or put them behind a reverse proxy.
package admin

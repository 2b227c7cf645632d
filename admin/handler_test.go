package admin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeSource is a Source with settable answers.
type fakeSource struct {
	mu        sync.Mutex // guards the fields below
	peers     []Peer
	keyspaces []KeySpace
	health    error
	ready     error
	cluster   ClusterView
}

func (f *fakeSource) Peers() []Peer {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Peer(nil), f.peers...)
}

func (f *fakeSource) KeySpaces() []KeySpace {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]KeySpace(nil), f.keyspaces...)
}

func (f *fakeSource) Cluster(context.Context) ClusterView {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cluster
}

func (f *fakeSource) Health() error { f.mu.Lock(); defer f.mu.Unlock(); return f.health }
func (f *fakeSource) Ready() error  { f.mu.Lock(); defer f.mu.Unlock(); return f.ready }

func newFake() *fakeSource {
	return &fakeSource{
		peers: []Peer{{Name: "a", Addr: "127.0.0.1:1", IsSelf: true, Partitions: 136}, {Name: "b", Addr: "127.0.0.1:2", Partitions: 135}},
		keyspaces: []KeySpace{{
			Name: "users", MaxBytes: 64 << 20, DefaultTTL: Duration(5 * time.Minute),
			ReadTimeout: Duration(250 * time.Millisecond), WriteTimeout: Duration(500 * time.Millisecond),
			WarmKeys: []string{"user:1", "user:2"}, MainCacheBytes: 2048, Entries: 3,
			Stats:   &KeySpaceStats{Gets: 120, CacheHits: 98, Loads: 22, Fetches: 18, BreakerState: "closed"},
			HotKeys: []HotKey{{Key: "user:<1>", Hits: 9}},
		}},
	}
}

func get(t *testing.T, h http.Handler, method, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec
}

func TestHandlerPeersAndKeySpacesJSON(t *testing.T) {
	h := NewHandler(newFake(), "")
	rec := get(t, h, http.MethodGet, "/_distcache/admin/peers")
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "application/json; charset=utf-8", rec.Header().Get("Content-Type"))
	require.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
	var peers []Peer
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &peers))
	require.Equal(t, newFake().peers, peers)

	rec = get(t, h, http.MethodGet, "/_distcache/admin/keyspaces")
	require.Equal(t, http.StatusOK, rec.Code)
	// The reference field names and the duration format.
	var raw []map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &raw))
	require.Len(t, raw, 1)
	for _, f := range []string{"name", "max_bytes", "default_ttl", "read_timeout", "write_timeout", "warm_keys", "main_cache_bytes", "hot_cache_bytes", "stats"} {
		require.Contains(t, raw[0], f)
	}
	require.Equal(t, "5m0s", raw[0]["default_ttl"])
	require.Equal(t, "250ms", raw[0]["read_timeout"])
	stats := raw[0]["stats"].(map[string]any)
	for _, f := range []string{"gets", "cache_hits", "peer_loads", "peer_errors", "loads", "loads_deduped", "local_loads", "local_load_errs", "remove_keys_requests", "removed_keys",
		"handed_off", "handoffs_taken", "replica_entries", "replica_writes", "replica_reads", "repairs", "get_p99", "datasource_avoided"} {
		require.Contains(t, stats, f)
	}
	require.InDelta(t, 0.85, stats["datasource_avoided"], 1e-9, "1 − fetches ÷ gets")
	var kss []KeySpace
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &kss))
	want := withRatios(newFake().keyspaces)
	require.Equal(t, want, kss, "the JSON round-trips")

	rec = get(t, h, http.MethodGet, "/_distcache/admin/keyspaces/users")
	require.Equal(t, http.StatusOK, rec.Code)
	require.Contains(t, rec.Body.String(), `"name": "users"`)
	rec = get(t, h, http.MethodGet, "/_distcache/admin/keyspaces/nope")
	require.Equal(t, http.StatusNotFound, rec.Code)
	require.Contains(t, rec.Body.String(), `no such keyspace`)
}

func TestHandlerEmptyListsAreArrays(t *testing.T) {
	h := NewHandler(&fakeSource{}, "/ops")
	for _, p := range []string{"/ops/peers", "/ops/keyspaces"} {
		rec := get(t, h, http.MethodGet, p)
		require.Equal(t, http.StatusOK, rec.Code)
		require.Equal(t, "[]", strings.TrimSpace(rec.Body.String()), p)
	}
}

func TestHandlerHealthAndReadiness(t *testing.T) {
	src := newFake()
	h := NewHandler(src, "")
	for _, p := range []string{"/_distcache/admin/healthz", "/_distcache/admin/readyz"} {
		rec := get(t, h, http.MethodGet, p)
		require.Equal(t, http.StatusOK, rec.Code, p)
		require.JSONEq(t, `{"status":"ok"}`, rec.Body.String())
	}
	src.mu.Lock()
	src.ready = errors.New("not joined")
	src.mu.Unlock()
	rec := get(t, h, http.MethodGet, "/_distcache/admin/readyz")
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	require.JSONEq(t, `{"status":"unavailable","error":"not joined"}`, rec.Body.String())
	require.Equal(t, http.StatusOK, get(t, h, http.MethodGet, "/_distcache/admin/healthz").Code)
	src.mu.Lock()
	src.health = errors.New("stopped")
	src.mu.Unlock()
	require.Equal(t, http.StatusServiceUnavailable, get(t, h, http.MethodGet, "/_distcache/admin/healthz").Code)
}

func TestHandlerMethodsAndUnknownPaths(t *testing.T) {
	h := NewHandler(newFake(), "/_distcache/admin/")
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		rec := get(t, h, m, "/_distcache/admin/peers")
		require.Equal(t, http.StatusMethodNotAllowed, rec.Code, m)
		require.Equal(t, "GET, HEAD", rec.Header().Get("Allow"))
	}
	rec := get(t, h, http.MethodHead, "/_distcache/admin/peers")
	require.Equal(t, http.StatusOK, rec.Code)
	for _, p := range []string{"/_distcache/admin/nope", "/other", "/_distcache/adminx/peers", "/_distcache/admin/peers/x"} {
		rec := get(t, h, http.MethodGet, p)
		require.Equal(t, http.StatusNotFound, rec.Code, p)
		require.Contains(t, rec.Body.String(), `"error"`)
	}
	rec = get(t, h, http.MethodGet, "/_distcache/admin")
	require.Equal(t, http.StatusMovedPermanently, rec.Code)
	require.Equal(t, "/_distcache/admin/", rec.Header().Get("Location"))
	require.Panics(t, func() { NewHandler(nil, "") })
}

// The page is a shell that loads its embedded scripts (no CDN) and names
// the members before its script runs; the scripts are served with their
// types and revalidated by ETag.
func TestHandlerDashboard(t *testing.T) {
	src := newFake()
	src.ready = errors.New("not joined")
	h := NewHandler(src, "")
	rec := get(t, h, http.MethodGet, "/_distcache/admin/?interval=5")
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "text/html; charset=utf-8", rec.Header().Get("Content-Type"))
	require.Contains(t, rec.Header().Get("Content-Security-Policy"), "script-src 'self'")
	body := rec.Body.String()
	for _, s := range []string{"seen from <code>a</code>", "(this node)", "127.0.0.1:2", "not joined", `data-interval-ms="5000"`,
		`<script src="/_distcache/admin/assets/uPlot.iife.min.js"`, `<script src="/_distcache/admin/assets/dashboard.js"`} {
		require.Contains(t, body, s)
	}
	require.NotContains(t, body, "http://", "nothing loads from elsewhere")
	require.NotContains(t, body, "https://")
	require.Contains(t, get(t, h, http.MethodGet, "/_distcache/admin/?interval=0").Body.String(), `data-interval-ms="2000"`)

	for _, a := range []struct{ name, ctype, has string }{
		{"uPlot.iife.min.js", "text/javascript; charset=utf-8", "(v1.6.32)"},
		{"uPlot.min.css", "text/css; charset=utf-8", ".uplot"},
		{"dashboard.js", "text/javascript; charset=utf-8", "/cluster"},
		{"dashboard.css", "text/css; charset=utf-8", ".chart"},
	} {
		rec := get(t, h, http.MethodGet, "/_distcache/admin/assets/"+a.name)
		require.Equal(t, http.StatusOK, rec.Code, a.name)
		require.Equal(t, a.ctype, rec.Header().Get("Content-Type"), a.name)
		require.Contains(t, rec.Body.String(), a.has, a.name)
		tag := rec.Header().Get("ETag")
		require.NotEmpty(t, tag)
		req := httptest.NewRequest(http.MethodGet, "/_distcache/admin/assets/"+a.name, nil)
		req.Header.Set("If-None-Match", tag)
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		require.Equal(t, http.StatusNotModified, rec.Code, a.name)
	}
	for _, p := range []string{"dashboard.html", "uPlot.LICENSE", "nope.js", "../handler.go", "x/dashboard.js"} {
		require.Equal(t, http.StatusNotFound, get(t, h, http.MethodGet, "/_distcache/admin/assets/"+p).Code, p)
	}
}

// /cluster adds the derived figures: each keyspace's DataSource-avoided
// ratio (1 − fetches ÷ gets) and the cluster's, over the Gets callers made
// on reachable members (gets − server_requests: a forwarded Get counts once).
func TestHandlerClusterTotals(t *testing.T) {
	src := newFake()
	src.cluster = ClusterView{Node: "a", Members: []Member{
		{Name: "a", Addr: "127.0.0.1:1", IsSelf: true, Reachable: true, Partitions: 136, KeySpaces: []KeySpace{
			{Name: "users", Stats: &KeySpaceStats{Gets: 100, ServerRequests: 20, Fetches: 10}},
			{Name: "empty", Stats: &KeySpaceStats{}},
		}},
		{Name: "b", Addr: "127.0.0.1:2", Reachable: true, Partitions: 135, AdminURL: "http://127.0.0.1:9/_distcache/admin/",
			KeySpaces: []KeySpace{{Name: "users", Stats: &KeySpaceStats{Gets: 60, ServerRequests: 40, Fetches: 30}}}},
		{Name: "c", Addr: "127.0.0.1:3", Error: "i/o timeout"},
	}}
	rec := get(t, NewHandler(src, ""), http.MethodGet, "/_distcache/admin/cluster")
	require.Equal(t, http.StatusOK, rec.Code)
	var raw map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &raw))
	members := raw["members"].([]any)
	require.Len(t, members, 3)
	for _, m := range members {
		for _, f := range []string{"name", "addr", "admin_addr", "admin_url", "reachable", "error", "partitions", "keyspaces"} {
			require.Contains(t, m, f)
		}
	}
	require.Equal(t, []any{}, members[2].(map[string]any)["keyspaces"], "never null")

	var v ClusterView
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &v))
	require.Equal(t, int64(80+20), v.Gets)
	require.Equal(t, int64(40), v.Fetches)
	require.NotNil(t, v.DataSourceAvoided)
	require.InDelta(t, 0.6, *v.DataSourceAvoided, 1e-9)
	require.InDelta(t, 0.9, *v.Members[0].KeySpaces[0].Stats.DataSourceAvoided, 1e-9)
	require.Nil(t, v.Members[0].KeySpaces[1].Stats.DataSourceAvoided, "no gets: no ratio")
	require.InDelta(t, 0.5, *v.Members[1].KeySpaces[0].Stats.DataSourceAvoided, 1e-9)
	require.Nil(t, src.cluster.Members[0].KeySpaces[0].Stats.DataSourceAvoided, "the Source's value is not written")

	rec = get(t, NewHandler(&fakeSource{}, ""), http.MethodGet, "/_distcache/admin/cluster")
	require.JSONEq(t, `{"node":"","members":[],"gets":0,"fetches":0,"datasource_avoided":null}`, rec.Body.String())
}

func TestDataSourceAvoided(t *testing.T) {
	for _, tc := range []struct {
		gets, fetches int64
		want          float64
		ok            bool
	}{{0, 0, 0, false}, {0, 5, 0, false}, {100, 0, 1, true}, {100, 14, 0.86, true}, {10, 30, 0, true}} {
		got, ok := DataSourceAvoided(tc.gets, tc.fetches)
		require.Equal(t, tc.ok, ok, "%+v", tc)
		require.InDelta(t, tc.want, got, 1e-9, "%+v", tc)
	}
}

// Mounted on a mux of the embedder's own, under the base path.
func TestHandlerOnAMux(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("/debug/cache/", NewHandler(newFake(), "/debug/cache"))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/debug/cache/peers")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(body), `"is_self": true`)
}

func TestDurationJSON(t *testing.T) {
	var d Duration
	require.NoError(t, json.Unmarshal([]byte(`"1m30s"`), &d))
	require.Equal(t, Duration(90*time.Second), d)
	require.NoError(t, json.Unmarshal([]byte(`1000`), &d))
	require.Equal(t, Duration(time.Microsecond), d)
	require.Error(t, json.Unmarshal([]byte(`"soon"`), &d))
	require.Error(t, json.Unmarshal([]byte(`{}`), &d))
}

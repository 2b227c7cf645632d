package admin

import (
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

func (f *fakeSource) Health() error { f.mu.Lock(); defer f.mu.Unlock(); return f.health }
func (f *fakeSource) Ready() error  { f.mu.Lock(); defer f.mu.Unlock(); return f.ready }

func newFake() *fakeSource {
	return &fakeSource{
		peers: []Peer{{Name: "a", Addr: "127.0.0.1:1", IsSelf: true, Partitions: 136}, {Name: "b", Addr: "127.0.0.1:2", Partitions: 135}},
		keyspaces: []KeySpace{{
			Name: "users", MaxBytes: 64 << 20, DefaultTTL: Duration(5 * time.Minute),
			ReadTimeout: Duration(250 * time.Millisecond), WriteTimeout: Duration(500 * time.Millisecond),
			WarmKeys: []string{"user:1", "user:2"}, MainCacheBytes: 2048, Entries: 3,
			Stats:   &KeySpaceStats{Gets: 120, CacheHits: 98, Loads: 22, BreakerState: "closed"},
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
	for _, f := range []string{"gets", "cache_hits", "peer_loads", "peer_errors", "loads", "loads_deduped", "local_loads", "local_load_errs", "remove_keys_requests", "removed_keys"} {
		require.Contains(t, stats, f)
	}
	var kss []KeySpace
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &kss))
	require.Equal(t, newFake().keyspaces, kss, "the JSON round-trips")

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

func TestHandlerDashboard(t *testing.T) {
	src := newFake()
	src.ready = errors.New("not joined")
	h := NewHandler(src, "")
	rec := get(t, h, http.MethodGet, "/_distcache/admin/?refresh=5")
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "text/html; charset=utf-8", rec.Header().Get("Content-Type"))
	body := rec.Body.String()
	for _, s := range []string{"distcache node <code>a</code>", "(this node)", "127.0.0.1:2", "users", "64.0 MiB", "2.0 KiB", "81.7%", "not joined", `content="5"`, "user:&lt;1&gt;"} {
		require.Contains(t, body, s)
	}
	require.NotContains(t, body, "<script")
	require.NotContains(t, get(t, h, http.MethodGet, "/_distcache/admin/?refresh=0").Body.String(), "http-equiv")
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

func TestFormatBytes(t *testing.T) {
	require.Equal(t, "0 B", formatBytes(0))
	require.Equal(t, "1023 B", formatBytes(1023))
	require.Equal(t, "1.5 KiB", formatBytes(1536))
	require.Equal(t, "3.0 GiB", formatBytes(3<<30))
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

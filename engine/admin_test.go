package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/distcache/distcache/admin"
	"github.com/distcache/distcache/discovery/static"
	"github.com/distcache/distcache/engine"
	"github.com/distcache/distcache/internal/enginehook"
	"github.com/distcache/distcache/internal/membership"
	"github.com/distcache/distcache/keyspace"
	"github.com/distcache/distcache/testutil"
	"github.com/distcache/distcache/warmup"
	"github.com/stretchr/testify/require"
)

// adminGet fetches url and decodes its JSON body into v (when non-nil).
func adminGet(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if v != nil {
		require.NoError(t, json.Unmarshal(body, v), "body: %s", body)
	}
	return resp.StatusCode
}

func adminURL(e *engine.Engine, path string) string {
	return "http://" + e.AdminAddr() + admin.DefaultBasePath + path
}

func adminKeySpace(t *testing.T, e *engine.Engine) admin.KeySpace {
	t.Helper()
	var kss []admin.KeySpace
	require.Equal(t, http.StatusOK, adminGet(t, adminURL(e, "/keyspaces"), &kss))
	require.Len(t, kss, 1)
	require.Equal(t, ks, kss[0].Name)
	require.NotNil(t, kss[0].Stats)
	return kss[0]
}

// Every node of a 3-node cluster serves /peers with the 3 members, itself
// marked exactly once, and the ring's partitions.
func TestAdminPeersAcrossCluster(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{Options: []engine.Option{engine.WithAdminServer("127.0.0.1:0")}})
	for i := range 3 {
		e := c.Node(i)
		_, port, err := net.SplitHostPort(e.AdminAddr())
		require.NoError(t, err)
		require.NotEqual(t, "0", port, "the bound port is reported")

		var peers []admin.Peer
		require.Equal(t, http.StatusOK, adminGet(t, adminURL(e, "/peers"), &peers))
		require.Len(t, peers, 3)
		selves, partitions := 0, 0
		for _, p := range peers {
			m, ok := enginehook.Cluster(e).Ring().Member(p.Name)
			require.True(t, ok, "peer %s is a member", p.Name)
			require.Equal(t, m.Addr, p.Addr)
			require.Positive(t, p.Partitions)
			partitions += p.Partitions
			if p.IsSelf {
				selves++
				require.Equal(t, e.NodeName(), p.Name, "node %d marks the wrong peer as itself", i)
			}
		}
		require.Equal(t, 1, selves, "node %d: exactly one is_self", i)
		require.Equal(t, membership.DefaultPartitionCount, partitions, "every partition of the default ring has one owner")

		var st admin.Status
		require.Equal(t, http.StatusOK, adminGet(t, adminURL(e, "/readyz"), &st))
		require.Equal(t, "ok", st.Status)
		require.Equal(t, http.StatusOK, adminGet(t, adminURL(e, "/healthz"), &st))
	}
}

// /keyspaces reports the settings and counters that move with traffic, on
// the caller and on the owner.
func TestAdminKeySpacesStatsMove(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{Options: []engine.Option{
		engine.WithAdminServer("127.0.0.1:0"),
		engine.WithKeySpaceWarmKeys(ks, []string{"w1", "w2"}),
		engine.WithKeySpaceReadTimeout(ks, 3*time.Second),
		engine.WithKeySpaceNearCache(ks, 0, 0), // every remote Get goes to its owner
	}})
	ctx := context.Background()
	before := adminKeySpace(t, c.Node(0))
	require.Equal(t, []string{"w1", "w2"}, before.WarmKeys)
	require.Equal(t, admin.Duration(3*time.Second), before.ReadTimeout)
	require.Equal(t, "3s", before.ReadTimeout.String())
	require.EqualValues(t, 64<<20, before.MaxBytes)
	require.Zero(t, before.HotCacheBytes)
	require.Zero(t, before.Stats.Gets)

	local := c.KeysOwnedBy(0, 3, "local")
	remote := c.KeysOwnedBy(1, 3, "remote")
	for range 2 {
		for _, k := range append(local, remote...) {
			_, err := c.Node(0).Get(ctx, ks, k)
			require.NoError(t, err)
		}
	}

	after := adminKeySpace(t, c.Node(0))
	s := after.Stats
	require.EqualValues(t, 12, s.Gets)
	require.EqualValues(t, 3, s.CacheHits, "second round of the local keys")
	require.EqualValues(t, s.Gets-s.CacheHits, s.Loads)
	require.EqualValues(t, 6, s.PeerLoads, "every Get of a remote key went to its owner")
	require.Zero(t, s.PeerErrors)
	require.EqualValues(t, 3, s.LocalLoads)
	require.EqualValues(t, 9, s.LoadsDeduped, "3 fetches and 6 forwards")
	require.Positive(t, after.MainCacheBytes)
	// The entry count is refreshed at most once a second (a walk of the store).
	require.Eventually(t, func() bool { return adminKeySpace(t, c.Node(0)).Entries > 0 },
		5*time.Second, 50*time.Millisecond)

	owner := adminKeySpace(t, c.Node(1)).Stats
	require.EqualValues(t, 6, owner.ServerRequests)
	require.EqualValues(t, 3, owner.LocalLoads)
	require.EqualValues(t, 3, owner.CacheHits)

	require.NoError(t, c.Node(0).Delete(ctx, ks, local[0]))
	require.Positive(t, adminKeySpace(t, c.Node(0)).Stats.RemovedKeys)

	var one admin.KeySpace
	require.Equal(t, http.StatusOK, adminGet(t, adminURL(c.Node(0), "/keyspaces/"+ks), &one))
	require.Equal(t, ks, one.Name)
	require.Equal(t, http.StatusNotFound, adminGet(t, adminURL(c.Node(0), "/keyspaces/nope"), nil))
}

// AdminHandler mounts on an embedder's mux, reports the lifecycle through
// healthz/readyz, and shows hot keys when warmup is on.
func TestAdminHandlerLifecycle(t *testing.T) {
	t.Parallel()
	ds := testutil.NewDataSource()
	e := newEngine(t, []keyspace.KeySpace{keyspace.New(ks, 1<<20, ds)},
		engine.WithAdminConfig(admin.Config{BasePath: "/ops/cache"}),
		engine.WithWarmup(warmup.Config{}))
	mux := http.NewServeMux()
	mux.Handle("/ops/cache/", e.AdminHandler())
	srv := httptest.NewServer(mux)
	defer srv.Close()
	url := srv.URL + "/ops/cache"
	require.Empty(t, e.AdminAddr(), "no ListenAddr: no server")

	var st admin.Status
	require.Equal(t, http.StatusOK, adminGet(t, url+"/healthz", &st))
	require.Equal(t, http.StatusServiceUnavailable, adminGet(t, url+"/readyz", &st))
	require.Contains(t, st.Error, "not started")
	var peers []admin.Peer
	require.Equal(t, http.StatusOK, adminGet(t, url+"/peers", &peers))
	require.Empty(t, peers)
	var view admin.ClusterView
	require.Equal(t, http.StatusOK, adminGet(t, url+"/cluster", &view))
	require.Empty(t, view.Members, "not started: no members yet")

	ctx := context.Background()
	require.NoError(t, e.Start(ctx))
	require.Equal(t, http.StatusOK, adminGet(t, url+"/readyz", &st))
	require.Equal(t, http.StatusOK, adminGet(t, url+"/peers", &peers))
	require.Len(t, peers, 1)
	require.True(t, peers[0].IsSelf)
	for range 3 {
		_, err := e.Get(ctx, ks, "hot")
		require.NoError(t, err)
	}
	var kss []admin.KeySpace
	require.Equal(t, http.StatusOK, adminGet(t, url+"/keyspaces", &kss))
	require.Equal(t, []admin.HotKey{{Key: "hot", Hits: 3}}, kss[0].HotKeys)
	require.NotNil(t, kss[0].Warmup)

	resp, err := http.Get(url + "/")
	require.NoError(t, err)
	page, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(page), e.NodeName())
	require.Contains(t, string(page), `data-base="/ops/cache"`)
	// The page's script draws the hot keys from /cluster, which carries them.
	require.Equal(t, http.StatusOK, adminGet(t, url+"/cluster", &view))
	require.Len(t, view.Members, 1)
	require.Equal(t, []admin.HotKey{{Key: "hot", Hits: 3}}, view.Members[0].KeySpaces[0].HotKeys)
	require.Empty(t, view.Members[0].AdminURL, "no server of its own: no link")

	require.NoError(t, e.Stop(ctx))
	require.Equal(t, http.StatusOK, adminGet(t, url+"/cluster", &view), "after Stop: still an answer")
	require.Equal(t, http.StatusServiceUnavailable, adminGet(t, url+"/healthz", &st))
	require.Equal(t, http.StatusServiceUnavailable, adminGet(t, url+"/readyz", &st))
}

// The server stops with the engine; a port already taken fails Start.
func TestAdminServerLifecycle(t *testing.T) {
	t.Parallel()
	e, _ := startSingle(t, engine.WithAdminServer("127.0.0.1:0"))
	addr := e.AdminAddr()
	require.NotEmpty(t, addr)
	require.Equal(t, http.StatusOK, adminGet(t, adminURL(e, "/healthz"), nil))

	ds := testutil.NewDataSource()
	clash := newEngine(t, []keyspace.KeySpace{keyspace.New(ks, 1<<20, ds)}, engine.WithAdminServer(addr))
	err := clash.Start(context.Background())
	require.ErrorContains(t, err, "admin server")
	require.ErrorIs(t, clash.Start(context.Background()), engine.ErrEngineStopped, "a failed Start stops the engine")
	require.Empty(t, clash.AdminAddr())

	require.NoError(t, e.Stop(context.Background()))
	require.Empty(t, e.AdminAddr())
	_, err = http.Get("http://" + addr + admin.DefaultBasePath + "/healthz")
	require.Error(t, err, "the admin server stopped with the engine")
}

func TestAdminAndWarmupConfigValidation(t *testing.T) {
	good := []keyspace.KeySpace{keyspace.New("a", 1<<20, testutil.NewDataSource())}
	for _, tc := range []struct {
		opt  engine.Option
		want string
	}{
		{engine.WithAdminServer("nope"), "Admin: admin: invalid config: ListenAddr"},
		{engine.WithAdminConfig(admin.Config{BasePath: "x//y", ReadTimeout: -1}), "ReadTimeout"},
		{engine.WithWarmup(warmup.Config{Concurrency: -1}), "Warmup: warmup: invalid config: Concurrency"},
		{engine.WithAdminConfig(admin.Config{BearerToken: "two words"}), "Admin: admin: invalid config: BearerToken"},
	} {
		_, err := engine.New(engine.NewConfig(static.NewDiscovery(nil), good, tc.opt))
		require.ErrorIs(t, err, engine.ErrInvalidConfig)
		require.ErrorContains(t, err, tc.want)
	}
	// WithAdminServer after WithAdminConfig keeps the other settings.
	e, err := engine.New(engine.NewConfig(static.NewDiscovery(nil), good, engine.WithBindAddr("127.0.0.1"),
		engine.WithAdminConfig(admin.Config{BasePath: "/x"}), engine.WithAdminServer("")))
	require.NoError(t, err)
	defer func() { require.NoError(t, e.Stop(context.Background())) }()
	rec := httptest.NewRecorder()
	e.AdminHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/x/healthz", nil))
	require.Equal(t, http.StatusOK, rec.Code, fmt.Sprint(rec.Body))
}

package engine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distcache/distcache/admin"
	"github.com/distcache/distcache/engine"
	"github.com/distcache/distcache/internal/enginehook"
	"github.com/distcache/distcache/internal/membership"
	"github.com/distcache/distcache/testutil"
	"github.com/stretchr/testify/require"
)

func clusterView(t *testing.T, e *engine.Engine) admin.ClusterView {
	t.Helper()
	var v admin.ClusterView
	require.Equal(t, http.StatusOK, adminGet(t, adminURL(e, "/cluster"), &v))
	return v
}

// memberStats returns the stats of keyspace ks of member name in v.
func memberStats(t *testing.T, v admin.ClusterView, name string) (admin.Member, *admin.KeySpaceStats) {
	t.Helper()
	for _, m := range v.Members {
		if m.Name == name {
			if !m.Reachable {
				return m, nil
			}
			require.Len(t, m.KeySpaces, 1, "member %s", name)
			require.NotNil(t, m.KeySpaces[0].Stats)
			return m, m.KeySpaces[0].Stats
		}
	}
	t.Fatalf("member %s is not in the view %+v", name, v)
	return admin.Member{}, nil
}

// Whichever node answers /cluster, it lists every member with that
// member's own counters (gathered over the RPC), its partitions and where
// its dashboard is; the totals count each Get once.
func TestAdminClusterViewGathersEveryMember(t *testing.T) {
	// Without a near cache, so that every Get of a remote key reaches its owner.
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{Options: []engine.Option{
		engine.WithAdminServer("127.0.0.1:0"), engine.WithKeySpaceNearCache(ks, 0, 0)}})
	ctx := context.Background()
	// Gets on node 2 only, of keys node 2 owns: only node 2 counts them.
	keys := c.KeysOwnedBy(2, 20, "own")
	for _, k := range keys {
		_, err := c.Node(2).Get(ctx, ks, k)
		require.NoError(t, err)
	}
	for i := range 3 {
		v := clusterView(t, c.Node(i))
		require.Equal(t, c.Name(i), v.Node)
		require.Len(t, v.Members, 3, "view from node %d", i)
		partitions := 0
		for j := range 3 {
			m, st := memberStats(t, v, c.Name(j))
			require.True(t, m.Reachable, "node %d sees node %d: %s", i, j, m.Error)
			require.Empty(t, m.Error)
			require.Equal(t, i == j, m.IsSelf)
			require.Equal(t, c.Node(j).Addr(), m.Addr)
			require.Equal(t, c.Node(j).AdminAddr(), m.AdminAddr, "the member says where its admin server is")
			require.Equal(t, "http://"+c.Node(j).AdminAddr()+admin.DefaultBasePath+"/", m.AdminURL)
			require.Positive(t, m.Partitions)
			partitions += m.Partitions
			if j == 2 {
				require.EqualValues(t, len(keys), st.Gets, "view from node %d", i)
				require.EqualValues(t, len(keys), st.Fetches)
				require.NotNil(t, st.DataSourceAvoided)
				require.Zero(t, *st.DataSourceAvoided, "every Get fetched")
			} else {
				require.Zero(t, st.Gets, "node %d's gets in the view from node %d", j, i)
				require.Zero(t, st.Fetches)
				require.Nil(t, st.DataSourceAvoided)
			}
		}
		require.Equal(t, membership.DefaultPartitionCount, partitions)
		require.EqualValues(t, len(keys), v.Gets)
		require.EqualValues(t, len(keys), v.Fetches)
	}

	// Node 0 reads keys it owns (20 Gets, 20 fetches); then node 2 reads
	// them twice (40 Gets, forwarded to node 0, answered from its store)
	// and its own keys again (20 Gets, hits). The cluster counts each Get
	// once, on the node that received the call: 100 Gets, 40 fetches.
	remote := c.KeysOwnedBy(0, 20, "remote")
	for _, k := range remote {
		_, err := c.Node(0).Get(ctx, ks, k)
		require.NoError(t, err)
	}
	for range 2 {
		for _, k := range remote {
			_, err := c.Node(2).Get(ctx, ks, k)
			require.NoError(t, err)
		}
	}
	for _, k := range keys {
		_, err := c.Node(2).Get(ctx, ks, k)
		require.NoError(t, err)
	}
	v := clusterView(t, c.Node(1))
	_, st0 := memberStats(t, v, c.Name(0))
	_, st1 := memberStats(t, v, c.Name(1))
	_, st2 := memberStats(t, v, c.Name(2))
	require.EqualValues(t, len(remote), st0.Fetches)
	require.EqualValues(t, 2*len(remote), st0.ServerRequests)
	require.EqualValues(t, 3*len(remote), st0.Gets, "its own Gets and those it served")
	require.EqualValues(t, 2*len(remote), st2.Forwarded)
	require.Zero(t, st1.Gets)
	require.EqualValues(t, 5*len(keys), v.Gets)
	require.EqualValues(t, 2*len(keys), v.Fetches)
	require.NotNil(t, v.DataSourceAvoided)
	require.InDelta(t, 0.6, *v.DataSourceAvoided, 1e-9, "1 − 40 ÷ 100")
}

// A handler mounted on the embedder's own server has no address of its
// own to report: admin.Config.AdvertiseURL is the link other members get.
func TestAdminClusterViewAdvertiseURL(t *testing.T) {
	const link = "https://cache-0.example/ops/cache/"
	c := testutil.NewCluster(t, 1, testutil.ClusterConfig{Options: []engine.Option{
		engine.WithAdminConfig(admin.Config{BasePath: "/ops/cache", AdvertiseURL: link}),
	}})
	rec := httptest.NewRecorder()
	c.Node(0).AdminHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ops/cache/cluster", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	var v admin.ClusterView
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &v))
	require.Len(t, v.Members, 1)
	require.Equal(t, link, v.Members[0].AdminURL)
	require.Empty(t, v.Members[0].AdminAddr, "no admin server")
}

// A member that stops is listed as unreachable, with the reason: first
// while it is still in the ring (its RPC fails), then once it has left it.
func TestAdminClusterViewListsStoppedMember(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterConfig{Options: []engine.Option{engine.WithAdminServer("127.0.0.1:0")}})
	gone := c.Name(1)
	c.Isolate(1)
	start := time.Now()
	v := clusterView(t, c.Node(0))
	require.Less(t, time.Since(start), 5*time.Second, "an unreachable member costs at most its deadline")
	require.Len(t, v.Members, 3)
	m, _ := memberStats(t, v, gone)
	require.False(t, m.Reachable)
	require.NotEmpty(t, m.Error)
	for _, i := range []int{0, 2} {
		m, st := memberStats(t, v, c.Name(i))
		require.True(t, m.Reachable, m.Error)
		require.NotNil(t, st)
	}
	c.Heal()
	c.WaitConverged()

	c.StopNode(1)
	testutil.WaitFor(t, 10*time.Second, func() bool { return enginehook.Cluster(c.Node(0)).Ring().Len() == 2 }, "node 0 drops %s from its ring", gone)
	v = clusterView(t, c.Node(0))
	require.Len(t, v.Members, 3, "the departed member is still listed")
	m, _ = memberStats(t, v, gone)
	require.False(t, m.Reachable)
	require.Zero(t, m.Partitions)
	require.Contains(t, m.Error, "left the cluster")
	require.NotNil(t, m.KeySpaces)
	require.NotEmpty(t, v.Members[0].Name)
	for _, mm := range v.Members[:2] {
		require.True(t, mm.Reachable, "%s: %s", mm.Name, mm.Error)
	}
}

// With a bearer token, the engine's server and AdminHandler both require
// it; the dashboard's scripts too.
func TestAdminBearerToken(t *testing.T) {
	const token = "dGhpcyBpcyBhIHRlc3QgdG9rZW4"
	c := testutil.NewCluster(t, 1, testutil.ClusterConfig{Options: []engine.Option{
		engine.WithAdminConfig(admin.Config{ListenAddr: "127.0.0.1:0", BearerToken: token}),
	}})
	e := c.Node(0)
	get := func(path, auth string) int {
		req, err := http.NewRequest(http.MethodGet, adminURL(e, path), nil)
		require.NoError(t, err)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, p := range []string{"/", "/cluster", "/peers", "/keyspaces", "/healthz", "/assets/dashboard.js"} {
		require.Equal(t, http.StatusUnauthorized, get(p, ""), p)
		require.Equal(t, http.StatusUnauthorized, get(p, "Bearer nope"), p)
		require.Equal(t, http.StatusOK, get(p, "Bearer "+token), p)
	}
}

// syncBuffer is a bytes.Buffer a slog handler writes while a test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// An admin server on every interface is reported through the engine's
// logger, with its address and what to do instead. (The one test that
// binds every interface: the warning is about exactly that.)
func TestAdminServerOnEveryInterfaceWarns(t *testing.T) {
	var buf syncBuffer
	c := testutil.NewCluster(t, 1, testutil.ClusterConfig{Options: []engine.Option{
		engine.WithLogger(slog.New(slog.NewTextHandler(&buf, nil))),
		engine.WithAdminServer(":0"),
	}})
	out := buf.String()
	var warning string
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "level=WARN") && strings.Contains(line, "admin server") {
			warning = line
		}
	}
	require.NotEmpty(t, warning, "log:\n%s", out)
	require.Contains(t, warning, "every interface")
	require.Contains(t, warning, "addr="+c.Node(0).AdminAddr())
	require.Contains(t, warning, "127.0.0.1")
	require.Contains(t, warning, "BearerToken")
	require.Contains(t, warning, "node="+c.Name(0), "the engine's logger")
}

package membership

import (
	"context"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/distcache/distcache/internal/transport"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	// convergeWithin bounds convergence after explicit joins (usually < 1 s).
	convergeWithin = 5 * time.Second
	// leaveWithin bounds how long peers take to drop a node that left.
	leaveWithin = 2 * time.Second
	// failureWithin bounds crash detection with ProfileLocal (measured ~3-6 s).
	failureWithin = 15 * time.Second
	poll          = 20 * time.Millisecond
)

// testLogger discards logs unless DISTCACHE_TEST_LOG is set ("debug" or any
// other value for warn): memberlist logs from its own goroutines after a test
// ends, so logs cannot go to t.
func testLogger() *slog.Logger {
	switch os.Getenv("DISTCACHE_TEST_LOG") {
	case "":
		return nil
	case "debug":
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	default:
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
}

func testConfig(name string) Config {
	cfg := DefaultLocalConfig()
	cfg.NodeName = name
	cfg.Label = "distcache-test"
	cfg.Logger = testLogger()
	return cfg
}

// startNode creates a node and shuts it down at the end of the test.
func startNode(t *testing.T, cfg Config) *Cluster {
	t.Helper()
	c, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, c.Shutdown()) })
	return c
}

// startCluster starts n nodes named prefix-0..n-1, each joining all earlier
// ones, and waits until every node's ring holds all of them.
func startCluster(t *testing.T, prefix string, n int, mutate func(*Config)) []*Cluster {
	t.Helper()
	nodes := make([]*Cluster, n)
	var addrs []string
	for i := range nodes {
		cfg := testConfig(prefix + "-" + string(rune('a'+i)))
		if mutate != nil {
			mutate(&cfg)
		}
		nodes[i] = startNode(t, cfg)
		if i > 0 {
			joined, err := nodes[i].Join(t.Context(), addrs)
			require.NoError(t, err)
			require.Equal(t, i, joined)
		}
		addrs = append(addrs, nodes[i].Self().Addr)
	}
	waitConverged(t, nodes, names(nodes...), convergeWithin)
	return nodes
}

func names(nodes ...*Cluster) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.Self().Name
	}
	slices.Sort(out)
	return out
}

func ringNames(r *Ring) []string {
	var out []string
	for _, m := range r.Members() {
		out = append(out, m.Name)
	}
	return out
}

// waitConverged waits until every node's ring holds exactly want, with the
// same fingerprint everywhere.
func waitConverged(t *testing.T, nodes []*Cluster, want []string, within time.Duration) {
	t.Helper()
	require.Eventually(t, func() bool {
		var fp uint64
		for i, n := range nodes {
			r := n.Ring()
			if !slices.Equal(ringNames(r), want) {
				return false
			}
			if i == 0 {
				fp = r.Fingerprint()
			} else if r.Fingerprint() != fp {
				return false
			}
		}
		return true
	}, within, poll, "rings did not converge to %v", want)
}

func TestClusterStartsAlone(t *testing.T) {
	c := startNode(t, testConfig("solo"))
	self := c.Self()
	assert.Equal(t, "solo", self.Name)
	host, port, err := net.SplitHostPort(self.Addr)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1", host)
	assert.NotEqual(t, "0", port)
	assert.Equal(t, []Member{self}, c.Members())
	assert.Equal(t, 1, c.NumMembers())
	assert.Equal(t, []Member{self}, c.Ring().Members())
	assert.Equal(t, self, c.Ring().Owner("any"))
	assert.NotNil(t, c.Transport())
}

func TestClusterGeneratedNodeName(t *testing.T) {
	cfg := testConfig("")
	a := startNode(t, cfg)
	b := startNode(t, cfg)
	assert.NotEmpty(t, a.Self().Name)
	assert.NotEqual(t, a.Self().Name, b.Self().Name)
}

func TestClusterThreeNodesConverge(t *testing.T) {
	t.Parallel()
	var changes atomic.Int32
	nodes := startCluster(t, "conv", 3, func(c *Config) {
		c.OnRingChange = func(prev, next *Ring) {
			if prev == nil || next == nil || prev == next {
				panic("OnRingChange: bad rings")
			}
			changes.Add(1)
		}
	})
	for _, n := range nodes {
		assert.Equal(t, 3, n.NumMembers())
		assert.Len(t, n.Members(), 3)
		assert.Equal(t, n.Ring().Members(), n.Members())
	}
	assert.Positive(t, changes.Load())

	// Every node computes the same owner for every key.
	for _, k := range testKeys(10_000) {
		o := nodes[0].Ring().Owner(k)
		require.Equal(t, o, nodes[1].Ring().Owner(k), k)
		require.Equal(t, o, nodes[2].Ring().Owner(k), k)
	}
	// And each owner's address is that node's advertised address.
	dist := nodes[0].Ring().Distribution()
	for _, n := range nodes {
		m, ok := nodes[0].Ring().Member(n.Self().Name)
		require.True(t, ok)
		assert.Equal(t, n.Self(), m)
		assert.Positive(t, dist[n.Self().Name])
	}
	for _, n := range nodes {
		assert.Positive(t, n.Stats().RingRebuilds)
		assert.Zero(t, n.Stats().RingRebuildErrors)
	}
}

func TestClusterCall(t *testing.T) {
	t.Parallel()
	var served atomic.Int32
	nodes := startCluster(t, "call", 2, func(c *Config) {
		name := c.NodeName
		c.Handler = transport.HandlerFunc(func(ctx context.Context, req transport.Request) transport.Response {
			served.Add(1)
			return transport.Response{Status: req.Op + 1, Payload: append([]byte(name+":"), req.Payload...)}
		})
	})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	resp, err := nodes[0].Call(ctx, nodes[1].Self(), transport.Request{Op: 7, Payload: []byte("hello")})
	require.NoError(t, err)
	assert.Equal(t, uint8(8), resp.Status)
	assert.Equal(t, "call-b:hello", string(resp.Payload))

	// Route by ring owner, from both sides.
	for _, k := range testKeys(20) {
		for _, from := range nodes {
			owner := from.Ring().Owner(k)
			resp, err := from.Call(ctx, owner, transport.Request{Payload: []byte(k)})
			require.NoError(t, err)
			assert.Equal(t, owner.Name+":"+k, string(resp.Payload))
		}
	}
	assert.Equal(t, int32(41), served.Load())
}

func TestClusterGracefulLeave(t *testing.T) {
	t.Parallel()
	echo := transport.HandlerFunc(func(_ context.Context, req transport.Request) transport.Response {
		return transport.Response{Payload: req.Payload}
	})
	nodes := startCluster(t, "leave", 3, func(c *Config) {
		c.Handler = echo
		c.Transport.ConnsPerPeer = 1
	})
	leaver := nodes[2]
	call := func() {
		t.Helper()
		_, err := nodes[0].Call(t.Context(), leaver.Self(), transport.Request{Payload: []byte("x")})
		require.NoError(t, err)
	}
	call()
	call()
	require.Equal(t, uint64(1), nodes[0].Transport().Stats().ConnsDialed, "one pooled connection")

	require.NoError(t, leaver.Leave(time.Second))
	start := time.Now()
	waitConverged(t, nodes[:2], names(nodes[:2]...), leaveWithin)
	t.Logf("peers dropped the leaving node after %v", time.Since(start))
	assert.False(t, leaver.Ring().Contains(leaver.Self().Name), "a node that left drops itself")
	require.NoError(t, leaver.Leave(time.Second), "Leave is idempotent")

	// The pool to the departed node is closed right after the ring swap: a
	// new call (it still serves until Shutdown) dials again.
	require.Eventually(t, func() bool {
		call()
		return nodes[0].Transport().Stats().ConnsDialed == 2
	}, leaveWithin, poll)
	require.NoError(t, leaver.Shutdown())
}

func TestClusterCrashDetected(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, "crash", 3, nil)
	require.NoError(t, nodes[2].Shutdown()) // no Leave: looks like a crash
	start := time.Now()
	waitConverged(t, nodes[:2], names(nodes[:2]...), failureWithin)
	t.Logf("peers dropped the crashed node after %v", time.Since(start))
}

func TestClusterRestartWithNewAddressRejoins(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, "restart", 3, nil)
	old := nodes[2]
	oldAddr := old.Self().Addr
	require.NoError(t, old.Shutdown())
	waitConverged(t, nodes[:2], names(nodes[:2]...), failureWithin)

	// Same name, new port (BindPort 0 picks another one).
	restarted := startNode(t, testConfig(old.Self().Name))
	require.NotEqual(t, oldAddr, restarted.Self().Addr)
	start := time.Now()
	all := []*Cluster{nodes[0], nodes[1], restarted}
	// The engine re-joins its seeds periodically; do the same until the dead
	// entry can be reclaimed (DeadNodeReclaimTime, 1 s with ProfileLocal).
	require.Eventually(t, func() bool {
		_, _ = restarted.Join(t.Context(), []string{nodes[0].Self().Addr})
		for _, n := range all {
			m, ok := n.Ring().Member(restarted.Self().Name)
			if !ok || m.Addr != restarted.Self().Addr || n.Ring().Len() != 3 {
				return false
			}
		}
		return true
	}, failureWithin, 200*time.Millisecond)
	t.Logf("restarted node readmitted after %v", time.Since(start))
	waitConverged(t, all, names(all...), convergeWithin)
}

func TestClusterDifferentLabelNeverJoins(t *testing.T) {
	t.Parallel()
	a := startNode(t, testConfig("label-a"))
	cfg := testConfig("label-b")
	cfg.Label = "another-cluster"
	b := startNode(t, cfg)
	n, err := b.Join(t.Context(), []string{a.Self().Addr})
	require.ErrorIs(t, err, ErrJoinFailed)
	assert.Zero(t, n)
	assert.Equal(t, 1, a.NumMembers())
	assert.Equal(t, 1, b.NumMembers())
	assert.Equal(t, 1, a.Ring().Len())
	assert.Equal(t, 1, b.Ring().Len())

	// The RPC handshake checks the label too.
	_, err = b.Call(t.Context(), a.Self(), transport.Request{})
	require.ErrorIs(t, err, transport.ErrLabelMismatch)
}

func TestClusterSecretKey(t *testing.T) {
	t.Parallel()
	key1 := []byte("0123456789abcdef")
	key2 := []byte("fedcba9876543210")
	withKey := func(name string, key []byte) Config {
		cfg := testConfig(name)
		cfg.SecretKey = key
		return cfg
	}
	a := startNode(t, withKey("key-a", key1))

	t.Run("same key joins", func(t *testing.T) {
		b := startNode(t, withKey("key-b", key1))
		_, err := b.Join(t.Context(), []string{a.Self().Addr})
		require.NoError(t, err)
		waitConverged(t, []*Cluster{a, b}, names(a, b), convergeWithin)
		require.NoError(t, b.Leave(time.Second))
		waitConverged(t, []*Cluster{a}, names(a), leaveWithin)
	})
	t.Run("wrong key never joins", func(t *testing.T) {
		c := startNode(t, withKey("key-c", key2))
		n, err := c.Join(t.Context(), []string{a.Self().Addr})
		require.ErrorIs(t, err, ErrJoinFailed)
		assert.Zero(t, n)
		assert.Equal(t, 1, c.NumMembers())
		assert.False(t, a.Ring().Contains("key-c"))
	})
	t.Run("no key never joins", func(t *testing.T) {
		d := startNode(t, testConfig("key-d"))
		n, err := d.Join(t.Context(), []string{a.Self().Addr})
		require.ErrorIs(t, err, ErrJoinFailed)
		assert.Zero(t, n)
		assert.Equal(t, 1, d.NumMembers())
		assert.False(t, a.Ring().Contains("key-d"))
	})
}

func TestClusterMismatchedFingerprintRejected(t *testing.T) {
	t.Parallel()
	a := startNode(t, testConfig("fp-a"))
	cfg := testConfig("fp-b")
	cfg.PartitionCount = 1021
	b := startNode(t, cfg)
	n, err := b.Join(t.Context(), []string{a.Self().Addr})
	require.ErrorIs(t, err, ErrJoinFailed)
	require.ErrorIs(t, err, ErrIncompatibleMember)
	assert.Zero(t, n)
	assert.Equal(t, 1, a.NumMembers())
	assert.Equal(t, 1, b.NumMembers())
	assert.Positive(t, b.Stats().RejectedPeers)
	// The seed vetoes the merge after answering, so its counter may lag.
	require.Eventually(t, func() bool { return a.Stats().RejectedPeers > 0 }, convergeWithin, poll)
	assert.False(t, a.Ring().Contains("fp-b"))
}

func TestClusterJoinSkipsSelfAndDuplicates(t *testing.T) {
	a := startNode(t, testConfig("self-a"))
	b := startNode(t, testConfig("self-b"))
	_, port, err := net.SplitHostPort(a.Self().Addr)
	require.NoError(t, err)

	n, err := a.Join(t.Context(), nil)
	assert.NoError(t, err)
	assert.Zero(t, n)
	n, err = a.Join(t.Context(), []string{a.Self().Addr, "self-a/10.1.2.3:7946", "127.0.0.1:" + port, " "})
	assert.NoError(t, err)
	assert.Zero(t, n)

	n, err = a.Join(t.Context(), []string{a.Self().Addr, b.Self().Addr, b.Self().Addr})
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	waitConverged(t, []*Cluster{a, b}, names(a, b), convergeWithin)
}

func TestClusterJoinErrors(t *testing.T) {
	a := startNode(t, testConfig("joinerr-a"))
	b := startNode(t, testConfig("joinerr-b"))

	// A port nobody listens on: connection refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := l.Addr().String()
	require.NoError(t, l.Close())

	n, err := a.Join(t.Context(), []string{dead})
	require.ErrorIs(t, err, ErrJoinFailed)
	assert.ErrorContains(t, err, dead)
	assert.Zero(t, n)

	// One good seed, one bad: joined, and the failure is still reported.
	n, err = a.Join(t.Context(), []string{dead, b.Self().Addr})
	assert.Equal(t, 1, n)
	require.ErrorIs(t, err, ErrJoinFailed)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	n, err = a.Join(ctx, []string{b.Self().Addr})
	require.ErrorIs(t, err, context.Canceled)
	assert.Zero(t, n)
}

func TestClusterAfterShutdown(t *testing.T) {
	c, err := New(testConfig("closed"))
	require.NoError(t, err)
	require.NoError(t, c.Shutdown())
	require.NoError(t, c.Shutdown(), "Shutdown is idempotent")

	_, err = c.Join(t.Context(), []string{"127.0.0.1:1"})
	assert.ErrorIs(t, err, ErrClosed)
	assert.ErrorIs(t, c.Leave(time.Second), ErrClosed)
	_, err = c.Call(t.Context(), c.Self(), transport.Request{})
	assert.ErrorIs(t, err, ErrClosed)
	assert.NotNil(t, c.Ring())
	assert.Equal(t, c.Self(), c.Ring().Owner("k"))
}

func TestClusterConcurrentShutdownAndLeave(t *testing.T) {
	nodes := startCluster(t, "race", 2, nil)
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { _ = nodes[1].Leave(time.Second) })
		wg.Go(func() { _, _ = nodes[1].Join(t.Context(), []string{nodes[0].Self().Addr}) })
		wg.Go(func() { assert.NoError(t, nodes[1].Shutdown()) })
		wg.Go(func() { _ = nodes[1].Ring().Owner("k"); _ = nodes[1].Members() })
	}
	wg.Wait()
}

func TestNewInvalidConfig(t *testing.T) {
	cfg := testConfig("bad")
	cfg.Load = 0.9
	c, err := New(cfg)
	require.ErrorIs(t, err, ErrInvalidConfig)
	assert.Nil(t, c)
}

func TestClusterAdvertiseAddress(t *testing.T) {
	t.Run("explicit port", func(t *testing.T) {
		cfg := testConfig("adv-port")
		cfg.AdvertiseAddr, cfg.AdvertisePort = "127.0.0.1", 40999
		c := startNode(t, cfg)
		assert.Equal(t, "127.0.0.1:40999", c.Self().Addr)
		assert.Equal(t, c.Self(), c.Ring().Owner("k"))
	})
	t.Run("all interfaces", func(t *testing.T) {
		cfg := testConfig("adv-any")
		cfg.BindAddr, cfg.AdvertiseAddr = "0.0.0.0", "127.0.0.1"
		cfg.Insecure = true // reachable from every interface, unauthenticated: a test on one host
		a := startNode(t, cfg)
		_, port, err := net.SplitHostPort(a.Self().Addr)
		require.NoError(t, err)
		assert.Equal(t, "127.0.0.1:"+port, a.Self().Addr, "advertised port defaults to the bound one")

		n, err := a.Join(t.Context(), []string{"127.0.0.1:" + port, "[::1]:" + port})
		assert.NoError(t, err)
		assert.Zero(t, n, "loopback on the bound port is this node")

		b := startNode(t, testConfig("adv-other"))
		n, err = b.Join(t.Context(), []string{a.Self().Addr})
		require.NoError(t, err)
		assert.Equal(t, 1, n)
		waitConverged(t, []*Cluster{a, b}, names(a, b), convergeWithin)
	})
}

// A crash of one peer must not make the survivors believe themselves cut
// off. Invariant: with the LAN profile's probe timings, no survivor's health
// score ([Cluster.HealthScore]) rises above 1 between the crash and the
// crashed node's removal from every ring. Under memberlist's own LAN
// timeout (half the probe interval), the indirect probes' nacks arrive
// after the prober stopped counting them, and every survivor that probes
// the dead node scores 2 or more.
func TestCrashOfOnePeerKeepsSurvivorsHealthy(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, "health", 5, func(c *Config) { c.Profile = ProfileLAN })
	require.NoError(t, nodes[2].Shutdown()) // no Leave: looks like a crash
	survivors := append(append([]*Cluster(nil), nodes[:2]...), nodes[3:]...)
	peak := make([]int, len(survivors))
	require.Eventually(t, func() bool {
		gone := true
		for i, n := range survivors {
			peak[i] = max(peak[i], n.HealthScore())
			gone = gone && !slices.Contains(ringNames(n.Ring()), nodes[2].Self().Name)
		}
		return gone
	}, 30*time.Second, 10*time.Millisecond, "the crashed node was not dropped")
	for i, p := range peak {
		assert.LessOrEqual(t, p, 1, "health score of %s after one peer crashed", survivors[i].Self().Name)
	}
}

// A member that left and comes back at the same address is callable as
// soon as it is back in the ring. Invariant: the first Call after the
// ring holds it again succeeds, although calls while it was gone left its
// connection pool in dial backoff (which would fail that Call at once).
func TestRejoinedMemberIsCallableAtOnce(t *testing.T) {
	t.Parallel()
	echo := func(c *Config) {
		c.Handler = transport.HandlerFunc(func(_ context.Context, req transport.Request) transport.Response {
			return transport.Response{Payload: req.Payload}
		})
	}
	nodes := startCluster(t, "rejoin", 3, echo)
	gone := nodes[2].Self()
	require.NoError(t, nodes[2].Leave(time.Second))
	require.NoError(t, nodes[2].Shutdown())
	waitConverged(t, nodes[:2], names(nodes[:2]...), failureWithin)

	// Calls to the member while it is gone fail and back its pool off,
	// until the backoff reaches its maximum (seven failed dials: 50 ms
	// doubling to 1 s); the last of them failed just now.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for failed := nodes[0].Transport().Stats().DialFailures; nodes[0].Transport().Stats().DialFailures < failed+7; <-tick.C {
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		_, err := nodes[0].Call(ctx, gone, transport.Request{Payload: []byte("x")})
		cancel()
		require.Error(t, err)
	}

	_, port, err := net.SplitHostPort(gone.Addr)
	require.NoError(t, err)
	cfg := testConfig(gone.Name)
	cfg.BindPort, err = strconv.Atoi(port)
	require.NoError(t, err)
	echo(&cfg)
	back := startNode(t, cfg)
	_, err = back.Join(t.Context(), []string{nodes[0].Self().Addr})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return nodes[0].Ring().Contains(gone.Name) }, failureWithin, time.Millisecond)

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	resp, err := nodes[0].Call(ctx, gone, transport.Request{Payload: []byte("back")})
	require.NoError(t, err, "first call after the member rejoined")
	assert.Equal(t, "back", string(resp.Payload))
}

package nats

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natsgo "github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/distcache/distcache/discovery"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// startServer runs an embedded nats-server on 127.0.0.1 with a random port
// (port, when non-zero, re-binds a port this test used before).
func startServer(t testing.TB, port int) *server.Server {
	t.Helper()
	if port == 0 {
		port = -1 // random
	}
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true})
	require.NoError(t, err)
	s.Start()
	require.True(t, s.ReadyForConnections(10*time.Second), "nats-server not ready")
	t.Cleanup(func() { stopServer(s) })
	return s
}

func stopServer(s *server.Server) {
	s.Shutdown()
	s.WaitForShutdown()
}

func testConfig(url, subject string) Config {
	cfg := DefaultConfig()
	cfg.URL = url
	cfg.Subject = subject
	cfg.QuietPeriod = 50 * time.Millisecond
	cfg.ConnectTimeout = time.Second
	cfg.ReconnectWait = 20 * time.Millisecond
	return cfg
}

// startProvider starts a provider for node name on 127.0.0.1:port and stops
// it at cleanup.
func startProvider(t testing.TB, cfg Config, name string, port int) *Discovery {
	t.Helper()
	d, err := New(cfg)
	require.NoError(t, err)
	require.NoError(t, d.Start(context.Background(), self(name, port)))
	t.Cleanup(func() { _ = d.Stop(context.Background()) })
	return d
}

func self(name string, port int) discovery.Self {
	return discovery.Self{Name: name, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
}

func addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// known returns the provider's table of known peers (nil when stopped).
func known(d *Discovery) map[string]string {
	d.mu.Lock()
	s := d.sess
	d.mu.Unlock()
	if s == nil {
		return nil
	}
	return s.knownPeers()
}

// eventuallyPeers waits until d discovers exactly want.
func eventuallyPeers(t *testing.T, d *Discovery, want ...string) {
	t.Helper()
	var last []string
	var lastErr error
	ok := assertEventually(func() bool {
		last, lastErr = d.DiscoverPeers(context.Background())
		return lastErr == nil && fmt.Sprint(last) == fmt.Sprint(want)
	})
	require.True(t, ok, "want %v, last got %v (err %v)", want, last, lastErr)
}

func assertEventually(cond func() bool) bool {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(10 * time.Millisecond) // poll interval, not a synchronisation
	}
	return false
}

func TestThreeNodesDiscoverEachOther(t *testing.T) {
	s := startServer(t, 0)
	cfg := testConfig(s.ClientURL(), "distcache.test")
	p1 := startProvider(t, cfg, "n1", 7001)
	p2 := startProvider(t, cfg, "n2", 7002)
	p3 := startProvider(t, cfg, "n3", 7003)

	all := []string{addr(7001), addr(7002), addr(7003)}
	for _, p := range []*Discovery{p1, p2, p3} {
		eventuallyPeers(t, p, all...)
	}
	// The last node learned of the others from their hello answers to its
	// announcement; the first learned of the later ones from announcements.
	require.Eventually(t, func() bool { return len(known(p3)) == 2 && len(known(p1)) == 2 }, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, map[string]string{"n1": addr(7001), "n2": addr(7002)}, known(p3))
}

func TestStopRemovesNode(t *testing.T) {
	s := startServer(t, 0)
	cfg := testConfig(s.ClientURL(), "distcache.test")
	p1 := startProvider(t, cfg, "n1", 7001)
	startProvider(t, cfg, "n2", 7002)
	p3 := startProvider(t, cfg, "n3", 7003)
	eventuallyPeers(t, p1, addr(7001), addr(7002), addr(7003))

	require.NoError(t, p3.Stop(context.Background()))
	require.NoError(t, p3.Stop(context.Background()), "Stop is idempotent")
	eventuallyPeers(t, p1, addr(7001), addr(7002))
	require.Eventually(t, func() bool { _, ok := known(p1)["n3"]; return !ok }, 5*time.Second, 10*time.Millisecond,
		"the leave announcement removes n3 from n1's table")

	_, err := p3.DiscoverPeers(context.Background())
	require.ErrorIs(t, err, discovery.ErrNotStarted)

	// A stopped provider can start again (re-register).
	require.NoError(t, p3.Start(context.Background(), self("n3", 7003)))
	eventuallyPeers(t, p1, addr(7001), addr(7002), addr(7003))
}

func TestGatherEndsBeforeTimeout(t *testing.T) {
	s := startServer(t, 0)
	cfg := testConfig(s.ClientURL(), "distcache.test")
	cfg.Timeout = time.Minute // the quiet period must end the window, not this
	p1 := startProvider(t, cfg, "n1", 7001)
	startProvider(t, cfg, "n2", 7002)
	startProvider(t, cfg, "n3", 7003)
	require.Eventually(t, func() bool { return len(known(p1)) == 2 }, 5*time.Second, 10*time.Millisecond)

	start := time.Now()
	got, err := p1.DiscoverPeers(context.Background())
	require.NoError(t, err)
	require.Equal(t, []string{addr(7001), addr(7002), addr(7003)}, got)
	require.Less(t, time.Since(start), cfg.Timeout, "returned once all known peers answered")
}

func TestCrashedPeerIsForgotten(t *testing.T) {
	s := startServer(t, 0)
	cfg := testConfig(s.ClientURL(), "distcache.test")
	cfg.Timeout = 300 * time.Millisecond
	p1 := startProvider(t, cfg, "n1", 7001)

	// A "ghost" announces itself and then never answers (it crashed).
	raw, err := natsgo.Connect(s.ClientURL())
	require.NoError(t, err)
	defer raw.Close()
	msg, err := encodeMember(self("ghost", 7999))
	require.NoError(t, err)
	require.NoError(t, raw.Publish("distcache.test.announce", msg))
	require.NoError(t, raw.Flush())
	require.Eventually(t, func() bool { _, ok := known(p1)["ghost"]; return ok }, 5*time.Second, 10*time.Millisecond)

	// One full window passes without the ghost answering: it is dropped.
	got, err := p1.DiscoverPeers(context.Background())
	require.NoError(t, err)
	require.Equal(t, []string{addr(7001)}, got)
	require.NotContains(t, known(p1), "ghost")
}

func TestContextBoundsTheWindow(t *testing.T) {
	s := startServer(t, 0)
	cfg := testConfig(s.ClientURL(), "distcache.test")
	cfg.Timeout = time.Minute
	cfg.QuietPeriod = time.Minute // never ends early
	p1 := startProvider(t, cfg, "n1", 7001)
	startProvider(t, cfg, "n2", 7002)

	t.Run("deadline ends the window without error", func(t *testing.T) {
		var got []string
		require.True(t, assertEventually(func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			var err error
			got, err = p1.DiscoverPeers(ctx)
			require.NoError(t, err)
			return len(got) == 2
		}), "got %v", got)
		require.Equal(t, []string{addr(7001), addr(7002)}, got)
	})
	t.Run("cancellation is an error", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := p1.DiscoverPeers(ctx)
		require.ErrorIs(t, err, context.Canceled)

		ctx, cancel = context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { _, err := p1.DiscoverPeers(ctx); done <- err }()
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
	})
}

func TestSubjectsIsolateClusters(t *testing.T) {
	s := startServer(t, 0)
	a := startProvider(t, testConfig(s.ClientURL(), "distcache.a"), "n1", 7001)
	b := startProvider(t, testConfig(s.ClientURL(), "distcache.b"), "n2", 7002)
	eventuallyPeers(t, a, addr(7001))
	eventuallyPeers(t, b, addr(7002))
}

func TestMalformedMessagesAreDropped(t *testing.T) {
	s := startServer(t, 0)
	cfg := testConfig(s.ClientURL(), "distcache.test")
	p1 := startProvider(t, cfg, "n1", 7001)
	startProvider(t, cfg, "n2", 7002)

	raw, err := natsgo.Connect(s.ClientURL())
	require.NoError(t, err)
	defer raw.Close()
	// A bogus responder answers every discovery request with garbage.
	sub, err := raw.Subscribe("distcache.test.discover", func(m *natsgo.Msg) {
		for _, bad := range []string{"", "{", `{"v":0,"name":"x","addr":"1.2.3.4:5"}`, `{"v":1,"name":"x","addr":"1.2.3.4"}`,
			`{"v":1,"name":"x","addr":"0.0.0.0:5"}`, `{"v":1,"name":"","addr":"1.2.3.4:5"}`, string(make([]byte, 5000))} {
			_ = m.Respond([]byte(bad))
		}
	})
	require.NoError(t, err)
	defer func() { _ = sub.Unsubscribe() }()
	for _, subject := range []string{"distcache.test.announce", "distcache.test.leave", "distcache.test.discover"} {
		require.NoError(t, raw.PublishRequest(subject, raw.NewInbox(), []byte("not json")))
	}
	require.NoError(t, raw.Flush())

	eventuallyPeers(t, p1, addr(7001), addr(7002))
	require.Equal(t, map[string]string{"n2": addr(7002)}, known(p1))
}

func TestReconnectAnnouncesAgain(t *testing.T) {
	s := startServer(t, 0)
	port := s.Addr().(*net.TCPAddr).Port
	cfg := testConfig(s.ClientURL(), "distcache.test")
	cfg.MaxReconnects = -1
	cfg.Timeout = 200 * time.Millisecond // a peer still reconnecting costs one window
	p1 := startProvider(t, cfg, "n1", 7001)
	p2 := startProvider(t, cfg, "n2", 7002)
	eventuallyPeers(t, p1, addr(7001), addr(7002))

	stopServer(s)
	require.Eventually(t, func() bool {
		_, err := p1.DiscoverPeers(context.Background())
		return err != nil
	}, 5*time.Second, 10*time.Millisecond, "a disconnected provider reports an error")
	_, err := p1.DiscoverPeers(context.Background())
	require.ErrorIs(t, err, natsgo.ErrConnectionReconnecting)

	startServer(t, port) // same port: the clients reconnect by themselves
	eventuallyPeers(t, p1, addr(7001), addr(7002))
	eventuallyPeers(t, p2, addr(7001), addr(7002))
	// Stop before the server's cleanup so that the leave is delivered.
	require.NoError(t, p1.Stop(context.Background()))
	require.NoError(t, p2.Stop(context.Background()))
}

func TestReconnectsExhausted(t *testing.T) {
	s := startServer(t, 0)
	cfg := testConfig(s.ClientURL(), "distcache.test")
	cfg.MaxReconnects = 1
	cfg.ReconnectWait = time.Millisecond
	var userClosed atomic.Bool
	cfg.Options = []natsgo.Option{natsgo.ClosedHandler(func(*natsgo.Conn) { userClosed.Store(true) })}
	p1 := startProvider(t, cfg, "n1", 7001)
	eventuallyPeers(t, p1, addr(7001))

	stopServer(s)
	require.Eventually(t, func() bool {
		_, err := p1.DiscoverPeers(context.Background())
		return err != nil && userClosed.Load()
	}, 10*time.Second, 10*time.Millisecond)
	_, err := p1.DiscoverPeers(context.Background())
	require.ErrorIs(t, err, natsgo.ErrConnectionClosed)
	require.NoError(t, p1.Stop(context.Background()), "nothing to deregister from a closed connection")
}

func TestStopWhileReconnecting(t *testing.T) {
	s := startServer(t, 0)
	cfg := testConfig(s.ClientURL(), "distcache.test")
	cfg.MaxReconnects = -1
	p1 := startProvider(t, cfg, "n1", 7001)
	stopServer(s)
	require.Eventually(t, func() bool {
		_, err := p1.DiscoverPeers(context.Background())
		return err != nil
	}, 5*time.Second, 10*time.Millisecond)

	// The leave cannot be flushed: Stop says so, within ctx, and still
	// releases everything (goleak checks the goroutines).
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := p1.Stop(ctx)
	require.ErrorContains(t, err, "nats: stop: flush leave")
	require.NoError(t, p1.Stop(context.Background()))
}

func TestStartErrors(t *testing.T) {
	// A port that refuses connections: bind, read the port, close.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	deadURL := "nats://" + ln.Addr().String()
	require.NoError(t, ln.Close())

	t.Run("connect failure", func(t *testing.T) {
		cfg := testConfig(deadURL, "distcache.test")
		// Retrying in the background would hide the failure: it is forced off.
		cfg.Options = []natsgo.Option{natsgo.RetryOnFailedConnect(true)}
		d, err := New(cfg)
		require.NoError(t, err)
		err = d.Start(context.Background(), self("n1", 7001))
		require.ErrorIs(t, err, natsgo.ErrNoServers)
		require.ErrorContains(t, err, "nats: connect to")
		_, err = d.DiscoverPeers(context.Background())
		require.ErrorIs(t, err, discovery.ErrNotStarted, "no panic after a failed Start")
		require.NoError(t, d.Stop(context.Background()))
	})

	s := startServer(t, 0)
	d, err := New(testConfig(s.ClientURL(), "distcache.test"))
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		self discovery.Self
	}{
		{"empty addr", discovery.Self{Name: "n1"}},
		{"no port", discovery.Self{Name: "n1", Addr: "127.0.0.1"}},
		{"port zero", discovery.Self{Name: "n1", Addr: "127.0.0.1:0"}},
		{"unspecified host", discovery.Self{Name: "n1", Addr: "0.0.0.0:7001"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.ErrorContains(t, d.Start(context.Background(), tc.self), "nats: start: self address")
		})
	}
	t.Run("cancelled context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		require.ErrorIs(t, d.Start(ctx, self("n1", 7001)), context.Canceled)
	})
	t.Run("already started", func(t *testing.T) {
		require.NoError(t, d.Start(context.Background(), discovery.Self{Addr: addr(7001)}), "empty Name defaults to Addr")
		require.ErrorIs(t, d.Start(context.Background(), self("n1", 7001)), ErrAlreadyStarted)
		eventuallyPeers(t, d, addr(7001))
		require.NoError(t, d.Stop(context.Background()))
	})
}

func FuzzDecodeMember(f *testing.F) {
	f.Add([]byte(`{"v":1,"name":"n1","addr":"127.0.0.1:7001"}`))
	f.Add([]byte(`{"v":2,"name":"n1","addr":"[::1]:7001","extra":true}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decodeMember(data)
		if err == nil {
			require.NotEmpty(t, m.Name)
			require.NoError(t, checkAddr(m.Addr))
		}
	})
}

func BenchmarkDiscoverPeers(b *testing.B) {
	s := startServer(b, 0)
	cfg := testConfig(s.ClientURL(), "distcache.bench")
	cfg.QuietPeriod = time.Millisecond
	p1 := startProvider(b, cfg, "n1", 7001)
	startProvider(b, cfg, "n2", 7002)
	startProvider(b, cfg, "n3", 7003)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p1.DiscoverPeers(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

package dns

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/distcache/distcache/discovery"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeDNS is an authoritative DNS server on 127.0.0.1:0 (UDP) serving a
// small in-memory zone. Names not in the zone get NXDOMAIN; names in silent
// never get an answer (to exercise timeouts).
type fakeDNS struct {
	addr string

	mu     sync.Mutex // guards zone and silent
	zone   map[string][]mdns.RR
	silent map[string]bool
}

func startFakeDNS(t testing.TB) *fakeDNS {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	f := &fakeDNS{addr: pc.LocalAddr().String(), zone: map[string][]mdns.RR{}, silent: map[string]bool{}}
	started := make(chan struct{})
	srv := &mdns.Server{PacketConn: pc, Handler: mdns.HandlerFunc(f.serve), NotifyStartedFunc: func() { close(started) }}
	done := make(chan error, 1)
	go func() { done <- srv.ActivateAndServe() }()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("dns server: %v", err)
	}
	t.Cleanup(func() {
		require.NoError(t, srv.Shutdown())
		<-done
	})
	return f
}

// add parses RRs in zone-file syntax and adds them to their owner names.
func (f *fakeDNS) add(t testing.TB, rrs ...string) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range rrs {
		rr, err := mdns.NewRR(s)
		require.NoError(t, err)
		name := strings.ToLower(rr.Header().Name)
		f.zone[name] = append(f.zone[name], rr)
	}
}

// addEmpty makes name exist with no records (NOERROR, empty answer).
func (f *fakeDNS) addEmpty(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.zone[mdns.Fqdn(strings.ToLower(name))] = []mdns.RR{}
}

func (f *fakeDNS) silence(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.silent[mdns.Fqdn(strings.ToLower(name))] = true
}

func (f *fakeDNS) serve(w mdns.ResponseWriter, req *mdns.Msg) {
	if len(req.Question) != 1 {
		return
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	f.mu.Lock()
	if f.silent[name] {
		f.mu.Unlock()
		return
	}
	rrs, ok := f.zone[name]
	resp := new(mdns.Msg)
	resp.SetReply(req)
	resp.Authoritative = true
	if !ok {
		resp.Rcode = mdns.RcodeNameError
	}
	for _, rr := range rrs {
		if rr.Header().Rrtype == q.Qtype {
			resp.Answer = append(resp.Answer, rr)
		}
	}
	f.mu.Unlock()
	_ = w.WriteMsg(resp)
}

// resolver returns a pure-Go net.Resolver that sends every query to f,
// injected through Config.Resolver (Config.Server builds the same).
func (f *fakeDNS) resolver() *net.Resolver { return serverResolver(f.addr) }

func newStarted(t testing.TB, cfg Config) *Discovery {
	t.Helper()
	d, err := New(cfg)
	require.NoError(t, err)
	require.NoError(t, d.Start(context.Background(), discovery.Self{}))
	t.Cleanup(func() { require.NoError(t, d.Stop(context.Background())) })
	return d
}

func TestDiscoverPeersSRV(t *testing.T) {
	f := startFakeDNS(t)
	const name = "_gossip._tcp.cache.test."
	f.add(t,
		name+" 30 IN SRV 0 0 7948 node-c.cache.test.",
		name+" 30 IN SRV 0 0 7946 node-a.cache.test.",
		name+" 30 IN SRV 10 5 7947 node-b.cache.test.",
		name+" 30 IN SRV 0 0 7946 node-a.cache.test.", // duplicate
		name+" 30 IN SRV 0 0 0 node-d.cache.test.",    // port 0: skipped
	)
	d := newStarted(t, Config{Name: name, Server: f.addr})
	want := []string{"node-a.cache.test:7946", "node-b.cache.test:7947", "node-c.cache.test:7948"}
	for range 3 { // stable across calls despite SRV weight shuffling
		got, err := d.DiscoverPeers(context.Background())
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
}

func TestDiscoverPeersARecords(t *testing.T) {
	f := startFakeDNS(t)
	f.add(t,
		"cache.test. 30 IN A 10.0.0.3",
		"cache.test. 30 IN A 10.0.0.1",
		"cache.test. 30 IN A 10.0.0.3", // duplicate
		"cache.test. 30 IN AAAA 2001:db8::2",
	)
	cases := []struct {
		name    string
		network string
		want    []string
	}{
		{"both families", "", []string{"10.0.0.1:7946", "10.0.0.3:7946", "[2001:db8::2]:7946"}},
		{"ip4 only", "ip4", []string{"10.0.0.1:7946", "10.0.0.3:7946"}},
		{"ip6 only", "ip6", []string{"[2001:db8::2]:7946"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := newStarted(t, Config{Name: "cache.test", Port: 7946, Network: tc.network, Resolver: f.resolver()})
			got, err := d.DiscoverPeers(context.Background())
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestDiscoverPeersNoRecords(t *testing.T) {
	f := startFakeDNS(t)
	f.addEmpty("empty.cache.test")
	f.add(t, "a-only.cache.test. 30 IN A 10.0.0.1",
		"_dead._tcp.cache.test. 30 IN SRV 0 0 7946 .")
	cases := []struct {
		name string
		cfg  Config
	}{
		{"NXDOMAIN SRV", Config{Name: "missing.cache.test."}},
		{"NXDOMAIN A", Config{Name: "missing.cache.test.", Port: 7946}},
		{"empty answer SRV", Config{Name: "empty.cache.test."}},
		{"empty answer A", Config{Name: "empty.cache.test.", Port: 7946}},
		{"A records but SRV asked (no Port)", Config{Name: "a-only.cache.test."}},
		{"ip6 asked, only A present", Config{Name: "a-only.cache.test.", Port: 7946, Network: "ip6"}},
		{"SRV target is '.'", Config{Name: "_dead._tcp.cache.test."}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Resolver = f.resolver()
			d := newStarted(t, tc.cfg)
			got, err := d.DiscoverPeers(context.Background())
			require.ErrorIs(t, err, ErrNoRecords)
			require.Nil(t, got)
			require.True(t, strings.HasPrefix(err.Error(), "dns: "), err.Error())
		})
	}
}

func TestDiscoverPeersTimeout(t *testing.T) {
	f := startFakeDNS(t)
	f.silence("slow.cache.test")

	t.Run("caller context", func(t *testing.T) {
		d := newStarted(t, Config{Name: "slow.cache.test.", Port: 7946, Resolver: f.resolver()})
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := d.DiscoverPeers(ctx)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.NotErrorIs(t, err, ErrNoRecords)
		var dnsErr *net.DNSError
		require.ErrorAs(t, err, &dnsErr)
		// The caller's deadline, not the 5s default Timeout, ended the call.
		require.Less(t, time.Since(start), defaultTimeout)
	})
	t.Run("config timeout", func(t *testing.T) {
		d := newStarted(t, Config{Name: "slow.cache.test.", Timeout: 100 * time.Millisecond, Resolver: f.resolver()})
		_, err := d.DiscoverPeers(context.Background())
		require.ErrorIs(t, err, context.DeadlineExceeded)
	})
	t.Run("cancelled context", func(t *testing.T) {
		d := newStarted(t, Config{Name: "slow.cache.test.", Resolver: f.resolver()})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := d.DiscoverPeers(ctx)
		require.ErrorIs(t, err, context.Canceled)
	})
}

// stubResolver returns canned answers, for paths a real server cannot
// produce through net.Resolver.
type stubResolver struct {
	srv    []*net.SRV
	srvErr error
}

func (s stubResolver) LookupSRV(context.Context, string, string, string) (string, []*net.SRV, error) {
	return "", s.srv, s.srvErr
}

func (s stubResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	return nil, errors.New("not used")
}

func TestDiscoverPeersSRVPartialResults(t *testing.T) {
	// net.Resolver returns the valid records plus an error when some targets
	// are malformed; the valid ones are used.
	r := stubResolver{
		srv:    []*net.SRV{{Target: "b.test.", Port: 2}, nil, {Target: "a.test.", Port: 1}},
		srvErr: &net.DNSError{Err: "cannot unmarshal DNS message"},
	}
	d := newStarted(t, Config{Name: "x.test", Resolver: r})
	got, err := d.DiscoverPeers(context.Background())
	require.NoError(t, err)
	require.Equal(t, []string{"a.test:1", "b.test:2"}, got)

	// An error that is not "not found" is not ErrNoRecords.
	d = newStarted(t, Config{Name: "x.test", Resolver: stubResolver{srvErr: &net.DNSError{Err: "server misbehaving", IsTemporary: true}}})
	_, err = d.DiscoverPeers(context.Background())
	require.Error(t, err)
	require.NotErrorIs(t, err, ErrNoRecords)
}

func TestLifecycle(t *testing.T) {
	f := startFakeDNS(t)
	f.add(t, "cache.test. 30 IN A 10.0.0.1")
	d, err := New(Config{Name: "cache.test.", Port: 1, Server: f.addr})
	require.NoError(t, err)
	ctx := context.Background()

	_, err = d.DiscoverPeers(ctx)
	require.ErrorIs(t, err, discovery.ErrNotStarted, "before Start")

	require.NoError(t, d.Start(ctx, discovery.Self{Name: "n1", Addr: "10.0.0.1:1"}))
	got, err := d.DiscoverPeers(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"10.0.0.1:1"}, got)

	require.NoError(t, d.Stop(ctx))
	require.NoError(t, d.Stop(ctx), "Stop is idempotent")
	_, err = d.DiscoverPeers(ctx)
	require.ErrorIs(t, err, discovery.ErrNotStarted, "after Stop")

	require.NoError(t, d.Start(ctx, discovery.Self{}), "restart after Stop")
	_, err = d.DiscoverPeers(ctx)
	require.NoError(t, err)
	require.NoError(t, d.Stop(ctx))
}

func TestConfigValidate(t *testing.T) {
	long := strings.Repeat("a", 64)
	cases := []struct {
		name    string
		cfg     Config
		wantErr string // substring; empty means valid
	}{
		{"default with name", func() Config { c := DefaultConfig(); c.Name = "x.test"; return c }(), ""},
		{"srv fqdn", Config{Name: "_gossip._tcp.cache.ns.svc.cluster.local."}, ""},
		{"A with port and ip6", Config{Name: "cache", Port: 7946, Network: "ip6"}, ""},
		{"server", Config{Name: "cache.service.consul", Server: "127.0.0.1:8600"}, ""},
		{"empty name", Config{}, "Name is empty"},
		{"only a dot", Config{Name: "."}, "1..253"},
		{"empty label", Config{Name: "a..b"}, "label"},
		{"long label", Config{Name: long + ".test"}, "label"},
		{"bad char", Config{Name: "cache test"}, "contains"},
		{"negative port", Config{Name: "x", Port: -1}, "Port -1"},
		{"port too big", Config{Name: "x", Port: 70000}, "Port 70000"},
		{"bad network", Config{Name: "x", Port: 1, Network: "tcp"}, "Network"},
		{"server without port", Config{Name: "x", Server: "127.0.0.1"}, "Server"},
		{"server port 0", Config{Name: "x", Server: "127.0.0.1:0"}, "Server"},
		{"server and resolver", Config{Name: "x", Server: "127.0.0.1:53", Resolver: net.DefaultResolver}, "not both"},
		{"negative timeout", Config{Name: "x", Timeout: -time.Second}, "Timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			_, newErr := New(tc.cfg)
			if tc.wantErr == "" {
				require.NoError(t, err)
				require.NoError(t, newErr)
				return
			}
			require.ErrorIs(t, err, ErrInvalidConfig)
			require.ErrorContains(t, err, tc.wantErr)
			require.ErrorIs(t, newErr, ErrInvalidConfig)
			require.True(t, strings.HasPrefix(err.Error(), "dns: "), err.Error())
		})
	}
}

func BenchmarkDiscoverPeersSRV(b *testing.B) {
	f := startFakeDNS(b)
	const name = "_gossip._tcp.cache.test."
	for _, rr := range []string{"a", "b", "c", "d", "e"} {
		f.add(b, name+" 30 IN SRV 0 0 7946 "+rr+".cache.test.")
	}
	d := newStarted(b, Config{Name: name, Server: f.addr})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.DiscoverPeers(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

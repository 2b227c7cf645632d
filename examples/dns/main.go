// Command dns runs three distcache engines that find each other through DNS
// SRV records, the way they would behind a Kubernetes headless Service or
// Consul's DNS interface. A small authoritative DNS server on 127.0.0.1 (a
// random port) plays the registry: each node's SRV record (and the A record
// of its target) is added once it has started, and the engines'
// discovery/dns providers query that server.
//
//	go run ./examples/dns
//
// In production, drop the server: set Config.Name to your SRV name (for
// Kubernetes, "_gossip._tcp.<service>.<namespace>.svc.cluster.local") and
// leave Config.Server empty to use the system resolver.
package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/distcache/distcache/discovery"
	"github.com/distcache/distcache/discovery/dns"
	"github.com/distcache/distcache/engine"
	"github.com/distcache/distcache/keyspace"
)

// srvName is the SRV name the nodes look up.
const srvName = "_gossip._tcp.cache.example."

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "dns example:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer) error {
	zone := &zone{}
	server, err := zone.serve()
	if err != nil {
		return err
	}
	defer server.Shutdown()
	fmt.Fprintf(out, "DNS server at %s serving SRV %s\n", server.PacketConn.LocalAddr(), srvName)

	var fetches atomic.Int64
	prices := keyspace.New("prices", 16<<20, keyspace.DataSourceFunc(
		func(ctx context.Context, key string) ([]byte, error) {
			fetches.Add(1)
			return []byte("price of " + key), nil
		}))
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)

	var engines []*engine.Engine
	defer func() {
		for _, e := range engines {
			_ = e.Stop(ctx)
		}
	}()
	for i := 1; i <= 3; i++ {
		cfg := dns.DefaultConfig()
		cfg.Name = srvName                                  // SRV: each record carries its node's port
		cfg.Server = server.PacketConn.LocalAddr().String() // ask this server, not the system resolver
		p, err := dns.New(cfg)
		if err != nil {
			return err
		}
		// SRV targets are host names, which the engine resolves with the
		// system resolver when it joins. Only our server knows these names,
		// so resolve them there first (as with Consul's DNS on :8600 when the
		// system resolver does not forward .consul). Where the system
		// resolver knows the targets (Kubernetes), pass p itself.
		provider := &resolveTargets{Provider: p, resolver: serverResolver(cfg.Server)}
		e, err := engine.New(engine.NewConfig(provider, []keyspace.KeySpace{prices},
			engine.WithNodeName(fmt.Sprintf("dns-node-%d", i)),
			engine.WithBindAddr("127.0.0.1"),
			engine.WithBindPort(0),
			engine.WithLabel("dns-example"),
			engine.WithGossipSecret(secret),
			engine.WithDiscoveryInterval(time.Second),
		))
		if err != nil {
			return err
		}
		// The first node finds no record yet (a lookup error, retried by the
		// engine) and starts alone: the default quorum is 1.
		if err := e.Start(ctx); err != nil {
			return err
		}
		engines = append(engines, e)
		if err := zone.add(e.NodeName(), e.Addr()); err != nil { // the registry learns of it
			return err
		}
		fmt.Fprintf(out, "started %s on %s, SRV record added\n", e.NodeName(), e.Addr())
	}
	if err := waitMembers(engines, 3, 20*time.Second); err != nil {
		return err
	}
	fmt.Fprintf(out, "one cluster of %d members, found through DNS\n", len(engines[0].Members()))

	keys := []string{"sku:1", "sku:2", "sku:3", "sku:4", "sku:5"}
	for _, e := range engines {
		for _, k := range keys {
			if _, err := e.Get(ctx, "prices", k); err != nil {
				return fmt.Errorf("%s: Get %s: %w", e.NodeName(), k, err)
			}
		}
	}
	fmt.Fprintf(out, "%d Gets through 3 nodes, %d DataSource fetches (one per key)\n",
		len(keys)*len(engines), fetches.Load())
	if n := fetches.Load(); n != int64(len(keys)) {
		return fmt.Errorf("%d fetches, want %d", n, len(keys))
	}
	return nil
}

// zone is an authoritative DNS server for srvName whose records can be
// added while it runs, as a service registry's would: one SRV record per
// node, whose target is a host name with an A record.
type zone struct {
	mu  sync.Mutex // guards srv and a
	srv []mdns.RR
	a   map[string]mdns.RR // by target name
}

// add publishes node's gossip address: SRV srvName -> <node>.cache.example.
// with the port, and an A record for that name. (An SRV target must be a
// host name: Go's resolver rejects a record whose target is an IP.)
func (z *zone) add(node, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return err
	}
	target := node + ".cache.example."
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.a == nil {
		z.a = map[string]mdns.RR{}
	}
	z.srv = append(z.srv, &mdns.SRV{
		Hdr:      mdns.RR_Header{Name: srvName, Rrtype: mdns.TypeSRV, Class: mdns.ClassINET, Ttl: 5},
		Priority: 10, Weight: 10, Port: uint16(p), Target: target,
	})
	z.a[target] = &mdns.A{
		Hdr: mdns.RR_Header{Name: target, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 5},
		A:   net.ParseIP(host),
	}
	return nil
}

func (z *zone) ServeDNS(w mdns.ResponseWriter, req *mdns.Msg) {
	m := new(mdns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	z.mu.Lock()
	for _, q := range req.Question {
		switch {
		case q.Name == srvName && q.Qtype == mdns.TypeSRV:
			m.Answer = append(m.Answer, z.srv...)
		case q.Qtype == mdns.TypeA && z.a[q.Name] != nil:
			m.Answer = append(m.Answer, z.a[q.Name])
		}
	}
	z.mu.Unlock()
	if len(m.Answer) == 0 {
		m.Rcode = mdns.RcodeNameError
	}
	_ = w.WriteMsg(m)
}

// resolveTargets is a discovery.Provider that resolves the host names the
// DNS provider returns (SRV targets) to IP addresses with a given resolver.
type resolveTargets struct {
	discovery.Provider
	resolver *net.Resolver
}

func (r *resolveTargets) DiscoverPeers(ctx context.Context) ([]string, error) {
	addrs, err := r.Provider.DiscoverPeers(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			return nil, err
		}
		ips, err := r.resolver.LookupNetIP(ctx, "ip4", host)
		if err != nil || len(ips) == 0 {
			continue // a record removed meanwhile: the next poll settles it
		}
		out = append(out, net.JoinHostPort(ips[0].String(), port))
	}
	return out, nil
}

// serverResolver is a resolver that asks one DNS server over UDP.
func serverResolver(server string) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", server)
	}}
}

// serve starts the server on a free UDP port of 127.0.0.1 and returns once
// it answers.
func (z *zone) serve() (*mdns.Server, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	started := make(chan struct{})
	s := &mdns.Server{PacketConn: pc, Handler: z, NotifyStartedFunc: func() { close(started) }}
	failed := make(chan error, 1)
	go func() { failed <- s.ActivateAndServe() }()
	select {
	case <-started:
		return s, nil
	case err := <-failed:
		return nil, err
	}
}

// waitMembers polls until every engine sees n members.
func waitMembers(engines []*engine.Engine, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ok := true
		for _, e := range engines {
			ok = ok && len(e.Members()) == n
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the engines did not see %d members in %v", n, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

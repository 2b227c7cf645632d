package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/distcache/distcache/discovery"
)

// ErrNoRecords is matched (errors.Is) by DiscoverPeers errors when the name
// does not exist (NXDOMAIN) or has no usable records of the requested kind.
var ErrNoRecords = errors.New("dns: no records")

// Discovery resolves peers from DNS. Create it with New; it is safe for
// concurrent use.
type Discovery struct {
	cfg      Config
	resolver Resolver
	started  atomic.Bool
}

var _ discovery.Provider = (*Discovery)(nil)

// New validates cfg and returns a provider. cfg is copied; zero Timeout and
// Network take their defaults.
func New(cfg Config) (*Discovery, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = defaultTimeout
	}
	if cfg.Network == "" {
		cfg.Network = "ip"
	}
	d := &Discovery{cfg: cfg, resolver: cfg.Resolver}
	switch {
	case cfg.Resolver != nil:
	case cfg.Server != "":
		d.resolver = serverResolver(cfg.Server)
	default:
		d.resolver = net.DefaultResolver
	}
	return d, nil
}

// serverResolver returns a pure-Go resolver that sends every query to addr,
// whatever /etc/resolv.conf says.
//
// The pure-Go resolver keeps reading a UDP answer until its per-attempt
// deadline even after the lookup is cancelled; closing the connection when
// the dial context ends makes a cancelled lookup release its goroutines and
// socket at once.
func serverResolver(addr string) *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			conn, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			context.AfterFunc(ctx, func() { _ = conn.Close() })
			return conn, nil
		},
	}
}

// Start marks the provider started. It performs no lookup: the first node of
// a cluster often has no DNS records yet. self is ignored.
func (d *Discovery) Start(context.Context, discovery.Self) error {
	d.started.Store(true)
	return nil
}

// Stop marks the provider stopped. It is idempotent and holds no resources.
func (d *Discovery) Stop(context.Context) error {
	d.started.Store(false)
	return nil
}

// DiscoverPeers resolves Config.Name and returns the sorted, de-duplicated
// host:port list. See the package documentation for the record kinds.
func (d *Discovery) DiscoverPeers(ctx context.Context) ([]string, error) {
	if !d.started.Load() {
		return nil, fmt.Errorf("dns: %w", discovery.ErrNotStarted)
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	var (
		peers []string
		err   error
	)
	if d.cfg.Port == 0 {
		peers, err = d.lookupSRV(ctx)
	} else {
		peers, err = d.lookupIP(ctx)
	}
	if err != nil {
		return nil, err
	}
	slices.Sort(peers)
	return slices.Compact(peers), nil
}

func (d *Discovery) lookupSRV(ctx context.Context) ([]string, error) {
	_, records, err := d.resolver.LookupSRV(ctx, "", "", d.cfg.Name)
	// net.Resolver returns the valid records alongside an error when some
	// targets are not valid domain names: use what is valid.
	if err != nil && len(records) == 0 {
		return nil, lookupError("SRV", d.cfg.Name, err)
	}
	peers := make([]string, 0, len(records))
	for _, r := range records {
		if r == nil || r.Port == 0 {
			continue
		}
		target := strings.TrimSuffix(r.Target, ".")
		if target == "" {
			continue
		}
		peers = append(peers, net.JoinHostPort(target, strconv.Itoa(int(r.Port))))
	}
	if len(peers) == 0 {
		return nil, fmt.Errorf("%w: SRV %q has no usable records (set Config.Port to use A/AAAA records instead)", ErrNoRecords, d.cfg.Name)
	}
	return peers, nil
}

func (d *Discovery) lookupIP(ctx context.Context) ([]string, error) {
	addrs, err := d.resolver.LookupNetIP(ctx, d.cfg.Network, d.cfg.Name)
	if err != nil {
		return nil, lookupError(d.cfg.Network, d.cfg.Name, err)
	}
	port := strconv.Itoa(d.cfg.Port)
	peers := make([]string, 0, len(addrs))
	for _, a := range addrs {
		if !a.IsValid() {
			continue
		}
		peers = append(peers, net.JoinHostPort(a.Unmap().String(), port))
	}
	if len(peers) == 0 {
		return nil, fmt.Errorf("%w: %s %q has no addresses", ErrNoRecords, d.cfg.Network, d.cfg.Name)
	}
	return peers, nil
}

// lookupError wraps a resolver error, adding ErrNoRecords when the name does
// not exist or has no records of that kind.
func lookupError(kind, name string, err error) error {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return fmt.Errorf("%w: lookup %s %q: %w", ErrNoRecords, kind, name, err)
	}
	return fmt.Errorf("dns: lookup %s %q: %w", kind, name, err)
}

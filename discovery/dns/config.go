package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// defaultTimeout bounds one DiscoverPeers call when Config.Timeout is zero.
const defaultTimeout = 5 * time.Second

// ErrInvalidConfig is wrapped by every error that Config.Validate returns.
var ErrInvalidConfig = errors.New("dns: invalid config")

// Resolver is the subset of [*net.Resolver] the provider uses. Inject a
// custom one through Config.Resolver (tests, a resolver with its own Dial).
type Resolver interface {
	// LookupSRV is [net.Resolver.LookupSRV]; the provider calls it with empty
	// service and proto, so name is looked up as given.
	LookupSRV(ctx context.Context, service, proto, name string) (cname string, addrs []*net.SRV, err error)
	// LookupNetIP is [net.Resolver.LookupNetIP]; network is "ip", "ip4" or
	// "ip6".
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

var _ Resolver = (*net.Resolver)(nil)

// Config selects the DNS name and how its records become peer addresses.
// Start from DefaultConfig and set Name plus, for A/AAAA records, Port.
type Config struct {
	// Name is the DNS name to resolve, e.g.
	// "_gossip._tcp.cache.default.svc.cluster.local" for SRV records or
	// "cache.default.svc.cluster.local" for A/AAAA records. A trailing dot
	// (fully qualified name) is allowed. Required.
	Name string

	// Port selects the record kind. Zero (the default) means SRV records,
	// which carry their own ports. A value in 1..65535 means A/AAAA records,
	// each address joined with this port (the nodes' gossip port).
	Port int

	// Network restricts A/AAAA lookups to one address family: "ip" (both,
	// the default; empty means "ip"), "ip4" or "ip6". Ignored for SRV.
	Network string

	// Server, when set, is the host:port of one DNS server to query directly
	// with the pure-Go resolver (e.g. "127.0.0.1:8600" for Consul), instead
	// of the system resolver. Empty (the default) means the system resolver.
	// Mutually exclusive with Resolver.
	Server string

	// Resolver, when set, replaces the system resolver, e.g. a
	// [*net.Resolver] with PreferGo and a custom Dial. Nil (the default)
	// means the system resolver, or the Server above. Mutually exclusive with
	// Server.
	Resolver Resolver

	// Timeout bounds one DiscoverPeers call, including retries inside the
	// resolver; the caller's context can end it sooner. Zero means 5 s;
	// negative values are invalid.
	Timeout time.Duration
}

// DefaultConfig returns a Config for SRV lookups through the system resolver
// with a 5s timeout. Name must still be set.
func DefaultConfig() Config {
	return Config{Network: "ip", Timeout: defaultTimeout}
}

// Validate reports the first problem in c, wrapped in ErrInvalidConfig.
func (c Config) Validate() error {
	if err := validateName(c.Name); err != nil {
		return err
	}
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("%w: Port %d outside 0..65535 (0 selects SRV records)", ErrInvalidConfig, c.Port)
	}
	switch c.Network {
	case "", "ip", "ip4", "ip6":
	default:
		return fmt.Errorf("%w: Network %q must be \"ip\", \"ip4\" or \"ip6\"", ErrInvalidConfig, c.Network)
	}
	if c.Server != "" && c.Resolver != nil {
		return fmt.Errorf("%w: set Server or Resolver, not both", ErrInvalidConfig)
	}
	if c.Server != "" {
		host, port, err := net.SplitHostPort(c.Server)
		if err != nil {
			return fmt.Errorf("%w: Server %q: %w", ErrInvalidConfig, c.Server, err)
		}
		if p, err := strconv.Atoi(port); host == "" || err != nil || p < 1 || p > 65535 {
			return fmt.Errorf("%w: Server %q must be host:port with a port in 1..65535", ErrInvalidConfig, c.Server)
		}
	}
	if c.Timeout < 0 {
		return fmt.Errorf("%w: Timeout %v is negative (0 means %v)", ErrInvalidConfig, c.Timeout, defaultTimeout)
	}
	return nil
}

// validateName checks the DNS name syntax (RFC 1035 lengths; letters,
// digits, '-' and '_' so that SRV names like _gossip._tcp.x pass).
func validateName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: Name is empty", ErrInvalidConfig)
	}
	n := strings.TrimSuffix(name, ".")
	if n == "" || len(n) > 253 {
		return fmt.Errorf("%w: Name %q must be 1..253 characters", ErrInvalidConfig, name)
	}
	for label := range strings.SplitSeq(n, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("%w: Name %q has an empty or over-long (>63) label", ErrInvalidConfig, name)
		}
		for _, r := range label {
			ok := r == '-' || r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
			if !ok {
				return fmt.Errorf("%w: Name %q contains %q", ErrInvalidConfig, name, r)
			}
		}
	}
	return nil
}

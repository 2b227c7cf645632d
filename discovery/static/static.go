// Package static is a discovery provider over a fixed list of addresses,
// ideal for tests, demos and small fixed deployments.
package static

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"

	"github.com/distcache/distcache/discovery"
)

// Config lists the peers.
type Config struct {
	// Addresses are host:port of the nodes' gossip ports. The list may include
	// the local node. Every entry must carry a port.
	Addresses []string
}

// Discovery is a static provider. Its list can be replaced at runtime with
// SetAddresses (useful in tests that start nodes one by one).
type Discovery struct {
	mu    sync.RWMutex // guards addrs
	addrs []string
	err   error
}

var _ discovery.Provider = (*Discovery)(nil)

// NewDiscovery returns a provider over cfg.Addresses. A nil cfg means an
// empty list (a single-node cluster). Invalid addresses are reported by Start.
func NewDiscovery(cfg *Config) *Discovery {
	d := &Discovery{}
	if cfg != nil {
		d.err = d.SetAddresses(cfg.Addresses)
	}
	return d
}

// SetAddresses replaces the list; each must be host:port with a valid port.
func (d *Discovery) SetAddresses(addrs []string) error {
	for _, a := range addrs {
		if err := validate(a); err != nil {
			return err
		}
	}
	cp := append([]string(nil), addrs...)
	d.mu.Lock()
	d.addrs = cp
	d.err = nil
	d.mu.Unlock()
	return nil
}

func validate(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("static: address %q: %w", addr, err)
	}
	if host == "" {
		return fmt.Errorf("static: address %q has no host", addr)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("static: address %q has an invalid port", addr)
	}
	return nil
}

// Start reports an invalid address given at construction.
func (d *Discovery) Start(context.Context, discovery.Self) error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.err
}

// DiscoverPeers returns a copy of the list.
func (d *Discovery) DiscoverPeers(context.Context) ([]string, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.err != nil {
		return nil, d.err
	}
	return append([]string(nil), d.addrs...), nil
}

// Stop does nothing.
func (d *Discovery) Stop(context.Context) error { return nil }

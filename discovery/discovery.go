// Package discovery finds the peers an engine joins. A Provider returns
// host:port addresses of other nodes' gossip ports; the engine joins every
// address it gets (not one seed), and polls the provider again periodically
// after start so that late nodes and healed partitions are joined.
//
// Built-in providers: discovery/static (fixed list) and discovery/dns (SRV or
// A/AAAA records) in this module; discovery/nats and discovery/kubernetes in
// their own Go modules so that the core module never depends on NATS or
// client-go.
package discovery

import (
	"context"
	"errors"
)

// ErrNotStarted is returned by providers whose DiscoverPeers is called before
// Start or after Stop.
var ErrNotStarted = errors.New("discovery: provider not started")

// Self describes the local node to providers that announce it (NATS,
// registries). Static, DNS and Kubernetes providers ignore it.
type Self struct {
	// Name is the node's stable name (memberlist node name).
	Name string
	// Addr is the host:port other nodes should join (the gossip port).
	Addr string
}

// Provider finds peers.
//
// The engine calls Start once before the first DiscoverPeers, DiscoverPeers
// from one goroutine at a time (at boot and then periodically), and Stop once
// during Engine.Stop. Implementations must be safe for use from a goroutine
// other than the one that called Start.
type Provider interface {
	// Start connects to the backend and registers self where the backend
	// supports it. A failure is returned, never swallowed.
	Start(ctx context.Context, self Self) error
	// DiscoverPeers returns the host:port of known nodes. It may include the
	// local node's own address; the engine filters it out.
	DiscoverPeers(ctx context.Context) ([]string, error)
	// Stop deregisters self and releases the backend. It must be idempotent.
	Stop(ctx context.Context) error
}

// ProviderFunc adapts a function to a Provider with no-op Start and Stop.
type ProviderFunc func(ctx context.Context) ([]string, error)

// Start does nothing.
func (f ProviderFunc) Start(context.Context, Self) error { return nil }

// DiscoverPeers calls f(ctx).
func (f ProviderFunc) DiscoverPeers(ctx context.Context) ([]string, error) { return f(ctx) }

// Stop does nothing.
func (f ProviderFunc) Stop(context.Context) error { return nil }

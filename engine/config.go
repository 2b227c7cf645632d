package engine

import (
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/distcache/distcache/discovery"
	"github.com/distcache/distcache/internal/membership"
	"github.com/distcache/distcache/internal/memnet"
	"github.com/distcache/distcache/keyspace"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Defaults of the engine-wide settings. The per-keyspace ones fall back to
// these unless overridden with a WithKeySpace* option.
const (
	defaultBindAddr           = "0.0.0.0"
	defaultBindPort           = 7946
	defaultLabel              = "distcache"
	defaultBootstrapTimeout   = 30 * time.Second
	defaultJoinRetryInterval  = time.Second
	defaultDiscoveryInterval  = 30 * time.Second
	defaultMinimumPeersQuorum = 1
	defaultReadTimeout        = 5 * time.Second
	defaultWriteTimeout       = 5 * time.Second
	defaultShutdownTimeout    = 30 * time.Second
	defaultMaxKeyBytes        = 4 << 10
	defaultMaxValueBytes      = 8 << 20
	defaultPartitionCount     = membership.DefaultPartitionCount
	// defaultNearCacheTTL and defaultNearCacheShare give the near cache a
	// keyspace has unless configured: a TTL of 2 s, and 1/8 of the
	// keyspace's MaxBytes (beside it, not out of it). See
	// WithKeySpaceNearCache.
	defaultNearCacheTTL   = 2 * time.Second
	defaultNearCacheShare = 8
)

// KeySpaceConfig holds the per-keyspace overrides; a nil or zero field means
// "inherit". Set it through the WithKeySpace* options.
type KeySpaceConfig struct {
	MaxBytes       int64
	DefaultTTL     *time.Duration
	ReadTimeout    *time.Duration
	WriteTimeout   *time.Duration
	WarmKeys       []string
	NegativeTTL    *time.Duration
	MaxStale       *time.Duration
	RateLimit      *RateLimitConfig
	CircuitBreaker *CircuitBreakerConfig
	// NearCacheMaxBytes and NearCacheTTL size the near cache (see
	// WithKeySpaceNearCache); both zero: the default, MaxBytes/8 for 2 s.
	// NearCacheOff turns it off.
	NearCacheMaxBytes int64
	NearCacheTTL      time.Duration
	NearCacheOff      bool
	// Replicas: see WithKeySpaceReplicas.
	Replicas *int
}

// Config configures an Engine. Build it with NewConfig and options; New
// validates it and copies what it needs, so a Config may be reused.
type Config struct {
	// Provider finds the peers to join. Required.
	Provider discovery.Provider
	// KeySpaces registered at start. At least one; names unique.
	KeySpaces []keyspace.KeySpace

	// NodeName is this node's stable name in the cluster. Empty: hostname
	// plus a random suffix (unique, but not stable across restarts).
	NodeName string
	// BindAddr and BindPort: where the node listens for gossip and data (one
	// port, TCP and UDP). Port 0 picks a free port; Engine.Addr reports it.
	BindAddr string
	BindPort int
	// AdvertiseAddr and AdvertisePort: how peers reach this node when it is
	// not the bind address (NAT, Kubernetes pod IP). Empty/0: the bound one.
	AdvertiseAddr string
	AdvertisePort int
	// Label names the cluster; nodes with another label never merge.
	Label string
	// GossipSecret encrypts gossip and authenticates data connections (16,
	// 24 or 32 bytes); see WithGossipSecret.
	GossipSecret []byte
	// ServerTLS and ClientTLS enable TLS on data connections (both or
	// neither); see WithTLS.
	ServerTLS, ClientTLS *tls.Config
	// PartitionCount of the consistent-hash ring; same on every node.
	PartitionCount int

	// BootstrapTimeout bounds Start's wait for MinimumPeersQuorum members.
	BootstrapTimeout time.Duration
	// JoinRetryInterval is the pause between join attempts during Start.
	JoinRetryInterval time.Duration
	// DiscoveryInterval is how often, after Start, the provider is polled and
	// newly found (or cut-off) peers are joined, so that partitions heal.
	DiscoveryInterval time.Duration
	// MinimumPeersQuorum is the number of members (this node included) Start
	// waits for. 1: start alone at once and let others join.
	MinimumPeersQuorum int
	// ShutdownTimeout bounds Stop's graceful leave and drain when its ctx
	// has no earlier deadline.
	ShutdownTimeout time.Duration

	// ReadTimeout and WriteTimeout are the engine defaults of the per-keyspace
	// read (Get, GetMany, including the DataSource fetch) and write (Put,
	// Delete) deadlines.
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	// Handoff sends entries to their new owner when keys move (a node joined,
	// or this node leaves gracefully) instead of only dropping them.
	Handoff bool
	// Replicas is how many copies of each entry the cluster keeps, the
	// owner's included (1 to 5, default 1); see WithReplicas.
	Replicas int

	// MaxKeyBytes and MaxValueBytes bound keys and values; larger ones fail
	// with ErrKeyTooLarge or ErrValueTooLarge.
	MaxKeyBytes   int
	MaxValueBytes int

	// RateLimit and CircuitBreaker protect every keyspace's DataSource unless
	// a keyspace overrides them; nil disables.
	RateLimit      *RateLimitConfig
	CircuitBreaker *CircuitBreakerConfig
	// KeySpaceConfigs are the per-keyspace overrides, by keyspace name.
	KeySpaceConfigs map[string]*KeySpaceConfig

	// Logger receives the engine's and the cluster's logs; nil discards.
	Logger *slog.Logger
	// MeterProvider and TracerProvider enable OpenTelemetry metrics and
	// spans; nil leaves them off (see WithMetrics and WithTracing).
	MeterProvider  metric.MeterProvider
	TracerProvider trace.TracerProvider

	// clusterTuning are the membership timings (WithClusterTuning).
	clusterTuning ClusterTuning
	// insecure accepts unauthenticated peers on a reachable port (WithInsecure).
	insecure bool
	// network replaces sockets with an in-memory network (tests; see testhooks.go).
	network *memnet.Network
	extras  extrasConfig // admin server and warmup (extras.go)
}

// Option sets a Config field.
type Option func(*Config)

// NewConfig returns a Config with the defaults, the given provider and
// keyspaces, and opts applied in order.
func NewConfig(provider discovery.Provider, keyspaces []keyspace.KeySpace, opts ...Option) *Config {
	c := &Config{
		Provider:           provider,
		KeySpaces:          append([]keyspace.KeySpace(nil), keyspaces...),
		BindAddr:           defaultBindAddr,
		BindPort:           defaultBindPort,
		Label:              defaultLabel,
		PartitionCount:     defaultPartitionCount,
		BootstrapTimeout:   defaultBootstrapTimeout,
		JoinRetryInterval:  defaultJoinRetryInterval,
		DiscoveryInterval:  defaultDiscoveryInterval,
		MinimumPeersQuorum: defaultMinimumPeersQuorum,
		ShutdownTimeout:    defaultShutdownTimeout,
		ReadTimeout:        defaultReadTimeout,
		WriteTimeout:       defaultWriteTimeout,
		MaxKeyBytes:        defaultMaxKeyBytes,
		MaxValueBytes:      defaultMaxValueBytes,
		Handoff:            true,
		Replicas:           1,
		KeySpaceConfigs:    map[string]*KeySpaceConfig{},
	}
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
	return c
}

// validate checks every field and returns all problems, each naming its
// field (and keyspace), wrapped in ErrInvalidConfig.
func (c *Config) validate() error {
	if c == nil {
		return fmt.Errorf("%w: nil config", ErrInvalidConfig)
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Provider == nil {
		bad("Provider is nil")
	}
	if len(c.KeySpaces) == 0 {
		bad("KeySpaces is empty: configure at least one keyspace")
	}
	if c.BindPort < 0 || c.BindPort > 65535 {
		bad("BindPort must be in [0, 65535], got %d", c.BindPort)
	}
	if c.AdvertisePort < 0 || c.AdvertisePort > 65535 {
		bad("AdvertisePort must be in [0, 65535], got %d", c.AdvertisePort)
	}
	if len(c.Label) > 255 {
		bad("Label must be at most 255 bytes, got %d", len(c.Label))
	}
	if n := len(c.GossipSecret); n != 0 && n != 16 && n != 24 && n != 32 {
		bad("GossipSecret must be 16, 24 or 32 bytes, got %d", n)
	}
	if (c.ServerTLS == nil) != (c.ClientTLS == nil) {
		bad("TLS needs both ServerTLS and ClientTLS")
	}
	errs = append(errs, c.securityProblems()...)
	errs = append(errs, c.clusterTuning.problems()...)
	if c.PartitionCount < 1 {
		bad("PartitionCount must be >= 1, got %d", c.PartitionCount)
	}
	if c.BootstrapTimeout <= 0 {
		bad("BootstrapTimeout must be > 0, got %v", c.BootstrapTimeout)
	}
	if c.JoinRetryInterval <= 0 {
		bad("JoinRetryInterval must be > 0, got %v", c.JoinRetryInterval)
	}
	if c.DiscoveryInterval <= 0 {
		bad("DiscoveryInterval must be > 0, got %v", c.DiscoveryInterval)
	}
	if c.MinimumPeersQuorum < 1 {
		bad("MinimumPeersQuorum must be >= 1, got %d", c.MinimumPeersQuorum)
	}
	if c.ShutdownTimeout <= 0 {
		bad("ShutdownTimeout must be > 0, got %v", c.ShutdownTimeout)
	}
	if c.ReadTimeout <= 0 {
		bad("ReadTimeout must be > 0, got %v", c.ReadTimeout)
	}
	if c.WriteTimeout <= 0 {
		bad("WriteTimeout must be > 0, got %v", c.WriteTimeout)
	}
	if c.MaxKeyBytes < 1 || c.MaxKeyBytes > 1<<16 {
		bad("MaxKeyBytes must be in [1, 65536], got %d", c.MaxKeyBytes)
	}
	if c.MaxValueBytes < 1 || c.MaxValueBytes > maxWireValueBytes {
		bad("MaxValueBytes must be in [1, %d], got %d", maxWireValueBytes, c.MaxValueBytes)
	}
	if c.RateLimit != nil {
		if err := c.RateLimit.validate(); err != nil {
			bad("RateLimit: %w", err)
		}
	}
	if c.CircuitBreaker != nil {
		if err := c.CircuitBreaker.validate(); err != nil {
			bad("CircuitBreaker: %w", err)
		}
	}
	names := map[string]bool{}
	for i, ks := range c.KeySpaces {
		if ks == nil {
			bad("KeySpaces[%d] is nil", i)
			continue
		}
		name := ks.Name()
		if err := validateKeySpace(ks); err != nil {
			bad("KeySpaces[%d]: %w", i, err)
			continue
		}
		if names[name] {
			bad("keyspace %q: duplicate name", name)
			continue
		}
		names[name] = true
		if _, err := c.settingsFor(ks); err != nil {
			bad("keyspace %q: %w", name, err)
		}
	}
	errs = append(errs, c.replicaProblems()...)
	errs = append(errs, c.extras.validate()...)
	for name := range c.KeySpaceConfigs {
		if !names[name] {
			bad("keyspace %q: overrides given for a keyspace that is not configured", name)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
	}
	return nil
}

// securityProblems refuses configurations in which anyone who reaches the
// node's port would be a trusted peer, unless WithInsecure: see SECURITY.md.
// membership.New checks the final cluster config the same way; this names the
// engine's options.
func (c *Config) securityProblems() []error {
	server, client := c.ServerTLS, c.ClientTLS
	mtls := membership.RequiresClientCerts(server)
	if mtls && client != nil && len(client.Certificates) == 0 && client.GetClientCertificate == nil {
		return []error{errors.New("TLS: ServerTLS requires client certificates but ClientTLS presents none (set Certificates or GetClientCertificate): this node could not connect to its peers")}
	}
	if c.insecure || len(c.GossipSecret) > 0 || mtls {
		return nil
	}
	if server != nil {
		return []error{errors.New("TLS: ServerTLS does not require client certificates and no gossip secret is set, so TLS authenticates no peer: " +
			"set ServerTLS.ClientAuth = tls.RequireAndVerifyClientCert with ClientCAs (mutual TLS), or add WithGossipSecret, " +
			"or pass WithInsecure() to accept that")}
	}
	bind := cmp.Or(c.BindAddr, defaultBindAddr)
	if ip := net.ParseIP(bind); ip == nil || !ip.IsLoopback() {
		return []error{fmt.Errorf("BindAddr %q is not a loopback address and no peer is authenticated: add WithGossipSecret(key) "+
			"or WithTLS with client certificates (mutual TLS), or pass WithInsecure() to accept that anyone who reaches "+
			"port %d can read, overwrite and delete cached data", bind, c.BindPort)}
	}
	return nil
}

func validateKeySpace(ks keyspace.KeySpace) error {
	if ks.Name() == "" {
		return errors.New("keyspace name is empty")
	}
	if ks.DataSource() == nil {
		return fmt.Errorf("keyspace %q: DataSource is nil", ks.Name())
	}
	return nil
}

// settingsFor resolves a keyspace's settings with the reference precedence:
// a WithKeySpace* override wins over KeySpace.MaxBytes and over the engine
// defaults; protection overrides replace the engine-wide ones whole.
func (c *Config) settingsFor(ks keyspace.KeySpace) (ksSettings, error) {
	s := ksSettings{
		MaxBytes:       ks.MaxBytes(),
		ReadTimeout:    c.ReadTimeout,
		WriteTimeout:   c.WriteTimeout,
		RateLimit:      c.RateLimit,
		CircuitBreaker: c.CircuitBreaker,
	}
	o := c.KeySpaceConfigs[ks.Name()]
	if o != nil && o.MaxBytes != 0 {
		s.MaxBytes = o.MaxBytes
	}
	if o == nil || !o.NearCacheOff {
		// On by default: see WithKeySpaceNearCache for the trade-off.
		s.NearCacheMaxBytes, s.NearCacheTTL = max(s.MaxBytes/defaultNearCacheShare, 1), defaultNearCacheTTL
	}
	if o != nil {
		setIf(&s.DefaultTTL, o.DefaultTTL)
		setIf(&s.ReadTimeout, o.ReadTimeout)
		setIf(&s.WriteTimeout, o.WriteTimeout)
		setIf(&s.NegativeTTL, o.NegativeTTL)
		setIf(&s.MaxStale, o.MaxStale)
		if !o.NearCacheOff && (o.NearCacheMaxBytes != 0 || o.NearCacheTTL != 0) {
			s.NearCacheMaxBytes, s.NearCacheTTL = o.NearCacheMaxBytes, o.NearCacheTTL
		}
		if o.WarmKeys != nil {
			s.WarmKeys = append([]string(nil), o.WarmKeys...)
		}
		if o.RateLimit != nil {
			s.RateLimit = o.RateLimit
		}
		if o.CircuitBreaker != nil {
			s.CircuitBreaker = o.CircuitBreaker
		}
	}
	return s, s.validate()
}

func setIf(dst *time.Duration, src *time.Duration) {
	if src != nil {
		*dst = *src
	}
}

func (c *Config) keyspaceConfig(name string) *KeySpaceConfig {
	if c.KeySpaceConfigs == nil {
		c.KeySpaceConfigs = map[string]*KeySpaceConfig{}
	}
	o := c.KeySpaceConfigs[name]
	if o == nil {
		o = &KeySpaceConfig{}
		c.KeySpaceConfigs[name] = o
	}
	return o
}

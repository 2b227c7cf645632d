package engine

import (
	"crypto/tls"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// WithNodeName sets the node's stable name (default: hostname + random suffix).
func WithNodeName(name string) Option { return func(c *Config) { c.NodeName = name } }

// WithBindAddr sets the IP address to listen on (default "0.0.0.0").
func WithBindAddr(host string) Option { return func(c *Config) { c.BindAddr = host } }

// WithBindPort sets the gossip+data port (default 7946; 0 picks a free port,
// reported by Engine.Addr).
func WithBindPort(port int) Option { return func(c *Config) { c.BindPort = port } }

// WithAdvertiseAddr sets the address and port peers use to reach this node
// (port 0: the bound port).
func WithAdvertiseAddr(host string, port int) Option {
	return func(c *Config) { c.AdvertiseAddr, c.AdvertisePort = host, port }
}

// WithLabel sets the cluster label (default "distcache"); nodes with
// different labels never merge.
func WithLabel(label string) Option { return func(c *Config) { c.Label = label } }

// WithGossipSecret sets the cluster secret, a 16, 24 or 32 byte key that
// every node shares: it encrypts gossip (AES-GCM) and authenticates every
// data connection (each side proves it knows the secret in the handshake),
// so a node without it can neither join nor read or write the cache. It
// does not encrypt data connections: add WithTLS for that.
func WithGossipSecret(secret []byte) Option {
	return func(c *Config) { c.GossipSecret = append([]byte(nil), secret...) }
}

// WithTLS enables TLS on the data connections between nodes: server is used
// for accepted connections, client for dialed ones; both must be set. With
// server.ClientAuth = tls.RequireAndVerifyClientCert (with ClientCAs, and a
// certificate in client) each peer is authenticated by its certificate
// (mutual TLS), and a node without one never enters the ring; server-only
// TLS authenticates nobody, so New requires WithGossipSecret with it (or
// WithInsecure). Gossip (memberlist) traffic is protected by
// WithGossipSecret, not by TLS.
func WithTLS(server, client *tls.Config) Option {
	return func(c *Config) { c.ServerTLS, c.ClientTLS = server, client }
}

// WithInsecure accepts a configuration in which peers are not
// authenticated although others can reach the node: a non-loopback bind
// address (the default 0.0.0.0 included) without WithGossipSecret or mutual
// TLS, or server-only TLS without a secret. New refuses those otherwise.
// Anyone who reaches the port can then read, overwrite and delete cached
// data and join the cluster: use it only on networks where every host is
// trusted. Loopback binds (127.0.0.1, ::1) never need it.
func WithInsecure() Option {
	return func(c *Config) {
		c.insecure = true
	}
}

// WithPartitionCount sets the ring's partition count (default 16381);
// every node must use the same, and it
// cannot change without moving nearly every key. The default keeps at least
// 16 partitions per member up to 1,000 members, which holds the busiest
// owner near 1.04x the mean; above that, choose a prime of at least 16x the
// largest cluster size.
func WithPartitionCount(n int) Option { return func(c *Config) { c.PartitionCount = n } }

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(c *Config) { c.Logger = l } }

// WithBootstrapTimeout bounds Start's wait for the quorum (default 30 s).
func WithBootstrapTimeout(d time.Duration) Option {
	return func(c *Config) { c.BootstrapTimeout = d }
}

// WithJoinRetryInterval sets the pause between join attempts in Start
// (default 1 s).
func WithJoinRetryInterval(d time.Duration) Option {
	return func(c *Config) { c.JoinRetryInterval = d }
}

// WithDiscoveryInterval sets how often peers are re-discovered and re-joined
// after Start (default 30 s).
func WithDiscoveryInterval(d time.Duration) Option {
	return func(c *Config) { c.DiscoveryInterval = d }
}

// WithMinimumPeersQuorum sets how many members (self included) Start waits
// for (default 1).
func WithMinimumPeersQuorum(n int) Option { return func(c *Config) { c.MinimumPeersQuorum = n } }

// WithShutdownTimeout bounds Stop's graceful phase (default 30 s).
func WithShutdownTimeout(d time.Duration) Option {
	return func(c *Config) { c.ShutdownTimeout = d }
}

// WithReadTimeout sets the engine default read deadline (default 5 s).
func WithReadTimeout(d time.Duration) Option { return func(c *Config) { c.ReadTimeout = d } }

// WithWriteTimeout sets the engine default write deadline (default 5 s).
func WithWriteTimeout(d time.Duration) Option { return func(c *Config) { c.WriteTimeout = d } }

// WithHandoff turns hand-off of moving entries on or off (default on).
func WithHandoff(on bool) Option { return func(c *Config) { c.Handoff = on } }

// WithMaxKeyBytes bounds key length (default 4 KiB, at most 64 KiB).
func WithMaxKeyBytes(n int) Option { return func(c *Config) { c.MaxKeyBytes = n } }

// WithMaxValueBytes bounds value length (default 8 MiB).
func WithMaxValueBytes(n int) Option { return func(c *Config) { c.MaxValueBytes = n } }

// WithRateLimiter limits DataSource fetches of every keyspace (per node and
// per keyspace); WithKeySpaceRateLimiter overrides it.
func WithRateLimiter(cfg RateLimitConfig) Option { return func(c *Config) { c.RateLimit = &cfg } }

// WithCircuitBreaker guards every keyspace's DataSource with a circuit
// breaker (per node and per keyspace); WithKeySpaceCircuitBreaker overrides it.
func WithCircuitBreaker(cfg CircuitBreakerConfig) Option {
	return func(c *Config) { c.CircuitBreaker = &cfg }
}

// WithMetrics enables OpenTelemetry metrics from mp (nil: the global provider).
func WithMetrics(mp metric.MeterProvider) Option {
	return func(c *Config) {
		if mp == nil {
			mp = globalMeterProvider()
		}
		c.MeterProvider = mp
	}
}

// WithTracing enables OpenTelemetry spans from tp (nil: the global provider).
func WithTracing(tp trace.TracerProvider) Option {
	return func(c *Config) {
		if tp == nil {
			tp = globalTracerProvider()
		}
		c.TracerProvider = tp
	}
}

// WithClusterTuning sets the membership and connection timings and limits
// (failure detection, gossip, pause and cut-off detection, dial and idle
// timeouts); see ClusterTuning. Zero fields keep their defaults. Every node
// of a cluster should use the same tuning.
func WithClusterTuning(t ClusterTuning) Option {
	return func(c *Config) { c.clusterTuning = t }
}

// WithKeySpaceMaxBytes overrides KeySpace.MaxBytes.
func WithKeySpaceMaxBytes(name string, n int64) Option {
	return func(c *Config) { c.keyspaceConfig(name).MaxBytes = n }
}

// WithKeySpaceDefaultTTL sets the TTL used when neither the Entry nor
// KeySpace.ExpiresAt gives an expiry (default 0: never expire).
func WithKeySpaceDefaultTTL(name string, d time.Duration) Option {
	return func(c *Config) { c.keyspaceConfig(name).DefaultTTL = &d }
}

// WithKeySpaceReadTimeout overrides the engine read timeout for a keyspace.
func WithKeySpaceReadTimeout(name string, d time.Duration) Option {
	return func(c *Config) { c.keyspaceConfig(name).ReadTimeout = &d }
}

// WithKeySpaceWriteTimeout overrides the engine write timeout for a keyspace.
func WithKeySpaceWriteTimeout(name string, d time.Duration) Option {
	return func(c *Config) { c.keyspaceConfig(name).WriteTimeout = &d }
}

// WithKeySpaceWarmKeys lists keys that warmup always prefetches.
func WithKeySpaceWarmKeys(name string, keys []string) Option {
	return func(c *Config) { c.keyspaceConfig(name).WarmKeys = append([]string{}, keys...) }
}

// WithKeySpaceNegativeTTL remembers a DataSource ErrNotFound for d.
func WithKeySpaceNegativeTTL(name string, d time.Duration) Option {
	return func(c *Config) { c.keyspaceConfig(name).NegativeTTL = &d }
}

// WithKeySpaceStaleOnError serves an expired entry for up to maxStale past
// its expiry when its refetch fails, is rate limited or meets an open breaker.
func WithKeySpaceStaleOnError(name string, maxStale time.Duration) Option {
	return func(c *Config) { c.keyspaceConfig(name).MaxStale = &maxStale }
}

// WithKeySpaceNearCache sizes the near cache, in which this node keeps the
// values it fetched from their owners, so that repeated Gets of a hot key
// owned elsewhere are served without a network hop: maxBytes (beside the
// keyspace's own MaxBytes) for up to ttl per copy, never past the entry's
// expiry. On by default with MaxBytes/8 and 2 s; WithKeySpaceNearCache(name,
// 0, 0) turns it off. Otherwise both values must be > 0.
//
// Consistency: the owner of a key records every node it answers a Get for,
// and Put, PutMany, Delete and DeleteMany drop the copies on those nodes
// before they return; a ring change invalidates every copy. So in a
// healthy cluster a Get never returns a value older than the last completed
// write. A node that a write cannot reach (cut off, but still serving its
// callers) may serve its copy for up to ttl, so such a write waits until
// that copy has lapsed before it returns, and fails with the deadline's
// error, unapplied, if the write timeout comes first: ttl is the delay an
// unreachable node can add to writes of the keys it holds. A longer ttl
// also keeps more records on owners (at most 2^17 per keyspace; past that,
// writes go to every node until the leases lapse).
func WithKeySpaceNearCache(name string, maxBytes int64, ttl time.Duration) Option {
	return func(c *Config) {
		kc := c.keyspaceConfig(name)
		kc.NearCacheMaxBytes, kc.NearCacheTTL, kc.NearCacheOff = maxBytes, ttl, maxBytes == 0 && ttl == 0
	}
}

// WithKeySpaceRateLimiter overrides the engine rate limiter for a keyspace.
func WithKeySpaceRateLimiter(name string, cfg RateLimitConfig) Option {
	return func(c *Config) { c.keyspaceConfig(name).RateLimit = &cfg }
}

// WithKeySpaceCircuitBreaker overrides the engine circuit breaker for a keyspace.
func WithKeySpaceCircuitBreaker(name string, cfg CircuitBreakerConfig) Option {
	return func(c *Config) { c.keyspaceConfig(name).CircuitBreaker = &cfg }
}

package membership

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"math"
	"net"
	"time"

	"github.com/distcache/distcache/internal/transport"
	"github.com/hashicorp/memberlist"
)

// Profile selects the memberlist timing preset a Cluster starts from.
type Profile uint8

const (
	// ProfileLAN starts from memberlist.DefaultLANConfig, with a 400 ms
	// probe timeout instead of 500 ms (see [Config.ProbeTimeout]): 1 s
	// probes, 10 s TCP timeout. The default; for real networks.
	ProfileLAN Profile = iota
	// ProfileLocal starts from memberlist.DefaultLocalConfig: 200 ms probe
	// timeout, 1 s TCP timeout, fewer retransmits. For tests and loopback
	// clusters only: it is fragile on real networks.
	ProfileLocal
)

// String returns "lan" or "local".
func (p Profile) String() string {
	switch p {
	case ProfileLAN:
		return "lan"
	case ProfileLocal:
		return "local"
	default:
		return fmt.Sprintf("Profile(%d)", uint8(p))
	}
}

// DefaultRingDebounce is the default delay between the first membership
// event and the ring rebuild it triggers.
const DefaultRingDebounce = 50 * time.Millisecond

// profileDefaults are the per-profile values a zero duration field resolves to.
type profileDefaults struct {
	deadNodeReclaimTime time.Duration
	pushPullInterval    time.Duration
	gossipToTheDeadTime time.Duration
}

func (p Profile) defaults() profileDefaults {
	if p == ProfileLocal {
		return profileDefaults{
			deadNodeReclaimTime: time.Second,
			pushPullInterval:    5 * time.Second,
			gossipToTheDeadTime: 2 * time.Second,
		}
	}
	return profileDefaults{
		deadNodeReclaimTime: 10 * time.Second,
		pushPullInterval:    10 * time.Second,
		gossipToTheDeadTime: 30 * time.Second,
	}
}

func (p Profile) memberlistConfig() *memberlist.Config {
	if p == ProfileLocal {
		return memberlist.DefaultLocalConfig()
	}
	mc := memberlist.DefaultLANConfig()
	mc.ProbeTimeout = lanProbeTimeout
	return mc
}

// lanProbeTimeout replaces memberlist's LAN default of half the probe
// interval, under which indirect probes' nacks come back too late to count
// (see [Config.ProbeTimeout]).
const lanProbeTimeout = 400 * time.Millisecond

// Config configures a [Cluster]. Build it from [DefaultConfig] or
// [DefaultLocalConfig]; [New] copies it and never writes back. Every node of
// a cluster must use the same Label, SecretKey, PartitionCount,
// VirtualNodes and Load.
type Config struct {
	// NodeName is this node's name: unique in the cluster and stable across
	// restarts (a pod or host name), so that a restarted node takes back the
	// partitions it owned. Empty means hostname + "-" + 8 random hex digits,
	// which is unique but changes on every start. At most 255 bytes: it is
	// also sent in the handshake of every data connection this node dials,
	// so that peers know who calls (transport.Request.From).
	NodeName string

	// BindAddr is the IP address the gossip+RPC port listens on (TCP and
	// UDP). Empty means "0.0.0.0" (all interfaces). Default "0.0.0.0";
	// DefaultLocalConfig uses "127.0.0.1".
	BindAddr string
	// BindPort is the port to listen on; 0 picks a free port (read it back
	// with [Cluster.Self]). Default 7946; DefaultLocalConfig uses 0.
	BindPort int

	// AdvertiseAddr is the IP address peers use to reach this node. Empty
	// means the bind address, or, when bound to all interfaces, a private
	// (RFC 1918) address of this host; New fails if there is none. Set it in
	// Kubernetes (pod IP) and behind NAT.
	AdvertiseAddr string
	// AdvertisePort is the port peers use to reach this node. 0 means the
	// bound port.
	AdvertisePort int

	// Label names the cluster. memberlist prefixes every packet and stream
	// with it and drops traffic with another label, so clusters with
	// different labels never merge even when addresses are recycled; the RPC
	// handshake checks it too. At most 255 bytes. Default "" (no label);
	// always set one in production, e.g. "<app>/<env>".
	Label string

	// SecretKey, when non-empty, encrypts gossip (memberlist's AES-GCM) and
	// authenticates every RPC connection: both sides prove they know it in
	// the data handshake (a challenge-response with a key derived from it;
	// see package transport), so a node without it can neither gossip nor
	// exchange data. It must be 16, 24 or 32 bytes (AES-128/192/256). It
	// does not encrypt RPC traffic: add ServerTLS/ClientTLS for that.
	// Default nil.
	SecretKey []byte

	// ServerTLS and ClientTLS enable TLS on RPC connections. With
	// ServerTLS.ClientAuth = tls.RequireAndVerifyClientCert (mutual TLS) a
	// certificate authenticates each peer; server-only TLS authenticates
	// nobody and needs SecretKey (or Insecure). Both nil means plaintext RPC.
	ServerTLS, ClientTLS *tls.Config

	// Insecure lets a node bound to a non-loopback address run without
	// authenticating its peers (neither SecretKey nor mutual TLS), and allows
	// server-only TLS without SecretKey. Anyone who can reach the port can
	// then read, overwrite and delete cached data. Loopback binds never need
	// it. Default false: New refuses such configurations.
	Insecure bool

	// Transport carries the RPC tuning knobs (connections per peer, in-flight
	// limits, frame size, dial timeout, connection limits). New overwrites
	// BindAddr, BindPort, Label, ServerTLS, ClientTLS, AuthSecret (SecretKey),
	// Handler and Logger from this Config.
	// Default transport.DefaultConfig().
	Transport transport.Config

	// Profile selects the memberlist timing preset. Default ProfileLAN;
	// DefaultLocalConfig uses ProfileLocal.
	Profile Profile

	// DeadNodeReclaimTime is how long after a node was declared dead its name
	// may be reclaimed by a node at a different address (a pod restarted
	// with a new IP). 0 means the profile default (LAN 10 s, Local 1 s);
	// negative means never (memberlist's own default: such a node is ignored
	// until its dead entry expires).
	DeadNodeReclaimTime time.Duration

	// PushPullInterval is how often a node exchanges its full state with a
	// random peer; it bounds how long a missed gossip message leaves views
	// divergent. 0 means the profile default (LAN 10 s, Local 5 s).
	// memberlist scales it up beyond 32 nodes.
	PushPullInterval time.Duration

	// GossipToTheDeadTime is how long dead nodes keep receiving gossip (so
	// that a falsely-declared node hears it and refutes) before they are
	// forgotten. 0 means the profile default (LAN 30 s, Local 2 s).
	GossipToTheDeadTime time.Duration

	// ProbeInterval and ProbeTimeout tune failure detection: a node is probed
	// every ProbeInterval and must answer within ProbeTimeout. Crash
	// detection takes a few ProbeIntervals. 0 means the profile default
	// (LAN 1 s / 400 ms, Local 1 s / 200 ms). ProbeTimeout must be below
	// half of ProbeInterval: when a direct probe fails, peers probe the
	// target for another ProbeTimeout and answer with a nack, which memberlist
	// counts only if it arrives within ProbeInterval; each one missing raises
	// the prober's own health score ([Cluster.HealthScore]) as if it, not the
	// target, were failing. At half, every crash of one peer would make the
	// others believe themselves cut off.
	ProbeInterval, ProbeTimeout time.Duration

	// PartitionCount is the number of partitions (see [RingConfig]). 0 means
	// [DefaultPartitionCount]. Must be >= 1 and should be >= 16x the largest
	// cluster size.
	PartitionCount int
	// Load is the bounded-load factor (see [RingConfig]). 0 means
	// [DefaultLoad]. Must be > 1.0.
	Load float64
	// VirtualNodes is the number of virtual nodes per member (see
	// [RingConfig]). 0 means [DefaultVirtualNodes]. Must be >= 10.
	VirtualNodes int

	// PauseLimit is the longest gap in this process's execution (SIGSTOP, a
	// VM pause, CPU starvation) after which the node no longer trusts what it
	// cached: peers may have declared it dead meanwhile, taken over its keys
	// and accepted writes it never heard of. 0 means the effective
	// ProbeInterval: a node silent for a whole probe interval may be
	// suspected, and no write's invalidation can have given up on it yet.
	// See [Cluster.PauseLimit].
	PauseLimit time.Duration

	// CutOffScore is the memberlist health score ([Cluster.CutOffScore])
	// from which a node takes itself to be cut off from most of its peers.
	// 0 means 3 (sustained probe failures, not one lost packet); above
	// memberlist's maximum (8) it never triggers.
	CutOffScore int

	// RingDebounce is how long the cluster waits after the first membership
	// event before it rebuilds the ring, so that a burst of joins costs one
	// rebuild. 0 means 50 ms; negative means rebuild at once.
	RingDebounce time.Duration

	// Handler serves incoming RPC requests. nil means none yet: set it later
	// with Transport().SetHandler before peers call this node.
	Handler transport.Handler

	// Logger receives the cluster's logs (keys node, peer, err) and
	// memberlist's, bridged to slog ([DEBUG] lines at debug level, [WARN] at
	// warn, [ERR] at error). nil discards them.
	Logger *slog.Logger

	// OnRingChange, if set, is called after each ring swap with the previous
	// and the new ring. It runs on the cluster's rebuild goroutine, never
	// concurrently with itself and never under memberlist's lock; it may call
	// any Cluster method except Shutdown, and should return quickly (ring
	// rebuilds wait for it). It is not called for the initial one-member ring.
	OnRingChange func(prev, next *Ring)

	// BeforeRingChange, if set, is called with the same rings just before
	// the swap, under the same rules: what it decides holds before anyone
	// can read the new ring (the engine stops trusting its store there when
	// the ring shows it cut off).
	BeforeRingChange func(prev, next *Ring)
}

// DefaultConfig returns the production defaults: ProfileLAN on 0.0.0.0:7946.
// Set NodeName and Label before use, and SecretKey or mutual TLS: Validate
// refuses a non-loopback bind that authenticates no peer (see Insecure).
func DefaultConfig() Config {
	d := ProfileLAN.defaults()
	return Config{
		BindAddr:            "0.0.0.0",
		BindPort:            7946,
		Transport:           transport.DefaultConfig(),
		Profile:             ProfileLAN,
		DeadNodeReclaimTime: d.deadNodeReclaimTime,
		PushPullInterval:    d.pushPullInterval,
		GossipToTheDeadTime: d.gossipToTheDeadTime,
		PartitionCount:      DefaultPartitionCount,
		Load:                DefaultLoad,
		VirtualNodes:        DefaultVirtualNodes,
		RingDebounce:        DefaultRingDebounce,
	}
}

// DefaultLocalConfig returns fast defaults for tests and single-host
// clusters: ProfileLocal on 127.0.0.1 with a free port.
func DefaultLocalConfig() Config {
	c := DefaultConfig()
	d := ProfileLocal.defaults()
	c.BindAddr = "127.0.0.1"
	c.BindPort = 0
	c.Profile = ProfileLocal
	c.DeadNodeReclaimTime = d.deadNodeReclaimTime
	c.PushPullInterval = d.pushPullInterval
	c.GossipToTheDeadTime = d.gossipToTheDeadTime
	return c
}

// ringConfig returns the placement part of c.
func (c Config) ringConfig() RingConfig {
	return RingConfig{PartitionCount: c.PartitionCount, VirtualNodes: c.VirtualNodes, Load: c.Load}.withDefaults()
}

// bindAddr returns BindAddr with its default.
func (c Config) bindAddr() string {
	if c.BindAddr == "" {
		return "0.0.0.0"
	}
	return c.BindAddr
}

// transportConfig returns the transport config New uses.
func (c Config) transportConfig(logger *slog.Logger) transport.Config {
	tc := c.Transport
	tc.BindAddr = c.bindAddr()
	tc.BindPort = c.BindPort
	tc.Label = c.Label
	tc.NodeName = c.NodeName // New sets the generated name when this is empty
	tc.ServerTLS = c.ServerTLS
	tc.ClientTLS = c.ClientTLS
	tc.AuthSecret = c.SecretKey
	tc.Handler = c.Handler
	tc.Logger = logger
	return tc
}

// Validate reports the first invalid field, wrapping [ErrInvalidConfig].
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	if net.ParseIP(c.bindAddr()) == nil {
		return bad("BindAddr %q is not an IP address", c.BindAddr)
	}
	if c.BindPort < 0 || c.BindPort > math.MaxUint16 {
		return bad("BindPort %d out of range [0, 65535]", c.BindPort)
	}
	if c.AdvertiseAddr != "" && net.ParseIP(c.AdvertiseAddr) == nil {
		return bad("AdvertiseAddr %q is not an IP address", c.AdvertiseAddr)
	}
	if c.AdvertisePort < 0 || c.AdvertisePort > math.MaxUint16 {
		return bad("AdvertisePort %d out of range [0, 65535]", c.AdvertisePort)
	}
	if len(c.Label) > memberlist.LabelMaxSize {
		return bad("Label is %d bytes, at most %d", len(c.Label), memberlist.LabelMaxSize)
	}
	switch len(c.SecretKey) {
	case 0, 16, 24, 32:
	default:
		return bad("SecretKey is %d bytes, want 16, 24 or 32", len(c.SecretKey))
	}
	if c.Profile != ProfileLAN && c.Profile != ProfileLocal {
		return bad("unknown Profile %d", c.Profile)
	}
	if c.PushPullInterval < 0 {
		return bad("PushPullInterval %v is negative", c.PushPullInterval)
	}
	if c.GossipToTheDeadTime < 0 {
		return bad("GossipToTheDeadTime %v is negative", c.GossipToTheDeadTime)
	}
	if c.ProbeInterval < 0 || c.ProbeTimeout < 0 {
		return bad("ProbeInterval %v / ProbeTimeout %v is negative", c.ProbeInterval, c.ProbeTimeout)
	}
	if c.PauseLimit < 0 {
		return bad("PauseLimit %v is negative", c.PauseLimit)
	}
	if c.CutOffScore < 0 {
		return bad("CutOffScore %d is negative", c.CutOffScore)
	}
	mc := c.Profile.memberlistConfig()
	pi, pt := cmpOr(c.ProbeInterval, mc.ProbeInterval), cmpOr(c.ProbeTimeout, mc.ProbeTimeout)
	if 2*pt >= pi {
		return bad("ProbeTimeout %v must be below half of ProbeInterval %v", pt, pi)
	}
	if c.PartitionCount < 0 || c.VirtualNodes < 0 || c.Load < 0 {
		return bad("PartitionCount %d, VirtualNodes %d and Load %v must not be negative",
			c.PartitionCount, c.VirtualNodes, c.Load)
	}
	if err := c.ringConfig().Validate(); err != nil {
		return err
	}
	if err := c.validateSecurity(); err != nil {
		return err
	}
	if err := c.transportConfig(nil).Validate(); err != nil {
		return fmt.Errorf("%w: Transport: %w", ErrInvalidConfig, err)
	}
	return nil
}

// cmpOr returns v, or def when v is zero.
func cmpOr(v, def time.Duration) time.Duration {
	if v == 0 {
		return def
	}
	return v
}

// memberlistConfig builds memberlist's config from c (validated) for the
// given node name; transport, delegates and logger are set by New.
func (c Config) memberlistConfig(name string) *memberlist.Config {
	d := c.Profile.defaults()
	mc := c.Profile.memberlistConfig()
	mc.Name = name
	mc.BindAddr = c.bindAddr()
	mc.Label = c.Label
	if len(c.SecretKey) > 0 {
		mc.SecretKey = append([]byte(nil), c.SecretKey...)
	}
	switch {
	case c.DeadNodeReclaimTime < 0:
		mc.DeadNodeReclaimTime = 0
	case c.DeadNodeReclaimTime == 0:
		mc.DeadNodeReclaimTime = d.deadNodeReclaimTime
	default:
		mc.DeadNodeReclaimTime = c.DeadNodeReclaimTime
	}
	mc.PushPullInterval = cmpOr(c.PushPullInterval, d.pushPullInterval)
	mc.GossipToTheDeadTime = cmpOr(c.GossipToTheDeadTime, d.gossipToTheDeadTime)
	mc.ProbeInterval = cmpOr(c.ProbeInterval, mc.ProbeInterval)
	mc.ProbeTimeout = cmpOr(c.ProbeTimeout, mc.ProbeTimeout)
	return mc
}

// pauseLimit returns PauseLimit with its default.
func (c Config) pauseLimit() time.Duration {
	if c.PauseLimit > 0 {
		return c.PauseLimit
	}
	return cmpOr(c.ProbeInterval, c.Profile.memberlistConfig().ProbeInterval)
}

// ringDebounce returns RingDebounce with its default; 0 means none.
func (c Config) ringDebounce() time.Duration {
	switch {
	case c.RingDebounce < 0:
		return 0
	case c.RingDebounce == 0:
		return DefaultRingDebounce
	default:
		return c.RingDebounce
	}
}

// RequiresClientCerts reports whether a server TLS config authenticates its
// clients: it requires a certificate and verifies it (tls.RequireAndVerifyClientCert),
// or requires one and checks it with its own VerifyPeerCertificate or
// VerifyConnection.
func RequiresClientCerts(server *tls.Config) bool {
	if server == nil {
		return false
	}
	switch server.ClientAuth {
	case tls.RequireAndVerifyClientCert:
		return true
	case tls.RequireAnyClientCert:
		return server.VerifyPeerCertificate != nil || server.VerifyConnection != nil
	}
	return false
}

// presentsCert reports whether a client TLS config has a certificate to show.
func presentsCert(client *tls.Config) bool {
	return client != nil && (len(client.Certificates) > 0 || client.GetClientCertificate != nil)
}

// isLoopback reports whether addr is a loopback IP (127.0.0.0/8, ::1).
func isLoopback(addr string) bool {
	ip := net.ParseIP(addr)
	return ip != nil && ip.IsLoopback()
}

// validateSecurity refuses configurations that authenticate no peer where
// others can reach the port, unless Insecure: see SecretKey, ServerTLS and
// Insecure.
func (c Config) validateSecurity() error {
	mtls := RequiresClientCerts(c.ServerTLS)
	secret := len(c.SecretKey) > 0
	if mtls && !presentsCert(c.ClientTLS) {
		return fmt.Errorf("%w: ServerTLS requires client certificates but ClientTLS presents none (set Certificates or GetClientCertificate): this node could not connect to its peers", ErrInvalidConfig)
	}
	if c.Insecure || secret || mtls {
		return nil
	}
	if c.ServerTLS != nil {
		return fmt.Errorf("%w: ServerTLS does not require client certificates and SecretKey is not set, so TLS would authenticate no peer: "+
			"set ServerTLS.ClientAuth = tls.RequireAndVerifyClientCert with ClientCAs (mutual TLS), or set SecretKey, or set Insecure to accept that", ErrInvalidConfig)
	}
	if !isLoopback(c.bindAddr()) {
		return fmt.Errorf("%w: BindAddr %q is not a loopback address and peers are not authenticated: set SecretKey, "+
			"or ServerTLS with ClientAuth = tls.RequireAndVerifyClientCert and ClientTLS with a certificate (mutual TLS), "+
			"or set Insecure to accept that anyone who reaches the port can read and write the cache", ErrInvalidConfig, c.bindAddr())
	}
	return nil
}

package transport

import (
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"time"

	"github.com/distcache/distcache/internal/memnet"
)

// Defaults applied by New to zero-valued Config fields (DefaultConfig returns them filled in).
const (
	DefaultMaxInflightPerPeer    = 1024
	DefaultMaxConcurrentRequests = 4096
	DefaultMaxFrameBytes         = 16 << 20
	DefaultDialTimeout           = 2 * time.Second
	DefaultHandshakeTimeout      = 5 * time.Second
	DefaultKeepaliveInterval     = 15 * time.Second
	DefaultWriteTimeout          = 10 * time.Second
	DefaultReadTimeout           = 10 * time.Second
	DefaultIdleTimeout           = 5 * time.Minute
	DefaultMaxConnsPerIP         = 64
	DefaultMaxPendingConns       = 128
	DefaultMaxQueuedBytesPerConn = 8 << 20

	// minFrameBytes is the smallest accepted MaxFrameBytes (a header plus a little payload).
	minFrameBytes = 64
	// maxFrameBytesLimit keeps frame lengths well inside the u32 length field.
	maxFrameBytesLimit = 1 << 30
)

// Config configures a Transport. It is copied by New and never written back; the
// port the kernel picked comes back through Transport.BoundPort.
type Config struct {
	// BindAddr is the IP address to bind TCP and UDP to, e.g. "127.0.0.1" or "0.0.0.0".
	// Required; no default.
	BindAddr string
	// BindPort is the TCP and UDP port (memberlist's NetTransport binds both to the same
	// number). 0 lets the kernel pick; read the result with BoundPort and set memberlist's
	// AdvertisePort to it (memberlist does not copy it for custom transports).
	BindPort int
	// Label is the cluster label, at most 255 bytes. Every RPC connection's handshake carries
	// it and a server refuses a different one (the client gets ErrLabelMismatch). Set it to
	// the same value as memberlist's Config.Label. Empty is a valid label: it only matches empty.
	Label string
	// ServerTLS, when set, makes RPC connections TLS after the plaintext handshake preamble.
	// Set ClientAuth (tls.RequireAndVerifyClientCert and ClientCAs) for mutual TLS. Memberlist's
	// own gossip and streams stay as they are (use memberlist's SecretKey for those).
	// nil = plaintext RPC. ServerTLS and ClientTLS must be both set or both nil.
	ServerTLS *tls.Config
	// ClientTLS is used when dialing peers. When ServerName is empty, the host part of the
	// peer address is used (so certificates need IP SANs when peers are addressed by IP).
	ClientTLS *tls.Config
	// AuthSecret, when set, authenticates every RPC connection in both directions: each side
	// proves it knows the secret with an HMAC-SHA256 over both sides' nonces, the label and
	// (under TLS) the TLS session, keyed by a key derived from the secret (see auth.go). A
	// peer without it, or with another, cannot exchange a single frame. Use the cluster's
	// gossip secret, so that the one secret protects gossip and data. nil = no secret: only
	// mutual TLS, if configured, authenticates peers. Every node must use the same.
	AuthSecret []byte
	// NodeName is this node's name, sent in the handshake of every RPC connection it dials.
	// The peer's Handler sees it as Request.From of each request on that connection. At
	// most 255 bytes; empty is valid (the peer sees "").
	NodeName string
	// Handler serves incoming requests. It may be nil and set later with SetHandler; requests
	// arriving before that fail on the caller with ErrNoHandler.
	Handler Handler
	// Logger receives connection-level events (refused handshakes, broken connections).
	// nil discards.
	Logger *slog.Logger
	// ConnsPerPeer is the number of long-lived connections per peer (at most 64); calls are
	// spread across them round-robin. They are dialed lazily, one at a time. More connections
	// spread reads over more goroutines but batch fewer frames per syscall.
	// 0 = DefaultConnsPerPeer(): 1 on machines with fewer than 4 CPUs (measured on 2
	// cores: 350-377k remote Gets/s with one connection, 265-306k with two), else 2.
	ConnsPerPeer int
	// MaxInflightPerPeer bounds the calls in flight to one peer from this node. When it is
	// reached Call waits for a slot until ctx ends, then fails with ErrPeerOverloaded.
	// 0 = DefaultMaxInflightPerPeer (1024).
	MaxInflightPerPeer int
	// MaxConcurrentRequests bounds the handlers running at once on this node, over all
	// connections. A request beyond it is answered "overloaded" at once (the caller gets
	// ErrPeerOverloaded); connections are never stopped from reading.
	// 0 = DefaultMaxConcurrentRequests (4096).
	MaxConcurrentRequests int
	// MaxFrameBytes bounds one frame: the 20-byte header plus the payload, in bytes. Larger
	// requests fail with ErrFrameTooLarge before being sent; a peer sending a larger frame has
	// its connection closed. Responses larger than it fail the call with ErrFrameTooLarge.
	// 0 = DefaultMaxFrameBytes (16 MiB). Range 64 B .. 1 GiB.
	MaxFrameBytes int
	// DialTimeout bounds dialing a peer, including the RPC handshake and the TLS handshake.
	// It is also what memberlist's stream dials get when memberlist passes no timeout.
	// 0 = DefaultDialTimeout (2 s).
	DialTimeout time.Duration
	// HandshakeTimeout bounds how long an accepted connection may take to send its first
	// byte and, for RPC connections, the rest of the handshake. 0 = DefaultHandshakeTimeout (5 s).
	HandshakeTimeout time.Duration
	// KeepaliveInterval is how often each side pings each of its RPC connections. A
	// connection that receives nothing for 1.5 to 3 intervals is considered broken
	// (half-open, peer frozen) and closed; client pools redial on the next Call. 0 = DefaultKeepaliveInterval (15 s);
	// negative disables pings and idle detection (TCP keepalive still runs).
	KeepaliveInterval time.Duration
	// WriteTimeout bounds each socket write; a connection whose peer stops reading is closed
	// after it. 0 = DefaultWriteTimeout (10 s).
	WriteTimeout time.Duration
	// ReadTimeout bounds receiving the payload of one large frame (over 64 KiB) once its
	// header has arrived, so that a peer cannot hold a half-sent frame, and its share of
	// MaxReceiveBufferBytes, by trickling bytes. 0 = DefaultReadTimeout (10 s): at least
	// 1.6 MB/s for a 16 MiB frame.
	ReadTimeout time.Duration
	// IdleTimeout closes an accepted RPC connection that has served no request for this long
	// (keepalive pings do not count): the server sends GOAWAY, then closes it about one
	// KeepaliveInterval later; the client redials on its next Call. It bounds how long an
	// abandoned connection holds a slot of MaxConnsPerIP. Checked every KeepaliveInterval
	// (or every IdleTimeout/2 when keepalives are off). 0 = DefaultIdleTimeout (5 min);
	// negative never expires idle connections.
	IdleTimeout time.Duration
	// MaxConnsPerIP bounds the TCP connections accepted from one remote IP address and open
	// at once: RPC connections, memberlist streams and connections still in their handshake.
	// Beyond it a new connection is closed at once. Nodes sharing an IP (a test cluster on
	// 127.0.0.1) each hold ConnsPerPeer connections to every other: raise it above
	// ConnsPerPeer × (nodes per IP) + a few when many nodes share one.
	// 0 = DefaultMaxConnsPerIP (64); negative = no limit.
	MaxConnsPerIP int
	// MaxPendingConns bounds the accepted connections that have not yet finished their
	// handshake (not yet classified, or RPC and not yet authenticated), over all addresses.
	// Beyond it a new connection is closed at once. Each waits at most HandshakeTimeout.
	// 0 = DefaultMaxPendingConns (128); negative = no limit.
	MaxPendingConns int
	// MaxQueuedBytesPerConn bounds the reply bytes queued on one accepted connection: when
	// they reach it, the server stops reading that connection until its writer has drained
	// them (a client that sends requests and never reads the replies gets TCP backpressure,
	// and its connection is closed after WriteTimeout). Replies of requests already running
	// are still queued, so the queue can exceed it by those. Keepalive answers are dropped
	// beyond it. 0 = DefaultMaxQueuedBytesPerConn (8 MiB).
	MaxQueuedBytesPerConn int
	// MaxReceiveBufferBytes bounds the memory of large frames (payload over 64 KiB) being
	// received on all accepted connections at once. Such a frame reserves its announced
	// length from this budget before its payload is read (its buffer still grows only as
	// bytes arrive); a frame that cannot get its reservation within ReadTimeout closes its
	// connection. The reservation is returned when the frame is complete (handed to the
	// Handler) or its connection fails.
	// 0 = 2 × MaxFrameBytes (32 MiB by default). At least MaxFrameBytes.
	MaxReceiveBufferBytes int
	// Network, when set, replaces real sockets: the transport binds BindAddr:BindPort on
	// this in-memory network and reaches peers through it, gossip and RPC alike. For tests
	// (a cluster inside a testing/synctest bubble); nil = TCP and UDP sockets.
	Network *memnet.Network
}

// DefaultConnsPerPeer is the ConnsPerPeer default: 1 below 4 usable CPUs, where one
// connection batches more frames per syscall, else 2.
func DefaultConnsPerPeer() int {
	if runtime.GOMAXPROCS(0) < 4 {
		return 1
	}
	return 2
}

// DefaultConfig returns a Config with every default filled in, bound to 127.0.0.1 and a
// kernel-chosen port, with an empty label, no TLS and no handler.
func DefaultConfig() Config {
	return Config{
		BindAddr:              "127.0.0.1",
		ConnsPerPeer:          DefaultConnsPerPeer(),
		MaxInflightPerPeer:    DefaultMaxInflightPerPeer,
		MaxConcurrentRequests: DefaultMaxConcurrentRequests,
		MaxFrameBytes:         DefaultMaxFrameBytes,
		DialTimeout:           DefaultDialTimeout,
		HandshakeTimeout:      DefaultHandshakeTimeout,
		KeepaliveInterval:     DefaultKeepaliveInterval,
		WriteTimeout:          DefaultWriteTimeout,
		ReadTimeout:           DefaultReadTimeout,
		IdleTimeout:           DefaultIdleTimeout,
		MaxConnsPerIP:         DefaultMaxConnsPerIP,
		MaxPendingConns:       DefaultMaxPendingConns,
		MaxQueuedBytesPerConn: DefaultMaxQueuedBytesPerConn,
		MaxReceiveBufferBytes: 2 * DefaultMaxFrameBytes,
	}
}

// Validate reports every problem with the config, joined. Zero values are valid (they
// mean "default") except for BindAddr.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("transport: invalid config: "+format, args...))
	}
	if c.BindAddr == "" {
		bad("BindAddr is required")
	} else if net.ParseIP(c.BindAddr) == nil {
		bad("BindAddr %q is not an IP address", c.BindAddr)
	}
	if c.BindPort < 0 || c.BindPort > 65535 {
		bad("BindPort %d out of range 0..65535", c.BindPort)
	}
	if len(c.Label) > maxLabelLen {
		bad("Label is %d bytes, at most %d allowed", len(c.Label), maxLabelLen)
	}
	if len(c.NodeName) > maxNameLen {
		bad("NodeName is %d bytes, at most %d allowed", len(c.NodeName), maxNameLen)
	}
	if (c.ServerTLS == nil) != (c.ClientTLS == nil) {
		bad("ServerTLS and ClientTLS must be both set or both nil")
	}
	if c.ConnsPerPeer < 0 || c.ConnsPerPeer > 64 {
		bad("ConnsPerPeer %d out of range 0..64", c.ConnsPerPeer)
	}
	if c.MaxInflightPerPeer < 0 {
		bad("MaxInflightPerPeer %d is negative", c.MaxInflightPerPeer)
	}
	if c.MaxConcurrentRequests < 0 {
		bad("MaxConcurrentRequests %d is negative", c.MaxConcurrentRequests)
	}
	if c.MaxFrameBytes != 0 && (c.MaxFrameBytes < minFrameBytes || c.MaxFrameBytes > maxFrameBytesLimit) {
		bad("MaxFrameBytes %d out of range %d..%d", c.MaxFrameBytes, minFrameBytes, maxFrameBytesLimit)
	}
	if c.DialTimeout < 0 {
		bad("DialTimeout %v is negative", c.DialTimeout)
	}
	if c.HandshakeTimeout < 0 {
		bad("HandshakeTimeout %v is negative", c.HandshakeTimeout)
	}
	if c.WriteTimeout < 0 {
		bad("WriteTimeout %v is negative", c.WriteTimeout)
	}
	if c.ReadTimeout < 0 {
		bad("ReadTimeout %v is negative", c.ReadTimeout)
	}
	if c.MaxQueuedBytesPerConn < 0 {
		bad("MaxQueuedBytesPerConn %d is negative", c.MaxQueuedBytesPerConn)
	}
	if c.MaxReceiveBufferBytes < 0 {
		bad("MaxReceiveBufferBytes %d is negative", c.MaxReceiveBufferBytes)
	} else if c.MaxReceiveBufferBytes > 0 && c.MaxReceiveBufferBytes < cmp.Or(c.MaxFrameBytes, DefaultMaxFrameBytes) {
		bad("MaxReceiveBufferBytes %d is below MaxFrameBytes %d: the largest frame could never be received",
			c.MaxReceiveBufferBytes, cmp.Or(c.MaxFrameBytes, DefaultMaxFrameBytes))
	}
	return errors.Join(errs...)
}

// withDefaults returns c with zero fields replaced by their defaults.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.ConnsPerPeer == 0 {
		c.ConnsPerPeer = d.ConnsPerPeer
	}
	if c.MaxInflightPerPeer == 0 {
		c.MaxInflightPerPeer = d.MaxInflightPerPeer
	}
	if c.MaxConcurrentRequests == 0 {
		c.MaxConcurrentRequests = d.MaxConcurrentRequests
	}
	if c.MaxFrameBytes == 0 {
		c.MaxFrameBytes = d.MaxFrameBytes
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = d.DialTimeout
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = d.HandshakeTimeout
	}
	if c.KeepaliveInterval == 0 {
		c.KeepaliveInterval = d.KeepaliveInterval
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = d.WriteTimeout
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = d.ReadTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = d.IdleTimeout
	}
	if c.MaxConnsPerIP == 0 {
		c.MaxConnsPerIP = d.MaxConnsPerIP
	}
	if c.MaxPendingConns == 0 {
		c.MaxPendingConns = d.MaxPendingConns
	}
	if c.MaxQueuedBytesPerConn == 0 {
		c.MaxQueuedBytesPerConn = d.MaxQueuedBytesPerConn
	}
	if c.MaxReceiveBufferBytes == 0 {
		c.MaxReceiveBufferBytes = 2 * c.MaxFrameBytes
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

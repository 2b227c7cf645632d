package admin

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultBasePath is where the endpoints are mounted unless
// Config.BasePath says otherwise.
const DefaultBasePath = "/_distcache/admin"

// Defaults applied to the other zero fields of a Config.
const (
	defaultReadHeaderTimeout = 5 * time.Second
	defaultReadTimeout       = 10 * time.Second
	defaultWriteTimeout      = 10 * time.Second
	defaultIdleTimeout       = time.Minute
	defaultShutdownTimeout   = 5 * time.Second
	defaultMaxHeaderBytes    = 16 << 10
)

// ErrInvalidConfig wraps every error of Config.Validate.
var ErrInvalidConfig = errors.New("admin: invalid config")

// Config configures the admin endpoints and their optional HTTP server.
// Zero fields take their defaults, so admin.Config{ListenAddr:
// "127.0.0.1:9090"} is complete.
type Config struct {
	// ListenAddr is the host:port the admin server listens on; port 0 picks
	// a free port (Server.Addr reports it). Empty: no server is started,
	// and the handler is only available for mounting on your own mux
	// (engine.AdminHandler). Bind to loopback ("127.0.0.1:9090") unless
	// BearerToken is set: the endpoints list the members, their counters
	// and hot key names. A host that is empty or unspecified (":9090",
	// "0.0.0.0:9090", "[::]:9090") listens on every interface, and Start
	// logs a warning unless a BearerToken and TLSConfig are set.
	ListenAddr string
	// BearerToken, when set, is required by every endpoint, the dashboard
	// and its scripts included: a request must carry "Authorization:
	// Bearer <token>" or gets 401 with "WWW-Authenticate: Bearer". It is
	// compared in constant time (of a hash: its length does not leak
	// either). It must be an RFC 6750 token (letters, digits and
	// "-._~+/", then optional "=" padding); use at least 32 random bytes,
	// base64url-encoded. Without TLSConfig it travels in clear text. A
	// browser does not send it by itself: put the dashboard behind a proxy
	// that adds the header. Empty: no authentication.
	BearerToken string
	// BasePath prefixes every endpoint. It must start with "/"; trailing
	// slashes are ignored. Empty: DefaultBasePath ("/_distcache/admin").
	BasePath string
	// TLSConfig, when set, serves HTTPS; it needs Certificates,
	// GetCertificate or GetConfigForClient (set ClientAuth for mTLS). It is
	// cloned, never modified. Nil: plain HTTP.
	TLSConfig *tls.Config
	// ReadHeaderTimeout bounds reading a request's headers (slow-loris
	// protection). Zero: 5 s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request. Zero: 10 s.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing a response. Zero: 10 s.
	WriteTimeout time.Duration
	// IdleTimeout bounds how long a keep-alive connection waits for its
	// next request. Zero: 1 min.
	IdleTimeout time.Duration
	// ShutdownTimeout bounds the graceful part of Server.Shutdown (and of
	// the engine's Stop for the admin server); connections still open then
	// are closed. Zero: 5 s.
	ShutdownTimeout time.Duration
	// MaxHeaderBytes bounds request headers, in bytes. Zero: 16 KiB.
	MaxHeaderBytes int
	// AdvertiseURL is the URL of this node's dashboard that the other
	// members' dashboards link to: set it when the handler is mounted on a
	// server of your own (engine.AdminHandler), or reached through a proxy.
	// It must be an absolute http or https URL. Empty: derived from the
	// admin server's bound address (its host replaced by the node's
	// advertised one when it listens on every interface), or no link when
	// no admin server runs.
	AdvertiseURL string
	// Logger receives the server's warnings (listening on every interface).
	// The engine passes its own logger when this is nil. Nil: discarded.
	Logger *slog.Logger
}

// DefaultConfig returns the defaults, without a ListenAddr.
func DefaultConfig() Config {
	return Config{
		BasePath:          DefaultBasePath,
		ReadHeaderTimeout: defaultReadHeaderTimeout,
		ReadTimeout:       defaultReadTimeout,
		WriteTimeout:      defaultWriteTimeout,
		IdleTimeout:       defaultIdleTimeout,
		ShutdownTimeout:   defaultShutdownTimeout,
		MaxHeaderBytes:    defaultMaxHeaderBytes,
	}
}

// WithDefaults returns c with every zero field set to its default and the
// base path normalized.
func (c Config) WithDefaults() Config {
	c.BasePath = normalizeBasePath(c.BasePath)
	set := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	set(&c.ReadHeaderTimeout, defaultReadHeaderTimeout)
	set(&c.ReadTimeout, defaultReadTimeout)
	set(&c.WriteTimeout, defaultWriteTimeout)
	set(&c.IdleTimeout, defaultIdleTimeout)
	set(&c.ShutdownTimeout, defaultShutdownTimeout)
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = defaultMaxHeaderBytes
	}
	return c
}

// Validate reports every invalid field, wrapped in ErrInvalidConfig.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.ListenAddr != "" {
		host, port, err := net.SplitHostPort(c.ListenAddr)
		switch {
		case err != nil:
			bad("ListenAddr %q is not host:port: %w", c.ListenAddr, err)
		case strings.ContainsAny(host, "/ "):
			bad("ListenAddr %q has an invalid host", c.ListenAddr)
		default:
			if p, perr := strconv.Atoi(port); perr != nil || p < 0 || p > 65535 {
				bad("ListenAddr %q: port must be a number in [0, 65535]", c.ListenAddr)
			}
		}
	}
	if c.BasePath != "" {
		switch {
		case !strings.HasPrefix(c.BasePath, "/"):
			bad("BasePath %q must start with \"/\"", c.BasePath)
		case strings.ContainsAny(c.BasePath, "?# \t\r\n"):
			bad("BasePath %q must not contain '?', '#' or spaces", c.BasePath)
		case strings.Contains(c.BasePath, "//"):
			bad("BasePath %q must not contain \"//\"", c.BasePath)
		}
	}
	if c.BearerToken != "" && !validBearerToken(c.BearerToken) {
		// The token itself stays out of the message: errors get logged.
		bad("BearerToken must be an RFC 6750 token: letters, digits and \"-._~+/\", then optional \"=\" padding (no spaces)")
	}
	if c.AdvertiseURL != "" {
		if u, err := url.Parse(c.AdvertiseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("AdvertiseURL %q must be an absolute http or https URL", c.AdvertiseURL)
		}
	}
	if t := c.TLSConfig; t != nil && len(t.Certificates) == 0 && t.GetCertificate == nil && t.GetConfigForClient == nil {
		bad("TLSConfig has no certificate (set Certificates, GetCertificate or GetConfigForClient)")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"ReadHeaderTimeout", c.ReadHeaderTimeout}, {"ReadTimeout", c.ReadTimeout},
		{"WriteTimeout", c.WriteTimeout}, {"IdleTimeout", c.IdleTimeout}, {"ShutdownTimeout", c.ShutdownTimeout},
	} {
		if d.v < 0 {
			bad("%s must be >= 0, got %v", d.name, d.v)
		}
	}
	if c.MaxHeaderBytes < 0 {
		bad("MaxHeaderBytes must be >= 0, got %d", c.MaxHeaderBytes)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
	}
	return nil
}

// validBearerToken reports whether tok matches RFC 6750's b64token:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func validBearerToken(tok string) bool {
	body := strings.TrimRight(tok, "=")
	if body == "" {
		return false
	}
	for _, r := range body {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		case strings.ContainsRune("-._~+/", r):
		default:
			return false
		}
	}
	return true
}

// listensOnEveryInterface reports whether addr's host is empty or an
// unspecified address (0.0.0.0, ::): a listener on every interface.
func listensOnEveryInterface(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

// normalizeBasePath maps "" to DefaultBasePath, adds a missing leading
// slash and drops trailing ones ("/" becomes "": endpoints at the root).
func normalizeBasePath(p string) string {
	if p == "" {
		return DefaultBasePath
	}
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return strings.TrimRight(p, "/")
}

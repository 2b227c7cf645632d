package nats

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"
	"unicode"

	natsgo "github.com/nats-io/nats.go"
)

// Defaults applied by New to zero Config fields.
const (
	// DefaultTimeout is the longest a DiscoverPeers gather window lasts.
	DefaultTimeout = time.Second
	// DefaultQuietPeriod ends a gather window early once every known peer
	// has answered and no new answer came for this long.
	DefaultQuietPeriod = 100 * time.Millisecond
	// DefaultConnectTimeout bounds the initial dial of each server.
	DefaultConnectTimeout = 2 * time.Second
	// DefaultMaxReconnects is the number of reconnect attempts after the
	// connection is lost (the nats.go default).
	DefaultMaxReconnects = 60
	// DefaultReconnectWait is the pause between reconnect attempts to the
	// same server (the nats.go default).
	DefaultReconnectWait = 2 * time.Second
)

// ErrInvalidConfig is wrapped by every error that Config.Validate returns.
var ErrInvalidConfig = errors.New("nats: invalid config")

// Config describes the NATS connection and the subjects nodes use. Start
// from DefaultConfig and set URL and Subject.
type Config struct {
	// URL is the NATS server URL, or a comma-separated list of them, e.g.
	// "nats://10.0.0.1:4222,nats://10.0.0.2:4222". Schemes nats, tls, ws and
	// wss are accepted; a URL without a scheme means nats://. Required.
	URL string

	// Subject is the base subject of one cluster, e.g. "distcache.orders".
	// Nodes use Subject+".announce", Subject+".leave" and
	// Subject+".discover"; clusters with different subjects never see each
	// other. Dot-separated tokens, no wildcards (* >) or whitespace. Required.
	Subject string

	// Timeout is the longest one DiscoverPeers call gathers replies. Zero
	// means DefaultTimeout (1s). The caller's context deadline shortens it.
	Timeout time.Duration

	// QuietPeriod ends the gather window before Timeout once every peer
	// this node knows of has replied and no reply arrived for this long.
	// Shorter returns sooner; longer tolerates slower peers (a peer missed
	// in one round is found in the next poll, and gossip spreads membership
	// anyway). Zero means DefaultQuietPeriod (100ms); a value >= Timeout
	// makes every call wait the full Timeout.
	QuietPeriod time.Duration

	// ConnectTimeout bounds the dial of each server at Start. Zero means
	// DefaultConnectTimeout (2s).
	ConnectTimeout time.Duration

	// MaxReconnects is the number of reconnect attempts after an
	// established connection is lost; -1 retries forever. Zero means
	// DefaultMaxReconnects (60). To disable reconnects pass
	// natsgo.NoReconnect() in Options. When the attempts run out the
	// connection closes and DiscoverPeers returns errors until the provider
	// is stopped and started again.
	MaxReconnects int

	// ReconnectWait is the pause between reconnect attempts to the same
	// server. Zero means DefaultReconnectWait (2s).
	ReconnectWait time.Duration

	// Options are extra nats.go options (credentials, TLS, user info,
	// custom dialer...), applied after the settings above, which they may
	// override. Two settings are always forced: RetryOnFailedConnect is off
	// (a failed first connect is returned by Start) and callbacks after
	// Close stay on (Stop waits for the client's closed callback). Handlers
	// set here (ClosedHandler, ReconnectHandler, ...) still run.
	Options []natsgo.Option

	// Logger receives connection events and dropped malformed messages.
	// Nil means discard.
	Logger *slog.Logger
}

// DefaultConfig returns a Config with every default filled in. URL and
// Subject must still be set.
func DefaultConfig() Config {
	return Config{
		Timeout:        DefaultTimeout,
		QuietPeriod:    DefaultQuietPeriod,
		ConnectTimeout: DefaultConnectTimeout,
		MaxReconnects:  DefaultMaxReconnects,
		ReconnectWait:  DefaultReconnectWait,
	}
}

// Validate reports the first problem in c, wrapped in ErrInvalidConfig.
func (c Config) Validate() error {
	if err := validateURLs(c.URL); err != nil {
		return err
	}
	if err := validateSubject(c.Subject); err != nil {
		return err
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"Timeout", c.Timeout},
		{"QuietPeriod", c.QuietPeriod},
		{"ConnectTimeout", c.ConnectTimeout},
		{"ReconnectWait", c.ReconnectWait},
	} {
		if d.v < 0 {
			return fmt.Errorf("%w: %s %v is negative (0 means the default)", ErrInvalidConfig, d.name, d.v)
		}
	}
	if c.MaxReconnects < -1 {
		return fmt.Errorf("%w: MaxReconnects %d must be -1 (forever), 0 (default) or positive", ErrInvalidConfig, c.MaxReconnects)
	}
	for i, o := range c.Options {
		if o == nil {
			return fmt.Errorf("%w: Options[%d] is nil", ErrInvalidConfig, i)
		}
	}
	return nil
}

// withDefaults returns c with zero fields replaced by their defaults.
func (c Config) withDefaults() Config {
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.QuietPeriod == 0 {
		c.QuietPeriod = DefaultQuietPeriod
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.MaxReconnects == 0 {
		c.MaxReconnects = DefaultMaxReconnects
	}
	if c.ReconnectWait == 0 {
		c.ReconnectWait = DefaultReconnectWait
	}
	c.Options = append([]natsgo.Option(nil), c.Options...)
	return c
}

// serverList splits a comma-separated URL list as nats.Connect does.
func serverList(s string) []string {
	var out []string
	for u := range strings.SplitSeq(s, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

func validateURLs(s string) error {
	servers := serverList(s)
	if len(servers) == 0 {
		return fmt.Errorf("%w: URL is empty", ErrInvalidConfig)
	}
	for _, raw := range servers {
		full := raw
		if !strings.Contains(full, "://") {
			full = "nats://" + full
		}
		u, err := url.Parse(full)
		if err != nil {
			return fmt.Errorf("%w: URL %q: %w", ErrInvalidConfig, raw, err)
		}
		switch strings.ToLower(u.Scheme) {
		case "nats", "tls", "ws", "wss":
		default:
			return fmt.Errorf("%w: URL %q: scheme %q is not nats, tls, ws or wss", ErrInvalidConfig, raw, u.Scheme)
		}
		if u.Hostname() == "" {
			return fmt.Errorf("%w: URL %q has no host", ErrInvalidConfig, raw)
		}
	}
	return nil
}

func validateSubject(s string) error {
	if s == "" {
		return fmt.Errorf("%w: Subject is empty", ErrInvalidConfig)
	}
	for tok := range strings.SplitSeq(s, ".") {
		if tok == "" {
			return fmt.Errorf("%w: Subject %q has an empty token (leading, trailing or double dot)", ErrInvalidConfig, s)
		}
		if tok == "*" || tok == ">" || strings.ContainsAny(tok, "*>") {
			return fmt.Errorf("%w: Subject %q contains a wildcard", ErrInvalidConfig, s)
		}
		if strings.IndexFunc(tok, unicode.IsSpace) >= 0 {
			return fmt.Errorf("%w: Subject %q contains whitespace", ErrInvalidConfig, s)
		}
	}
	return nil
}

package nats

import (
	"strings"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
)

func TestConfigValidate(t *testing.T) {
	valid := func(mut func(*Config)) Config {
		c := DefaultConfig()
		c.URL = "nats://127.0.0.1:4222"
		c.Subject = "distcache.prod"
		if mut != nil {
			mut(&c)
		}
		return c
	}
	cases := []struct {
		name    string
		cfg     Config
		wantErr string // substring; empty means valid
	}{
		{"defaults", valid(nil), ""},
		{"zero durations take defaults", Config{URL: "127.0.0.1:4222", Subject: "x"}, ""},
		{"url list", valid(func(c *Config) { c.URL = "nats://a:4222, tls://b:4222,ws://c:80" }), ""},
		{"forever reconnects", valid(func(c *Config) { c.MaxReconnects = -1 }), ""},
		{"empty url", valid(func(c *Config) { c.URL = " , " }), "URL is empty"},
		{"bad scheme", valid(func(c *Config) { c.URL = "http://127.0.0.1:4222" }), "scheme"},
		{"no host", valid(func(c *Config) { c.URL = "nats://:4222" }), "no host"},
		{"unparsable url", valid(func(c *Config) { c.URL = "nats://[::1" }), "URL"},
		{"empty subject", valid(func(c *Config) { c.Subject = "" }), "Subject is empty"},
		{"wildcard subject", valid(func(c *Config) { c.Subject = "distcache.*" }), "wildcard"},
		{"full wildcard", valid(func(c *Config) { c.Subject = "distcache.>" }), "wildcard"},
		{"trailing dot", valid(func(c *Config) { c.Subject = "distcache." }), "empty token"},
		{"space", valid(func(c *Config) { c.Subject = "dist cache" }), "whitespace"},
		{"negative timeout", valid(func(c *Config) { c.Timeout = -time.Second }), "Timeout"},
		{"negative quiet", valid(func(c *Config) { c.QuietPeriod = -1 }), "QuietPeriod"},
		{"negative connect timeout", valid(func(c *Config) { c.ConnectTimeout = -1 }), "ConnectTimeout"},
		{"negative reconnect wait", valid(func(c *Config) { c.ReconnectWait = -1 }), "ReconnectWait"},
		{"bad max reconnects", valid(func(c *Config) { c.MaxReconnects = -2 }), "MaxReconnects"},
		{"nil option", valid(func(c *Config) { c.Options = []natsgo.Option{nil} }), "Options[0] is nil"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			d, newErr := New(tc.cfg)
			if tc.wantErr == "" {
				require.NoError(t, err)
				require.NoError(t, newErr)
				require.Positive(t, d.cfg.Timeout)
				require.Positive(t, d.cfg.QuietPeriod)
				require.NotZero(t, d.cfg.MaxReconnects)
				return
			}
			require.ErrorIs(t, err, ErrInvalidConfig)
			require.ErrorContains(t, err, tc.wantErr)
			require.ErrorIs(t, newErr, ErrInvalidConfig)
			require.True(t, strings.HasPrefix(err.Error(), "nats: "), err.Error())
		})
	}
}

func TestNewCopiesConfig(t *testing.T) {
	opts := []natsgo.Option{natsgo.Name("a")}
	d, err := New(Config{URL: "nats://127.0.0.1:4222", Subject: "x", Options: opts})
	require.NoError(t, err)
	opts[0] = nil
	require.NotNil(t, d.cfg.Options[0], "the caller's slice is not shared")
}

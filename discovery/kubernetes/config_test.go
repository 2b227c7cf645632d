package kubernetes

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/client-go/kubernetes/fake"
)

func TestConfigValidate(t *testing.T) {
	valid := func(mut func(*Config)) Config {
		c := DefaultConfig()
		c.Namespace = "shop"
		c.LabelSelector = "app=cache"
		c.PortName = "gossip"
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
		{"minimal", valid(nil), ""},
		{"set-based selector", valid(func(c *Config) { c.LabelSelector = "app in (cache, api),!legacy" }), ""},
		{"kubeconfig and context", valid(func(c *Config) { c.Kubeconfig = "/tmp/kc"; c.Context = "dev" }), ""},
		{"client", valid(func(c *Config) { c.Client = fake.NewClientset() }), ""},
		{"empty namespace", valid(func(c *Config) { c.Namespace = "" }), "Namespace is empty"},
		{"bad namespace", valid(func(c *Config) { c.Namespace = "Shop_1" }), "Namespace"},
		{"empty selector", valid(func(c *Config) { c.LabelSelector = " " }), "LabelSelector is empty"},
		{"bad selector", valid(func(c *Config) { c.LabelSelector = "app==cache,=" }), "LabelSelector"},
		{"bad selector value", valid(func(c *Config) { c.LabelSelector = "app=ca che" }), "LabelSelector"},
		{"empty port name", valid(func(c *Config) { c.PortName = "" }), "PortName is empty"},
		{"port name too long", valid(func(c *Config) { c.PortName = "gossip-port-name-x" }), "PortName"},
		{"port name uppercase", valid(func(c *Config) { c.PortName = "Gossip" }), "PortName"},
		{"port number as name", valid(func(c *Config) { c.PortName = "7946" }), "PortName"},
		{"client and kubeconfig", valid(func(c *Config) { c.Client = fake.NewClientset(); c.Kubeconfig = "/tmp/kc" }), "not both"},
		{"negative timeout", valid(func(c *Config) { c.Timeout = -time.Second }), "Timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			d, newErr := New(tc.cfg)
			if tc.wantErr == "" {
				require.NoError(t, err)
				require.NoError(t, newErr)
				require.Positive(t, d.cfg.Timeout)
				return
			}
			require.ErrorIs(t, err, ErrInvalidConfig)
			require.ErrorContains(t, err, tc.wantErr)
			require.ErrorIs(t, newErr, ErrInvalidConfig)
			require.True(t, strings.HasPrefix(err.Error(), "kubernetes: "), err.Error())
		})
	}
}

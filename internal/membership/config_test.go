package membership

import (
	"crypto/tls"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDefaultConfigsValidate(t *testing.T) {
	secured := DefaultConfig()
	secured.SecretKey = make([]byte, 32)
	require.NoError(t, secured.Validate())
	require.ErrorIs(t, DefaultConfig().Validate(), ErrInvalidConfig, "all interfaces and no authentication needs Insecure")
	require.NoError(t, DefaultLocalConfig().Validate())
	require.NoError(t, Config{Insecure: true}.Validate(), "a zero Config means all defaults")

	lan := DefaultConfig()
	assert.Equal(t, ProfileLAN, lan.Profile)
	assert.Equal(t, "0.0.0.0", lan.BindAddr)
	assert.Equal(t, 7946, lan.BindPort)
	assert.Equal(t, 10*time.Second, lan.DeadNodeReclaimTime)
	assert.Equal(t, 10*time.Second, lan.PushPullInterval)
	assert.Equal(t, DefaultPartitionCount, lan.PartitionCount)
	assert.Equal(t, DefaultLoad, lan.Load)
	assert.Equal(t, DefaultVirtualNodes, lan.VirtualNodes)
	assert.Equal(t, DefaultRingDebounce, lan.RingDebounce)

	local := DefaultLocalConfig()
	assert.Equal(t, ProfileLocal, local.Profile)
	assert.Equal(t, "127.0.0.1", local.BindAddr)
	assert.Zero(t, local.BindPort)
	assert.Equal(t, time.Second, local.DeadNodeReclaimTime)
	assert.Equal(t, 2*time.Second, local.GossipToTheDeadTime)
}

func TestConfigValidateRejects(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
	}{
		{"bind addr not an IP", func(c *Config) { c.BindAddr = "localhost" }},
		{"bind port negative", func(c *Config) { c.BindPort = -1 }},
		{"bind port too large", func(c *Config) { c.BindPort = 70000 }},
		{"advertise addr not an IP", func(c *Config) { c.AdvertiseAddr = "example.com" }},
		{"advertise port too large", func(c *Config) { c.AdvertisePort = 65536 }},
		{"label too long", func(c *Config) { c.Label = string(make([]byte, 256)) }},
		{"secret key 15 bytes", func(c *Config) { c.SecretKey = make([]byte, 15) }},
		{"secret key 33 bytes", func(c *Config) { c.SecretKey = make([]byte, 33) }},
		{"unknown profile", func(c *Config) { c.Profile = 7 }},
		{"negative push pull", func(c *Config) { c.PushPullInterval = -time.Second }},
		{"negative gossip to the dead", func(c *Config) { c.GossipToTheDeadTime = -time.Second }},
		{"negative probe interval", func(c *Config) { c.ProbeInterval = -time.Second }},
		{"probe timeout above interval", func(c *Config) { c.ProbeInterval, c.ProbeTimeout = time.Second, 2*time.Second }},
		{"probe timeout above default interval", func(c *Config) { c.ProbeTimeout = 5 * time.Second }},
		{"probe timeout at half the interval", func(c *Config) { c.ProbeInterval, c.ProbeTimeout = time.Second, 500*time.Millisecond }},
		{"partitions negative", func(c *Config) { c.PartitionCount = -1 }},
		{"partitions too many", func(c *Config) { c.PartitionCount = MaxPartitionCount + 1 }},
		{"load 1.0", func(c *Config) { c.Load = 1.0 }},
		{"load negative", func(c *Config) { c.Load = -1 }},
		{"load NaN", func(c *Config) { c.Load = math.NaN() }},
		{"replication factor 5", func(c *Config) { c.VirtualNodes = 5 }},
		{"replication factor negative", func(c *Config) { c.VirtualNodes = -20 }},
		{"server TLS without client TLS", func(c *Config) { c.ServerTLS = &tls.Config{} }},
		{"transport knob out of range", func(c *Config) { c.Transport.ConnsPerPeer = -1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultLocalConfig()
			tc.mutate(&cfg)
			require.ErrorIs(t, cfg.Validate(), ErrInvalidConfig)
		})
	}
}

func TestConfigValidateAccepts(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
	}{
		{"empty bind addr with a secret", func(c *Config) { c.BindAddr, c.SecretKey = "", make([]byte, 32) }},
		{"ipv6 bind addr", func(c *Config) { c.BindAddr = "::1" }},
		{"advertise addr", func(c *Config) { c.AdvertiseAddr, c.AdvertisePort = "10.0.0.1", 8000 }},
		{"aes-128", func(c *Config) { c.SecretKey = make([]byte, 16) }},
		{"aes-192", func(c *Config) { c.SecretKey = make([]byte, 24) }},
		{"aes-256", func(c *Config) { c.SecretKey = make([]byte, 32) }},
		{"label at limit", func(c *Config) { c.Label = string(make([]byte, 255)) }},
		{"no reclaim", func(c *Config) { c.DeadNodeReclaimTime = -1 }},
		{"no debounce", func(c *Config) { c.RingDebounce = -1 }},
		{"fast probes", func(c *Config) { c.ProbeInterval, c.ProbeTimeout = 300*time.Millisecond, 100*time.Millisecond }},
		{"one partition", func(c *Config) { c.PartitionCount = 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultLocalConfig()
			tc.mutate(&cfg)
			require.NoError(t, cfg.Validate())
		})
	}
}

func TestConfigResolvesProfileDefaults(t *testing.T) {
	var zero Config
	mc := zero.memberlistConfig("n")
	assert.Equal(t, "n", mc.Name)
	assert.Equal(t, "0.0.0.0", mc.BindAddr)
	assert.Equal(t, 10*time.Second, mc.DeadNodeReclaimTime)
	assert.Equal(t, 10*time.Second, mc.PushPullInterval)
	assert.Equal(t, 30*time.Second, mc.GossipToTheDeadTime)
	assert.Equal(t, 400*time.Millisecond, mc.ProbeTimeout)
	assert.Equal(t, 10*time.Second, mc.TCPTimeout, "LAN preset")
	assert.Nil(t, mc.SecretKey)
	assert.Equal(t, DefaultRingDebounce, zero.ringDebounce())

	local := Config{Profile: ProfileLocal, DeadNodeReclaimTime: -1, RingDebounce: -1, SecretKey: make([]byte, 16)}
	mc = local.memberlistConfig("n")
	assert.Zero(t, mc.DeadNodeReclaimTime, "negative disables reclaim")
	assert.Equal(t, 5*time.Second, mc.PushPullInterval)
	assert.Equal(t, 2*time.Second, mc.GossipToTheDeadTime)
	assert.Equal(t, time.Second, mc.TCPTimeout, "Local preset")
	assert.Len(t, mc.SecretKey, 16)
	assert.Zero(t, local.ringDebounce())

	custom := Config{DeadNodeReclaimTime: 3 * time.Second, ProbeInterval: 2 * time.Second, ProbeTimeout: time.Second, RingDebounce: time.Second}
	mc = custom.memberlistConfig("n")
	assert.Equal(t, 3*time.Second, mc.DeadNodeReclaimTime)
	assert.Equal(t, 2*time.Second, mc.ProbeInterval)
	assert.Equal(t, time.Second, mc.ProbeTimeout)
	assert.Equal(t, time.Second, custom.ringDebounce())

	assert.Equal(t, RingConfig{PartitionCount: DefaultPartitionCount, VirtualNodes: DefaultVirtualNodes, Load: DefaultLoad}, zero.ringConfig())
}

func TestConfigSecretKeyIsCopied(t *testing.T) {
	cfg := Config{SecretKey: []byte("0123456789abcdef")}
	mc := cfg.memberlistConfig("n")
	cfg.SecretKey[0] = 'X'
	assert.Equal(t, byte('0'), mc.SecretKey[0])
}

func TestProfileString(t *testing.T) {
	assert.Equal(t, "lan", ProfileLAN.String())
	assert.Equal(t, "local", ProfileLocal.String())
	assert.Equal(t, "Profile(9)", Profile(9).String())
}

func TestRingConfigFingerprint(t *testing.T) {
	base := RingConfig{}
	assert.Equal(t, base.fingerprint(), RingConfig{PartitionCount: DefaultPartitionCount, VirtualNodes: DefaultVirtualNodes, Load: DefaultLoad}.fingerprint(),
		"defaults and explicit defaults agree")
	assert.NotEqual(t, base.fingerprint(), RingConfig{PartitionCount: 4099}.fingerprint())
	assert.NotEqual(t, base.fingerprint(), RingConfig{VirtualNodes: 40}.fingerprint())
	assert.NotEqual(t, base.fingerprint(), RingConfig{Load: 1.5}.fingerprint())
}

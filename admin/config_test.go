package admin

import (
	"crypto/tls"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestConfigDefaults(t *testing.T) {
	require.NoError(t, Config{}.Validate())
	require.NoError(t, DefaultConfig().Validate())
	require.Equal(t, DefaultConfig(), Config{}.WithDefaults())
	c := Config{ListenAddr: "127.0.0.1:0", BasePath: "/ops/"}.WithDefaults()
	require.Equal(t, "/ops", c.BasePath)
	require.Equal(t, defaultReadHeaderTimeout, c.ReadHeaderTimeout)
	require.Equal(t, defaultShutdownTimeout, c.ShutdownTimeout)
	require.Equal(t, "", normalizeBasePath("/"), "/ mounts at the root")
	require.Equal(t, "/x", normalizeBasePath("x"))
}

func TestConfigValidateReportsEveryField(t *testing.T) {
	err := Config{
		ListenAddr:        "no-port",
		BasePath:          "relative?q",
		TLSConfig:         &tls.Config{},
		ReadHeaderTimeout: -1,
		ReadTimeout:       -1,
		WriteTimeout:      -1,
		IdleTimeout:       -1,
		ShutdownTimeout:   -time.Second,
		MaxHeaderBytes:    -1,
	}.Validate()
	require.True(t, errors.Is(err, ErrInvalidConfig))
	for _, f := range []string{"ListenAddr", "BasePath", "TLSConfig", "ReadHeaderTimeout", "ReadTimeout", "WriteTimeout", "IdleTimeout", "ShutdownTimeout", "MaxHeaderBytes"} {
		require.Contains(t, err.Error(), f)
	}
	for _, addr := range []string{"127.0.0.1:99999", "127.0.0.1:http", "a b:1"} {
		require.Error(t, Config{ListenAddr: addr}.Validate(), addr)
	}
	for _, base := range []string{"/a//b", "/a b", "/a#b"} {
		require.Error(t, Config{BasePath: base}.Validate(), base)
	}
	require.NoError(t, Config{ListenAddr: ":0", BasePath: "/"}.Validate())
	require.NoError(t, Config{ListenAddr: "[::1]:9090"}.Validate())
}

package admin

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/distcache/distcache/internal/testcert"
	"github.com/stretchr/testify/require"
)

func startServer(t *testing.T, cfg Config, h http.Handler) *Server {
	t.Helper()
	s, err := NewServer(cfg, h)
	require.NoError(t, err)
	require.NoError(t, s.Start())
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return s
}

func httpGet(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestServerPortZeroReportsBoundAddr(t *testing.T) {
	s := startServer(t, Config{ListenAddr: "127.0.0.1:0"}, NewHandler(newFake(), ""))
	host, port, err := net.SplitHostPort(s.Addr())
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1", host)
	require.NotEqual(t, "0", port)
	code, body := httpGet(t, http.DefaultClient, "http://"+s.Addr()+"/_distcache/admin/peers")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `"partitions": 136`)

	require.ErrorIs(t, s.Start(), ErrServerStarted)
	require.NoError(t, s.Shutdown(context.Background()))
	require.NoError(t, s.Shutdown(context.Background()), "idempotent")
	require.ErrorIs(t, s.Start(), ErrServerClosed)
	_, err = http.Get("http://" + s.Addr() + "/_distcache/admin/peers")
	require.Error(t, err, "no longer listening")
}

func TestServerErrors(t *testing.T) {
	_, err := NewServer(Config{}, NewHandler(newFake(), ""))
	require.ErrorIs(t, err, ErrInvalidConfig, "ListenAddr is required")
	_, err = NewServer(Config{ListenAddr: "127.0.0.1:0"}, nil)
	require.ErrorIs(t, err, ErrInvalidConfig)
	_, err = NewServer(Config{ListenAddr: "127.0.0.1:0", ReadTimeout: -1}, NewHandler(newFake(), ""))
	require.ErrorIs(t, err, ErrInvalidConfig)

	first := startServer(t, Config{ListenAddr: "127.0.0.1:0"}, NewHandler(newFake(), ""))
	second, err := NewServer(Config{ListenAddr: first.Addr()}, NewHandler(newFake(), ""))
	require.NoError(t, err)
	err = second.Start()
	require.Error(t, err, "the port is taken")
	require.Contains(t, err.Error(), "admin: listen")
	require.NoError(t, second.Shutdown(context.Background()))

	never, err := NewServer(Config{ListenAddr: "127.0.0.1:0"}, NewHandler(newFake(), ""))
	require.NoError(t, err)
	require.NoError(t, never.Shutdown(context.Background()), "shutdown before start")
}

// A request still running when ShutdownTimeout passes is cut off, and
// Shutdown still waits for the server goroutine.
func TestServerShutdownTimeout(t *testing.T) {
	entered := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-r.Context().Done()
	})
	s := startServer(t, Config{ListenAddr: "127.0.0.1:0", ShutdownTimeout: 50 * time.Millisecond}, h)
	done := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + s.Addr() + "/")
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	<-entered
	err := s.Shutdown(context.Background())
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Error(t, <-done, "the hanging request was cut off")
}

func TestServerTLS(t *testing.T) {
	ca := testcert.NewCA(t)
	serverTLS := &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, 2)}, MinVersion: tls.VersionTLS13}
	pool := ca.Pool
	s := startServer(t, Config{ListenAddr: "127.0.0.1:0", TLSConfig: serverTLS}, NewHandler(newFake(), ""))
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}}}
	defer client.CloseIdleConnections()
	code, body := httpGet(t, client, "https://"+s.Addr()+"/_distcache/admin/healthz")
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, `{"status":"ok"}`, body)

	code, _ = httpGet(t, &http.Client{}, "http://"+s.Addr()+"/_distcache/admin/healthz")
	require.Equal(t, http.StatusBadRequest, code, "plain HTTP to the TLS port is refused")
}

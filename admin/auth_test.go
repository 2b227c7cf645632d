package admin

import (
	"bytes"
	"crypto/tls"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/distcache/distcache/internal/testcert"
	"github.com/stretchr/testify/require"
)

const testToken = "s3cr3t-Token_0123456789abcdef~+/="

// With a bearer token every endpoint, the dashboard and its scripts
// included, answers 401 without the token or with a wrong one, and serves
// with the right one.
func TestServerBearerToken(t *testing.T) {
	s := startServer(t, Config{ListenAddr: "127.0.0.1:0", BearerToken: testToken}, NewHandler(newFake(), ""))
	base := "http://" + s.Addr() + DefaultBasePath
	paths := []string{"/", "/cluster", "/peers", "/keyspaces", "/keyspaces/users", "/healthz", "/readyz", "/assets/dashboard.js", "/nope"}
	do := func(path, auth string) *http.Response {
		req, err := http.NewRequest(http.MethodGet, base+path, nil)
		require.NoError(t, err)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}
	for _, p := range paths {
		for _, auth := range []string{"", "Bearer", "Bearer ", "Basic " + testToken, "Bearer " + testToken + "x", "Bearer " + testToken[:10], "bearer wrong"} {
			resp := do(p, auth)
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "%s with %q", p, auth)
			require.True(t, strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer"), p)
		}
		want := http.StatusOK
		if p == "/nope" {
			want = http.StatusNotFound
		}
		require.Equal(t, want, do(p, "Bearer "+testToken).StatusCode, p)
		require.Equal(t, want, do(p, "bearer  "+testToken).StatusCode, "scheme is case-insensitive: %s", p)
	}
}

func TestRequireBearer(t *testing.T) {
	h := NewHandler(newFake(), "")
	require.Same(t, h, RequireBearer("", h), "no token: unchanged")
	once := RequireBearer(testToken, h)
	require.Same(t, once, RequireBearer(testToken, once), "not wrapped twice")
	require.NotSame(t, once, RequireBearer("other", once))

	rec := httptest.NewRecorder()
	once.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/_distcache/admin/peers", nil))
	require.Equal(t, http.StatusUnauthorized, rec.Code)
	require.Contains(t, rec.Body.String(), "bearer token is required")
	require.NotContains(t, rec.Body.String(), testToken)
}

func TestConfigAdvertiseURLValidation(t *testing.T) {
	for _, u := range []string{"http://10.0.0.5:8080/_distcache/admin/", "https://cache.example/ops/"} {
		require.NoError(t, Config{AdvertiseURL: u}.Validate(), u)
	}
	for _, u := range []string{"javascript:alert(1)", "/relative/", "10.0.0.5:8080", "ftp://x/", "http://", "http://%zz"} {
		err := Config{AdvertiseURL: u}.Validate()
		require.ErrorIs(t, err, ErrInvalidConfig, u)
		require.ErrorContains(t, err, "AdvertiseURL", u)
	}
}

func TestConfigBearerTokenValidation(t *testing.T) {
	for _, tok := range []string{"abc", "A-b.c_d~e+f/g==", testToken} {
		require.NoError(t, Config{BearerToken: tok}.Validate(), tok)
	}
	for _, tok := range []string{"has space", "tab\there", "new\nline", "=", "==abc", "ab=c", "quote\"", "ünïcode", "semi;colon"} {
		err := Config{BearerToken: tok}.Validate()
		require.ErrorIs(t, err, ErrInvalidConfig, tok)
		require.Contains(t, err.Error(), "BearerToken")
		if len(tok) > 4 {
			require.NotContains(t, err.Error(), tok, "the token stays out of the error")
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a slog handler and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A server on every interface logs a warning naming its address and what
// to do; one on loopback, or exposed with a token and TLS, does not. (The
// decision is tested without binding every interface; the engine's test
// binds ":0" once.)
func TestServerWarnsOnEveryInterface(t *testing.T) {
	for _, tc := range []struct {
		name, addr, bound, token string
		tls                      bool
		warn                     string // "" for no warning
	}{
		{"port only", ":0", "[::]:41000", "", false, "without authentication"},
		{"port", ":8080", "[::]:8080", "", false, "without authentication"},
		{"ipv4 any", "0.0.0.0:0", "0.0.0.0:41001", "", false, "without authentication"},
		{"ipv6 any", "[::]:9090", "[::]:9090", "", false, "without authentication"},
		{"token without TLS", ":0", "[::]:41002", testToken, false, "clear text"},
		{"token and TLS", ":0", "[::]:41003", testToken, true, ""},
		{"loopback", "127.0.0.1:0", "127.0.0.1:41004", "", false, ""},
		{"ipv6 loopback", "[::1]:0", "[::1]:41005", "", false, ""},
		{"host name", "localhost:0", "127.0.0.1:41006", "", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf syncBuffer
			cfg := Config{ListenAddr: tc.addr, BearerToken: tc.token, Logger: slog.New(slog.NewTextHandler(&buf, nil))}
			if tc.tls {
				cfg.TLSConfig = testServerTLS(t)
			}
			require.NoError(t, cfg.Validate())
			warnIfExposed(cfg, tc.bound)
			out := buf.String()
			if tc.warn == "" {
				require.Empty(t, out)
				return
			}
			require.Contains(t, out, "level=WARN")
			require.Contains(t, out, tc.warn)
			require.Contains(t, out, "addr="+tc.bound, "names the bound address")
			require.Contains(t, out, "127.0.0.1", "suggests loopback")
			if tc.token == "" {
				require.Contains(t, out, "BearerToken", "suggests the token")
			}
			require.NotContains(t, out, testToken)
		})
	}
	warnIfExposed(Config{ListenAddr: ":0"}, "[::]:1") // no logger: nothing, no panic
}

// The Server passes its bound address and Logger to the warning.
func TestServerStartLogsThroughConfigLogger(t *testing.T) {
	var buf syncBuffer
	s := startServer(t, Config{ListenAddr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(&buf, nil))}, NewHandler(newFake(), ""))
	require.NotEmpty(t, s.Addr())
	require.Empty(t, buf.String(), "loopback: no warning")
}

func testServerTLS(t *testing.T) *tls.Config {
	ca := testcert.NewCA(t)
	return &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, 2)}, MinVersion: tls.VersionTLS13}
}

package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// bearerAuth admits requests that carry its token.
type bearerAuth struct {
	sum  [sha256.Size]byte // of the token
	next http.Handler
}

// RequireBearer returns h behind a bearer token check: a request without
// "Authorization: Bearer <token>" gets 401 with "WWW-Authenticate: Bearer"
// and never reaches h. The token is compared in constant time. An empty
// token returns h unchanged; a handler already behind the same token is
// not wrapped twice. Server applies its Config.BearerToken this way, and
// engine.AdminHandler the engine's: use it when mounting NewHandler on a
// mux of your own.
func RequireBearer(token string, h http.Handler) http.Handler {
	if token == "" {
		return h
	}
	sum := sha256.Sum256([]byte(token))
	if a, ok := h.(*bearerAuth); ok && a.sum == sum {
		return h
	}
	return &bearerAuth{sum: sum, next: h}
}

func (a *bearerAuth) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	got, ok := bearerOf(r.Header.Get("Authorization"))
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="distcache admin"`)
		writeJSON(w, http.StatusUnauthorized, errorBody{"admin: a bearer token is required (Authorization: Bearer <token>)"})
		return
	}
	// Hashing both sides first makes the comparison's time independent of
	// the lengths too.
	sum := sha256.Sum256([]byte(got))
	if subtle.ConstantTimeCompare(sum[:], a.sum[:]) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="distcache admin", error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, errorBody{"admin: invalid bearer token"})
		return
	}
	a.next.ServeHTTP(w, r)
}

// bearerOf returns the credentials of an "Authorization: Bearer <token>"
// header (the scheme is case-insensitive).
func bearerOf(header string) (string, bool) {
	scheme, tok, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

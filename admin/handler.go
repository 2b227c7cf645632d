package admin

import (
	"bytes"
	"encoding/json"
	"html/template"
	"net/http"
	"strconv"
	"strings"
)

// Endpoint paths, relative to the base path.
const (
	PathPeers     = "/peers"
	PathKeySpaces = "/keyspaces"
	PathHealth    = "/healthz"
	PathReady     = "/readyz"
	PathCluster   = "/cluster"
	// PathAssets holds the dashboard's scripts and styles.
	PathAssets = "/assets/"
)

// Status is the body of the health and readiness endpoints.
type Status struct {
	// Status is "ok" or "unavailable".
	Status string `json:"status"`
	// Error says why the node is unavailable.
	Error string `json:"error,omitempty"`
}

type errorBody struct {
	Error string `json:"error"`
}

type handler struct {
	src  Source
	base string
	page *template.Template
}

// NewHandler returns the admin endpoints of src under basePath (normalized:
// "" means DefaultBasePath, a missing leading slash is added, trailing
// slashes are dropped):
//
//	GET {base}/                  HTML dashboard of the cluster (scripts under {base}/assets/)
//	GET {base}/cluster           [ClusterView] as JSON: every member's counters
//	GET {base}/peers             [Peer] as JSON
//	GET {base}/keyspaces         [KeySpace] as JSON
//	GET {base}/keyspaces/{name}  one KeySpace (404 if unknown)
//	GET {base}/healthz           Status: 200 while alive, else 503
//	GET {base}/readyz            Status: 200 while ready, else 503
//
// HEAD works wherever GET does; other methods get 405. The handler matches
// the full request path, so mount it without stripping the prefix:
// mux.Handle(base+"/", h). It panics if src is nil (a programming error).
func NewHandler(src Source, basePath string) http.Handler {
	if src == nil {
		panic("admin: NewHandler with a nil Source")
	}
	return &handler{src: src, base: normalizeBasePath(basePath), page: newDashboard()}
}

// ServeHTTP routes a request to its endpoint.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, h.base)
	if !ok || (rest != "" && !strings.HasPrefix(rest, "/")) {
		writeJSON(w, http.StatusNotFound, errorBody{"admin: no such endpoint: " + r.URL.Path})
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{"admin: method " + r.Method + " not allowed"})
		return
	}
	switch {
	case rest == "":
		http.Redirect(w, r, h.base+"/", http.StatusMovedPermanently)
	case rest == "/":
		h.dashboard(w, r)
	case rest == PathPeers:
		writeJSON(w, http.StatusOK, nonNil(h.src.Peers()))
	case rest == PathCluster:
		writeJSON(w, http.StatusOK, h.src.Cluster(r.Context()).withTotals())
	case strings.HasPrefix(rest, PathAssets):
		serveAsset(w, r, strings.TrimPrefix(rest, PathAssets))
	case rest == PathKeySpaces:
		writeJSON(w, http.StatusOK, withRatios(nonNil(h.src.KeySpaces())))
	case strings.HasPrefix(rest, PathKeySpaces+"/"):
		name := strings.TrimPrefix(rest, PathKeySpaces+"/")
		for _, ks := range withRatios(h.src.KeySpaces()) {
			if ks.Name == name {
				writeJSON(w, http.StatusOK, ks)
				return
			}
		}
		writeJSON(w, http.StatusNotFound, errorBody{"admin: no such keyspace: " + strconv.Quote(name)})
	case rest == PathHealth:
		writeStatus(w, h.src.Health())
	case rest == PathReady:
		writeStatus(w, h.src.Ready())
	default:
		writeJSON(w, http.StatusNotFound, errorBody{"admin: no such endpoint: " + r.URL.Path})
	}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func writeStatus(w http.ResponseWriter, err error) {
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, Status{Status: "unavailable", Error: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, Status{Status: "ok"})
}

// writeJSON encodes v (indented, for curl) before writing the status, so an
// encoding failure is a clean 500.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error": "admin: encoding the response failed"}` + "\n")
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json; charset=utf-8")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

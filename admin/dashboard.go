package admin

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
)

// The dashboard is one page that polls {base}/cluster and draws the
// cluster's tables and charts in the browser. Everything it loads is
// embedded in the binary: no CDN, no network access beyond the node. The
// charts use uPlot 1.6.32 (MIT, assets/uPlot.LICENSE), vendored unchanged
// from its npm package (dist/uPlot.iife.min.js and dist/uPlot.min.css).
//
//go:embed assets/dashboard.html assets/dashboard.js assets/dashboard.css assets/uPlot.iife.min.js assets/uPlot.min.css assets/uPlot.LICENSE
var assets embed.FS

// assetTags are the ETags of the served assets, computed once.
var assetTags = func() map[string]string {
	tags := map[string]string{}
	entries, err := assets.ReadDir("assets")
	if err != nil {
		panic(err) // the embedded directory is part of the binary
	}
	for _, e := range entries {
		b, _ := assets.ReadFile("assets/" + e.Name())
		sum := sha256.Sum256(b)
		tags[e.Name()] = `"` + hex.EncodeToString(sum[:8]) + `"`
	}
	return tags
}()

// Poll interval of the dashboard: ?interval=N seconds within these bounds.
const (
	defaultPollInterval = 2 * time.Second
	maxPollInterval     = time.Minute
)

// dashboardData feeds the dashboard template.
type dashboardData struct {
	Base       string
	Node       string
	Health     string
	Ready      string
	IntervalMS int64
	Peers      []Peer
}

// contentSecurityPolicy allows the page's own scripts, styles and
// requests only: hot keys are user data, and the page renders them as text.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func newDashboard() *template.Template {
	return template.Must(template.ParseFS(assets, "assets/dashboard.html"))
}

// dashboard renders the HTML page; ?interval=N (1..60) sets its poll
// period in seconds.
func (h *handler) dashboard(w http.ResponseWriter, r *http.Request) {
	d := dashboardData{Base: h.base, Health: "ok", Ready: "ok", Peers: h.src.Peers(), IntervalMS: defaultPollInterval.Milliseconds()}
	if err := h.src.Health(); err != nil {
		d.Health = err.Error()
	}
	if err := h.src.Ready(); err != nil {
		d.Ready = err.Error()
	}
	for _, p := range d.Peers {
		if p.IsSelf {
			d.Node = p.Name
		}
	}
	if n, err := strconv.Atoi(r.URL.Query().Get("interval")); err == nil && n >= 1 && time.Duration(n)*time.Second <= maxPollInterval {
		d.IntervalMS = int64(n) * 1000
	}
	var buf bytes.Buffer
	if err := h.page.Execute(&buf, d); err != nil {
		writeJSON(w, http.StatusInternalServerError, errorBody{"admin: rendering the dashboard failed: " + err.Error()})
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Content-Security-Policy", contentSecurityPolicy)
	hdr.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}

// serveAsset serves one embedded script or stylesheet. Browsers revalidate
// it (no-cache) by its ETag, so a new binary's assets replace old ones.
func serveAsset(w http.ResponseWriter, r *http.Request, name string) {
	var ctype string
	switch path.Ext(name) {
	case ".js":
		ctype = "text/javascript; charset=utf-8"
	case ".css":
		ctype = "text/css; charset=utf-8"
	}
	tag, ok := assetTags[name]
	if ctype == "" || !ok || strings.Contains(name, "/") {
		writeJSON(w, http.StatusNotFound, errorBody{"admin: no such asset: " + strconv.Quote(name)})
		return
	}
	b, err := assets.ReadFile("assets/" + name)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, errorBody{"admin: reading asset: " + err.Error()})
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", ctype)
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("ETag", tag)
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
}

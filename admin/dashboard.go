package admin

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
)

// dashboardData feeds the dashboard template.
type dashboardData struct {
	Base      string
	Node      string
	Health    string
	Ready     string
	Refresh   int
	Peers     []Peer
	KeySpaces []KeySpace
}

const dashboardHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>distcache {{.Node}}</title>
{{if .Refresh}}<meta http-equiv="refresh" content="{{.Refresh}}">{{end}}
<style>
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; }
.ok { color: #1a7f37; } .bad { color: #cf222e; }
code { font-size: 0.9em; }
</style>
</head>
<body>
<h1>distcache node <code>{{.Node}}</code></h1>
<p>health: <span class="{{if eq .Health "ok"}}ok{{else}}bad{{end}}">{{.Health}}</span>
 &middot; ready: <span class="{{if eq .Ready "ok"}}ok{{else}}bad{{end}}">{{.Ready}}</span>
 &middot; JSON: <a href="{{.Base}}/peers">peers</a>, <a href="{{.Base}}/keyspaces">keyspaces</a>,
 <a href="{{.Base}}/healthz">healthz</a>, <a href="{{.Base}}/readyz">readyz</a></p>

<h2>Peers ({{len .Peers}})</h2>
<table>
<tr><th>name</th><th>address</th><th>partitions</th></tr>
{{range .Peers}}<tr><td>{{.Name}}{{if .IsSelf}} <b>(this node)</b>{{end}}</td><td>{{.Addr}}</td><td>{{.Partitions}}</td></tr>
{{end}}</table>

<h2>Keyspaces ({{len .KeySpaces}})</h2>
<table>
<tr><th>name</th><th>entries</th><th>bytes</th><th>budget</th><th>gets</th><th>hit ratio</th><th>fetches</th><th>fetch errors</th><th>served for peers</th><th>forwarded</th><th>peer errors</th><th>default TTL</th><th>read timeout</th><th>breaker</th></tr>
{{range .KeySpaces}}<tr><td><a href="{{$.Base}}/keyspaces/{{.Name}}">{{.Name}}</a></td><td>{{.Entries}}</td><td>{{bytes .MainCacheBytes}}</td><td>{{bytes .MaxBytes}}</td>
{{with .Stats}}<td>{{.Gets}}</td><td>{{ratio .CacheHits .Gets}}</td><td>{{.Fetches}}</td><td>{{.FetchErrors}}</td><td>{{.ServerRequests}}</td><td>{{.Forwarded}}</td><td>{{.PeerErrors}}</td>{{else}}<td colspan="7"></td>{{end}}
<td>{{.DefaultTTL}}</td><td>{{.ReadTimeout}}</td><td>{{with .Stats}}{{.BreakerState}}{{end}}</td></tr>
{{end}}</table>

{{range .KeySpaces}}{{if .HotKeys}}
<h3>Hot keys of {{.Name}}</h3>
<table><tr><th>key</th><th>recent hits</th></tr>
{{range .HotKeys}}<tr><td><code>{{.Key}}</code></td><td>{{.Hits}}</td></tr>
{{end}}</table>
{{end}}{{end}}
</body>
</html>
`

func newDashboard() *template.Template {
	return template.Must(template.New("dashboard").Funcs(template.FuncMap{
		"bytes": formatBytes,
		"ratio": func(part, whole int64) string {
			if whole <= 0 {
				return "-"
			}
			return fmt.Sprintf("%.1f%%", 100*float64(part)/float64(whole))
		},
	}).Parse(dashboardHTML))
}

// dashboard renders the HTML page; ?refresh=N (1..3600) reloads it every N
// seconds.
func (h *handler) dashboard(w http.ResponseWriter, r *http.Request) {
	d := dashboardData{Base: h.base, Health: "ok", Ready: "ok", Peers: h.src.Peers(), KeySpaces: h.src.KeySpaces()}
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
	if n, err := strconv.Atoi(r.URL.Query().Get("refresh")); err == nil && n >= 1 && n <= 3600 {
		d.Refresh = n
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
	hdr.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}

// formatBytes renders n in binary units (1.5 MiB).
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

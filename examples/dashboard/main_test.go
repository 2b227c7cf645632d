package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromeEnv names a Chrome or Chromium binary to use instead of the first
// of browserNames found on PATH.
const chromeEnv = "DISTCACHE_CHROME"

var browserNames = []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"}

// findBrowser returns the browser to drive, or fails the test saying how
// to install one: a missing browser must not pass as a skipped test.
func findBrowser(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(chromeEnv); p != "" {
		return p
	}
	for _, name := range browserNames {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatalf("no headless browser for the dashboard test: none of %v is on PATH.\n"+
		"Install Chromium (Debian: apt-get update && apt-get install -y --no-install-recommends chromium;\n"+
		".ci/run does this) or set %s to a Chrome or Chromium binary.", browserNames, chromeEnv)
	return ""
}

// pageState is what the test reads from the page on each look.
type pageState struct {
	Polls     int      `json:"polls"`
	Members   []string `json:"members"`
	Links     []string `json:"links"`
	Status    []string `json:"status"`
	Gets      string   `json:"gets"`
	Ops       string   `json:"ops"`
	Points    int      `json:"points"`
	OpsData   []any    `json:"opsData"` // the Gets/s chart's data, one array per series
	KeySpaces []string `json:"keyspaces"`
	HotKeys   int      `json:"hotKeys"`
	Error     string   `json:"error"`
}

const readPage = `(() => {
  const s = window.distcacheDashboard;
  if (!s) return {error: "dashboard.js did not run"};
  const rows = [...document.querySelectorAll("#members tbody tr[data-member]")];
  const ops = s.charts.ops;
  return {
    polls: s.polls,
    members: rows.map(r => r.dataset.member),
    links: rows.map(r => { const a = r.querySelector("a"); return a ? a.href : ""; }),
    status: rows.map(r => r.children[2].textContent),
    gets: document.getElementById("sum-gets").textContent,
    ops: document.getElementById("sum-ops").textContent,
    points: s.times.length,
    opsData: ops ? ops.plot.data : [],
    error: document.getElementById("status").textContent,
    keyspaces: [...document.querySelectorAll("#keyspaces tbody tr")].map(r => r.children[0].textContent),
    hotKeys: document.querySelectorAll("#hotkeys tbody tr").length,
  };
})()`

// In a real headless browser, the dashboard of one node of a 3-node
// cluster under load names every member with a link to its own page, and
// its figures and chart data move while the load runs. Scripts that throw
// (or that the page's Content-Security-Policy blocks) fail the test.
func TestDashboardInBrowser(t *testing.T) {
	browser := findBrowser(t)
	c, err := startCluster(3)
	if err != nil {
		t.Fatal(err)
	}
	defer c.stop()
	loadCtx, stopLoad := context.WithCancel(context.Background())
	var loadDone sync.WaitGroup
	loadDone.Go(func() { c.load(loadCtx, 600) })
	defer func() { stopLoad(); loadDone.Wait() }()

	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.DisableGPU)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()

	var (
		mu       sync.Mutex
		problems []string
	)
	if err := chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			problems = append(problems, fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber+1, msg))
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				problems = append(problems, "console.error: "+strings.Join(args, " "))
			}
		}
	}); err != nil {
		t.Fatalf("start %s: %v", browser, err)
	}
	// The page polls every second here.
	if _, err := chromedp.Run(ctx, chromedp.Navigate(c.urls[0]+"?interval=1")); err != nil {
		t.Fatalf("open %s in %s: %v", c.urls[0], browser, err)
	}
	look := func() pageState {
		t.Helper()
		st, err := chromedp.Run(ctx, chromedp.Evaluate[pageState](readPage))
		if err != nil {
			t.Fatalf("read the page: %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(problems) > 0 {
			t.Fatalf("the page's scripts failed: %v", problems)
		}
		return st
	}
	// waitFor polls the page until cond holds.
	waitFor := func(what string, cond func(pageState) bool) pageState {
		t.Helper()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		deadline := time.Now().Add(45 * time.Second)
		for {
			st := look()
			if cond(st) {
				return st
			}
			if time.Now().After(deadline) {
				t.Fatalf("the dashboard never showed %s; last state: %+v", what, st)
			}
			select {
			case <-tick.C:
			case <-ctx.Done():
				t.Fatalf("waiting for %s: %v", what, ctx.Err())
			}
		}
	}

	names := []string{"node-0", "node-1", "node-2"}
	first := waitFor("every member, reachable", func(st pageState) bool {
		s := slices.Clone(st.Members)
		slices.Sort(s)
		return slices.Equal(s, names) && !slices.Contains(st.Status, "unreachable")
	})
	for i, m := range first.Members {
		idx := slices.Index(names, m)
		want := c.urls[idx]
		if first.Links[i] != want {
			t.Errorf("member %s links to %q, want its own dashboard %q", m, first.Links[i], want)
		}
	}
	if first.Error != "" {
		t.Errorf("the page reports an error: %s", first.Error)
	}
	// Under load, the Gets total moves, the chart gains points, the Gets/s
	// series shows traffic, and the keyspace and hot-key tables fill.
	last := waitFor("the figures and the chart moving", func(st pageState) bool {
		return st.Gets != first.Gets && st.Points > first.Points+1 && st.Ops != "-" && st.Ops != "0.0" &&
			chartHasTraffic(st.OpsData) && slices.Equal(st.KeySpaces, []string{"users"}) && st.HotKeys > 0
	})
	t.Logf("dashboard after %d polls: Gets total %s -> %s, %s Gets/s, %d chart points", last.Polls, first.Gets, last.Gets, last.Ops, last.Points)
}

// chartHasTraffic reports whether a member series of the uPlot data
// ([xs, series...]) has a positive rate.
func chartHasTraffic(data []any) bool {
	if len(data) < 2 {
		return false
	}
	for _, s := range data[1:] {
		vals, _ := s.([]any)
		for _, v := range vals {
			if f, ok := v.(float64); ok && f > 0 {
				return true
			}
		}
	}
	return false
}

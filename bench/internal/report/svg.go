package report

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
	"time"

	"github.com/distcache/distcache/bench/internal/harness"
)

// bar is one bar of a chart group.
type bar struct {
	label string
	color string
	value float64
	text  string
}

type group struct {
	label string
	bars  []bar
}

func systemColor(name string, i int) string {
	switch name {
	case "distcache":
		return "#1f77b4"
	case "groupcache":
		return "#ff7f0e"
	case "olric":
		return "#2ca02c"
	}
	palette := []string{"#9467bd", "#8c564b", "#e377c2"}
	return palette[i%len(palette)]
}

func baselineColor(i int) string {
	return []string{"#555555", "#888888", "#aaaaaa", "#cccccc"}[i%4]
}

// SVG writes a chart with two panels: throughput per workload and system
// (plus the raw baselines), and p99 latency, both on log scales.
func SVG(w io.Writer, rep *harness.Report, title string) error {
	var tput, p99 []group
	labels := map[string]string{
		harness.W1: "W1 Zipf 95/5", harness.W2: "W2 uniform", harness.W3: "W3 miss storm",
		harness.W4: "W4 GetMany(100)", harness.W5: "W5 leave+rejoin",
	}
	for _, wl := range harness.Workloads() {
		gt := group{label: labels[wl]}
		gl := group{label: labels[wl]}
		for i, s := range rep.Systems {
			r, ok := s.Result(wl)
			if !ok {
				continue
			}
			v := r.OpsPerSec
			unit := "ops/s"
			if wl == harness.W4 {
				v, unit = r.KeysPerSec, "keys/s"
			}
			gt.bars = append(gt.bars, bar{s.Name, systemColor(s.Name, i), v, rate(v) + " " + unit})
			gl.bars = append(gl.bars, bar{s.Name, systemColor(s.Name, i), float64(r.P99), dur(r.P99)})
		}
		tput = append(tput, gt)
		p99 = append(p99, gl)
	}
	if len(rep.Baselines.Results) > 0 {
		gt := group{label: "raw limits"}
		gl := group{label: "raw limits"}
		for i, r := range rep.Baselines.Results {
			gt.bars = append(gt.bars, bar{r.System, baselineColor(i), r.OpsPerSec, rate(r.OpsPerSec)})
			gl.bars = append(gl.bars, bar{r.System, baselineColor(i), float64(r.P99), dur(r.P99)})
		}
		tput = append(tput, gt)
		p99 = append(p99, gl)
	}

	const width, panelH, top = 1100, 340, 60
	var b strings.Builder
	height := top + 2*panelH + 110
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="16" text-anchor="middle">%s</text>`+"\n", width/2, html.EscapeString(title))
	panel(&b, tput, 0, top, width, panelH, "Throughput (ops/s; W4: keys/s), log scale", rate)
	panel(&b, p99, 0, top+panelH+20, width, panelH, "p99 latency, log scale (lower is better)", func(v float64) string { return dur(time.Duration(v)) })
	legend(&b, rep, 70, top+2*panelH+50)
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func legend(b *strings.Builder, rep *harness.Report, x, y int) {
	for i, s := range rep.Systems {
		fmt.Fprintf(b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			x, y, systemColor(s.Name, i), x+16, y+10, html.EscapeString(s.Name))
		x += 110
	}
	x, y = 70, y+22
	for i, r := range rep.Baselines.Results {
		fmt.Fprintf(b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			x, y, baselineColor(i), x+16, y+10, html.EscapeString(r.System))
		x += 8*len(r.System) + 30
	}
}

// panel draws grouped bars on a log axis.
func panel(b *strings.Builder, groups []group, x0, y0, w, h int, title string, tick func(float64) string) {
	const left, right, bottom, topPad = 70, 20, 40, 30
	lo, hi := math.Inf(1), 0.0
	for _, g := range groups {
		for _, br := range g.bars {
			if br.value > 0 {
				lo, hi = math.Min(lo, br.value), math.Max(hi, br.value)
			}
		}
	}
	fmt.Fprintf(b, `<text x="%d" y="%d" font-size="13" font-weight="bold">%s</text>`+"\n", x0+left, y0+16, html.EscapeString(title))
	if hi == 0 {
		return
	}
	dlo, dhi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if dhi == dlo {
		dhi++
	}
	px, py, pw, ph := x0+left, y0+topPad, w-left-right, h-topPad-bottom
	yOf := func(v float64) float64 {
		return float64(py+ph) - (math.Log10(v)-dlo)/(dhi-dlo)*float64(ph)
	}
	for d := dlo; d <= dhi; d++ {
		y := yOf(math.Pow(10, d))
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#dddddd"/>`+"\n", px, y, px+pw, y)
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end" fill="#444">%s</text>`+"\n", px-6, y+4, html.EscapeString(tick(math.Pow(10, d))))
	}
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>`+"\n", px, py+ph, px+pw, py+ph)
	gw := float64(pw) / float64(len(groups))
	for gi, g := range groups {
		gx := float64(px) + gw*float64(gi)
		fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle" font-weight="bold">%s</text>`+"\n", gx+gw/2, py+ph+18, html.EscapeString(g.label))
		if len(g.bars) == 0 {
			continue
		}
		bw := gw * 0.8 / float64(len(g.bars))
		for bi, br := range g.bars {
			if br.value <= 0 {
				continue
			}
			bx := gx + gw*0.1 + bw*float64(bi)
			y := yOf(br.value)
			fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %s</title></rect>`+"\n",
				bx, y, bw-2, float64(py+ph)-y, br.color, html.EscapeString(br.label), html.EscapeString(br.text))
			fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="9">%s</text>`+"\n",
				bx+bw/2-1, y-3, html.EscapeString(shortText(br.text)))
		}
	}
}

func shortText(s string) string {
	s = strings.TrimSuffix(s, " ops/s")
	return strings.TrimSuffix(s, " keys/s")
}

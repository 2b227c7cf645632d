package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/distcache/distcache/bench/internal/harness"
)

// Ours is the system the ratios are computed for.
const Ours = "distcache"

// Machine describes where a run happened.
type Machine struct {
	CPU        string `json:"cpu"`
	NumCPU     int    `json:"num_cpu"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	OS         string `json:"os"`
	Kernel     string `json:"kernel"`
	Go         string `json:"go"`
	// LoadBefore and LoadAfter are /proc/loadavg at the start and the end.
	LoadBefore string `json:"load_before"`
	LoadAfter  string `json:"load_after"`
}

// Markdown writes the run's tables.
func Markdown(w io.Writer, rep *harness.Report, m Machine, command string) error {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	cfg := rep.Config
	mode := "full"
	if cfg.Short {
		mode = "short"
	}
	p("### Run\n\n")
	p("- command: `%s` (%s mode, %.0f s in all)\n", command, mode, rep.TotalSecs)
	p("- machine: %s, %d vCPU, GOMAXPROCS=%d, %s, kernel %s, %s\n", m.CPU, m.NumCPU, m.GOMAXPROCS, m.OS, m.Kernel, m.Go)
	p("- load average (1/5/15 min) before: %s; after: %s\n", m.LoadBefore, m.LoadAfter)
	p("- %d nodes per system in one process on 127.0.0.1; %d keys of %d-byte values; W1/W2/W4 run %v each, W5 %v per phase, W3 %d storms; "+
		"DataSource latency %v (W3: %v); %d callers (W4: %d callers x %d keys)\n\n",
		cfg.Nodes, cfg.Keys, cfg.ValueSize, cfg.Duration, cfg.Duration/2, cfg.StormRounds, cfg.MissLatency, cfg.StormLatency,
		cfg.Callers, cfg.ManyCallers, cfg.BatchSize)

	p("### How each system is driven\n\n")
	for _, s := range rep.Systems {
		for _, n := range s.Notes {
			p("- **%s**: %s\n", s.Name, n)
		}
	}
	p("\n")

	for _, wl := range harness.Workloads() {
		if !ran(rep, wl) {
			continue
		}
		p("### %s: %s\n\n", wl, harness.WorkloadName(wl))
		switch wl {
		case harness.W3:
			p("| system | wall (median) | Gets/s | p50 | p99 | p99.9 | DataSource calls per storm | worst key | allocs/op | CPU/op | errors |\n")
			p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		case harness.W4:
			p("| system | batches/s | keys/s | p50 | p99 | p99.9 | DataSource calls | remote/key | allocs/batch | CPU/batch | syscalls/batch | errors |\n")
			p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		default:
			p("| system | ops/s | p50 | p99 | p99.9 | DataSource calls | hit ratio | remote/Get | allocs/op | CPU/op | syscalls/op | errors |\n")
			p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		}
		for _, s := range rep.Systems {
			r, ok := s.Result(wl)
			if !ok {
				if s.Err != "" {
					p("| %s | not run: %s |\n", s.Name, s.Err)
				}
				continue
			}
			switch wl {
			case harness.W3:
				p("| %s | %s | %s | %s | %s | %s | %s | %d | %.1f | %s | %d |\n", s.Name, dur(r.WallMedian), rate(r.OpsPerSec),
					dur(r.P50), dur(r.P99), dur(r.P999), perRound(r), r.MaxCallsPerKey, r.AllocsPerOp, dur(r.CPUPerOp), r.Errors)
			case harness.W4:
				p("| %s | %s | %s | %s | %s | %s | %d | %s | %.0f | %s | %s | %d |\n", s.Name, rate(r.OpsPerSec), rate(r.KeysPerSec),
					dur(r.P50), dur(r.P99), dur(r.P999), r.DSCalls, share(r.RemotePerGet), r.AllocsPerOp, dur(r.CPUPerOp), perOp(r.SyscallsPerOp), r.Errors)
			default:
				p("| %s | %s | %s | %s | %s | %d | %s | %s | %.1f | %s | %s | %d |\n", s.Name, rate(r.OpsPerSec),
					dur(r.P50), dur(r.P99), dur(r.P999), r.DSCalls, pct(r.HitRatio), share(r.RemotePerGet), r.AllocsPerOp, dur(r.CPUPerOp), perOp(r.SyscallsPerOp), r.Errors)
			}
		}
		p("\n")
		puts := false
		for _, s := range rep.Systems {
			if r, ok := s.Result(wl); ok && r.PutP50 > 0 {
				p("- %s: Puts alone p50 %s, p99 %s.\n", s.Name, dur(r.PutP50), dur(r.PutP99))
				puts = true
			}
		}
		if puts {
			p("\n")
		}
		if wl == harness.W5 {
			p("| system | phase | seconds | Gets | ops/s | p99 | DataSource calls | hit ratio | errors (of which Put) |\n")
			p("|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
			for _, s := range rep.Systems {
				r, ok := s.Result(wl)
				if !ok {
					continue
				}
				for _, ph := range r.Phases {
					p("| %s | %s | %.1f | %d | %s | %s | %d | %s | %d (%d) |\n", s.Name, ph.Name, ph.Secs, ph.Gets,
						rate(ph.OpsPerSec), dur(ph.P99), ph.DSCalls, pct(ph.HitRatio), ph.Errors, ph.PutErrors)
				}
				if r.Err != "" {
					p("| %s | error | %s |||||||\n", s.Name, r.Err)
				}
			}
			p("\n")
			for _, s := range rep.Systems {
				if r, ok := s.Result(wl); ok {
					p("- %s: StopNode took %.2f s, RestartNode (until every node sees it) %.2f s; both count in \"during\".\n", s.Name, r.StopSecs, r.RestartSecs)
				}
			}
			p("\n")
		}
	}

	p("### Memory per cached entry and start-up\n\n")
	p("Heap growth (after GC) over the fill of %d keys, divided by %d; the whole process, so it includes every node's copies.\n\n", cfg.Keys, cfg.Keys)
	p("| system | bytes/entry | fill time | fill errors | start (3 nodes) |\n|---|---:|---:|---:|---:|\n")
	for _, s := range rep.Systems {
		p("| %s | %s | %.2f s | %d | %.2f s |\n", s.Name, bytesPer(s.MemPerEntry), s.FillSecs, s.FillErrors, s.StartSecs)
	}
	if len(rep.Baselines.Results) > 0 {
		p("| raw ristretto v2 | %s | | | |\n| raw map[string][]byte | %s | | | |\n",
			bytesPer(rep.Baselines.MemRistretto), bytesPer(rep.Baselines.MemMap))
	}
	p("\n")

	if len(rep.Baselines.Results) > 0 {
		p("### Raw baselines (same process, same loop)\n\n")
		p("| baseline | ops/s | p50 | p99 | p99.9 | allocs/op | CPU/op | syscalls/op |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, r := range rep.Baselines.Results {
			p("| %s | %s | %s | %s | %s | %.2f | %s | %s |\n", r.System, rate(r.OpsPerSec), dur(r.P50), dur(r.P99), dur(r.P999), r.AllocsPerOp, dur(r.CPUPerOp), perOp(r.SyscallsPerOp))
		}
		p("\n")
	}

	var errLines []string
	for _, s := range rep.Systems {
		for _, r := range s.Results {
			if r.FirstError != "" {
				errLines = append(errLines, fmt.Sprintf("- %s %s: %d errors (%d from Put), first: `%s`\n", s.Name, r.Workload, r.Errors, r.PutErrors, r.FirstError))
			}
		}
	}
	if len(errLines) > 0 {
		p("### Errors seen\n\n%s\n", strings.Join(errLines, ""))
	}

	ratios(p, rep)
	for _, s := range rep.Systems {
		if s.Err != "" {
			p("**%s failed:** %s\n\n", s.Name, s.Err)
		}
		if s.CloseErr != "" {
			p("**%s Close returned an error** (after the workloads): `%s`\n\n", s.Name, s.CloseErr)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ratios writes, for distcache and each of its variants ("distcache+..."),
// its figures divided by each peer's and each raw limit's.
func ratios(p func(string, ...any), rep *harness.Report) {
	var ours, peers []*harness.SystemReport
	for i := range rep.Systems {
		if strings.HasPrefix(rep.Systems[i].Name, Ours) {
			ours = append(ours, &rep.Systems[i])
		} else {
			peers = append(peers, &rep.Systems[i])
		}
	}
	for _, o := range ours {
		ratiosOf(p, rep, o, peers)
	}
}

func ratiosOf(p func(string, ...any), rep *harness.Report, ours *harness.SystemReport, peers []*harness.SystemReport) {
	name := ours.Name
	p("### Ratios: %s divided by each peer (ops/s: above 1 favours %s; p99 and CPU/op: below 1 favours %s)\n\n", name, name, name)
	p("| workload |")
	for _, peer := range peers {
		p(" ops/s ÷ %s | p99 ÷ %s | CPU/op ÷ %s |", peer.Name, peer.Name, peer.Name)
	}
	p(" DataSource calls (%s", name)
	for _, peer := range peers {
		p(" / %s", peer.Name)
	}
	p(") |\n|---|")
	for range peers {
		p("---:|---:|---:|")
	}
	p("---:|\n")
	for _, wl := range harness.Workloads() {
		o, ok := ours.Result(wl)
		if !ok {
			continue
		}
		p("| %s |", wl)
		calls := perRound(o)
		for _, peer := range peers {
			r, ok := peer.Result(wl)
			if !ok {
				p(" – | – | – |")
				calls += " / –"
				continue
			}
			p(" %s | %s | %s |", ratio(o.OpsPerSec, r.OpsPerSec), ratio(float64(o.P99), float64(r.P99)), ratio(float64(o.CPUPerOp), float64(r.CPUPerOp)))
			calls += " / " + perRound(r)
		}
		p(" %s |\n", calls)
	}
	p("\n")
	if len(rep.Baselines.Results) == 0 {
		return
	}
	bl := func(name string) harness.Result { r, _ := rep.Baselines.Result(name); return r }
	rz, ru, pipe, pp := bl(harness.BaseRistrettoZipf), bl(harness.BaseRistrettoUniform), bl(harness.BaseTCPPipeline), bl(harness.BaseTCPPingPong)
	p("### Ratios: %s against the raw limits\n\n", name)
	p("| figure | %s | raw limit | ratio |\n|---|---:|---:|---:|\n", name)
	if r, ok := ours.Result(harness.W1); ok {
		p("| W1 ops/s vs ristretto Get (Zipf, in-process, no network) | %s | %s | %s |\n", rate(r.OpsPerSec), rate(rz.OpsPerSec), ratio(r.OpsPerSec, rz.OpsPerSec))
		p("| W1 ops/s vs TCP pipeline (1 conn x 64 in flight) | %s | %s | %s |\n", rate(r.OpsPerSec), rate(pipe.OpsPerSec), ratio(r.OpsPerSec, pipe.OpsPerSec))
		p("| W1 p50 vs TCP ping-pong p50 | %s | %s | %s |\n", dur(r.P50), dur(pp.P50), ratio(float64(r.P50), float64(pp.P50)))
		p("| W1 CPU/op vs TCP pipeline CPU/op (client and server) | %s | %s | %s |\n", dur(r.CPUPerOp), dur(pipe.CPUPerOp), ratio(float64(r.CPUPerOp), float64(pipe.CPUPerOp)))
		p("| W1 syscalls/op vs TCP pipeline syscalls/op | %s | %s | %s |\n", perOp(r.SyscallsPerOp), perOp(pipe.SyscallsPerOp), ratio(r.SyscallsPerOp, pipe.SyscallsPerOp))
	}
	if r, ok := ours.Result(harness.W2); ok {
		p("| W2 ops/s vs ristretto Get (uniform) | %s | %s | %s |\n", rate(r.OpsPerSec), rate(ru.OpsPerSec), ratio(r.OpsPerSec, ru.OpsPerSec))
		p("| W2 ops/s vs TCP pipeline | %s | %s | %s |\n", rate(r.OpsPerSec), rate(pipe.OpsPerSec), ratio(r.OpsPerSec, pipe.OpsPerSec))
		p("| W2 p99 vs TCP pipeline p99 | %s | %s | %s |\n", dur(r.P99), dur(pipe.P99), ratio(float64(r.P99), float64(pipe.P99)))
	}
	if r, ok := ours.Result(harness.W3); ok {
		ideal := rep.Config.StormKeys * max(r.Rounds, 1)
		p("| W3 DataSource calls vs one per key | %d | %d | %s |\n", r.DSCalls, ideal, ratio(float64(r.DSCalls), float64(ideal)))
		p("| W3 median wall vs one DataSource latency | %s | %s | %s |\n", dur(r.WallMedian), dur(rep.Config.StormLatency), ratio(float64(r.WallMedian), float64(rep.Config.StormLatency)))
	}
	if r, ok := ours.Result(harness.W4); ok {
		p("| W4 keys/s vs TCP pipeline ops/s | %s | %s | %s |\n", rate(r.KeysPerSec), rate(pipe.OpsPerSec), ratio(r.KeysPerSec, pipe.OpsPerSec))
		p("| W4 batch p50 vs TCP ping-pong p50 | %s | %s | %s |\n", dur(r.P50), dur(pp.P50), ratio(float64(r.P50), float64(pp.P50)))
	}
	if ours.MemPerEntry > 0 && rep.Baselines.MemRistretto > 0 {
		p("| memory per entry vs raw ristretto | %s | %s | %s |\n", bytesPer(ours.MemPerEntry), bytesPer(rep.Baselines.MemRistretto), ratio(ours.MemPerEntry, rep.Baselines.MemRistretto))
	}
	p("\n")
}

// ran reports whether any system ran workload wl.
func ran(rep *harness.Report, wl string) bool {
	for _, s := range rep.Systems {
		if _, ok := s.Result(wl); ok {
			return true
		}
	}
	return false
}

// perRound formats DataSource calls, per storm for W3.
func perRound(r harness.Result) string {
	if r.Workload == harness.W3 && r.Rounds > 1 {
		return fmt.Sprintf("%.0f", float64(r.DSCalls)/float64(r.Rounds))
	}
	return fmt.Sprint(r.DSCalls)
}

// Command distbench runs the same workloads against this repository's
// engine, groupcache-go v3.5.0 and Olric v0.7.0 (three nodes each, in this
// process, on loopback) and against the raw limits (ristretto Get, loopback
// TCP pipelined and ping-pong), then writes results.md, results.json and
// chart.svg into -out. See ../../BENCHMARKS.md.
//
//	cd bench && go run ./cmd/distbench            # full run, about 2.5 minutes on 2 cores
//	cd bench && go run ./cmd/distbench -short     # CI mode, a few hundred ms per workload
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/distcache/distcache/bench/internal/harness"
	"github.com/distcache/distcache/bench/internal/report"
	"github.com/distcache/distcache/bench/internal/sut"
	"github.com/distcache/distcache/bench/internal/sut/distcache"
	"github.com/distcache/distcache/bench/internal/sut/groupcache"
	"github.com/distcache/distcache/bench/internal/sut/olric"
	"github.com/distcache/distcache/engine"
	"github.com/distcache/distcache/warmup"
)

// errUsage marks a bad command line.
var errUsage = errors.New("distbench: usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if _, err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// run parses args, runs the harness, writes the outputs and returns the
// report. Progress goes to progress, the Markdown tables to stdout.
func run(ctx context.Context, args []string, stdout, progress io.Writer) (*harness.Report, error) {
	fs := flag.NewFlagSet("distbench", flag.ContinueOnError)
	fs.SetOutput(progress)
	short := fs.Bool("short", false, "CI mode: 10k keys and 300 ms per workload")
	out := fs.String("out", "results", "directory for results.md, results.json and chart.svg (created); empty: write nothing")
	systems := fs.String("systems", "distcache,distcache-nonear,groupcache,olric", "comma-separated systems to run: distcache (engine defaults), groupcache, olric, distcache+warmup (the engine with WithWarmup(warmup.DefaultConfig())), distcache-nonear (the engine without its near cache) and distcache+near=TTL (the near cache's TTL set to TTL, e.g. distcache+near=5s)")
	duration := fs.Duration("duration", 0, "length of W1, W2 and W4 each (W5: 1.5x); 0: the mode's default (8s, short 300ms)")
	keys := fs.Int("keys", 0, "key-space size; 0: the mode's default (100000, short 10000)")
	putFraction := fs.Float64("put-fraction", -1, "share of Puts in W1 and W5, 0 to 1; negative: the default (0.05)")
	workloads := fs.String("workloads", "", "comma-separated workloads to run (W1..W5); empty: all")
	noBaselines := fs.Bool("no-baselines", false, "skip the raw baselines")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("%w: %w", errUsage, err)
	}
	cfg := harness.DefaultConfig()
	if *short {
		cfg = harness.ShortConfig()
	}
	if *duration > 0 {
		cfg.Duration = *duration
	}
	if *keys > 0 {
		cfg.Keys = *keys
	}
	if *putFraction >= 0 {
		cfg.PutFraction = *putFraction
	}
	for _, w := range strings.Split(*workloads, ",") {
		if w = strings.TrimSpace(w); w != "" {
			cfg.Workloads = append(cfg.Workloads, strings.ToUpper(w))
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", errUsage, err)
	}
	var syss []sut.System
	for _, name := range strings.Split(*systems, ",") {
		switch strings.TrimSpace(name) {
		case "distcache":
			syss = append(syss, distcache.New(fmt.Sprintf("distbench-%d", time.Now().UnixNano())))
		case "distcache+warmup":
			syss = append(syss, distcache.NewVariant("distcache+warmup", fmt.Sprintf("distbench-w-%d", time.Now().UnixNano()),
				"engine.WithWarmup(warmup.DefaultConfig()) on every node (hot-key tracking, prefetch on join and leave)",
				engine.WithWarmup(warmup.DefaultConfig())))
		case "distcache-nonear":
			syss = append(syss, distcache.NewVariant("distcache-nonear", fmt.Sprintf("distbench-nn-%d", time.Now().UnixNano()),
				"engine.WithKeySpaceNearCache(keyspace, 0, 0) on every node: no near cache, every Get of a key owned elsewhere goes to its owner",
				engine.WithKeySpaceNearCache(distcache.KeySpace, 0, 0)))
		case "groupcache":
			syss = append(syss, groupcache.New())
		case "olric":
			syss = append(syss, olric.New())
		case "":
		default:
			ttl, ok := strings.CutPrefix(strings.TrimSpace(name), "distcache+near=")
			d, err := time.ParseDuration(ttl)
			if !ok || err != nil || d <= 0 {
				return nil, fmt.Errorf("%w: unknown system %q (want distcache, distcache-nonear, distcache+near=TTL, distcache+warmup, groupcache, olric)", errUsage, name)
			}
			syss = append(syss, distcache.NewVariant(strings.TrimSpace(name), fmt.Sprintf("distbench-n-%d", time.Now().UnixNano()),
				fmt.Sprintf("engine.WithKeySpaceNearCache(keyspace, 32 MiB, %v) on every node: the default near cache's size with another TTL", d),
				engine.WithKeySpaceNearCache(distcache.KeySpace, distcache.MaxBytes/8, d)))
		}
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return nil, fmt.Errorf("distbench: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, fmt.Errorf("distbench: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	m := machine()
	m.LoadBefore = loadavg()
	logf := func(format string, args ...any) {
		fmt.Fprintf(progress, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
	}
	rep, err := harness.Run(ctx, cfg, syss, *noBaselines, logf)
	if err != nil {
		return nil, err
	}
	m.LoadAfter = loadavg()
	command := "go run ./cmd/distbench"
	if len(args) > 0 {
		command += " " + strings.Join(args, " ")
	}
	var md bytes.Buffer
	if err := report.Markdown(&md, rep, m, command); err != nil {
		return nil, err
	}
	if _, err := stdout.Write(md.Bytes()); err != nil {
		return nil, err
	}
	if *out == "" {
		return rep, nil
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return nil, fmt.Errorf("distbench: %w", err)
	}
	js, err := json.MarshalIndent(struct {
		Machine report.Machine  `json:"machine"`
		Command string          `json:"command"`
		Report  *harness.Report `json:"report"`
	}{m, command, rep}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("distbench: %w", err)
	}
	var svg bytes.Buffer
	title := fmt.Sprintf("distcache vs groupcache-go vs olric, 3 nodes on loopback, %d vCPU (%s)", m.NumCPU, time.Now().Format("2006-01-02"))
	if err := report.SVG(&svg, rep, title); err != nil {
		return nil, err
	}
	for name, data := range map[string][]byte{"results.md": md.Bytes(), "results.json": append(js, '\n'), "chart.svg": svg.Bytes()} {
		if err := os.WriteFile(filepath.Join(*out, name), data, 0o644); err != nil {
			return nil, fmt.Errorf("distbench: %w", err)
		}
	}
	logf("wrote %s/{results.md,results.json,chart.svg}", *out)
	return rep, nil
}

func machine() report.Machine {
	m := report.Machine{
		NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		OS: runtime.GOOS + "/" + runtime.GOARCH, Go: runtime.Version(), CPU: "unknown CPU", Kernel: "unknown",
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// Command chaos is distcache's fault-injection suite: it starts real node
// processes (cmd/chaosnode), runs concurrent clients against them, kills,
// pauses, stops and partitions nodes, and checks the cache's promises on
// the recorded history (package check). See CHAOS.md at the repository root
// for the scenarios, the invariants and the latest results.
//
//	go run ./chaos/cmd/chaos -short             # every scenario, about 3 minutes
//	go run ./chaos/cmd/chaos                    # long phases, about 6 minutes
//	go run ./chaos/cmd/chaos -scenario stop-long
//
// It exits non-zero when an invariant breaks (naming it, with a sample of
// offending calls) or a scenario cannot run (the partition needs root and
// iproute2). Every child process is killed and every network namespace
// removed at the end, on SIGINT/SIGTERM and on panic; children also die
// with the driver (Pdeathsig).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/distcache/distcache/chaos/internal/netns"
	"github.com/distcache/distcache/chaos/internal/proc"
)

// config is the run's settings, from flags.
type config struct {
	nodes, clients, keys int
	// inFlight bounds each client's concurrent calls.
	inFlight int
	rate     float64
	// deadline is each call's context deadline; slack what it may overrun.
	deadline, slack time.Duration
	// Phase lengths.
	steady, recovery, afterRecovery, recoveryBound time.Duration
	termFor, partitionFor                          time.Duration
	timings                                        string
	nodeBin                                        string
	// refreshIntervals is how many refresh intervals the refresh scenario
	// counts fetches over.
	refreshIntervals int
}

func main() { os.Exit(run()) }

func run() int {
	cfg := &config{}
	short := flag.Bool("short", false, "short phases (CI): 3 s steady, 6 s recovery")
	only := flag.String("scenario", "", "comma-separated scenarios to run (default all): "+strings.Join(names(), ", "))
	race := flag.Bool("race", false, "build the node with the race detector")
	keep := flag.Bool("keep", false, "keep node logs even when every scenario passes")
	markdown := flag.String("markdown", "", "also write the results table (Markdown) to this file")
	flag.IntVar(&cfg.nodes, "nodes", 5, "node processes")
	flag.IntVar(&cfg.clients, "clients", 8, "concurrent clients")
	flag.IntVar(&cfg.inFlight, "in-flight", 32, "calls each client keeps in flight at most")
	flag.IntVar(&cfg.keys, "keys", 2000, "keys")
	flag.Float64Var(&cfg.rate, "rate", 1500, "calls per second, all clients together")
	flag.DurationVar(&cfg.deadline, "deadline", 2*time.Second, "context deadline of each call")
	flag.StringVar(&cfg.timings, "timings", "lan", "node failure-detection timings: lan (engine defaults) or local (test timings)")
	flag.StringVar(&cfg.nodeBin, "node", "", "prebuilt chaosnode binary (default: go build it)")
	flag.Parse()
	cfg.slack = 500 * time.Millisecond
	cfg.recoveryBound = 15 * time.Second
	if *short {
		cfg.steady, cfg.recovery, cfg.afterRecovery = 3*time.Second, 6*time.Second, 3*time.Second
		cfg.termFor, cfg.partitionFor = 5*time.Second, 10*time.Second
		cfg.refreshIntervals = 9
	} else {
		cfg.steady, cfg.recovery, cfg.afterRecovery = 15*time.Second, 20*time.Second, 10*time.Second
		cfg.termFor, cfg.partitionFor = 10*time.Second, 15*time.Second
		cfg.refreshIntervals = 20
	}

	var todo []scenario
	for _, sc := range scenarios() {
		if *only == "" || slices.Contains(strings.Split(*only, ","), sc.name) {
			todo = append(todo, sc)
		}
	}
	if len(todo) == 0 {
		fmt.Fprintf(os.Stderr, "chaos: no scenario named %q (have %s)\n", *only, strings.Join(names(), ", "))
		return 2
	}

	dir, err := os.MkdirTemp("", "distcache-chaos-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		return 2
	}
	env := &env{cfg: cfg, procs: proc.NewGroup(), dir: dir, nets: map[*netns.Net]bool{}}
	defer env.cleanup()
	defer func() {
		if r := recover(); r != nil {
			env.cleanup()
			panic(r)
		}
	}()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	finished := make(chan struct{})
	defer close(finished)
	go func() {
		// On a signal the run unwinds through ctx; if it has not within a
		// grace period, clean up and exit anyway.
		select {
		case <-finished:
			return
		case <-ctx.Done():
		}
		select {
		case <-finished:
		case <-time.After(15 * time.Second):
			env.cleanup()
			fmt.Fprintln(os.Stderr, "chaos: interrupted; children killed")
			os.Exit(130)
		}
	}()

	if err := netns.CleanStale(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "chaos: removing a previous run's namespaces:", err)
	}
	for _, sc := range todo {
		if sc.netns {
			if err := netns.Check(); err != nil {
				fmt.Fprintf(os.Stderr, "chaos: FAIL: scenario %s cannot run: %v\n", sc.name, err)
				return 2
			}
		}
	}
	if cfg.nodeBin == "" {
		cfg.nodeBin = filepath.Join(dir, "chaosnode")
		if err := buildNode(ctx, cfg.nodeBin, *race); err != nil {
			fmt.Fprintln(os.Stderr, "chaos: building the node:", err)
			return 2
		}
	}

	start := time.Now()
	fmt.Printf("chaos: %d nodes, %d clients (up to %d calls in flight each), %d keys, %.0f calls/s, deadline %s, %s timings, %s phases; logs in %s\n",
		cfg.nodes, cfg.clients, cfg.inFlight, cfg.keys, cfg.rate, cfg.deadline, cfg.timings, map[bool]string{true: "short", false: "long"}[*short], dir)
	var outs []outcome
	for _, sc := range todo {
		fmt.Printf("\n=== %s: %s\n", sc.name, sc.about)
		var out outcome
		if sc.run != nil {
			out = sc.run(env, ctx, sc)
		} else {
			out = env.runScenario(ctx, sc)
		}
		printOutcome(os.Stdout, out)
		outs = append(outs, out)
		if ctx.Err() != nil {
			break
		}
	}
	table := resultsTable(outs)
	fmt.Printf("\n%s\nchaos: %d scenario(s) in %s\n", table, len(outs), time.Since(start).Round(time.Second))
	if *markdown != "" {
		if err := os.WriteFile(*markdown, []byte(table), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "chaos:", err)
		}
	}

	failed := ctx.Err() != nil
	for _, o := range outs {
		if o.err != nil || !o.res.OK() {
			failed = true
			fmt.Printf("chaos: FAIL: %s%s\n", o.sc.name, failureSummary(o))
		}
	}
	if failed {
		fmt.Printf("chaos: node logs kept in %s\n", dir)
		return 1
	}
	if !*keep {
		_ = os.RemoveAll(dir)
	}
	fmt.Println("chaos: PASS")
	return 0
}

func names() []string {
	var out []string
	for _, sc := range scenarios() {
		out = append(out, sc.name)
	}
	return out
}

// buildNode builds cmd/chaosnode from the module the driver runs in (the
// workspace, or the chaos module with GOWORK=off).
func buildNode(ctx context.Context, out string, race bool) error {
	args := []string{"build", "-o", out}
	if race {
		args = append(args, "-race")
	}
	args = append(args, "github.com/distcache/distcache/chaos/cmd/chaosnode")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

// env is what every scenario shares: settings, the process group, the log
// directory, the namespaces to remove.
type env struct {
	cfg   *config
	procs *proc.Group
	dir   string

	mu   sync.Mutex // guards nets
	nets map[*netns.Net]bool

	cleanOnce sync.Once
}

func (env *env) addNet(n *netns.Net) {
	env.mu.Lock()
	defer env.mu.Unlock()
	env.nets[n] = true
}

// closeNet removes a scenario's namespaces once its processes are dead.
func (env *env) closeNet(n *netns.Net) {
	env.mu.Lock()
	defer env.mu.Unlock()
	if env.nets[n] {
		delete(env.nets, n)
		if err := n.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "chaos: removing namespaces:", err)
		}
	}
}

// cleanup kills every child and removes every namespace. Idempotent.
func (env *env) cleanup() {
	env.cleanOnce.Do(func() {
		env.procs.KillAll(10 * time.Second)
		env.mu.Lock()
		nets := make([]*netns.Net, 0, len(env.nets))
		for n := range env.nets {
			nets = append(nets, n)
		}
		env.mu.Unlock()
		for _, n := range nets {
			env.closeNet(n)
		}
	})
}

// guard runs fn; a panic in it cleans up before it crashes the driver (a
// panic on another goroutine skips main's deferred cleanup).
func (env *env) guard(fn func()) {
	defer func() {
		if r := recover(); r != nil {
			env.cleanup()
			panic(r)
		}
	}()
	fn()
}

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/distcache/distcache/bench/internal/harness"
	"github.com/distcache/distcache/testutil"
)

// TestMain fails the run if goroutines outlive the tests, with the grace
// testutil.VerifyTestMain gives memberlist. One leak is Olric's and is
// ignored: Olric.Shutdown never shuts its internal client down, so the
// go-redis pool it kept for a departed member retries dialling it once a
// second forever (ConnPool.tryDial).
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(testutil.MemberlistExitWithin)
		for {
			err := goleak.Find(goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).tryDial"))
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				fmt.Fprintf(os.Stderr, "goleak: goroutines still running %v after the tests: %v\n", testutil.MemberlistExitWithin, err)
				code = 1
				break
			}
		}
	}
	os.Exit(code)
}

// TestShortRun runs the whole command in short mode so that the harness
// never rots, and checks that every figure is sane.
func TestShortRun(t *testing.T) {
	dir := t.TempDir()
	var stdout bytes.Buffer
	var progress io.Writer = io.Discard
	if testing.Verbose() {
		progress = os.Stderr
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := run(ctx, []string{"-short", "-out", dir, "-systems", shortRunSystems}, &stdout, progress)
	require.NoError(t, err)
	cfg := rep.Config
	require.True(t, cfg.Short)

	for _, name := range []string{harness.BaseRistrettoZipf, harness.BaseRistrettoUniform, harness.BaseTCPPipeline, harness.BaseTCPPingPong} {
		b, ok := rep.Baselines.Result(name)
		require.True(t, ok, name)
		require.Positive(t, b.Ops, name)
		require.Positive(t, b.P50, name)
	}
	require.Positive(t, rep.Baselines.MemRistretto)

	require.Len(t, rep.Systems, len(strings.Split(shortRunSystems, ",")))
	for _, s := range rep.Systems {
		require.Empty(t, s.Err, s.Name)
		if s.CloseErr != "" {
			t.Logf("%s: Close after the workloads: %s", s.Name, s.CloseErr)
		}
		require.Zero(t, s.FillErrors, s.Name)
		if s.MemNote == "" { // a failed heap measurement says so instead
			require.Positive(t, s.MemPerEntry, s.Name)
		} else {
			t.Logf("%s: %s", s.Name, s.MemNote)
		}
		for _, wl := range harness.Workloads() {
			r, ok := s.Result(wl)
			require.True(t, ok, "%s %s", s.Name, wl)
			require.Empty(t, r.Err, "%s %s", s.Name, wl)
			require.Positive(t, r.Ops, "%s %s", s.Name, wl)
			require.Positive(t, r.OpsPerSec, "%s %s", s.Name, wl)
			require.Positive(t, r.P50, "%s %s", s.Name, wl)
			require.GreaterOrEqual(t, r.P99, r.P50, "%s %s", s.Name, wl)
			if wl != harness.W5 { // W5 may see errors while the node leaves
				require.Zero(t, r.Errors, "%s %s", s.Name, wl)
			}
		}
		w1, _ := s.Result(harness.W1)
		require.Greater(t, w1.HitRatio, 0.9, "%s: W1 runs on a filled cache", s.Name)
		w3, _ := s.Result(harness.W3)
		require.Equal(t, cfg.StormRounds, w3.Rounds, s.Name)
		require.GreaterOrEqual(t, w3.DSCalls, int64(cfg.StormRounds*cfg.StormKeys), s.Name)
		require.LessOrEqual(t, w3.MaxCallsPerKey, cfg.Nodes, "%s: at most one fetch per key per node", s.Name)
		w4, _ := s.Result(harness.W4)
		require.Positive(t, w4.KeysPerSec, s.Name)
		w5, _ := s.Result(harness.W5)
		require.Len(t, w5.Phases, 3, s.Name)
		for _, ph := range w5.Phases {
			require.Positive(t, ph.Gets, "%s %s", s.Name, ph.Name)
		}
	}
	ours, ok := rep.System("distcache")
	require.True(t, ok)
	w3, _ := ours.Result(harness.W3)
	require.Equal(t, int64(cfg.StormRounds*cfg.StormKeys), w3.DSCalls, "distcache: one DataSource call per cold key cluster-wide")
	require.Equal(t, 1, w3.MaxCallsPerKey)

	for _, f := range []string{"results.md", "results.json", "chart.svg"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		require.NoError(t, err)
		require.NotEmpty(t, b, f)
	}
	svg, _ := os.ReadFile(filepath.Join(dir, "chart.svg"))
	require.Contains(t, string(svg), "<svg")
	require.Contains(t, stdout.String(), "### W5")
}

func TestUnknownSystem(t *testing.T) {
	_, err := run(context.Background(), []string{"-systems", "memcached", "-out", ""}, io.Discard, io.Discard)
	require.ErrorIs(t, err, errUsage)
}

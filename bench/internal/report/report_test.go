package report

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/distcache/distcache/bench/internal/harness"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func sample() *harness.Report {
	res := func(sys, wl string, ops float64, p99 time.Duration) harness.Result {
		return harness.Result{System: sys, Workload: wl, Ops: 100, Gets: 100, Secs: 1, OpsPerSec: ops, KeysPerSec: ops * 100,
			P50: p99 / 10, P99: p99, P999: 2 * p99, CPUPerOp: 10 * time.Microsecond, RemotePerGet: 0.5,
			Phases: []harness.Phase{{Name: "before", Secs: 1, Gets: 10}}}
	}
	rep := &harness.Report{Config: harness.DefaultConfig(), TotalSecs: 3}
	for i, name := range []string{"distcache", "groupcache"} {
		s := harness.SystemReport{Name: name, Notes: []string{"note"}, MemPerEntry: 300}
		for _, wl := range harness.Workloads() {
			r := res(name, wl, float64(1000*(i+1)), time.Duration(i+1)*time.Millisecond)
			if wl == harness.W1 {
				r.PutP50, r.PutP99 = 3*time.Millisecond, 7*time.Millisecond
			}
			s.Results = append(s.Results, r)
		}
		rep.Systems = append(rep.Systems, s)
	}
	rep.Systems = append(rep.Systems, harness.SystemReport{Name: "olric", Err: "start: boom"})
	for _, b := range []string{harness.BaseRistrettoZipf, harness.BaseRistrettoUniform, harness.BaseTCPPipeline, harness.BaseTCPPingPong} {
		rep.Baselines.Results = append(rep.Baselines.Results, res(b, "", 1e6, 100*time.Microsecond))
	}
	rep.Baselines.MemRistretto = 290
	return rep
}

func TestMarkdown(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, Markdown(&b, sample(), Machine{CPU: "test CPU", NumCPU: 2}, "go run ./cmd/distbench"))
	out := b.String()
	for _, want := range []string{"### W1", "### W5", "| distcache | before |", "ops/s ÷ groupcache", "ops/s ÷ olric",
		"**olric failed:** start: boom", "test CPU", "against the raw limits", "raw ristretto v2 | 290 B",
		"- distcache: Puts alone p50 3 ms, p99 7 ms."} {
		require.Contains(t, out, want)
	}
	require.Contains(t, out, "| W1 | 0.50x | 0.50x | 1.00x |", "distcache ÷ groupcache")
}

func TestSVGIsWellFormed(t *testing.T) {
	for _, rep := range []*harness.Report{sample(), {}} {
		var b bytes.Buffer
		require.NoError(t, SVG(&b, rep, "a <title> & more"))
		d := xml.NewDecoder(&b)
		for {
			_, err := d.Token()
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err)
		}
	}
}

func TestFormats(t *testing.T) {
	require.Equal(t, "12M", rate(12e6))
	require.Equal(t, "1.50M", rate(1.5e6))
	require.Equal(t, "45k", rate(45_000))
	require.Equal(t, "1.2k", rate(1234))
	require.Equal(t, "12", rate(12))
	require.Equal(t, "–", dur(0))
	require.Equal(t, "850 ns", dur(850))
	require.Equal(t, "1.5 µs", dur(1500))
	require.Equal(t, "2.5 ms", dur(2500*time.Microsecond))
	require.Equal(t, "–", ratio(1, 0))
	require.Equal(t, "2.00x", ratio(2, 1))
	require.Equal(t, "n/a", share(-1))
}

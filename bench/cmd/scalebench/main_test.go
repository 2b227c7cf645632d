package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/distcache/distcache/testutil"
)

func TestMain(m *testing.M) { testutil.VerifyTestMain(m) }

// A short run at 3 nodes yields every figure: Puts reach the owner and the
// copies (at least N-1 requests each while writes still broadcast), at most
// two thirds of uniform Gets go to another owner, the ring is balanced, and
// memberlist's bytes are counted.
func TestShortRun(t *testing.T) {
	o, err := parse([]string{"-nodes", "3", "-duration", "150ms", "-callers", "4", "-keys", "300", "-settle", "0s", "-warmup", "50ms"})
	require.NoError(t, err)
	sink, err := installGossipSink()
	require.NoError(t, err)
	r, err := measure(o, 3, sink, "")
	require.NoError(t, err)
	require.Zero(t, r.Errors)
	require.Positive(t, r.PutP50)
	require.Positive(t, r.PutsPerSec)
	require.Positive(t, r.GetsPerSec)
	require.GreaterOrEqual(t, r.MsgsPerPut, 2.0, "a Put reaches the owner or the copies on both other nodes")
	// Two thirds of the keys are owned elsewhere; the near cache (on by
	// default) answers repeated reads of them locally.
	require.Positive(t, r.RemotePerGet)
	require.LessOrEqual(t, r.RemotePerGet, 2.0/3+0.1)
	require.LessOrEqual(t, r.Busiest, 0.36)
	require.Positive(t, r.GossipBytesSec)

	var out bytes.Buffer
	writeTable(&out, o, summarize([][]row{{r}}))
	require.Contains(t, out.String(), "| 3 | ")
}

// Repetitions summarise to each figure's median, and to the median and
// range of each repetition's own ratio to its first N.
func TestSummarize(t *testing.T) {
	reps := [][]row{
		{{N: 3, PutsPerSec: 100, GetsPerSec: 10, PutP50: 10 * time.Microsecond}, {N: 27, PutsPerSec: 40, GetsPerSec: 1, PutP50: 30 * time.Microsecond}},
		{{N: 3, PutsPerSec: 50, GetsPerSec: 10, PutP50: 20 * time.Microsecond}, {N: 27, PutsPerSec: 25, GetsPerSec: 2, PutP50: 10 * time.Microsecond, Errors: 1}},
		{{N: 3, PutsPerSec: 80, GetsPerSec: 10, PutP50: 30 * time.Microsecond}, {N: 27, PutsPerSec: 24, GetsPerSec: 3, PutP50: 20 * time.Microsecond}},
	}
	s := summarize(reps)
	require.Len(t, s, 2)
	require.Equal(t, 80.0, s[0].PutsPerSec)
	require.Equal(t, 20*time.Microsecond, s[0].PutP50)
	require.Equal(t, 25.0, s[1].PutsPerSec)
	require.Equal(t, spread{0.4, 0.3, 0.5}, s[1].puts, "ratios 0.4, 0.5 and 0.3, each within its repetition")
	require.Equal(t, spread{0.2, 0.1, 0.3}, s[1].gets)
	require.EqualValues(t, 1, s[1].Errors)
	require.Zero(t, s[0].puts, "no ratio for the first N")

	var out bytes.Buffer
	o, err := parse([]string{"-repeat", "3"})
	require.NoError(t, err)
	writeTable(&out, o, s)
	require.Contains(t, out.String(), "| 27 | 20µs | 25 (0.40x, 0.30–0.50) |")
}

func TestParseRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-nodes", "0"}, {"-nodes", "x"}, {"-duration", "0s"}, {"-only", "both"}, {"-repeat", "0"}, {"-warmup", "-1s"}, {"-maxbytes", "-1"}} {
		_, err := parse(args)
		require.Error(t, err, "%v", args)
	}
	o, err := parse(nil)
	require.NoError(t, err)
	require.Equal(t, []int{3, 9, 27}, o.nodes)
	require.Equal(t, 3*time.Second, o.duration)
}

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
	o, err := parse([]string{"-nodes", "3", "-duration", "150ms", "-callers", "4", "-keys", "300", "-settle", "0s"})
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
	writeTable(&out, o, []row{r})
	require.Contains(t, out.String(), "| 3 | ")
}

func TestParseRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-nodes", "0"}, {"-nodes", "x"}, {"-duration", "0s"}, {"-only", "both"}} {
		_, err := parse(args)
		require.Error(t, err, "%v", args)
	}
	o, err := parse(nil)
	require.NoError(t, err)
	require.Equal(t, []int{3, 9, 27}, o.nodes)
	require.Equal(t, 3*time.Second, o.duration)
}

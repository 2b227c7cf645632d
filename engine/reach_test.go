package engine_test

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/distcache/distcache/engine"
	"github.com/distcache/distcache/internal/enginehook"
	"github.com/distcache/distcache/testutil"
	"github.com/stretchr/testify/require"
)

// Both nodes on the small side of a partition (two of five) notice that
// they are cut off and refuse writes as owners; the large side does not.
// The health score cannot tell them: once the far side is
// suspect, memberlist probes it indirectly only through the fellow node,
// whose nacks clear the prober. Here the score's threshold is out of its
// range (8), so only the direct pings can decide, and memberlist runs its
// LAN timings, so that the small side's ring keeps the far side for some
// seconds (its minority mode would refuse writes too).
func TestPartitionSmallSideCutsItselfOff(t *testing.T) {
	var logs [5]syncBuffer
	tuning := testutil.LocalTuning()
	tuning.LocalNetwork, tuning.ProbeInterval, tuning.ProbeTimeout = false, time.Second, 400*time.Millisecond
	tuning.CutOffScore = 8
	c := testutil.NewCluster(t, 5, testutil.ClusterConfig{
		Options: []engine.Option{engine.WithClusterTuning(tuning)},
		NodeOptions: func(i int) []engine.Option {
			return []engine.Option{engine.WithLogger(slog.New(slog.NewTextHandler(&logs[i], nil)))}
		},
	})
	t.Cleanup(func() {
		if t.Failed() {
			for _, i := range []int{3, 4} {
				t.Logf("node %d:\n%s", i, logs[i].String())
			}
		}
	})
	ctx := context.Background()
	small := []int{3, 4}
	side := func(i int) bool { return slices.Contains(small, i) }
	for i := range 5 {
		var far []string
		for j := range 5 {
			if side(j) != side(i) {
				far = append(far, c.Node(j).Addr())
			}
		}
		enginehook.Cluster(c.Node(i)).Transport().SetBlocked(func(a string) bool { return slices.Contains(far, a) })
	}
	const cut = "direct pings reach at most half of the members"
	testutil.WaitFor(t, 15*time.Second, func() bool {
		return strings.Contains(logs[3].String(), cut) && strings.Contains(logs[4].String(), cut)
	}, "both nodes of the small side cut off")
	for _, i := range small {
		require.NotContains(t, logs[i].String(), "caching resumed", "node %d resumed while still cut off", i)
	}
	for _, i := range small {
		key := c.KeysOwnedBy(i, 1, "small")[0]
		err := c.Node(i).Put(ctx, ks, engine.Entry{Key: key, Value: []byte("v")})
		require.ErrorIs(t, err, engine.ErrClusterQuorum, "node %d accepted a write as owner while cut off", i)
	}
	for i := range 3 {
		require.NotContains(t, logs[i].String(), cut, "node %d of the large side took itself for cut off", i)
	}

	for i := range 5 {
		enginehook.Cluster(c.Node(i)).Transport().SetBlocked(nil)
	}
	testutil.WaitFor(t, 30*time.Second, func() bool {
		return strings.Contains(logs[3].String(), "caching resumed") && strings.Contains(logs[4].String(), "caching resumed")
	}, "the small side resuming after the heal")
}

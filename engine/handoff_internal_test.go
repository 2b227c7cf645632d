package engine

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// recentWrites: keys written within the window are remembered; past
// maxRecentWrites keys the set refuses every hand-off (has is true) until
// its writes can have aged out, and a full set is not re-scanned on every
// write.
func TestRecentWrites(t *testing.T) {
	var r recentWrites
	t0 := time.Unix(1_000_000, 0)
	r.add("a", t0)
	require.True(t, r.has("a", t0.Add(time.Second)))
	require.False(t, r.has("b", t0))
	require.False(t, r.has("a", t0.Add(handoffWindow+time.Second)), "aged out")

	for i := range maxRecentWrites + 10 {
		r.add("k"+strconv.Itoa(i), t0)
	}
	require.True(t, r.full)
	require.True(t, r.has("never-written", t0), "a full set refuses every hand-off")
	pruned := r.prunedAt
	r.add("more", t0.Add(100*time.Millisecond))
	require.Equal(t, pruned, r.prunedAt, "no prune within pruneEvery of the last one")
	r.add("a", t0.Add(200*time.Millisecond)) // a known key is still refreshed
	require.Equal(t, t0.Add(200*time.Millisecond).UnixNano(), r.keys["a"])

	later := t0.Add(handoffWindow + time.Second)
	require.False(t, r.has("never-written", later), "once the writes aged out the set empties")
	require.False(t, r.full)
	require.Empty(t, r.keys)
}

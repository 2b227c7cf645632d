package engine

import (
	"bytes"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/distcache/distcache/cluster"
	"github.com/stretchr/testify/require"
)

// recentWrites: writes seen within the window are remembered; a hand-off
// is refused after a write applied here, after an invalidation by another
// node, and after an invalidation by the sender at or above the entry's
// version; it is taken when the sender's entry is newer than the sender's
// last invalidation. Past maxRecentWrites keys the set refuses every
// hand-off until its writes can have aged out, and a full set is not
// re-scanned on every write.
func TestRecentWrites(t *testing.T) {
	var r recentWrites
	t0 := time.Unix(1_000_000, 0)
	at := func(d time.Duration) int64 { return t0.Add(d).UnixNano() }
	r.add("own", writeNote{at: at(0)})
	r.add("by-p", writeNote{at: at(0), by: "p", ver: 10})
	soon := t0.Add(time.Second)
	require.True(t, r.refuses("own", soon, "p", 99), "written here: refused from anyone")
	require.False(t, r.refuses("unknown", soon, "p", 1))
	require.True(t, r.refuses("by-p", soon, "q", 99), "another node's write: refused")
	require.True(t, r.refuses("by-p", soon, "p", 10), "p's entry from before its write: refused")
	require.False(t, r.refuses("by-p", soon, "p", 11), "p's entry from after its write: taken")
	require.False(t, r.refuses("own", t0.Add(handoffWindow+time.Second), "p", 1), "aged out")

	for i := range maxRecentWrites + 10 {
		r.add("k"+strconv.Itoa(i), writeNote{at: at(0)})
	}
	require.True(t, r.full)
	require.True(t, r.refuses("never-written", t0, "p", 99), "a full set refuses every hand-off")
	pruned := r.prunedAt
	r.add("more", writeNote{at: at(100 * time.Millisecond)})
	require.Equal(t, pruned, r.prunedAt, "no prune within pruneEvery of the last one")
	r.add("own", writeNote{at: at(200 * time.Millisecond)}) // a known key is still refreshed
	require.Equal(t, at(200*time.Millisecond), r.keys["own"].at)

	later := t0.Add(handoffWindow + time.Second)
	require.False(t, r.refuses("never-written", later, "p", 1), "once the writes aged out the set empties")
	require.False(t, r.full)
	require.Empty(t, r.keys)
}

// A hand-off is summarised in one INFO line naming each new owner, its
// address and its entry count, with what failed.
func TestLogHandoffSummary(t *testing.T) {
	var buf bytes.Buffer
	e := &Engine{log: slog.New(slog.NewTextHandler(&buf, nil))}
	e.logHandoff("ks", nil)
	require.Empty(t, buf.String(), "nothing handed off, nothing logged")
	e.logHandoff("ks", []handoffResult{
		{to: cluster.Member{Name: "node-2", Addr: "10.0.0.2:7946"}, entries: 40, sent: 40},
		{to: cluster.Member{Name: "node-1", Addr: "10.0.0.1:7946"}, entries: 600, sent: 512, err: errors.New("boom")},
	})
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 1)
	require.Contains(t, lines[0], "level=INFO")
	require.Contains(t, lines[0], "entries=552")
	require.Contains(t, lines[0], `to="node-1 (10.0.0.1:7946): 512, node-2 (10.0.0.2:7946): 40"`)
	require.Contains(t, lines[0], "node-1: 88 entries not sent: boom")
}

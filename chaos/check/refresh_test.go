package check

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// refreshRun is a passing refresh run on three nodes: hot key h, read on
// every node, changes to v1 at 1 s and is returned by every node from
// 1.5 s on; h is fetched 6 times in 6 intervals, by node-1 alone; cold key
// c is fetched once.
func refreshRun(extra ...Call) RefreshInput {
	calls := []Call{get(0, "c", 0, 50, 60)}
	for n := range 3 {
		calls = append(calls, get(n, "h", 0, 100, 110), get(n, "h", 0, 900, 910), get(n, "h", 1, 1500+n*100, 1510+n*100), get(n, "h", 1, 4000, 4010))
	}
	return RefreshInput{
		Calls: append(calls, extra...), Nodes: 3,
		Hot: []string{"h"}, Cold: []string{"c"},
		Changes:  []RowChange{{Key: "h", Version: 1, Start: ms(1000), End: ms(1001)}},
		Interval: time.Second, Bound: 2500 * time.Millisecond,
		WindowFrom: 0, WindowTo: ms(6000), Intervals: 6, Tolerance: 2,
		HotFetches:  map[string]map[string]int{"h": {"node-1": 6}},
		ColdFetches: map[string]int{"c": 1},
		Deadline:    2 * time.Second, Slack: 500 * time.Millisecond,
	}
}

func refreshInvariants(r RefreshResult) []string {
	var out []string
	for _, v := range r.Violations {
		out = append(out, v.Invariant)
	}
	return out
}

// TestRefreshRunPasses: the run above breaks nothing, and its figures say
// when each node returned the new row.
func TestRefreshRunPasses(t *testing.T) {
	r := CheckRefresh(refreshRun())
	require.Empty(t, refreshInvariants(r))
	require.Equal(t, 13, r.Calls)
	require.Equal(t, 6, r.MinHotFetches)
	require.Equal(t, 6, r.MaxHotFetches)
	require.Equal(t, 1, r.MaxFetchers)
	require.Equal(t, 1, r.ColdFetches)
	require.Len(t, r.Propagation, 1)
	require.Equal(t, []time.Duration{ms(509), ms(609), ms(709)}, r.Propagation[0].Lag)
	require.Equal(t, ms(709), r.Propagation[0].Max())
}

// TestRefreshFetchCounts: a hot key fetched on every node (every node
// refreshes), too often or too rarely, or a cold key fetched twice or never,
// is a violation; host stalls in the window lower the floor.
func TestRefreshFetchCounts(t *testing.T) {
	cases := []struct {
		name string
		edit func(*RefreshInput)
		want []string
	}{
		{"every node refreshes", func(in *RefreshInput) {
			in.HotFetches["h"] = map[string]int{"node-0": 6, "node-1": 6, "node-2": 6}
		}, []string{InvRefreshCount, InvRefreshFetchers}},
		{"two nodes, right total", func(in *RefreshInput) {
			in.HotFetches["h"] = map[string]int{"node-0": 1, "node-1": 5}
		}, []string{InvRefreshFetchers}},
		{"too often", func(in *RefreshInput) { in.HotFetches["h"]["node-1"] = 9 }, []string{InvRefreshCount}},
		{"at the ceiling", func(in *RefreshInput) { in.HotFetches["h"]["node-1"] = 8 }, nil},
		{"too rarely", func(in *RefreshInput) { in.HotFetches["h"]["node-1"] = 3 }, []string{InvRefreshCount}},
		{"never", func(in *RefreshInput) { delete(in.HotFetches, "h") }, []string{InvRefreshCount}},
		{"too rarely during a 2 s stall", func(in *RefreshInput) {
			in.HotFetches["h"]["node-1"] = 2
			in.Stalls = []Stall{{From: ms(2000), To: ms(4000)}}
		}, nil},
		{"cold key refreshed", func(in *RefreshInput) { in.ColdFetches["c"] = 2 }, []string{InvColdRefreshed}},
		{"cold key never fetched", func(in *RefreshInput) { delete(in.ColdFetches, "c") }, []string{InvColdRefreshed}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := refreshRun()
			tc.edit(&in)
			require.Equal(t, tc.want, refreshInvariants(CheckRefresh(in)))
		})
	}
}

// TestRefreshReads: an old row read after the bound (a near copy hiding the
// change), a node that never returns the new row, a read older than one
// already returned, a row version not set yet, a failed call: each is a
// violation, except during a host stall.
func TestRefreshReads(t *testing.T) {
	cases := []struct {
		name string
		edit func(*RefreshInput)
		want []string
	}{
		{"old row after the bound", func(in *RefreshInput) {
			in.Calls = append(in.Calls, get(2, "h", 0, 3600, 3610))
		}, []string{InvRefreshLate, InvGoingBack}},
		{"old row after the bound, during a stall", func(in *RefreshInput) {
			in.Calls = append(in.Calls, get(2, "h", 0, 3600, 3610))
			in.Stalls = []Stall{{From: ms(1200), To: ms(2000)}}
		}, []string{InvGoingBack}},
		{"old row within the bound, none newer returned yet", func(in *RefreshInput) {
			in.Calls = append(in.Calls, get(2, "h", 0, 1200, 1210))
		}, nil},
		{"node never returns the new row", func(in *RefreshInput) {
			var calls []Call
			for _, c := range in.Calls {
				if c.Node != 2 || c.Version == 0 {
					calls = append(calls, c)
				}
			}
			in.Calls = calls
		}, []string{InvRefreshLate}},
		{"going back within the bound", func(in *RefreshInput) {
			in.Calls = append(in.Calls, get(1, "h", 0, 1520, 1530))
		}, []string{InvGoingBack}},
		{"overlapping reads may differ", func(in *RefreshInput) {
			in.Calls = append(in.Calls, get(1, "h", 0, 1490, 1530))
		}, nil},
		{"row version not set yet", func(in *RefreshInput) {
			in.Calls = append(in.Calls, get(1, "h", 2, 4100, 4110))
		}, []string{InvImpossibleRead}},
		{"new row before the change", func(in *RefreshInput) {
			in.Calls = append(in.Calls, get(1, "h", 1, 500, 510))
		}, []string{InvGoingBack, InvImpossibleRead}},
		{"corrupt value", func(in *RefreshInput) {
			c := get(1, "h", 0, 4100, 4110)
			c.BadValue = "names key x"
			in.Calls = append(in.Calls, c)
		}, []string{InvCorruptValue}},
		{"failed call", func(in *RefreshInput) {
			in.Calls = append(in.Calls, failed(get(1, "h", 0, 4100, 4110), "deadline"))
		}, []string{InvSteadyFailure}},
		{"overrun", func(in *RefreshInput) {
			in.Calls = append(in.Calls, get(1, "h", 1, 4100, 7000))
		}, []string{InvDeadline}},
		{"deleted row, returned by every node", func(in *RefreshInput) {
			deleteRow(in, 3)
		}, nil},
		{"deleted row, old row after the bound", func(in *RefreshInput) {
			deleteRow(in, 2)
			in.Calls = append(in.Calls, get(2, "d", 1, 3600, 3610))
		}, []string{InvRefreshLate, InvGoingBack}},
		{"deleted row, one node never says so", func(in *RefreshInput) {
			deleteRow(in, 2)
		}, []string{InvRefreshLate}},
		{"not found before the deletion", func(in *RefreshInput) {
			in.Calls = append(in.Calls, missing(get(1, "h", 0, 4100, 4110)))
		}, []string{InvImpossibleRead}},
		{"failed call during a stall", func(in *RefreshInput) {
			in.Calls = append(in.Calls, failed(get(1, "h", 0, 4100, 6700), "deadline"))
			in.Stalls = []Stall{{From: ms(4500), To: ms(6500)}}
		}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := refreshRun()
			tc.edit(&in)
			require.Equal(t, tc.want, refreshInvariants(CheckRefresh(in)))
		})
	}
}

func missing(c Call) Call {
	c.Missing = true
	return c
}

// deleteRow adds hot key d, set to v1 at 0.5 s and deleted at 1 s (v2), read
// at v1 by every node, then found missing from 1.5 s on by the first
// nodes of the three.
func deleteRow(in *RefreshInput, nodes int) {
	in.Changes = append(in.Changes,
		RowChange{Key: "d", Version: 1, Start: ms(500), End: ms(501)},
		RowChange{Key: "d", Version: 2, Deleted: true, Start: ms(1000), End: ms(1001)})
	for n := range 3 {
		in.Calls = append(in.Calls, get(n, "d", 1, 900, 910))
	}
	for n := range nodes {
		in.Calls = append(in.Calls, missing(get(n, "d", 0, 1500, 1510)))
	}
}

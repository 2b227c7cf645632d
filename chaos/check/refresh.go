package check

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"
)

// The refresh scenario's invariants (CheckRefresh), as reports name them.
const (
	InvRefreshCount    = "hot key not fetched about once per refresh interval, cluster-wide"
	InvRefreshFetchers = "hot key fetched by more than one node (only its owner refreshes)"
	InvColdRefreshed   = "cold key not fetched exactly once (refreshed, or loaded twice)"
	InvRefreshLate     = "changed row not returned by every node within the bound"
	InvGoingBack       = "read older than a value already returned (going back)"
)

// RowChange is the driver changing a row of the shared database: from a
// moment between Start and End on, the DataSource returns Version for Key,
// or, when Deleted, finds no such row. A key's changes have increasing
// versions, starting at 1 (0 is the row before any change); a deleted row
// is never set again, so a read that found no row read that deletion.
type RowChange struct {
	Key        string
	Version    uint64
	Deleted    bool
	Start, End time.Duration
}

// RefreshInput is the refresh scenario's run: Gets only (no Put, no
// Delete, no fault), hot keys read continuously through every node, cold
// keys read once, and rows changed in the database meanwhile.
type RefreshInput struct {
	Calls []Call
	// Nodes is how many nodes served (indices 0..Nodes-1).
	Nodes int
	// Hot and Cold list the keys of each set.
	Hot, Cold []string
	Changes   []RowChange
	// Interval is the nodes' refresh interval. Bound is how long after a
	// change ended every node must return the new row (about one interval
	// for the owner's next refresh, plus a margin).
	Interval, Bound time.Duration
	// WindowFrom..WindowTo is the span, Intervals refresh intervals long,
	// over which HotFetches were counted: each hot key's DataSource fetches
	// in it, by node name. Tolerance is how far a key's count may be from
	// Intervals.
	WindowFrom, WindowTo time.Duration
	Intervals            int
	Tolerance            int
	// HotFetches and ColdFetches are counted by the database itself. Cold
	// keys are counted over the whole run.
	HotFetches  map[string]map[string]int
	ColdFetches map[string]int
	// Deadline, Slack and Stalls are as in Input: a failure or an overrun
	// during a host stall of at least Slack is excused; so is a late read
	// after a change during whose bound such a stall happened, and the
	// lower fetch bound drops by one per interval of stall in the window.
	Deadline, Slack time.Duration
	Stalls          []Stall
}

// what describes the change for reports.
func (ch RowChange) what() string {
	if ch.Deleted {
		return fmt.Sprintf("row deleted (v%d)", ch.Version)
	}
	return fmt.Sprintf("row set to v%d", ch.Version)
}

// Propagation is how one change reached the nodes.
type Propagation struct {
	Change RowChange
	// Lag is, per node, how long after the change ended the node's first
	// read returning the new row (or a newer one) ended; -1: none did.
	Lag []time.Duration
}

// Max is the lag of the last node to return the new row (-1: some never
// did).
func (p Propagation) Max() time.Duration {
	var m time.Duration
	for _, l := range p.Lag {
		if l < 0 {
			return -1
		}
		m = max(m, l)
	}
	return m
}

// RefreshResult is CheckRefresh's verdict and figures.
type RefreshResult struct {
	Calls, Failures int
	MaxLatency      time.Duration
	// MinHotFetches and MaxHotFetches bound the hot keys' fetch counts in
	// the window; MaxFetchers is the most nodes that fetched one hot key in
	// it; ColdFetches sums the cold keys' fetches.
	MinHotFetches, MaxHotFetches, MaxFetchers, ColdFetches int
	Propagation                                            []Propagation
	// Late are the reads of an older row after a change's bound; Back the
	// reads older than one already returned; Excused the failures,
	// overruns and late reads explained by a host stall.
	Late, Back, Excused int
	Violations          []Violation
}

// OK reports whether every invariant held.
func (r *RefreshResult) OK() bool { return len(r.Violations) == 0 }

// CheckRefresh judges a refresh run:
//   - each hot key is fetched Intervals ± Tolerance times in the window,
//     cluster-wide (its owner refreshes it once per interval), and by one
//     node only;
//   - each cold key is fetched exactly once (loaded, never refreshed);
//   - after a change, a read that starts Bound after it ends returns the new
//     row (or a newer one), and every node returns it;
//   - no read returns an older row than a read that ended before it began
//     (on any node: a refresh is applied as a write is);
//   - no read returns a row version not yet set, or an undecodable value;
//     no call fails or overruns its deadline + slack.
func CheckRefresh(in RefreshInput) RefreshResult {
	var res RefreshResult
	var failed, overruns, corrupt, late, back, impossible, counts, fetchers, cold []string
	changes := map[string][]RowChange{}
	for _, ch := range in.Changes {
		changes[ch.Key] = append(changes[ch.Key], ch)
	}
	calls := slices.Clone(in.Calls) // a missing row's reads get its deletion's version
	byKey := map[string][]*Call{}
	for i := range calls {
		c := &calls[i]
		res.Calls++
		lat := c.End - c.Start
		res.MaxLatency = max(res.MaxLatency, lat)
		over := in.Deadline > 0 && lat > in.Deadline+in.Slack
		switch {
		case (over || !c.OK) && in.stalledAt(c.Start, c.End):
			res.Excused++
		case !c.OK:
			failed = append(failed, fmtCall(c))
		case over:
			overruns = append(overruns, fmtCall(c))
		}
		if !c.OK {
			res.Failures++
			continue
		}
		if c.BadValue != "" {
			corrupt = append(corrupt, fmtCall(c)+": "+c.BadValue)
			continue
		}
		if c.Missing {
			i := slices.IndexFunc(changes[c.Key], func(ch RowChange) bool { return ch.Deleted })
			if i < 0 || changes[c.Key][i].Start >= c.End {
				impossible = append(impossible, fmtRead(c)+": that row was not deleted yet")
				continue
			}
			c.Version = changes[c.Key][i].Version
		}
		byKey[c.Key] = append(byKey[c.Key], c)
	}

	for _, k := range slices.Sorted(maps.Keys(byKey)) {
		reads := byKey[k]
		for _, r := range reads {
			if r.Version == 0 || r.Missing {
				continue
			}
			i := slices.IndexFunc(changes[k], func(ch RowChange) bool { return ch.Version == r.Version })
			if i < 0 || changes[k][i].Start >= r.End {
				impossible = append(impossible, fmtRead(r)+": that row version was not set yet")
			}
		}
		back = append(back, goingBack(reads)...)
	}
	res.Back = len(back)

	for _, ch := range in.Changes {
		p := Propagation{Change: ch, Lag: make([]time.Duration, in.Nodes)}
		for n := range p.Lag {
			p.Lag[n] = -1
		}
		due := ch.End + in.Bound
		excused := in.stalledAt(ch.Start, due)
		for _, r := range byKey[ch.Key] {
			if r.Start < ch.Start {
				continue
			}
			if r.Version >= ch.Version {
				if r.Node >= 0 && r.Node < in.Nodes && (p.Lag[r.Node] < 0 || r.End-ch.End < p.Lag[r.Node]) {
					p.Lag[r.Node] = max(r.End-ch.End, 0)
				}
				continue
			}
			if r.Start >= due {
				if excused {
					res.Excused++
					continue
				}
				res.Late++
				late = append(late, fmt.Sprintf("%s; %s at t=%s, due on every node by t=%s", fmtRead(r), ch.what(), fmtT(ch.End), fmtT(due)))
			}
		}
		for n, l := range p.Lag {
			if l < 0 && !excused {
				late = append(late, fmt.Sprintf("node %d never returned the change of %s (%s at t=%s)", n, ch.Key, ch.what(), fmtT(ch.End)))
			}
		}
		res.Propagation = append(res.Propagation, p)
	}

	var stalled time.Duration
	for _, s := range in.Stalls {
		stalled += max(min(s.To, in.WindowTo)-max(s.From, in.WindowFrom), 0)
	}
	low := in.Intervals - in.Tolerance
	if in.Interval > 0 {
		low -= int(stalled / in.Interval)
	}
	high := in.Intervals + in.Tolerance
	res.MinHotFetches = -1
	for _, k := range in.Hot {
		n, nodes := 0, 0
		for _, c := range in.HotFetches[k] {
			n += c
			if c > 0 {
				nodes++
			}
		}
		if res.MinHotFetches < 0 || n < res.MinHotFetches {
			res.MinHotFetches = n
		}
		res.MaxHotFetches = max(res.MaxHotFetches, n)
		res.MaxFetchers = max(res.MaxFetchers, nodes)
		if n < low || n > high {
			counts = append(counts, fmt.Sprintf("%s fetched %d times in %d intervals (allowed %d..%d): %v", k, n, in.Intervals, low, high, in.HotFetches[k]))
		}
		if nodes > 1 {
			fetchers = append(fetchers, fmt.Sprintf("%s fetched by %d nodes in the window: %v", k, nodes, in.HotFetches[k]))
		}
	}
	for _, k := range in.Cold {
		n := in.ColdFetches[k]
		res.ColdFetches += n
		if n != 1 {
			cold = append(cold, fmt.Sprintf("%s fetched %d times", k, n))
		}
	}

	add := func(inv string, samples []string) {
		if len(samples) > 0 {
			res.Violations = append(res.Violations, Violation{Invariant: inv, Count: len(samples), Samples: samples[:min(len(samples), maxSamples)]})
		}
	}
	add(InvRefreshCount, counts)
	add(InvRefreshFetchers, fetchers)
	add(InvColdRefreshed, cold)
	add(InvRefreshLate, late)
	add(InvGoingBack, back)
	add(InvImpossibleRead, impossible)
	add(InvCorruptValue, corrupt)
	add(InvSteadyFailure, failed)
	add(InvDeadline, overruns)
	return res
}

// goingBack returns the reads of one key that returned an older version
// than a read that had ended before they began.
func goingBack(reads []*Call) []string {
	byEnd := slices.Clone(reads)
	slices.SortFunc(byEnd, func(a, b *Call) int { return cmp.Compare(a.End, b.End) })
	byStart := slices.Clone(reads)
	slices.SortFunc(byStart, func(a, b *Call) int { return cmp.Compare(a.Start, b.Start) })
	var out []string
	var newest *Call // the newest version among the reads ended so far
	j := 0
	for _, r := range byStart {
		for ; j < len(byEnd) && byEnd[j].End < r.Start; j++ {
			if newest == nil || byEnd[j].Version > newest.Version {
				newest = byEnd[j]
			}
		}
		if newest != nil && r.Version < newest.Version {
			out = append(out, fmt.Sprintf("%s; this was returned before: %s", fmtRead(r), fmtRead(newest)))
		}
	}
	return out
}

// stalledAt reports whether a host stall of at least Slack overlapped
// [from, to).
func (in *RefreshInput) stalledAt(from, to time.Duration) bool {
	for _, s := range in.Stalls {
		if s.To-s.From >= in.Slack && from < s.To && to > s.From {
			return true
		}
	}
	return false
}

func fmtRead(r *Call) string {
	got := fmt.Sprintf("v%d", r.Version)
	if r.Missing {
		got = "not found"
	}
	return fmt.Sprintf("t=%s..%s node=%d client=%d get %s -> %s", fmtT(r.Start), fmtT(r.End), r.Node, r.Client, r.Key, got)
}

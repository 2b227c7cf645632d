package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/distcache/distcache/chaos/check"
)

// printOutcome writes one scenario's per-phase counts, recovery time and
// broken invariants with samples.
func printOutcome(w io.Writer, o outcome) {
	verdict := "PASS"
	if o.err != nil || !o.res.OK() {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "--- %s %s (%s)\n", verdict, o.sc.name, o.took.Round(100*time.Millisecond))
	if o.err != nil {
		fmt.Fprintf(w, "scenario could not run: %v\n", o.err)
	}
	if o.refresh != nil {
		printRefresh(w, o)
	}
	if o.timeline.End > 0 {
		tl := o.timeline
		fmt.Fprintf(w, "phases: warm-up 0-%s, steady %s-%s, fault %s-%s, recovery %s-%s\n",
			fmtS(tl.Start), fmtS(tl.Start), fmtS(tl.FaultStart), fmtS(tl.FaultStart), fmtS(tl.FaultEnd), fmtS(tl.FaultEnd), fmtS(tl.End))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "phase\tcalls\tgets\tputs\tdeletes\tfailed\tinterrupted\tstale\tsplit-brain\tlost writes\tlost reads\tfetches\tdegraded\tmax latency\t")
		for p := check.Steady; p < check.NumPhases; p++ {
			s := o.res.Phases[p]
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t\n", p, s.Calls, s.Gets, s.Puts, s.Deletes,
				s.Failures, s.Interrupted, s.Stale, s.SplitBrain, s.LostWrites, s.LostReads, o.fetches[p], o.degraded[p], s.MaxLatency.Round(time.Millisecond))
		}
		_ = tw.Flush()
		for p := check.Steady; p < check.NumPhases; p++ {
			if fc := o.res.Phases[p].FailureClasses; len(fc) > 0 {
				fmt.Fprintf(w, "failures in %s: %s\n", p, classes(fc))
			}
		}
		fmt.Fprintf(w, "every node serving again: %s after the fault ended\n", fmtRecovery(o.recovery))
		if len(o.stalls) > 0 {
			var longest time.Duration
			for _, s := range o.stalls {
				longest = max(longest, s.To-s.From)
			}
			fmt.Fprintf(w, "host stalls (a process not scheduled for >= 300ms): %d, longest %s; calls excused by them (overrun or failed in steady state): %d\n",
				len(o.stalls), longest.Round(time.Millisecond), o.res.Totals().Excused)
		}
		for _, a := range sample(o.res.Lost, 3) {
			fmt.Fprintf(w, "lost write (reported, not a violation): %s\n", a)
		}
		for _, a := range sample(o.res.SplitBrain, 3) {
			fmt.Fprintf(w, "split-brain read (reported, not a violation): %s\n", a)
		}
	}
	if n := len(o.res.Stale); n > 0 {
		first, last := o.res.Stale[0].Read.Start, o.res.Stale[0].Read.Start
		keys := map[string]bool{}
		for _, a := range o.res.Stale {
			first, last = min(first, a.Read.Start), max(last, a.Read.Start)
			keys[a.Read.Key] = true
		}
		fmt.Fprintf(w, "stale reads: %d, of %d key(s), starting from t=%s to t=%s\n", n, len(keys), fmtS(first), fmtS(last))
	}
	for _, v := range o.res.Violations {
		fmt.Fprintf(w, "VIOLATION: %s: %d\n", v.Invariant, v.Count)
		for _, s := range v.Samples {
			fmt.Fprintf(w, "    %s\n", s)
		}
	}
	if verdict == "FAIL" {
		fmt.Fprintf(w, "node logs: %s\n", o.logs)
	}
}

// printRefresh writes the refresh scenario's figures.
func printRefresh(w io.Writer, o outcome) {
	r := o.refresh
	from, to := o.refreshWindow[0], o.refreshWindow[1]
	fmt.Fprintf(w, "window t=%s..%s (%d intervals of %s): each of %d hot keys fetched %d..%d times, by at most %d node(s); %d cold keys, %d fetches in the run\n",
		fmtS(from), fmtS(to), int((to-from)/refreshEvery), refreshEvery, refreshHot, r.MinHotFetches, r.MaxHotFetches, r.MaxFetchers, refreshCold, r.ColdFetches)
	var lags []time.Duration
	never := 0
	for _, p := range r.Propagation {
		if p.Change.Deleted {
			after := "never"
			if m := p.Max(); m >= 0 {
				after = m.Round(time.Millisecond).String()
			}
			fmt.Fprintf(w, "row of %s deleted at t=%s: every node answered not found after %s (bound %s)\n",
				p.Change.Key, fmtS(p.Change.End), after, refreshBound)
			continue
		}
		if m := p.Max(); m >= 0 {
			lags = append(lags, m)
		} else {
			never++
		}
	}
	slices.Sort(lags)
	if len(lags) > 0 {
		fmt.Fprintf(w, "%d row changes, every node returned the new row after: median %s, max %s (bound %s)",
			len(lags)+never, lags[len(lags)/2].Round(time.Millisecond), lags[len(lags)-1].Round(time.Millisecond), refreshBound)
		if never > 0 {
			fmt.Fprintf(w, "; %d never reached every node", never)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "reads: %d, failed %d, late %d, going back %d, excused by host stalls %d, max latency %s\n",
		r.Calls, r.Failures, r.Late, r.Back, r.Excused, r.MaxLatency.Round(time.Millisecond))
	if len(o.stalls) > 0 {
		var longest time.Duration
		for _, s := range o.stalls {
			longest = max(longest, s.To-s.From)
		}
		fmt.Fprintf(w, "host stalls (a process not scheduled for >= 300ms): %d, longest %s\n", len(o.stalls), longest.Round(time.Millisecond))
	}
}

func sample(as []check.Anomaly, n int) []check.Anomaly { return as[:min(n, len(as))] }

func classes(m map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

func fmtS(d time.Duration) string { return fmt.Sprintf("%.1fs", d.Seconds()) }

func fmtRecovery(d time.Duration) string {
	if d < 0 {
		return "never (within the bound)"
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

// resultsTable is the Markdown table of CHAOS.md.
func resultsTable(outs []outcome) string {
	var b strings.Builder
	b.WriteString("| scenario | calls | failed (steady / fault / recovery) | stale reads | split-brain reads | lost writes (reads) | DataSource fetches (steady / fault / recovery) | recovery | max latency | verdict |\n")
	b.WriteString("|---|---:|---|---:|---:|---|---|---:|---:|---|\n")
	for _, o := range outs {
		t := o.res.Totals()
		verdict := "pass"
		switch {
		case o.err != nil:
			verdict = "**could not run**: " + o.err.Error()
		case !o.res.OK():
			var inv []string
			for _, v := range o.res.Violations {
				inv = append(inv, fmt.Sprintf("%s (%d)", v.Invariant, v.Count))
			}
			verdict = "**FAIL**: " + strings.Join(inv, "; ")
		}
		p := o.res.Phases
		if o.refresh != nil {
			fmt.Fprintf(&b, "| %s | %d | %d / — / — | %d | — | — | %d / — / — | — | %s | %s |\n",
				o.sc.name, t.Calls, p[check.Steady].Failures, t.Stale, o.fetches[check.Steady], t.MaxLatency.Round(time.Millisecond), verdict)
			continue
		}
		fmt.Fprintf(&b, "| %s | %d | %d / %d / %d | %d | %d | %d (%d) | %d / %d / %d | %s | %s | %s |\n",
			o.sc.name, t.Calls, p[check.Steady].Failures, p[check.Fault].Failures, p[check.Recovery].Failures,
			t.Stale, t.SplitBrain, t.LostWrites, t.LostReads,
			o.fetches[check.Steady], o.fetches[check.Fault], o.fetches[check.Recovery],
			fmtRecovery(o.recovery), t.MaxLatency.Round(time.Millisecond), verdict)
	}
	return b.String()
}

func failureSummary(o outcome) string {
	if o.err != nil {
		return ": " + o.err.Error()
	}
	var inv []string
	for _, v := range o.res.Violations {
		inv = append(inv, v.Invariant)
	}
	return ": " + strings.Join(inv, "; ")
}

package check

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// The invariants Check enforces, as they are named in reports.
const (
	InvStaleRead      = "stale read (older version or deleted value after an acknowledged write)"
	InvImpossibleRead = "impossible read (a version not yet written when the read ended)"
	InvCorruptValue   = "corrupt value (undecodable, or another key's)"
	InvDeadline       = "call past its deadline + slack"
	InvSteadyFailure  = "failed call in steady state"
	InvSteadyLost     = "lost write in steady state (no fault yet)"
	InvLost           = "lost write (the scenario's fault must lose none)"
	InvFetchRate      = "DataSource fetched much faster during the fault than in steady state"
	InvRecovery       = "node not serving again within the recovery bound"
	InvHistory        = "invalid history (driver bug: overlapping writes of one key)"
)

// fetchRateSlack is how much faster than in steady state a lossless
// scenario may fetch during its fault (see fetchRates).
const fetchRateSlack = 1.5

// maxSamples bounds the offending calls a violation lists.
const maxSamples = 10

// Kind says how a read went wrong.
type Kind string

// Kinds of anomalous reads.
const (
	KindOlder      Kind = "older version"
	KindDeleted    Kind = "deleted value"
	KindLost       Kind = "lost write"
	KindImpossible Kind = "impossible version"
)

// Anomaly is one read that did not return an allowed value.
type Anomaly struct {
	Read Call
	Kind Kind
	// Last is the last write acknowledged before the read began (nil: none,
	// the key held the DataSource's value).
	Last *Call
	// FromFailedWrite is set when the version read was written by a call
	// that returned an error (it may have been applied, but not after a
	// later acknowledged write).
	FromFailedWrite bool
}

func (a Anomaly) String() string {
	r := a.Read
	s := fmt.Sprintf("t=%s..%s node=%d client=%d get %s -> v%d (%s)",
		fmtT(r.Start), fmtT(r.End), r.Node, r.Client, r.Key, r.Version, a.Kind)
	if a.Last != nil {
		s += fmt.Sprintf("; last acknowledged write: %s v%d via node %d, acknowledged at t=%s (%s before the read began)",
			a.Last.Op, a.Last.Version, a.Last.Node, fmtT(a.Last.End), (r.Start - a.Last.End).Round(time.Millisecond))
	} else {
		s += "; no write acknowledged before the read"
	}
	if a.FromFailedWrite {
		s += fmt.Sprintf("; v%d was written by a call that failed", r.Version)
	}
	return s
}

func fmtT(d time.Duration) string { return fmt.Sprintf("%.3fs", d.Seconds()) }

// PhaseStats are one phase's counts. A call belongs to the phase it started in.
type PhaseStats struct {
	Calls, Gets, Puts, Deletes int
	// Interrupted are the calls (failed or not) that were in flight on a
	// node when its outage began; Failures the other calls that returned
	// an error.
	Failures, Interrupted int
	// FailureClasses counts Failures by error class.
	FailureClasses map[string]int
	// Stale counts reads that broke the promise; SplitBrain the stale reads
	// explained by the partition (see Check); LostReads the reads that
	// returned the DataSource's value after an acknowledged Put, LostWrites
	// the distinct acknowledged Puts they revealed.
	Stale, SplitBrain, LostReads, LostWrites int
	// Overruns are calls past their deadline + slack (interrupted excluded).
	Overruns int
	// Excused are the calls that overran or failed in steady state during
	// a host stall (see Input.Stalls): not violations.
	Excused int
	// MaxLatency is the longest non-interrupted call.
	MaxLatency time.Duration
}

// Violation is one broken invariant with a sample of the offending calls.
type Violation struct {
	Invariant string
	Count     int
	Samples   []string
}

// Result is Check's verdict.
type Result struct {
	Phases [NumPhases]PhaseStats
	// Stale, SplitBrain and Lost are every anomalous read, by class.
	Stale, SplitBrain, Lost []Anomaly
	// Overruns are the calls past their deadline + slack.
	Overruns []Call
	// Violations is empty when every invariant held.
	Violations []Violation
}

// OK reports whether every invariant held.
func (r *Result) OK() bool { return len(r.Violations) == 0 }

// Totals sums the phases.
func (r *Result) Totals() PhaseStats {
	var t PhaseStats
	for _, p := range r.Phases {
		t.Calls += p.Calls
		t.Gets += p.Gets
		t.Puts += p.Puts
		t.Deletes += p.Deletes
		t.Failures += p.Failures
		t.Interrupted += p.Interrupted
		t.Stale += p.Stale
		t.SplitBrain += p.SplitBrain
		t.LostReads += p.LostReads
		t.LostWrites += p.LostWrites
		t.Overruns += p.Overruns
		t.Excused += p.Excused
		t.MaxLatency = max(t.MaxLatency, p.MaxLatency)
	}
	return t
}

// Check judges a run.
//
// A read is compared with W, the last write of its key acknowledged before
// the read began. It may return W's value, or the value of any write of the
// key that had not been acknowledged when the read began but had started
// before it ended (concurrent, still in flight, or failed: a failed write
// may have been applied, but not after a later write that was
// acknowledged). The value of a Delete, and of a key never written, is the
// DataSource's version 0. Anything else is:
//   - a lost write, when it returns version 0 but W is a Put: reported, not
//     a violation (an acknowledged Put lost with its only holder), except
//     in steady state, where nothing can explain it (a read that was still
//     in flight when the fault began may have met it: it is not held to
//     steady state), and in a Lossless scenario, whose fault leaves a copy
//     of every entry;
//   - a split-brain read, when it began during a partition and W was
//     acknowledged during the partition through a node on the other side:
//     reported, not a violation (both sides keep serving; the promise
//     cannot hold across a partition, but must hold again after the heal);
//   - otherwise a stale read (an older version, or a value after a Delete)
//     or an impossible read (a version not yet written): violations.
func Check(in Input) Result {
	var res Result
	for p := range res.Phases {
		res.Phases[p].FailureClasses = map[string]int{}
	}
	var steadyFailures, overruns, corrupt []string
	var stale, impossible, steadyLost, lost []Anomaly

	byKey := map[string]*keyCalls{}
	for i := range in.Calls {
		c := &in.Calls[i]
		kc := byKey[c.Key]
		if kc == nil {
			kc = &keyCalls{}
			byKey[c.Key] = kc
		}
		if c.Op == Get {
			kc.reads = append(kc.reads, c)
		} else {
			kc.writes = append(kc.writes, c)
		}

		ph := &res.Phases[in.Timeline.PhaseOf(c.Start)]
		ph.Calls++
		switch c.Op {
		case Get:
			ph.Gets++
		case Put:
			ph.Puts++
		case Delete:
			ph.Deletes++
		}
		intr := in.interrupted(c)
		if intr {
			ph.Interrupted++
		} else {
			if !c.OK {
				ph.Failures++
				ph.FailureClasses[c.Err]++
			}
			lat := c.End - c.Start
			ph.MaxLatency = max(ph.MaxLatency, lat)
			over := in.Deadline > 0 && lat > in.Deadline+in.Slack
			steadyFail := !c.OK && in.Timeline.steady(c)
			switch {
			case (over || steadyFail) && in.stalled(c):
				ph.Excused++
			default:
				if over {
					ph.Overruns++
					res.Overruns = append(res.Overruns, *c)
					overruns = append(overruns, fmtCall(c))
				}
				if steadyFail {
					steadyFailures = append(steadyFailures, fmtCall(c))
				}
			}
		}
		if c.BadValue != "" {
			corrupt = append(corrupt, fmtCall(c)+": "+c.BadValue)
		}
	}

	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var badHistory []string
	for _, k := range keys {
		kc := byKey[k]
		slices.SortFunc(kc.writes, func(a, b *Call) int { return cmp.Compare(a.Version, b.Version) })
		if msg := kc.validate(); msg != "" {
			badHistory = append(badHistory, k+": "+msg)
			continue
		}
		lostSeen := map[uint64]bool{}
		for _, r := range kc.reads {
			if !r.OK || r.BadValue != "" {
				continue
			}
			a, ok := kc.judge(r)
			if ok {
				continue
			}
			ph := &res.Phases[in.Timeline.PhaseOf(r.Start)]
			switch {
			case a.Kind == KindLost:
				ph.LostReads++
				if !lostSeen[a.Last.Version] {
					lostSeen[a.Last.Version] = true
					ph.LostWrites++
				}
				res.Lost = append(res.Lost, a)
				switch {
				case in.Timeline.steady(r):
					steadyLost = append(steadyLost, a)
				case in.Lossless:
					lost = append(lost, a)
				}
			case a.Kind == KindImpossible:
				ph.Stale++
				impossible = append(impossible, a)
				res.Stale = append(res.Stale, a)
			case in.splitBrain(a):
				ph.SplitBrain++
				res.SplitBrain = append(res.SplitBrain, a)
			default:
				ph.Stale++
				stale = append(stale, a)
				res.Stale = append(res.Stale, a)
			}
		}
	}

	add := func(inv string, samples []string) {
		if len(samples) == 0 {
			return
		}
		n := len(samples)
		res.Violations = append(res.Violations, Violation{Invariant: inv, Count: n, Samples: samples[:min(n, maxSamples)]})
	}
	add(InvHistory, badHistory)
	add(InvStaleRead, anomalyStrings(stale))
	add(InvImpossibleRead, anomalyStrings(impossible))
	add(InvCorruptValue, corrupt)
	add(InvDeadline, overruns)
	add(InvSteadyFailure, steadyFailures)
	add(InvSteadyLost, anomalyStrings(steadyLost))
	add(InvLost, anomalyStrings(lost))
	if in.Lossless {
		add(InvFetchRate, in.fetchRates())
	}
	if in.RecoveryBound > 0 && (in.Recovered < 0 || in.Recovered > in.RecoveryBound) {
		msg := fmt.Sprintf("not every node was serving %s after the fault ended", in.RecoveryBound)
		if in.Recovered >= 0 {
			msg = fmt.Sprintf("every node was serving only %s after the fault ended (bound %s)", in.Recovered.Round(time.Millisecond), in.RecoveryBound)
		}
		add(InvRecovery, []string{msg})
	}
	return res
}

// splitBrain reports whether a stale read is explained by the partition:
// it began during the partition, and its W was acknowledged during the
// partition through a node on the other side.
func (in *Input) splitBrain(a Anomaly) bool {
	p := in.Partition
	if p == nil || a.Last == nil {
		return false
	}
	r := a.Read
	return r.Start >= p.From && r.Start < p.To && a.Last.End >= p.From && p.side(r.Node) != p.side(a.Last.Node)
}

// anomalyStrings formats anomalies, earliest read first, for samples.
func anomalyStrings(as []Anomaly) []string {
	slices.SortFunc(as, func(a, b Anomaly) int { return cmp.Compare(a.Read.Start, b.Read.Start) })
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}

func fmtCall(c *Call) string {
	s := fmt.Sprintf("t=%s..%s (%s) node=%d client=%d %s %s", fmtT(c.Start), fmtT(c.End),
		(c.End - c.Start).Round(time.Millisecond), c.Node, c.Client, c.Op, c.Key)
	if c.Op != Get {
		s += fmt.Sprintf(" v%d", c.Version)
	}
	if !c.OK {
		s += ": " + c.Err
	}
	return s
}

// fetchRates compares the DataSource fetch rates of the fault and steady
// phases (a sample when the fault's exceeds fetchRateSlack times the
// steady one). The steady rate is measured from SteadyTail (else from
// Timeline.Start), on a warm cache, where fetches are re-reads of deleted
// keys. Their rate climbs for a few seconds after the warm-up, as deleted
// keys accumulate, hence the tail and the slack; a fault that empties
// caches wholesale still stands out.
func (in *Input) fetchRates() []string {
	from, before := in.Timeline.Start, int64(0)
	if in.SteadyTail.From > 0 {
		from, before = in.SteadyTail.From, in.SteadyTail.Fetches
	}
	steady, fault := in.Timeline.FaultStart-from, in.Timeline.FaultEnd-in.Timeline.FaultStart
	if steady <= 0 || fault <= 0 {
		return nil
	}
	rs := float64(in.Fetches[Steady]-before) / steady.Seconds()
	rf := float64(in.Fetches[Fault]) / fault.Seconds()
	if rf <= fetchRateSlack*rs {
		return nil
	}
	return []string{fmt.Sprintf("%.0f fetches/s during the fault, %.0f in steady state (bound: %.1fx)", rf, rs, fetchRateSlack)}
}

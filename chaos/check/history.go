// Package check judges a chaos run: given every call the driver made (with
// its start and end on one monotonic clock), the phases of the run and the
// faults injected, it finds the reads that broke the cache's promise (no
// read of an older version, or of a deleted value, once a write was
// acknowledged), the calls that overran their deadline, the failures in
// steady state and a recovery that came too late.
//
// CheckRefresh judges the refresh scenario instead: fetch counts per hot
// and cold key, and how changed rows reach every node.
//
// Both are pure functions of their input, so they are unit-tested without
// processes; the driver (cmd/chaos) only records.
package check

import (
	"fmt"
	"time"
)

// Op is the kind of a call.
type Op uint8

// The operations the workload issues.
const (
	Get Op = iota
	Put
	Delete
)

func (o Op) String() string {
	switch o {
	case Get:
		return "get"
	case Put:
		return "put"
	case Delete:
		return "delete"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Call is one client call as the driver saw it.
type Call struct {
	// Client is the workload goroutine that made the call; Node the index of
	// the node (process) it was sent to.
	Client, Node int
	Op           Op
	Key          string
	// Version is, for a Put or a Delete, the version the write carries (the
	// driver numbers the writes of a key 1, 2, 3... in the order it issues
	// them, one at a time); for a successful Get, the version read (0: the
	// DataSource's value, i.e. no write is visible).
	Version uint64
	// Start and End are offsets from the run's epoch on the driver's
	// monotonic clock: End is when the answer (or the error) arrived.
	Start, End time.Duration
	// OK is false when the call returned an error; Err is its class
	// (ctlapi error class, or "transport" when the node did not answer).
	OK  bool
	Err string
	// BadValue is set when a Get returned a value that does not decode, or
	// that names another key: always a violation.
	BadValue string
	// Missing is set, with OK, when a Get of the refresh scenario found no
	// such row (ErrNotFound): it read the row's deletion.
	Missing bool
}

// Phase is the part of a run a call started in.
type Phase int

// Phases of a scenario: before the fault, while it lasts, after it ended.
const (
	Steady Phase = iota
	Fault
	Recovery
	// NumPhases counts the phases: loop with for p := Steady; p < NumPhases; p++.
	NumPhases
)

func (p Phase) String() string {
	switch p {
	case Steady:
		return "steady"
	case Fault:
		return "fault"
	case Recovery:
		return "recovery"
	}
	return fmt.Sprintf("phase(%d)", int(p))
}

// Timeline gives the phase boundaries, as offsets from the epoch.
type Timeline struct {
	// Start is when the steady workload began (after the warm-up reads),
	// FaultStart when the fault was injected, FaultEnd when it ended (the
	// restart was launched, SIGCONT sent, the partition healed), End when
	// the workload stopped.
	Start, FaultStart, FaultEnd, End time.Duration
}

// PhaseOf returns the phase a call starting at t belongs to.
func (tl Timeline) PhaseOf(t time.Duration) Phase {
	switch {
	case t < tl.FaultStart:
		return Steady
	case t < tl.FaultEnd:
		return Fault
	}
	return Recovery
}

// steady reports whether c ran entirely before the fault, so that the
// steady-state invariants apply to it: a call still in flight when the fault
// began may have met it (forwarded to the node just killed).
func (tl Timeline) steady(c *Call) bool { return c.End < tl.FaultStart }

// Outage is an interval during which a node could not answer its clients
// (killed, stopped, leaving, restarting). The driver sends no call to a
// node during its outage; a call already in flight when it began is
// "interrupted": the client lost its server, which says nothing about the
// cache, so such calls are exempt from the failure and deadline invariants.
// Their reads are still checked.
type Outage struct {
	Node     int
	From, To time.Duration
}

// Partition describes a network partition: from From to To, the nodes in
// Minority could reach each other but none of the others (the driver still
// reached every node, over a separate control network).
type Partition struct {
	From, To time.Duration
	Minority []int
}

// side reports whether node n was on the minority side.
func (p *Partition) side(n int) bool {
	for _, m := range p.Minority {
		if m == n {
			return true
		}
	}
	return false
}

// Stall is an interval during which the driver or a node (outside its own
// outage) was not scheduled: the host was overloaded.
type Stall struct {
	From, To time.Duration
}

// Input is everything Check needs.
type Input struct {
	Calls    []Call
	Timeline Timeline
	Outages  []Outage
	// Partition is nil when the scenario has none.
	Partition *Partition
	// Deadline is the context deadline each call was given; Slack what a
	// call may take beyond it (0.5 s in the issue).
	Deadline, Slack time.Duration
	// Stalls are the host stalls seen during the run. A deadline overrun,
	// or a steady-state failure, during a stall of at least Slack is
	// excused (counted apart): the host, not the engine, held the call.
	Stalls []Stall
	// Recovered is when, after Timeline.FaultEnd, every node was serving
	// again (negative: never); RecoveryBound how long that may take.
	Recovered, RecoveryBound time.Duration
	// Lossless: the scenario's fault must lose no acknowledged write (a
	// graceful leave, or a crash with a second copy of every entry), so a
	// lost write is a violation in every phase, and the DataSource must
	// not be fetched faster during the fault than in steady state.
	Lossless bool
	// Fetches are the DataSource fetches of each phase (all nodes).
	Fetches [NumPhases]int64
	// SteadyTail, when set, is where the steady rate is measured from:
	// the fetch-rate invariant compares the fault with the steady phase
	// from SteadyTail.From to the fault, Fetches[Steady]-SteadyTail.Fetches.
	SteadyTail SteadyTail
}

// SteadyTail marks a moment of the steady phase and the steady fetches
// counted by then.
type SteadyTail struct {
	From    time.Duration
	Fetches int64
}

// stalled reports whether a host stall of at least Slack overlapped c.
func (in *Input) stalled(c *Call) bool {
	for _, s := range in.Stalls {
		if s.To-s.From >= in.Slack && c.Start < s.To && c.End > s.From {
			return true
		}
	}
	return false
}

// interrupted reports whether c was in flight on a node during its outage.
func (in *Input) interrupted(c *Call) bool {
	for _, o := range in.Outages {
		if o.Node == c.Node && c.Start < o.To && c.End >= o.From {
			return true
		}
	}
	return false
}

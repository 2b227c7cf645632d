package check

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// ms is a readable offset from the epoch.
func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func put(node int, key string, v uint64, start, end int) Call {
	return Call{Node: node, Op: Put, Key: key, Version: v, Start: ms(start), End: ms(end), OK: true}
}

func del(node int, key string, v uint64, start, end int) Call {
	return Call{Node: node, Op: Delete, Key: key, Version: v, Start: ms(start), End: ms(end), OK: true}
}

func get(node int, key string, v uint64, start, end int) Call {
	return Call{Node: node, Op: Get, Key: key, Version: v, Start: ms(start), End: ms(end), OK: true}
}

func failed(c Call, class string) Call {
	c.OK, c.Err = false, class
	return c
}

// input builds an Input whose fault runs from 10 s to 20 s, ending at 30 s.
func input(calls ...Call) Input {
	return Input{
		Calls:    calls,
		Timeline: Timeline{FaultStart: ms(10_000), FaultEnd: ms(20_000), End: ms(30_000)},
		Deadline: 2 * time.Second, Slack: 500 * time.Millisecond,
	}
}

func invariants(r Result) []string {
	var out []string
	for _, v := range r.Violations {
		out = append(out, v.Invariant)
	}
	return out
}

// TestReadsOfAllowedValuesPass: the last acknowledged value, a concurrent
// write's value, and the DataSource's value before any write are all allowed.
func TestReadsOfAllowedValuesPass(t *testing.T) {
	cases := []struct {
		name  string
		calls []Call
	}{
		{"never written", []Call{get(0, "k", 0, 100, 110)}},
		{"after put", []Call{put(0, "k", 1, 100, 110), get(1, "k", 1, 120, 130)}},
		{"after delete", []Call{put(0, "k", 1, 100, 110), del(2, "k", 2, 120, 130), get(1, "k", 0, 140, 150)}},
		{"concurrent put, old value", []Call{put(0, "k", 1, 100, 110), put(0, "k", 2, 120, 200), get(1, "k", 1, 150, 160)}},
		{"concurrent put, new value", []Call{put(0, "k", 1, 100, 110), put(0, "k", 2, 120, 200), get(1, "k", 2, 150, 160)}},
		{"put started before the read ended", []Call{put(0, "k", 1, 100, 110), put(0, "k", 2, 155, 200), get(1, "k", 2, 150, 160)}},
		{"concurrent delete", []Call{put(0, "k", 1, 100, 110), del(0, "k", 2, 120, 200), get(1, "k", 0, 150, 160)}},
		{"read spanning two writes", []Call{put(0, "k", 1, 100, 110), put(0, "k", 2, 120, 130), put(0, "k", 3, 140, 150), get(1, "k", 2, 115, 160)}},
		{"value of a failed put, no later ack", []Call{put(0, "k", 1, 12_100, 12_110), failed(put(0, "k", 2, 12_120, 12_130), "deadline"), get(1, "k", 2, 12_140, 12_150)}},
		{"failed put not applied", []Call{put(0, "k", 1, 12_100, 12_110), failed(put(0, "k", 2, 12_120, 12_130), "deadline"), get(1, "k", 1, 12_140, 12_150)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := Check(input(tc.calls...))
			require.Empty(t, invariants(r))
			require.Empty(t, r.Stale)
			require.Empty(t, r.Lost)
		})
	}
}

// TestStaleReadDetected: an older version, or a value after a Delete, read
// after the newer write was acknowledged is a violation, in any phase.
func TestStaleReadDetected(t *testing.T) {
	cases := []struct {
		name  string
		calls []Call
		kind  Kind
	}{
		{"older version", []Call{put(0, "k", 1, 100, 110), put(0, "k", 2, 120, 130), get(1, "k", 1, 131, 140)}, KindOlder},
		{"deleted value", []Call{put(0, "k", 1, 100, 110), del(0, "k", 2, 120, 130), get(1, "k", 1, 131, 140)}, KindDeleted},
		{"older version in recovery", []Call{put(0, "k", 1, 25_000, 25_010), put(0, "k", 2, 25_020, 25_030), get(1, "k", 1, 25_031, 25_040)}, KindOlder},
		{"failed put resurfacing after a later ack", []Call{failed(put(0, "k", 1, 12_100, 12_110), "deadline"), put(0, "k", 2, 12_120, 12_130), get(1, "k", 1, 12_140, 12_150)}, KindOlder},
		{"version never written", []Call{put(0, "k", 1, 100, 110), get(1, "k", 7, 120, 130)}, KindImpossible},
		{"version written after the read ended", []Call{put(0, "k", 1, 100, 110), put(0, "k", 2, 200, 210), get(1, "k", 2, 120, 130)}, KindImpossible},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := Check(input(tc.calls...))
			require.Len(t, r.Stale, 1)
			require.Equal(t, tc.kind, r.Stale[0].Kind)
			require.False(t, r.OK())
			want := InvStaleRead
			if tc.kind == KindImpossible {
				want = InvImpossibleRead
			}
			require.Equal(t, []string{want}, invariants(r))
			require.Len(t, r.Violations[0].Samples, 1)
			require.Contains(t, r.Violations[0].Samples[0], "get k -> v")
		})
	}
}

// TestFailedWriteAnnotated: a stale read of a failed write's version says so.
func TestFailedWriteAnnotated(t *testing.T) {
	r := Check(input(failed(put(0, "k", 1, 12_100, 12_110), "deadline"), put(0, "k", 2, 12_120, 12_130), get(1, "k", 1, 12_140, 12_150)))
	require.Len(t, r.Stale, 1)
	require.True(t, r.Stale[0].FromFailedWrite)
	require.Contains(t, r.Violations[0].Samples[0], "written by a call that failed")
}

// TestLostWriteInLosslessScenario: where the fault must lose no write (a
// graceful leave, or a crash with two copies), a lost write is a violation
// in the fault and recovery phases too.
func TestLostWriteInLosslessScenario(t *testing.T) {
	in := input(
		put(0, "a", 1, 12_000, 12_010), get(1, "a", 0, 13_000, 13_010), // fault
		put(0, "b", 1, 21_000, 21_010), get(1, "b", 0, 22_000, 22_010), // recovery
		put(0, "c", 1, 12_000, 12_010), get(1, "c", 1, 13_000, 13_010), // kept
	)
	in.Lossless = true
	r := Check(in)
	require.Equal(t, []string{InvLost}, invariants(r))
	require.Equal(t, 2, r.Violations[0].Count)

	// Fetch rates: steady 0..10 s, fault 10..20 s (see input).
	in = input()
	in.Lossless = true
	in.Fetches = [NumPhases]int64{Steady: 100, Fault: 150}
	r = Check(in)
	require.True(t, r.OK(), "within the slack")
	in.Fetches[Fault] = 151
	require.Equal(t, []string{InvFetchRate}, invariants(Check(in)))
	// Measured over the steady tail: 5 s with 80 fetches, 16/s.
	in.SteadyTail = SteadyTail{From: ms(5_000), Fetches: 20}
	in.Fetches[Fault] = 240
	r = Check(in)
	require.True(t, r.OK(), "24/s within 1.5x of the tail's 16/s")
	in.Fetches[Fault] = 241
	require.Equal(t, []string{InvFetchRate}, invariants(Check(in)))
	in.Lossless = false
	r = Check(in)
	require.True(t, r.OK(), "only lossless scenarios bound the rate")
}

// TestLostWriteClassified: reading the DataSource's value after an
// acknowledged Put is a lost write: reported during and after a fault,
// a violation in steady state.
func TestLostWriteClassified(t *testing.T) {
	r := Check(input(
		put(0, "a", 1, 12_000, 12_010), get(1, "a", 0, 13_000, 13_010), get(2, "a", 0, 13_100, 13_110), // fault: 1 write, 2 reads
		put(0, "b", 1, 21_000, 21_010), get(1, "b", 0, 22_000, 22_010), // recovery
	))
	require.True(t, r.OK(), invariants(r))
	require.Empty(t, r.Stale)
	require.Len(t, r.Lost, 3)
	require.Equal(t, 1, r.Phases[Fault].LostWrites)
	require.Equal(t, 2, r.Phases[Fault].LostReads)
	require.Equal(t, 1, r.Phases[Recovery].LostWrites)

	r = Check(input(put(0, "a", 1, 100, 110), get(1, "a", 0, 200, 210)))
	require.Equal(t, []string{InvSteadyLost}, invariants(r))
	require.Equal(t, 1, r.Phases[Steady].LostWrites)

	// A read still in flight when the fault began may have met it.
	r = Check(input(put(0, "a", 1, 100, 110), get(1, "a", 0, 9_990, 10_050)))
	require.True(t, r.OK(), invariants(r))
	require.Equal(t, 1, r.Phases[Steady].LostWrites)
}

// TestDeadlineOverrun: a call longer than deadline + slack is a violation,
// unless its node's outage interrupted it.
func TestDeadlineOverrun(t *testing.T) {
	in := input(failed(get(1, "k", 0, 12_000, 14_600), "deadline"), failed(get(2, "k", 0, 12_000, 16_000), "transport"))
	in.Outages = []Outage{{Node: 2, From: ms(11_000), To: ms(20_000)}}
	r := Check(in)
	require.Equal(t, []string{InvDeadline}, invariants(r))
	require.Len(t, r.Overruns, 1)
	require.Equal(t, 1, r.Overruns[0].Node)
	require.Equal(t, 1, r.Phases[Fault].Interrupted)
	require.Equal(t, 1, r.Phases[Fault].Failures)
	require.Equal(t, 1, r.Phases[Fault].FailureClasses["deadline"])

	r = Check(input(failed(get(1, "k", 0, 12_000, 14_400), "deadline")))
	require.True(t, r.OK(), invariants(r))
}

// TestHostStallExcuses: an overrun or a steady failure during a host stall
// of at least the slack is counted apart; a shorter stall excuses nothing.
func TestHostStallExcuses(t *testing.T) {
	calls := []Call{failed(get(1, "k", 0, 1_000, 4_000), "deadline"), get(2, "j", 0, 12_000, 15_000)}
	in := input(calls...)
	in.Stalls = []Stall{{From: ms(2_000), To: ms(3_000)}, {From: ms(13_000), To: ms(13_600)}}
	r := Check(in)
	require.True(t, r.OK(), invariants(r))
	require.Equal(t, 1, r.Phases[Steady].Excused)
	require.Equal(t, 1, r.Phases[Fault].Excused)

	in.Stalls = []Stall{{From: ms(2_000), To: ms(2_400)}, {From: ms(13_000), To: ms(13_400)}}
	r = Check(in)
	require.ElementsMatch(t, []string{InvDeadline, InvSteadyFailure}, invariants(r))
	require.Equal(t, 2, r.Totals().Overruns)
}

// TestSteadyFailure: a failure before the fault is a violation, after it is
// only counted.
func TestSteadyFailure(t *testing.T) {
	r := Check(input(failed(get(1, "k", 0, 100, 110), "remote"), failed(put(1, "j", 1, 12_000, 12_010), "peer_unavailable")))
	require.Equal(t, []string{InvSteadyFailure}, invariants(r))
	require.Equal(t, 1, r.Violations[0].Count)
	require.Equal(t, 1, r.Phases[Steady].Failures)
	require.Equal(t, 1, r.Phases[Fault].Failures)

	// A call still in flight when the fault began may fail because of it.
	r = Check(input(failed(get(1, "k", 0, 9_500, 11_500), "deadline")))
	require.True(t, r.OK(), invariants(r))
	require.Equal(t, 1, r.Phases[Steady].Failures)
}

// TestSplitBrainDuringPartitionOnly: a stale read across the partition,
// while it lasts, is reported as split-brain; the same read after the heal,
// or within one side, is a violation.
func TestSplitBrainDuringPartitionOnly(t *testing.T) {
	part := &Partition{From: ms(10_000), To: ms(20_000), Minority: []int{3, 4}}
	cases := []struct {
		name       string
		calls      []Call
		splitBrain bool
	}{
		{"across sides, during", []Call{put(0, "k", 1, 100, 110), put(0, "k", 2, 12_000, 12_010), get(3, "k", 1, 13_000, 13_010)}, true},
		{"minority write, majority read", []Call{put(3, "k", 1, 100, 110), put(4, "k", 2, 12_000, 12_010), get(1, "k", 1, 13_000, 13_010)}, true},
		{"same side, during", []Call{put(0, "k", 1, 100, 110), put(0, "k", 2, 12_000, 12_010), get(1, "k", 1, 13_000, 13_010)}, false},
		{"write before the partition", []Call{put(0, "k", 1, 100, 110), put(0, "k", 2, 200, 210), get(3, "k", 1, 13_000, 13_010)}, false},
		{"after the heal", []Call{put(0, "k", 1, 100, 110), put(0, "k", 2, 12_000, 12_010), get(3, "k", 1, 20_500, 20_510)}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := input(tc.calls...)
			in.Partition = part
			r := Check(in)
			if tc.splitBrain {
				require.True(t, r.OK(), invariants(r))
				require.Len(t, r.SplitBrain, 1)
				require.Equal(t, 1, r.Totals().SplitBrain)
				return
			}
			require.Equal(t, []string{InvStaleRead}, invariants(r))
			require.Empty(t, r.SplitBrain)
		})
	}
}

// TestRecoveryBound: recovery later than the bound, or never, is a violation.
func TestRecoveryBound(t *testing.T) {
	for _, tc := range []struct {
		name      string
		recovered time.Duration
		ok        bool
	}{
		{"in time", 3 * time.Second, true},
		{"late", 16 * time.Second, false},
		{"never", -1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := input()
			in.Recovered, in.RecoveryBound = tc.recovered, 15*time.Second
			r := Check(in)
			if tc.ok {
				require.True(t, r.OK(), invariants(r))
			} else {
				require.Equal(t, []string{InvRecovery}, invariants(r))
			}
		})
	}
}

// TestCorruptValue: a value for another key is a violation.
func TestCorruptValue(t *testing.T) {
	c := get(0, "k", 0, 100, 110)
	c.BadValue = `value "k=j;v=3" names key "j"`
	r := Check(input(c))
	require.Equal(t, []string{InvCorruptValue}, invariants(r))
}

// TestOverlappingWritesRejected: the checker refuses a history that breaks
// its one-writer-per-key assumption instead of judging it wrongly.
func TestOverlappingWritesRejected(t *testing.T) {
	r := Check(input(put(0, "k", 1, 100, 200), put(1, "k", 2, 150, 250), get(1, "k", 1, 300, 310)))
	require.Equal(t, []string{InvHistory}, invariants(r))
}

// TestSamplesBounded: a violation lists at most maxSamples calls but counts all.
func TestSamplesBounded(t *testing.T) {
	calls := []Call{put(0, "k", 1, 100, 110), put(0, "k", 2, 120, 130)}
	for i := range 25 {
		calls = append(calls, get(1, "k", 1, 200+i*10, 205+i*10))
	}
	r := Check(input(calls...))
	require.Equal(t, 25, r.Violations[0].Count)
	require.Len(t, r.Violations[0].Samples, maxSamples)
	require.Equal(t, 25, r.Phases[Steady].Stale)
}

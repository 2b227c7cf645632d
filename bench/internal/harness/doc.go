// Package harness runs the same workloads against every System and the raw
// baselines, and collects the figures the report prints.
//
// Workloads (Config holds the sizes):
//
//   - W1 read-heavy: keys drawn Zipf(s=1.01, v=1) (math/rand/v2) over Keys
//     keys, 95 % Get / 5 % Put, Callers concurrent callers, caller i on
//     node i mod n.
//   - W2 uniform reads: 100 % Get, uniform keys, same callers.
//   - W3 cold miss storm: StormGets concurrent Gets (released together) of
//     StormKeys never-seen keys, DataSource latency StormLatency; counts
//     DataSource calls (total and the worst key). It runs StormRounds times
//     with new keys; the wall time reported is the median round's.
//   - W4 GetMany: ManyCallers callers each fetching batches of BatchSize
//     uniform keys.
//   - W5 churn: W1 while node 2 leaves gracefully and later rejoins; hit
//     ratio (1 - DataSource calls / Gets), DataSource calls, errors and
//     throughput before, during (from the leave until the rejoined node is
//     seen by everyone) and after.
//
// Before W1 every system is filled by reading all Keys keys once through
// the nodes round-robin (read-through, or the system's emulation), with a
// DataSource that answers at once; the heap growth of that fill divided by
// Keys is the memory per cached entry. W1, W2, W4 and W5 run with a
// DataSource latency of MissLatency.
//
// Every operation is timed into a per-caller histogram (package hist);
// Puts (W1, W5) also into one of their own, since the quantiles of all
// operations hide them among the Gets.
// Allocations, CPU time (getrusage) and read/write system calls
// (/proc/self/io) per operation are process-wide deltas over the workload
// divided by its operations, so they include the server side of every node
// and any background work of the system. Remote fetches per Get come from
// the system's own counters where it has them (sut.RemoteCounter).
package harness

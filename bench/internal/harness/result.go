package harness

import (
	"time"

	"github.com/distcache/distcache/bench/internal/hist"
)

// Workload identifiers, in run order.
const (
	W1 = "W1"
	W2 = "W2"
	W3 = "W3"
	W4 = "W4"
	W5 = "W5"
)

// Workloads lists the workload identifiers in run order.
func Workloads() []string { return []string{W1, W2, W3, W4, W5} }

// WorkloadName describes workload w in one line.
func WorkloadName(w string) string {
	switch w {
	case W1:
		return "read-heavy Zipf(1.01), 95% Get / 5% Put, 64 callers"
	case W2:
		return "uniform reads, 64 callers"
	case W3:
		return "cold miss storm: 1,000 concurrent Gets of 100 cold keys, 5 ms DataSource (repeated with new keys)"
	case W4:
		return "GetMany of 100 uniform keys, 16 callers"
	case W5:
		return "W1 while node 2 leaves and rejoins"
	}
	return w
}

// Result is one workload on one system (or one baseline).
type Result struct {
	System   string `json:"system"`
	Workload string `json:"workload"`
	// Ops are completed operations: Gets and Puts, batches in W4.
	Ops int64 `json:"ops"`
	// Gets counts Get operations (keys requested in W4).
	Gets   int64 `json:"gets"`
	Errors int64 `json:"errors"`
	// PutErrors is the part of Errors that Puts returned (W1, W5).
	PutErrors int64   `json:"put_errors,omitempty"`
	Secs      float64 `json:"seconds"`
	// OpsPerSec is Ops / Secs (batches/s in W4).
	OpsPerSec float64 `json:"ops_per_sec"`
	// KeysPerSec is found keys per second in W4.
	KeysPerSec float64       `json:"keys_per_sec,omitempty"`
	P50        time.Duration `json:"p50_ns"`
	P99        time.Duration `json:"p99_ns"`
	P999       time.Duration `json:"p999_ns"`
	// PutP50 and PutP99 are the latencies of Puts alone (W1, W5), which
	// the quantiles above mix with Gets.
	PutP50 time.Duration `json:"put_p50_ns,omitempty"`
	PutP99 time.Duration `json:"put_p99_ns,omitempty"`
	// DSCalls is the number of DataSource calls during the workload.
	DSCalls int64 `json:"datasource_calls"`
	// HitRatio is 1 - DSCalls/Gets.
	HitRatio float64 `json:"hit_ratio"`
	// AllocsPerOp is the process-wide Mallocs delta divided by Ops.
	AllocsPerOp float64 `json:"allocs_per_op"`
	// CPUPerOp is the process's user+system CPU time divided by Ops.
	CPUPerOp time.Duration `json:"cpu_per_op_ns"`
	// SyscallsPerOp is the process's read+write system calls (sockets
	// included) divided by Ops; -1 when unknown.
	SyscallsPerOp float64 `json:"syscalls_per_op"`
	// RemotePerGet is the system's remote fetches (sut.RemoteCounter)
	// divided by Gets; -1 when the system does not count them.
	RemotePerGet float64 `json:"remote_per_get"`
	// MaxCallsPerKey is the worst key's DataSource calls (W3).
	MaxCallsPerKey int `json:"max_calls_per_key,omitempty"`
	// Rounds and WallMedian describe W3: storms run, and the median time
	// from release to the last Get's return.
	Rounds     int           `json:"rounds,omitempty"`
	WallMedian time.Duration `json:"wall_median_ns,omitempty"`
	// Phases of W5, and how long StopNode and RestartNode took.
	Phases      []Phase `json:"phases,omitempty"`
	StopSecs    float64 `json:"stop_seconds,omitempty"`
	RestartSecs float64 `json:"restart_seconds,omitempty"`
	// FirstError is the first operation error seen, if any.
	FirstError string `json:"first_error,omitempty"`
	// Err is set when the workload could not run.
	Err string `json:"error,omitempty"`
}

// Phase is one window of W5.
type Phase struct {
	Name      string        `json:"name"`
	Secs      float64       `json:"seconds"`
	Gets      int64         `json:"gets"`
	Ops       int64         `json:"ops"`
	Errors    int64         `json:"errors"`
	PutErrors int64         `json:"put_errors"`
	DSCalls   int64         `json:"datasource_calls"`
	HitRatio  float64       `json:"hit_ratio"`
	OpsPerSec float64       `json:"ops_per_sec"`
	P99       time.Duration `json:"p99_ns"`
}

// SystemReport is everything measured on one system.
type SystemReport struct {
	Name  string   `json:"name"`
	Notes []string `json:"notes"`
	// StartSecs is how long Start took (3 nodes up and converged).
	StartSecs float64 `json:"start_seconds"`
	// FillSecs, FillErrors and MemPerEntry describe the fill before W1:
	// heap growth (after GC) divided by Keys.
	FillSecs    float64 `json:"fill_seconds"`
	FillErrors  int64   `json:"fill_errors"`
	MemPerEntry float64 `json:"mem_bytes_per_entry"`
	// MemNote says why MemPerEntry is 0 when the measurement failed.
	MemNote string   `json:"mem_note,omitempty"`
	Results []Result `json:"results"`
	// Err is set when Start or the fill failed (no workload ran then).
	Err string `json:"error,omitempty"`
	// CloseErr is what Close returned after the workloads, if anything.
	CloseErr string `json:"close_error,omitempty"`
}

// Result returns the result of workload w, if it ran.
func (s *SystemReport) Result(w string) (Result, bool) {
	for _, r := range s.Results {
		if r.Workload == w {
			return r, true
		}
	}
	return Result{}, false
}

// Baseline names.
const (
	BaseRistrettoZipf    = "ristretto Get, Zipf"
	BaseRistrettoUniform = "ristretto Get, uniform"
	BaseTCPPipeline      = "TCP pipeline, 1 conn x 64"
	BaseTCPPingPong      = "TCP ping-pong"
)

// Baselines are the raw limits measured in the same run.
type Baselines struct {
	Results []Result `json:"results"`
	// MemRistretto and MemMap are heap bytes per entry for Keys entries.
	MemRistretto float64 `json:"mem_ristretto_bytes_per_entry"`
	MemMap       float64 `json:"mem_map_bytes_per_entry"`
}

// Result returns the baseline named name.
func (b *Baselines) Result(name string) (Result, bool) {
	for _, r := range b.Results {
		if r.System == name {
			return r, true
		}
	}
	return Result{}, false
}

// Report is a whole run.
type Report struct {
	Config    Config         `json:"config"`
	Baselines Baselines      `json:"baselines"`
	Systems   []SystemReport `json:"systems"`
	TotalSecs float64        `json:"total_seconds"`
}

// System returns the report of the named system.
func (r *Report) System(name string) (*SystemReport, bool) {
	for i := range r.Systems {
		if r.Systems[i].Name == name {
			return &r.Systems[i], true
		}
	}
	return nil, false
}

// fill derives the rates and ratios of r from its counts, its latency
// histogram and the meters read before and after it.
func fill(r *Result, h *hist.Histogram, before, after meter) {
	if r.Secs > 0 {
		r.OpsPerSec = float64(r.Ops) / r.Secs
	}
	if h != nil {
		r.P50, r.P99, r.P999 = h.Quantile(0.50), h.Quantile(0.99), h.Quantile(0.999)
	}
	if r.Ops > 0 {
		r.AllocsPerOp = float64(after.mallocs-before.mallocs) / float64(r.Ops)
		r.CPUPerOp = (after.cpu - before.cpu) / time.Duration(r.Ops)
	}
	r.SyscallsPerOp = -1
	if r.Ops > 0 && before.syscalls >= 0 && after.syscalls >= 0 {
		r.SyscallsPerOp = float64(after.syscalls-before.syscalls) / float64(r.Ops)
	}
	r.RemotePerGet = -1
	if r.Gets > 0 {
		r.HitRatio = 1 - float64(r.DSCalls)/float64(r.Gets)
		if before.remote >= 0 && after.remote >= 0 {
			r.RemotePerGet = float64(after.remote-before.remote) / float64(r.Gets)
		}
	}
}

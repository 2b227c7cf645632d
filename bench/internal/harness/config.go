package harness

import (
	"errors"
	"fmt"
	"time"
)

// ErrInvalidConfig wraps every Config.Validate error.
var ErrInvalidConfig = errors.New("harness: invalid config")

// Config sizes the workloads. DefaultConfig and ShortConfig give the two
// modes; zero values are invalid.
type Config struct {
	// Nodes per system (3).
	Nodes int
	// Keys is the key-space size of W1, W2, W4, W5 and of the fill (100,000;
	// short 10,000).
	Keys int
	// ValueSize is the DataSource's value size in bytes (100).
	ValueSize int
	// Callers is the number of concurrent callers in W1, W2 and W5 (64).
	Callers int
	// PutFraction is the share of Puts in W1 and W5 (0.05).
	PutFraction float64
	// Duration bounds W1, W2 and W4 each, and each of W5's three phases
	// gets a third of 1.5x it (8 s; short 300 ms). Baselines run Duration/2.
	Duration time.Duration
	// MissLatency is the DataSource latency in W1, W2, W4 and W5 (1 ms).
	MissLatency time.Duration
	// StormGets, StormKeys and StormLatency shape W3 (1,000 Gets of 100
	// keys, 5 ms); StormRounds is how often it runs, with new keys each
	// time (5; short 2).
	StormGets    int
	StormKeys    int
	StormLatency time.Duration
	StormRounds  int
	// ManyCallers and BatchSize shape W4 (16 callers, 100 keys).
	ManyCallers int
	BatchSize   int
	// ChurnNode is the node W5 stops and restarts (2).
	ChurnNode int
	// Workloads selects the workloads to run (nil: all). The fill always
	// runs.
	Workloads []string
	// Short marks the CI mode (only reported).
	Short bool
}

// runs reports whether workload w is selected.
func (c Config) runs(w string) bool {
	if len(c.Workloads) == 0 {
		return true
	}
	for _, x := range c.Workloads {
		if x == w {
			return true
		}
	}
	return false
}

// DefaultConfig is the full run.
func DefaultConfig() Config {
	return Config{
		Nodes:        3,
		Keys:         100_000,
		ValueSize:    100,
		Callers:      64,
		PutFraction:  0.05,
		Duration:     8 * time.Second,
		MissLatency:  time.Millisecond,
		StormGets:    1000,
		StormKeys:    100,
		StormLatency: 5 * time.Millisecond,
		StormRounds:  5,
		ManyCallers:  16,
		BatchSize:    100,
		ChurnNode:    2,
	}
}

// ShortConfig is the CI mode: same workloads, fewer keys, 300 ms each.
func ShortConfig() Config {
	c := DefaultConfig()
	c.Keys = 10_000
	c.Duration = 300 * time.Millisecond
	c.StormRounds = 2
	c.Short = true
	return c
}

// Validate reports every invalid field.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Nodes < 2 {
		bad("Nodes must be >= 2, got %d", c.Nodes)
	}
	if c.Keys < 1 {
		bad("Keys must be >= 1, got %d", c.Keys)
	}
	if c.ValueSize < 1 {
		bad("ValueSize must be >= 1, got %d", c.ValueSize)
	}
	if c.Callers < 1 {
		bad("Callers must be >= 1, got %d", c.Callers)
	}
	if c.PutFraction < 0 || c.PutFraction > 1 {
		bad("PutFraction must be in [0, 1], got %v", c.PutFraction)
	}
	if c.Duration <= 0 {
		bad("Duration must be > 0, got %v", c.Duration)
	}
	if c.MissLatency < 0 {
		bad("MissLatency must be >= 0, got %v", c.MissLatency)
	}
	if c.StormGets < 1 || c.StormKeys < 1 || c.StormKeys > c.StormGets {
		bad("StormGets and StormKeys must be >= 1 with StormKeys <= StormGets, got %d and %d", c.StormGets, c.StormKeys)
	}
	if c.StormRounds < 1 {
		bad("StormRounds must be >= 1, got %d", c.StormRounds)
	}
	if c.StormLatency < 0 {
		bad("StormLatency must be >= 0, got %v", c.StormLatency)
	}
	if c.ManyCallers < 1 || c.BatchSize < 1 {
		bad("ManyCallers and BatchSize must be >= 1, got %d and %d", c.ManyCallers, c.BatchSize)
	}
	for _, w := range c.Workloads {
		if WorkloadName(w) == w {
			bad("Workloads: unknown workload %q (want W1..W5)", w)
		}
	}
	if c.ChurnNode < 0 || c.ChurnNode >= c.Nodes {
		bad("ChurnNode must be in [0, Nodes), got %d", c.ChurnNode)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
	}
	return nil
}

package warmup

import (
	"errors"
	"fmt"
	"time"
)

// Defaults applied to zero fields of a Config.
const (
	defaultMaxHotKeys    = 100
	defaultMinHits       = 2
	defaultConcurrency   = 4
	defaultTimeout       = 2 * time.Second
	defaultDecayInterval = time.Minute
	defaultSampleEvery   = 1
)

// Upper bounds checked by Validate.
const (
	maxHotKeysLimit = 100_000
	maxConcurrency  = 1024
	maxSampleEvery  = 1 << 16
)

// ErrInvalidConfig wraps every error of Config.Validate.
var ErrInvalidConfig = errors.New("warmup: invalid config")

// Config configures hot-key tracking and prefetching. Numeric fields use
// their default when zero, so warmup.Config{WarmOnJoin: true, WarmOnLeave:
// true} is a complete configuration; DefaultConfig returns every default
// with both triggers on.
type Config struct {
	// MaxHotKeys is how many of each keyspace's most requested keys a node
	// remembers and prefetches, per keyspace. The tracker keeps about four
	// times as many candidates (bounded memory, no allocation per access
	// once full). Zero: 100. Negative: track no keys at all; warmup then
	// prefetches only the explicit warm keys. At most 100,000.
	MaxHotKeys int
	// MinHits is the smallest (decayed) hit count that makes a key hot:
	// keys seen fewer times are not prefetched. Zero: 2.
	MinHits int
	// Concurrency is how many prefetches a node runs, or asks an owner for,
	// at a time during one warmup round. Higher warms faster but loads the
	// DataSource harder during topology changes. Zero: 4. At most 1024.
	Concurrency int
	// Timeout bounds each prefetch; the keyspace read timeout applies
	// instead when it is smaller. Zero: 2 s.
	Timeout time.Duration
	// WarmOnJoin prefetches when a member joins the cluster, and when this
	// node starts. Off in the zero value; on in DefaultConfig.
	WarmOnJoin bool
	// WarmOnLeave prefetches when a member leaves or fails. Off in the
	// zero value; on in DefaultConfig.
	WarmOnLeave bool
	// DecayInterval is how often every hit count is halved, so that keys
	// nobody asks for any more age out within a few intervals. Zero: 1 min.
	// Shorter reacts faster to shifts in traffic, longer remembers keys that
	// are hot in bursts.
	DecayInterval time.Duration
	// SampleEvery records one access in SampleEvery, chosen at random, and
	// scales the counts back up: it divides the tracking cost (a shard lock
	// and a map update) at the price of noisier counts. Raise it (8, 16) for
	// very hot read paths on many cores. Zero or 1: record every access.
	// At most 65,536.
	SampleEvery int
	// RefreshInterval turns on refresh-ahead: every interval, each node
	// refetches the hot keys it owns (those at or above MinHits in its
	// tracker) through the keyspace's coalescing, rate limiter and circuit
	// breaker, and stores the new value (replicating it, and invalidating
	// other nodes' copies when it changed; a row the DataSource no longer
	// has is deleted as by a Delete). Other nodes never refresh a key, so
	// the DataSource sees one fetch per hot key per interval for the whole
	// cluster; cold keys are never refreshed; a failed refresh keeps the
	// current value. A row changed or deleted in the DataSource thus
	// reaches every node within about one interval without a Put. Zero: off.
	RefreshInterval time.Duration
}

// DefaultConfig returns the defaults with WarmOnJoin and WarmOnLeave on.
func DefaultConfig() Config {
	return Config{
		MaxHotKeys:    defaultMaxHotKeys,
		MinHits:       defaultMinHits,
		Concurrency:   defaultConcurrency,
		Timeout:       defaultTimeout,
		WarmOnJoin:    true,
		WarmOnLeave:   true,
		DecayInterval: defaultDecayInterval,
		SampleEvery:   defaultSampleEvery,
	}
}

// WithDefaults returns c with every zero numeric field set to its default
// (the triggers are left as they are).
func (c Config) WithDefaults() Config {
	if c.MaxHotKeys == 0 {
		c.MaxHotKeys = defaultMaxHotKeys
	}
	if c.MinHits == 0 {
		c.MinHits = defaultMinHits
	}
	if c.Concurrency == 0 {
		c.Concurrency = defaultConcurrency
	}
	if c.Timeout == 0 {
		c.Timeout = defaultTimeout
	}
	if c.DecayInterval == 0 {
		c.DecayInterval = defaultDecayInterval
	}
	if c.SampleEvery == 0 {
		c.SampleEvery = defaultSampleEvery
	}
	return c
}

// Validate reports every invalid field, wrapped in ErrInvalidConfig.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.MaxHotKeys > maxHotKeysLimit {
		bad("MaxHotKeys must be at most %d, got %d", maxHotKeysLimit, c.MaxHotKeys)
	}
	if c.MinHits < 0 {
		bad("MinHits must be >= 0, got %d", c.MinHits)
	}
	if c.Concurrency < 0 || c.Concurrency > maxConcurrency {
		bad("Concurrency must be in [0, %d], got %d", maxConcurrency, c.Concurrency)
	}
	if c.Timeout < 0 {
		bad("Timeout must be >= 0, got %v", c.Timeout)
	}
	if c.DecayInterval < 0 {
		bad("DecayInterval must be >= 0, got %v", c.DecayInterval)
	}
	if c.RefreshInterval < 0 {
		bad("RefreshInterval must be >= 0, got %v", c.RefreshInterval)
	}
	if c.SampleEvery < 0 || c.SampleEvery > maxSampleEvery {
		bad("SampleEvery must be in [0, %d], got %d", maxSampleEvery, c.SampleEvery)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
	}
	return nil
}

// HotKey is a key a node tracks as hot, with its estimated recent hit
// count (see Engine.HotKeys).
type HotKey struct {
	Key  string
	Hits int64
}

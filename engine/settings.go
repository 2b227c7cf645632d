package engine

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// RateLimitConfig bounds how often DataSource.Fetch runs on one node (a token
// bucket from golang.org/x/time/rate). Limits are per node and per keyspace:
// a cluster of N nodes may call the DataSource up to N times the rate.
type RateLimitConfig struct {
	// RequestsPerSecond is the sustained rate of fetches; must be > 0.
	RequestsPerSecond float64
	// Burst is how many fetches may run back to back; must be >= 1.
	Burst int
	// WaitTimeout is how long a miss may wait for a token. Zero means "allow
	// or deny at once": a denial is ErrDataSourceRateLimited. A positive value
	// waits up to it, then fails with a deadline error.
	WaitTimeout time.Duration
}

// validate reports the first invalid field.
func (c RateLimitConfig) validate() error {
	switch {
	case math.IsNaN(c.RequestsPerSecond) || math.IsInf(c.RequestsPerSecond, 0) || c.RequestsPerSecond <= 0:
		return fmt.Errorf("RequestsPerSecond must be a finite number > 0, got %v", c.RequestsPerSecond)
	case c.Burst < 1:
		//lint:ignore ST1005 the message starts with the field's name, like its siblings
		return fmt.Errorf("Burst must be >= 1, got %d", c.Burst)
	case c.WaitTimeout < 0:
		return fmt.Errorf("WaitTimeout must be >= 0, got %v", c.WaitTimeout)
	}
	return nil
}

// CircuitBreakerConfig opens a breaker (sony/gobreaker) around
// DataSource.Fetch after FailureThreshold consecutive failures; while open,
// misses fail fast with ErrDataSourceCircuitOpen. After ResetTimeout one probe
// fetch is let through (half-open): success closes the breaker, failure opens
// it again. ErrNotFound and the caller's own cancellation never count as
// failures.
type CircuitBreakerConfig struct {
	// FailureThreshold is the number of consecutive failures that opens the
	// breaker; must be >= 1.
	FailureThreshold int
	// ResetTimeout is how long the breaker stays open before a probe; must be > 0.
	ResetTimeout time.Duration
}

// validate reports the first invalid field.
func (c CircuitBreakerConfig) validate() error {
	switch {
	case c.FailureThreshold < 1:
		return fmt.Errorf("FailureThreshold must be >= 1, got %d", c.FailureThreshold)
	case c.ResetTimeout <= 0:
		return fmt.Errorf("ResetTimeout must be > 0, got %v", c.ResetTimeout)
	}
	return nil
}

// ksSettings are the resolved per-keyspace knobs. The engine builds them from
// the KeySpace, the engine-wide options and the per-keyspace overrides (see
// the option docs for precedence) and validates them in New.
type ksSettings struct {
	// MaxBytes is the local store budget per node (key + value + overhead).
	MaxBytes int64
	// DefaultTTL applies when neither the Entry nor KeySpace.ExpiresAt gives an
	// expiry. Zero means entries never expire by time.
	DefaultTTL time.Duration
	// ReadTimeout bounds a Get (including a forwarded hop and the DataSource
	// fetch); WriteTimeout bounds Put and Delete. Both must be > 0.
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	// WarmKeys are always prefetched by warmup.
	WarmKeys []string
	// NegativeTTL remembers a DataSource ErrNotFound for this long, so
	// repeated Gets of a missing key do not reach the DataSource. Zero disables.
	NegativeTTL time.Duration
	// MaxStale enables stale-on-error: an expired entry is kept this long past
	// its expiry and returned when its refetch fails, is rate limited or meets
	// an open breaker. Zero disables.
	MaxStale time.Duration
	// NearCacheMaxBytes and NearCacheTTL enable the near cache: a node keeps
	// values it fetched from their owners for up to NearCacheTTL (never past
	// the entry's own expiry), in a store of NearCacheMaxBytes. Put and
	// Delete drop near copies on every node before they return; a node that
	// cannot be reached keeps its copies until NearCacheTTL at most. Both
	// zero disables it; otherwise both must be > 0.
	NearCacheMaxBytes int64
	NearCacheTTL      time.Duration
	// RateLimit and CircuitBreaker protect the DataSource; nil disables each.
	RateLimit      *RateLimitConfig
	CircuitBreaker *CircuitBreakerConfig
}

// validate reports every invalid field, each error naming it.
func (s ksSettings) validate() error {
	var errs []error
	if s.MaxBytes <= 0 {
		errs = append(errs, fmt.Errorf("MaxBytes must be > 0, got %d", s.MaxBytes))
	}
	if s.DefaultTTL < 0 {
		errs = append(errs, fmt.Errorf("DefaultTTL must be >= 0, got %v", s.DefaultTTL))
	}
	if s.ReadTimeout <= 0 {
		errs = append(errs, fmt.Errorf("ReadTimeout must be > 0, got %v", s.ReadTimeout))
	}
	if s.WriteTimeout <= 0 {
		errs = append(errs, fmt.Errorf("WriteTimeout must be > 0, got %v", s.WriteTimeout))
	}
	for i, k := range s.WarmKeys {
		if k == "" {
			errs = append(errs, fmt.Errorf("WarmKeys[%d] is empty", i))
		}
	}
	if s.NegativeTTL < 0 {
		errs = append(errs, fmt.Errorf("NegativeTTL must be >= 0, got %v", s.NegativeTTL))
	}
	if s.MaxStale < 0 {
		errs = append(errs, fmt.Errorf("MaxStale must be >= 0, got %v", s.MaxStale))
	}
	if s.NearCacheMaxBytes < 0 || s.NearCacheTTL < 0 || (s.NearCacheMaxBytes > 0) != (s.NearCacheTTL > 0) {
		errs = append(errs, fmt.Errorf("NearCacheMaxBytes and NearCacheTTL must be both > 0 (near cache on) or both 0 (off), got %d and %v", s.NearCacheMaxBytes, s.NearCacheTTL))
	}
	if s.RateLimit != nil {
		if err := s.RateLimit.validate(); err != nil {
			errs = append(errs, fmt.Errorf("RateLimit: %w", err))
		}
	}
	if s.CircuitBreaker != nil {
		if err := s.CircuitBreaker.validate(); err != nil {
			errs = append(errs, fmt.Errorf("CircuitBreaker: %w", err))
		}
	}
	return errors.Join(errs...)
}

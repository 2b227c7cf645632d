package engine

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestSettingsValidate(t *testing.T) {
	good := ksSettings{MaxBytes: 1, ReadTimeout: time.Second, WriteTimeout: time.Second}
	if err := good.validate(); err != nil {
		t.Fatal(err)
	}
	withNear := good
	withNear.NearCacheMaxBytes, withNear.NearCacheTTL = 1<<20, time.Second
	if err := withNear.validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		mod  func(*ksSettings)
		want string
	}{
		{"max bytes", func(s *ksSettings) { s.MaxBytes = 0 }, "MaxBytes"},
		{"ttl", func(s *ksSettings) { s.DefaultTTL = -1 }, "DefaultTTL"},
		{"read", func(s *ksSettings) { s.ReadTimeout = 0 }, "ReadTimeout"},
		{"write", func(s *ksSettings) { s.WriteTimeout = -1 }, "WriteTimeout"},
		{"warm key", func(s *ksSettings) { s.WarmKeys = []string{"a", ""} }, "WarmKeys[1]"},
		{"negative ttl", func(s *ksSettings) { s.NegativeTTL = -1 }, "NegativeTTL"},
		{"stale", func(s *ksSettings) { s.MaxStale = -1 }, "MaxStale"},
		{"near size only", func(s *ksSettings) { s.NearCacheMaxBytes = 1 }, "NearCacheTTL"},
		{"near ttl only", func(s *ksSettings) { s.NearCacheTTL = time.Second }, "NearCacheMaxBytes"},
		{"near negative", func(s *ksSettings) { s.NearCacheMaxBytes, s.NearCacheTTL = -1, -1 }, "NearCacheMaxBytes"},
		{"rate", func(s *ksSettings) { s.RateLimit = &RateLimitConfig{RequestsPerSecond: math.NaN(), Burst: 1} }, "RateLimit: RequestsPerSecond"},
		{"burst", func(s *ksSettings) { s.RateLimit = &RateLimitConfig{RequestsPerSecond: 1} }, "Burst"},
		{"wait", func(s *ksSettings) { s.RateLimit = &RateLimitConfig{RequestsPerSecond: 1, Burst: 1, WaitTimeout: -1} }, "WaitTimeout"},
		{"threshold", func(s *ksSettings) { s.CircuitBreaker = &CircuitBreakerConfig{ResetTimeout: time.Second} }, "FailureThreshold"},
		{"reset", func(s *ksSettings) { s.CircuitBreaker = &CircuitBreakerConfig{FailureThreshold: 1} }, "ResetTimeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := good
			tc.mod(&s)
			err := s.validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("validate() = %v, want an error naming %s", err, tc.want)
			}
		})
	}
}

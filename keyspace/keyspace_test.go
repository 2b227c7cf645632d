package keyspace

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestNew(t *testing.T) {
	ds := DataSourceFunc(func(_ context.Context, key string) ([]byte, error) {
		if key == "missing" {
			return nil, ErrNotFound
		}
		return []byte(key), nil
	})
	ks := New("users", 1<<20, ds)
	if ks.Name() != "users" || ks.MaxBytes() != 1<<20 || !ks.ExpiresAt(context.Background(), "k").IsZero() {
		t.Fatalf("unexpected keyspace %+v", ks)
	}
	v, err := ks.DataSource().Fetch(context.Background(), "k")
	if err != nil || string(v) != "k" {
		t.Fatalf("Fetch = %q, %v", v, err)
	}
	if _, err := ks.DataSource().Fetch(context.Background(), "missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing key: %v", err)
	}
}

func TestSettingsValidate(t *testing.T) {
	good := Settings{MaxBytes: 1, ReadTimeout: time.Second, WriteTimeout: time.Second}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	withNear := good
	withNear.NearCacheMaxBytes, withNear.NearCacheTTL = 1<<20, time.Second
	if err := withNear.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		mod  func(*Settings)
		want string
	}{
		{"max bytes", func(s *Settings) { s.MaxBytes = 0 }, "MaxBytes"},
		{"ttl", func(s *Settings) { s.DefaultTTL = -1 }, "DefaultTTL"},
		{"read", func(s *Settings) { s.ReadTimeout = 0 }, "ReadTimeout"},
		{"write", func(s *Settings) { s.WriteTimeout = -1 }, "WriteTimeout"},
		{"warm key", func(s *Settings) { s.WarmKeys = []string{"a", ""} }, "WarmKeys[1]"},
		{"negative ttl", func(s *Settings) { s.NegativeTTL = -1 }, "NegativeTTL"},
		{"stale", func(s *Settings) { s.MaxStale = -1 }, "MaxStale"},
		{"near size only", func(s *Settings) { s.NearCacheMaxBytes = 1 }, "NearCacheTTL"},
		{"near ttl only", func(s *Settings) { s.NearCacheTTL = time.Second }, "NearCacheMaxBytes"},
		{"near negative", func(s *Settings) { s.NearCacheMaxBytes, s.NearCacheTTL = -1, -1 }, "NearCacheMaxBytes"},
		{"rate", func(s *Settings) { s.RateLimit = &RateLimitConfig{RequestsPerSecond: math.NaN(), Burst: 1} }, "RateLimit: RequestsPerSecond"},
		{"burst", func(s *Settings) { s.RateLimit = &RateLimitConfig{RequestsPerSecond: 1} }, "Burst"},
		{"wait", func(s *Settings) { s.RateLimit = &RateLimitConfig{RequestsPerSecond: 1, Burst: 1, WaitTimeout: -1} }, "WaitTimeout"},
		{"threshold", func(s *Settings) { s.CircuitBreaker = &CircuitBreakerConfig{ResetTimeout: time.Second} }, "FailureThreshold"},
		{"reset", func(s *Settings) { s.CircuitBreaker = &CircuitBreakerConfig{FailureThreshold: 1} }, "ResetTimeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := good
			tc.mod(&s)
			err := s.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error naming %s", err, tc.want)
			}
		})
	}
}

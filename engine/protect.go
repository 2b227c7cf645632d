package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/distcache/distcache/keyspace"
	"github.com/sony/gobreaker/v2"
	"golang.org/x/time/rate"
)

// errRateLimitWait is what a miss gets when it waited WaitTimeout for a
// token in vain: both ErrDataSourceRateLimited and context.DeadlineExceeded.
var errRateLimitWait = fmt.Errorf("%w: no token within the wait timeout: %w", ErrDataSourceRateLimited, context.DeadlineExceeded)

// protection guards one keyspace's DataSource on one node. The order on a
// miss is singleflight (in the caller), then the limiter, then the breaker,
// then Fetch: coalesced callers spend one token, and a rate-limit denial
// never counts as a breaker failure. Both are nil when not configured.
type protection struct {
	limiter *rate.Limiter
	wait    bool // WaitTimeout > 0: wait for a token instead of failing at once

	breaker *gobreaker.CircuitBreaker[[]byte]
}

func newProtection(name string, s ksSettings, log *slog.Logger) *protection {
	p := &protection{}
	if rl := s.RateLimit; rl != nil {
		p.limiter = rate.NewLimiter(rate.Limit(rl.RequestsPerSecond), rl.Burst)
		p.wait = rl.WaitTimeout > 0
	}
	if cb := s.CircuitBreaker; cb != nil {
		threshold := uint32(cb.FailureThreshold)
		p.breaker = gobreaker.NewCircuitBreaker[[]byte](gobreaker.Settings{
			Name:        name,
			MaxRequests: 1,
			Timeout:     cb.ResetTimeout,
			ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= threshold },
			// A missing key is a healthy answer, and an engine shutdown is
			// nobody's failure.
			IsSuccessful: func(err error) bool { return err == nil || errors.Is(err, keyspace.ErrNotFound) },
			IsExcluded:   func(err error) bool { return errors.Is(err, context.Canceled) },
			// Runs under the breaker's lock: only log here.
			OnStateChange: func(name string, from, to gobreaker.State) {
				log.Warn("datasource circuit breaker state change", "keyspace", name, "from", from.String(), "to", to.String())
			},
		})
	}
	return p
}

// fetch runs ds.Fetch under the keyspace's protections.
func (p *protection) fetch(ctx context.Context, ds keyspace.DataSource, key string, s *ksSettings) ([]byte, error) {
	if p.limiter != nil {
		if err := p.acquire(ctx, s); err != nil {
			return nil, err
		}
	}
	if p.breaker == nil {
		return ds.Fetch(ctx, key)
	}
	v, err := p.breaker.Execute(func() ([]byte, error) { return ds.Fetch(ctx, key) })
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return nil, fmt.Errorf("%w: %w", ErrDataSourceCircuitOpen, err)
	}
	return v, err
}

func (p *protection) acquire(ctx context.Context, s *ksSettings) error {
	if !p.wait {
		if !p.limiter.Allow() {
			return ErrDataSourceRateLimited
		}
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, s.RateLimit.WaitTimeout)
	defer cancel()
	if err := p.limiter.Wait(wctx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// Either the wait timed out, or rate computed up front that the
		// token would come too late ("would exceed context deadline").
		return errRateLimitWait
	}
	return nil
}

// breakerState reports the breaker state for stats ("" when none).
func (p *protection) breakerState() string {
	if p.breaker == nil {
		return ""
	}
	return p.breaker.State().String()
}

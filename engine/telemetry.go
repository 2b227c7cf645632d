package engine

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/distcache/distcache/keyspace"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// instrumentationName is the OpenTelemetry scope of the engine's meters and
// tracers: the module import path, as the OTel API docs recommend.
const instrumentationName = "github.com/distcache/distcache/engine"

func globalMeterProvider() metric.MeterProvider  { return otel.GetMeterProvider() }
func globalTracerProvider() trace.TracerProvider { return otel.GetTracerProvider() }

// observer records OpenTelemetry metrics and spans around engine operations.
// Both halves are optional; when both are off, start returns its ctx and a
// shared no-op, so the cost is one branch per call. Counts (requests, hits,
// fetches, ...) are observable instruments read from the engine's counters
// at collection time (instruments.go); what is recorded here are the
// durations and errors of the calls that leave the local fast path.
type observer struct {
	tracer trace.Tracer // nil: tracing off
	meter  metric.Meter // nil: metrics off
	// reg is the observable instruments' callback (nil: none), unregistered
	// by Stop.
	reg metric.Registration
	// Keyspace operations counted for distcache.engine.requests (they act
	// on the table of keyspaces, so their counts cannot live in one).
	deleteKeySpaces, updateKeySpace atomic.Int64

	// nil when metrics are off
	errors        metric.Int64Counter
	duration      metric.Float64Histogram
	fetchDuration metric.Float64Histogram
}

func newObserver(mp metric.MeterProvider, tp trace.TracerProvider) (*observer, error) {
	o := &observer{}
	if tp != nil {
		o.tracer = tp.Tracer(instrumentationName)
	}
	if mp == nil {
		return o, nil
	}
	m := mp.Meter(instrumentationName)
	o.meter = m
	// The SDK's default buckets (0, 5, 10, ... 10000) are meant for
	// milliseconds; these durations are in seconds, from a few µs to the
	// read timeout.
	buckets := metric.WithExplicitBucketBoundaries(latencyBoundsSeconds()...)
	var err error
	if o.errors, err = m.Int64Counter("distcache.engine.errors", metric.WithUnit("{request}"),
		metric.WithDescription("Engine operations that failed (a missing key is not a failure).")); err != nil {
		return nil, err
	}
	if o.duration, err = m.Float64Histogram("distcache.engine.duration", metric.WithUnit("s"), buckets,
		metric.WithDescription("Duration of engine operations that did not hit the local fast path.")); err != nil {
		return nil, err
	}
	if o.fetchDuration, err = m.Float64Histogram("distcache.datasource.duration", metric.WithUnit("s"), buckets,
		metric.WithDescription("Duration of DataSource fetches, protections included, by keyspace and error.type.")); err != nil {
		return nil, err
	}
	return o, nil
}

// stop unregisters the observable instruments.
func (o *observer) stop() error {
	if o.reg == nil {
		return nil
	}
	return o.reg.Unregister()
}

func noopDone(error) {}

// start opens a span and a measurement for one operation; call the returned
// function with the operation's error.
func (o *observer) start(ctx context.Context, op, ks string) (context.Context, func(error)) {
	if o.tracer == nil && o.meter == nil {
		return ctx, noopDone
	}
	attrs := attribute.NewSet(attrOperation.String(op), attrKeySpace.String(ks))
	var span trace.Span
	if o.tracer != nil {
		ctx, span = o.tracer.Start(ctx, "distcache."+op, trace.WithAttributes(attrs.ToSlice()...))
	}
	start := time.Now()
	return ctx, func(err error) {
		if span != nil {
			endSpan(span, err)
		}
		if o.meter != nil {
			set := metric.WithAttributeSet(attrs)
			if failed(err) {
				o.errors.Add(ctx, 1, set)
			}
			o.duration.Record(ctx, time.Since(start).Seconds(), set)
		}
	}
}

// fetched records one DataSource fetch's duration.
func (o *observer) fetched(ctx context.Context, ks string, d time.Duration, err error) {
	if o.meter == nil {
		return
	}
	kv := []attribute.KeyValue{attrKeySpace.String(ks)}
	switch {
	case err == nil:
	case errors.Is(err, keyspace.ErrNotFound):
		kv = append(kv, attribute.String("error.type", "not_found"))
	case errors.Is(err, ErrDataSourceRateLimited):
		kv = append(kv, attribute.String("error.type", "rate_limited"))
	case errors.Is(err, ErrDataSourceCircuitOpen):
		kv = append(kv, attribute.String("error.type", "circuit_open"))
	default:
		kv = append(kv, attribute.String("error.type", "error"))
	}
	o.fetchDuration.Record(ctx, d.Seconds(), metric.WithAttributes(kv...))
}

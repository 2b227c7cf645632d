package engine

import (
	"context"
	"errors"
	"time"

	"github.com/distcache/distcache/keyspace"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
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
// shared no-op, so the cost is one branch per call.
type observer struct {
	tracer trace.Tracer // nil: tracing off

	// nil when metrics are off
	requests      metric.Int64Counter
	errors        metric.Int64Counter
	duration      metric.Float64Histogram
	fetches       metric.Int64Counter
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
	var err error
	if o.requests, err = m.Int64Counter("distcache.engine.requests", metric.WithUnit("{request}"),
		metric.WithDescription("Engine operations, by operation and keyspace.")); err != nil {
		return nil, err
	}
	if o.errors, err = m.Int64Counter("distcache.engine.errors", metric.WithUnit("{request}"),
		metric.WithDescription("Engine operations that failed (a missing key is not a failure).")); err != nil {
		return nil, err
	}
	if o.duration, err = m.Float64Histogram("distcache.engine.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of engine operations that did not hit the local fast path.")); err != nil {
		return nil, err
	}
	if o.fetches, err = m.Int64Counter("distcache.datasource.fetches", metric.WithUnit("{fetch}"),
		metric.WithDescription("DataSource fetches after coalescing, by keyspace and error.type.")); err != nil {
		return nil, err
	}
	if o.fetchDuration, err = m.Float64Histogram("distcache.datasource.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of DataSource fetches, protections included.")); err != nil {
		return nil, err
	}
	return o, nil
}

func noopDone(error) {}

// start opens a span and a measurement for one operation; call the returned
// function with the operation's error.
func (o *observer) start(ctx context.Context, op, ks string) (context.Context, func(error)) {
	if o.tracer == nil && o.requests == nil {
		return ctx, noopDone
	}
	attrs := attribute.NewSet(attribute.String("distcache.operation", op), attribute.String("distcache.keyspace", ks))
	var span trace.Span
	if o.tracer != nil {
		ctx, span = o.tracer.Start(ctx, "distcache."+op, trace.WithAttributes(attrs.ToSlice()...))
	}
	start := time.Now()
	return ctx, func(err error) {
		failed := err != nil && !errors.Is(err, keyspace.ErrNotFound)
		if span != nil {
			if failed {
				span.RecordError(err)
				span.SetStatus(codes.Error, err.Error())
			}
			span.End()
		}
		if o.requests != nil {
			set := metric.WithAttributeSet(attrs)
			o.requests.Add(ctx, 1, set)
			if failed {
				o.errors.Add(ctx, 1, set)
			}
			o.duration.Record(ctx, time.Since(start).Seconds(), set)
		}
	}
}

// fetched records one DataSource fetch.
func (o *observer) fetched(ctx context.Context, ks string, d time.Duration, err error) {
	if o.fetches == nil {
		return
	}
	kv := []attribute.KeyValue{attribute.String("distcache.keyspace", ks)}
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
	set := metric.WithAttributes(kv...)
	o.fetches.Add(ctx, 1, set)
	o.fetchDuration.Record(ctx, d.Seconds(), set)
}

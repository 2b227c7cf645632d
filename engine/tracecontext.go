package engine

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/distcache/distcache/cluster"
	"github.com/distcache/distcache/internal/transport"
	"github.com/distcache/distcache/keyspace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// A forwarded request carries its caller's W3C trace context in the
// transport frame's trace field (transport.Request.Trace): the traceparent,
// then, after a newline, the tracestate if there is one (neither may contain
// a newline). The owner starts its server span under it, and the fetch span
// of a load under that, so one trace shows the whole read across hops.

// w3c is the W3C Trace Context propagator (traceparent, tracestate).
var w3c propagation.TraceContext

// traceCarrier holds the two W3C headers for w3c.
type traceCarrier struct{ parent, state string }

func (c *traceCarrier) Get(key string) string {
	switch key {
	case "traceparent":
		return c.parent
	case "tracestate":
		return c.state
	}
	return ""
}

func (c *traceCarrier) Set(key, value string) {
	switch key {
	case "traceparent":
		c.parent = value
	case "tracestate":
		c.state = value
	}
}

func (c *traceCarrier) Keys() []string { return []string{"traceparent", "tracestate"} }

// traceField encodes ctx's trace context for a peer request: nil unless ctx
// holds a valid, sampled span, so an untraced call sends no field at all. A
// tracestate that would not fit transport.MaxTraceBytes is dropped (the W3C
// lets a hop truncate it); the traceparent always fits.
func traceField(ctx context.Context) []byte {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() || !sc.IsSampled() {
		return nil
	}
	var c traceCarrier
	w3c.Inject(ctx, &c)
	if c.parent == "" {
		return nil
	}
	n := len(c.parent)
	if c.state != "" && n+1+len(c.state) <= transport.MaxTraceBytes {
		n += 1 + len(c.state)
	} else {
		c.state = ""
	}
	b := make([]byte, 0, n)
	b = append(b, c.parent...)
	if c.state != "" {
		b = append(b, '\n')
		b = append(b, c.state...)
	}
	return b
}

// withRemoteTrace returns ctx carrying the span context a peer sent in a
// request's trace field; ctx itself when the field is empty or not a valid
// traceparent (the request is then served untraced).
func withRemoteTrace(ctx context.Context, field []byte) context.Context {
	if len(field) == 0 {
		return ctx
	}
	parent, state, _ := strings.Cut(string(field), "\n")
	return w3c.Extract(ctx, &traceCarrier{parent: parent, state: state})
}

// opName names a peer request op in span names.
func opName(op uint8) string {
	switch op {
	case opGet:
		return "get"
	case opGetMany:
		return "get_many"
	case opPut:
		return "put"
	case opDelete:
		return "delete"
	case opHandoff:
		return "handoff"
	case opInvalidate:
		return "invalidate"
	case opPush:
		return "push"
	case opDeleteKeySpace:
		return "delete_keyspace"
	}
	return "rpc"
}

// outgoing prepares req, about to be sent to peer: when ctx holds a sampled
// span it opens a client span for the call (if tracing is on) and puts the
// trace context in req.Trace. Call done with the call's error. Untraced, it
// costs a context lookup.
func (o *observer) outgoing(ctx context.Context, peer cluster.Member, req *transport.Request) (context.Context, func(error)) {
	if !trace.SpanContextFromContext(ctx).IsSampled() {
		return ctx, noopDone
	}
	var span trace.Span
	if o.tracer != nil {
		ctx, span = o.tracer.Start(ctx, "distcache.call "+opName(req.Op), trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attribute.String("distcache.peer", peer.Name), attribute.String("server.address", peer.Addr)))
	}
	req.Trace = traceField(ctx)
	if span == nil {
		return ctx, noopDone
	}
	return ctx, func(err error) { endSpan(span, err) }
}

// incoming opens the server span of a request from a peer that carries a
// trace context (tracing on); otherwise it returns ctx and a nil end.
func (o *observer) incoming(ctx context.Context, req transport.Request) (context.Context, trace.Span) {
	if o.tracer == nil || len(req.Trace) == 0 {
		return ctx, nil
	}
	ctx = withRemoteTrace(ctx, req.Trace)
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx, nil
	}
	return o.tracer.Start(ctx, "distcache.serve "+opName(req.Op), trace.WithSpanKind(trace.SpanKindServer))
}

// endIncoming ends a server span opened by incoming, marking answers other
// than OK and not-found as errors.
func endIncoming(span trace.Span, status uint8) {
	if span == nil {
		return
	}
	if status != statusOK && status != statusNotFound {
		span.SetStatus(codes.Error, "answered with status "+strconv.Itoa(int(status)))
	}
	span.End()
}

// loadParent is the span a load started under ctx reports its fetch under:
// the caller's span, or none when tracing is off.
func (o *observer) loadParent(ctx context.Context) trace.SpanContext {
	if o.tracer == nil {
		return trace.SpanContext{}
	}
	return trace.SpanContextFromContext(ctx)
}

// startFetch opens the span of a DataSource fetch under parent (the span of
// the request that started the load); none without a valid parent.
func (o *observer) startFetch(ctx context.Context, parent trace.SpanContext, ks string) (context.Context, func(error)) {
	if o.tracer == nil || !parent.IsValid() {
		return ctx, noopDone
	}
	ctx, span := o.tracer.Start(trace.ContextWithSpanContext(ctx, parent), "distcache.fetch",
		trace.WithAttributes(attribute.String("distcache.keyspace", ks)))
	return ctx, func(err error) { endSpan(span, err) }
}

// endSpan records a failure (not-found is not one) and ends span.
func endSpan(span trace.Span, err error) {
	if failed(err) {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// failed reports an operation's error; a missing key is not one.
func failed(err error) bool { return err != nil && !errors.Is(err, keyspace.ErrNotFound) }

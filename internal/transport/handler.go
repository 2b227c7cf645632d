package transport

import "context"

// Request is one RPC. Op and Flags are application-defined (the engine encodes its own ops);
// the transport carries them untouched, except bit 15 of Flags, which it reserves (Call
// refuses a request that sets it).
type Request struct {
	Op    uint8
	Flags uint16
	// Trace is the caller's trace context, opaque to the transport (the engine puts the W3C
	// traceparent and tracestate there), at most MaxTraceBytes. Empty costs nothing on the
	// wire: the frame then has no trace field at all.
	Trace   []byte
	Payload []byte
	// From is the calling node's name (its Config.NodeName), set by the server from the
	// connection's handshake; ignored on Call. With AuthSecret it is proven by the secret;
	// under TLS alone it is what a holder of a trusted certificate claims; on a plain
	// connection without a secret it is what the peer claims (see identity.go).
	From string
}

// Response is the reply to one RPC. Status is application-defined (0 = OK by convention)
// and passes through untouched; transport failures are errors from Call instead.
type Response struct {
	Status  uint8
	Payload []byte
}

// Handler serves incoming requests. It is called concurrently, each request on its own
// goroutine. ctx carries the caller's deadline and is cancelled when the caller cancels,
// the connection breaks or the transport shuts down; handlers must return promptly then,
// because Shutdown waits for them. req.Payload is the handler's own copy and may be
// retained, and so may req.Trace. The response payload is copied into the connection's write buffer right after
// ServeRPC returns, so the handler may reuse it from then on. A panic is recovered and reported to the caller as
// ErrHandlerPanic.
type Handler interface {
	ServeRPC(ctx context.Context, req Request) Response
}

// HandlerFunc adapts an ordinary function to Handler.
type HandlerFunc func(ctx context.Context, req Request) Response

// ServeRPC calls f(ctx, req).
func (f HandlerFunc) ServeRPC(ctx context.Context, req Request) Response { return f(ctx, req) }

// InlineHandler is an optional fast path a Handler may implement. ServeInline is tried
// first for every request, on the connection's reader goroutine, before a goroutine is
// started for it. It must be quick and must never block (no I/O, no waiting on locks or
// channels, no calls to other peers): while it runs, no other frame on that connection is
// read. Return handled=false to have the request served by ServeRPC on its own goroutine as
// usual (for example on a cache miss that needs a load). Skipping the goroutine is the larger
// part of a small call's CPU (see BenchmarkCall). req.Payload is the handler's own copy
// either way. A panic is reported to the caller as ErrHandlerPanic.
type InlineHandler interface {
	Handler
	ServeInline(req Request) (resp Response, handled bool)
}

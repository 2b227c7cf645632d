package transport

import "errors"

// Errors returned by Call and the lifecycle methods. Test them with errors.Is:
// returned errors wrap these sentinels with the peer address and the cause.
var (
	// ErrPeerUnavailable: the peer could not be reached (dial refused or timed out, connection
	// broken, keepalive expired, ClosePeer, SetBlocked) or is in dial backoff after such a failure.
	// The request may or may not have run on the peer if the connection broke mid-call.
	ErrPeerUnavailable = errors.New("transport: peer unavailable")
	// ErrPeerOverloaded: the local per-peer in-flight limit was full until ctx ended, or the peer
	// refused the request because its MaxConcurrentRequests was reached. The request did not run.
	ErrPeerOverloaded = errors.New("transport: peer overloaded")
	// ErrShuttingDown: the peer is draining or shutting down and refused the request (it did not run),
	// or Drain was called on this transport.
	ErrShuttingDown = errors.New("transport: peer shutting down")
	// ErrFrameTooLarge: a request or response exceeds MaxFrameBytes.
	ErrFrameTooLarge = errors.New("transport: frame too large")
	// ErrClosed: the transport has been shut down.
	ErrClosed = errors.New("transport: closed")
	// ErrLabelMismatch: the peer belongs to another cluster (its label differs from ours).
	ErrLabelMismatch = errors.New("transport: cluster label mismatch")
	// ErrBadFrame: a malformed frame was received; the connection is closed.
	ErrBadFrame = errors.New("transport: bad frame")
	// ErrBadHandshake: the connection preamble was malformed or refused (version, TLS mode).
	ErrBadHandshake = errors.New("transport: bad handshake")
	// ErrAuthFailed: the peer could not be authenticated with the shared secret (it has
	// another secret or none), or it refused ours. Nothing was exchanged.
	ErrAuthFailed = errors.New("transport: peer authentication failed")
	// ErrNoHandler: the peer has no Handler set yet.
	ErrNoHandler = errors.New("transport: no handler")
	// ErrHandlerPanic: the peer's Handler panicked while serving the request.
	ErrHandlerPanic = errors.New("transport: handler panicked")
)

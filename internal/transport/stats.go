package transport

import "sync/atomic"

// Stats is a snapshot of a Transport's counters. All counters are cumulative since New,
// except the gauges noted.
type Stats struct {
	// Calls counts Call invocations.
	Calls uint64
	// CallErrors counts Calls that returned an error (any transport error, including ctx ends).
	CallErrors uint64
	// Overloaded counts Calls that failed with ErrPeerOverloaded (local in-flight limit or a
	// busy peer).
	Overloaded uint64
	// Cancelled counts Calls abandoned because ctx ended while waiting for the response.
	Cancelled uint64
	// Requests counts incoming requests answered by the Handler.
	Requests uint64
	// RejectedOverloaded counts incoming requests refused because MaxConcurrentRequests was reached.
	RejectedOverloaded uint64
	// RejectedShuttingDown counts incoming requests refused because of Drain.
	RejectedShuttingDown uint64
	// HandlerPanics counts Handler calls that panicked (the caller gets ErrHandlerPanic).
	HandlerPanics uint64
	// BytesIn and BytesOut count RPC bytes read from and written to sockets (memberlist's
	// own traffic is not included).
	BytesIn, BytesOut uint64
	// ConnsDialed counts RPC connections dialed and handshaken successfully.
	ConnsDialed uint64
	// DialFailures counts failed RPC dials (refused, timeout, handshake refusal).
	DialFailures uint64
	// ConnsAccepted counts RPC connections accepted and handshaken successfully.
	ConnsAccepted uint64
	// ConnsBroken counts RPC connections closed because of an I/O error, a protocol error or
	// a keepalive timeout.
	ConnsBroken uint64
	// StreamsForwarded counts accepted TCP connections handed to memberlist.
	StreamsForwarded uint64
	// PacketsDropped counts UDP packets dropped by SetBlocked.
	PacketsDropped uint64
	// ConnsRefused counts accepted TCP connections closed at once by MaxConnsPerIP or
	// MaxPendingConns.
	ConnsRefused uint64
	// AuthFailures counts RPC connections refused for their credentials: another cluster
	// label, a missing or different secret, or a failed TLS handshake.
	AuthFailures uint64
	// ConnsIdleClosed counts accepted RPC connections closed by IdleTimeout.
	ConnsIdleClosed uint64
	// ReadsPaused counts the times a connection stopped being read because its queued replies
	// reached MaxQueuedBytesPerConn.
	ReadsPaused uint64
	// PendingConns is a gauge: accepted connections still in their handshake.
	PendingConns int
	// OpenConns is a gauge: accepted connections open (RPC, memberlist streams, pending).
	OpenConns int
	// ReceiveBufferBytes is a gauge: bytes of MaxReceiveBufferBytes reserved by large
	// frames being received.
	ReceiveBufferBytes int64
	// ActiveHandlers is a gauge: handlers running now.
	ActiveHandlers int64
}

// counters holds the live atomic counters behind Stats.
type counters struct {
	calls, callErrors, overloaded, cancelled              atomic.Uint64
	requests, rejectedOverloaded, rejectedShuttingDown    atomic.Uint64
	handlerPanics, bytesIn, bytesOut                      atomic.Uint64
	connsDialed, dialFailures, connsAccepted, connsBroken atomic.Uint64
	streamsForwarded, packetsDropped                      atomic.Uint64
	connsRefused, authFailures, connsIdleClosed           atomic.Uint64
	readsPaused                                           atomic.Uint64
}

// Stats returns a snapshot of the counters. Safe to call at any time, also after Shutdown.
func (t *Transport) Stats() Stats {
	c := &t.st
	pending, open := t.limiter.counts()
	return Stats{
		Calls:                c.calls.Load(),
		CallErrors:           c.callErrors.Load(),
		Overloaded:           c.overloaded.Load(),
		Cancelled:            c.cancelled.Load(),
		Requests:             c.requests.Load(),
		RejectedOverloaded:   c.rejectedOverloaded.Load(),
		RejectedShuttingDown: c.rejectedShuttingDown.Load(),
		HandlerPanics:        c.handlerPanics.Load(),
		BytesIn:              c.bytesIn.Load(),
		BytesOut:             c.bytesOut.Load(),
		ConnsDialed:          c.connsDialed.Load(),
		DialFailures:         c.dialFailures.Load(),
		ConnsAccepted:        c.connsAccepted.Load(),
		ConnsBroken:          c.connsBroken.Load(),
		StreamsForwarded:     c.streamsForwarded.Load(),
		PacketsDropped:       c.packetsDropped.Load(),
		ActiveHandlers:       t.active.Load(),
		ConnsRefused:         c.connsRefused.Load(),
		AuthFailures:         c.authFailures.Load(),
		ConnsIdleClosed:      c.connsIdleClosed.Load(),
		ReadsPaused:          c.readsPaused.Load(),
		PendingConns:         pending,
		OpenConns:            open,
		ReceiveBufferBytes:   t.budget.inUse.Load(),
	}
}

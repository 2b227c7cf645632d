package transport

// trickle tells whether a connection carries one message at a time, from the number of
// calls (client) or handlers (server) in flight each time one starts. Only a frame alone
// on a quiet connection is written in place (connWriter.send); one alone on a connection
// that usually carries company still queues for the writer: a pipelined
// connection drains to one call between its bursts, and writing that call in place split
// the next burst into two Writes and two reads on each side. Not safe for concurrent
// use; the connection's mutex guards it.
type trickle struct {
	avg uint32 // moving average of the counts, in 1/16ths
}

// trickleMax is the average (in 1/16ths) below which a connection counts as a trickle:
// fewer than 1.5 in flight.
const trickleMax = 24

// observe records the count in flight now that one more has started (n ≥ 1).
func (t *trickle) observe(n int) {
	x := uint32(min(n, 1<<16)) << 4
	// avg moves 1/8 of the way to x: a burst of 64 lifts it past trickleMax at once, and
	// a quiet connection comes back within a dozen calls.
	t.avg = t.avg - t.avg/8 + x/8
}

// quiet reports whether the connection usually carries one at a time.
func (t *trickle) quiet() bool { return t.avg < trickleMax }

package engine

import (
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/distcache/distcache/cluster"
	"github.com/distcache/distcache/internal/transport"
)

// Control messages act on this node's view of the cluster or drop what it
// holds on a peer's word: a peer is leaving (opens a hand-off window and
// changes how its departure is counted), a hand-off (stores entries), an
// invalidation or a flush (drop entries), a keyspace deletion. So they are
// accepted only from a node that is a member now, in this node's ring or
// its gossip, or that left recently: a graceful leaver hands off again
// after its memberlist Leave (handoff.go), when peers may already have
// dropped it. "Recently" is the engine's notion of a graceful departure
// (leftGracefully: announced within the last minute) or, for a member that
// left without announcing it, handoffWindow. A message that names its
// sender in its payload must name the caller too. Anything else is refused
// with statusNotMember before it changes anything.
//
// The caller is transport.Request.From, the name its connection presented
// in the handshake: proven by the secret with WithGossipSecret; under
// mutual TLS alone, claimed by a holder of a trusted certificate; on a
// loopback or WithInsecure node, claimed by anyone. A holder of the
// cluster's credentials can therefore present any member's name: this
// keeps out authenticated callers that are not members (and mistakes), not
// a rogue member (see SECURITY.md).
//
// Reads and writes (Get, GetMany, Put, Delete) are not control messages:
// any authenticated caller may send them. Neither is opRingInfo, which
// reads the ring's fingerprint and is asked by a node that is starting,
// before the others admit it into their rings (bootstrap.go).

// isControlOp reports whether op is a control message.
func isControlOp(op uint8) bool {
	switch op {
	case opLeaving, opHandoff, opInvalidate, opPush, opFlush, opDeleteKeySpace:
		return true
	}
	return false
}

// refuseControl returns the refusal of a control message whose caller may
// not send it, with true; false for everything else, which is served as
// usual.
func (e *Engine) refuseControl(req transport.Request) (transport.Response, bool) {
	if !isControlOp(req.Op) {
		return transport.Response{}, false
	}
	var err error
	if named, ok := namedSender(req.Op, req.Payload); ok && string(named) != req.From {
		err = fmt.Errorf("%w: %q sent a message in the name of %q", errNotMember, req.From, named)
	} else if !e.isPeer(req.From) {
		err = fmt.Errorf("%w: %q is neither a member nor recently departed", errNotMember, req.From)
	} else {
		return transport.Response{}, false
	}
	e.logRefusedControl(req.Op, err)
	return statusResponse(err), true
}

// namedSender returns the sender a control message names in its payload
// (without copying it), if it names one and its start decodes.
func namedSender(op uint8, p []byte) ([]byte, bool) {
	d := decoder{b: p}
	switch op {
	case opLeaving, opFlush: // sender's name
	case opHandoff, opInvalidate, opPush: // keyspace, sender's name, ...
		d.bytes()
	default:
		return nil, false
	}
	name := d.bytes()
	return name, d.err == nil
}

// isPeer reports whether name is a member of this node's ring or gossip,
// or left recently (see the file comment).
func (e *Engine) isPeer(name string) bool {
	if name == "" || e.cl == nil {
		return false
	}
	if e.cl.Ring().Contains(name) {
		return true
	}
	if slices.ContainsFunc(e.cl.Members(), func(m cluster.Member) bool { return m.Name == name }) {
		return true
	}
	if e.leftGracefully(name) {
		return true
	}
	e.failedMu.Lock()
	at, ok := e.failed[name]
	e.failedMu.Unlock()
	return ok && time.Since(at) < handoffWindow
}

// controlGuard rate-limits the warnings about refused control messages.
type controlGuard struct {
	warnedAt atomic.Int64 // unix ns of the last warning
}

// logRefusedControl reports a refused control message: at warn level at
// most once a second (a misconfigured node shows up in the log; a flood of
// refusals does not flood it), at debug level otherwise.
func (e *Engine) logRefusedControl(op uint8, err error) {
	now := time.Now().UnixNano()
	if last := e.control.warnedAt.Load(); now-last >= int64(time.Second) && e.control.warnedAt.CompareAndSwap(last, now) {
		e.log.Warn("refused a control message", "op", op, "err", err)
		return
	}
	e.log.Debug("refused a control message", "op", op, "err", err)
}

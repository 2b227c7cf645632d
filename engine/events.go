package engine

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/distcache/distcache/cluster"
	"github.com/distcache/distcache/internal/membership"
)

// EventType says what an Event reports.
type EventType int

const (
	// MemberJoined: a node entered this node's ring.
	MemberJoined EventType = iota + 1
	// MemberLeft: a node left the ring after announcing a graceful leave
	// (its Stop).
	MemberLeft
	// MemberFailed: a node left the ring without announcing it: it was
	// declared dead (a crash, a pause, a partition).
	MemberFailed
	// RingChanged: this node's ring changed; it follows the member events
	// of the same change.
	RingChanged
)

// String returns the event type's name.
func (t EventType) String() string {
	switch t {
	case MemberJoined:
		return "member_joined"
	case MemberLeft:
		return "member_left"
	case MemberFailed:
		return "member_failed"
	case RingChanged:
		return "ring_changed"
	}
	return "unknown"
}

// Event is a membership change seen by this node.
type Event struct {
	Type EventType
	// Node and Addr name the member (empty for RingChanged).
	Node, Addr string
	// Members is the size of this node's ring after the change.
	Members int
	At      time.Time
}

// eventBuffer is the capacity of each subscriber's channel.
const eventBuffer = 64

// eventHub fans membership events out to subscribers without ever
// blocking the engine: a subscriber whose buffer is full loses the event
// (counted).
type eventHub struct {
	mu      sync.Mutex
	subs    []chan Event
	closed  bool
	dropped atomic.Int64
}

// Events returns a new subscription to this node's membership events
// (MemberJoined, MemberLeft, MemberFailed, then RingChanged for each ring
// change), buffered; a subscriber that does not keep up loses events
// (Stats().EventsDropped) and never slows the engine. Every channel is
// closed by Stop; after Stop, Events returns a closed channel.
func (e *Engine) Events() <-chan Event {
	ch := make(chan Event, eventBuffer)
	e.events.mu.Lock()
	defer e.events.mu.Unlock()
	if e.events.closed {
		close(ch)
		return ch
	}
	e.events.subs = append(e.events.subs, ch)
	return ch
}

func (h *eventHub) publish(ev Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ch := range h.subs {
		select {
		case ch <- ev:
		default:
			h.dropped.Add(1)
		}
	}
}

// close closes every subscription (Stop).
func (h *eventHub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	for _, ch := range h.subs {
		close(ch)
	}
	h.subs = nil
}

// memberChange is one member that entered or left the ring.
type memberChange struct {
	typ EventType
	m   cluster.Member
}

// announceRingChange logs and publishes a ring change: who joined, left
// gracefully or failed (name and address), then the ring itself.
func (e *Engine) announceRingChange(changes []memberChange, next *membership.Ring) {
	now := time.Now()
	e.ext.departed.note(changes, now)
	for _, c := range changes {
		e.log.Info("cluster member "+verb(c.typ), "peer", c.m.Name, "addr", c.m.Addr, "members", next.Len())
		e.events.publish(Event{Type: c.typ, Node: c.m.Name, Addr: c.m.Addr, Members: next.Len(), At: now})
	}
	e.log.Info("ring changed", "members", next.Len(), "fingerprint", fingerprint(next.Fingerprint()))
	e.events.publish(Event{Type: RingChanged, Members: next.Len(), At: now})
}

func verb(t EventType) string {
	switch t {
	case MemberJoined:
		return "joined"
	case MemberLeft:
		return "left"
	}
	return "failed"
}

// Package flight is the engine's table of in-flight loads: at most one
// flight per key, joined by every caller that asks for the key meanwhile.
//
// It carries one invariant: a slow load never overwrites a newer write. A
// writer takes the key's lock, supersedes the key's flight and changes the
// store while holding the lock; a finishing flight takes the same lock and
// stores its result only if it was not superseded. Every rule is a method of
// [Locked], so no caller edits the table by hand.
//
// The table is striped (64 mutexes chosen by the key's hash): writers and
// loads of different keys rarely contend, and a stripe's lock also orders a
// key's store updates against its flights.
package flight

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
)

const stripes = 64

// Table maps keys to their flight. The zero value is ready to use.
type Table struct {
	stripes [stripes]stripe
}

type stripe struct {
	mu      sync.Mutex // guards flights and the flights' lock-guarded fields
	flights map[string]*Flight
	_       [40]byte // keeps neighbouring stripes' locks off one cache line
}

// Flight is one in-flight load or forward of a key. Its result is written
// once, by [Flight.Publish], before Done is closed; waiters read it after.
type Flight struct {
	done chan struct{}
	val  []byte // shared by all waiters: each copies before handing it out
	err  error
	gen  uint64
	// started is when Lead made the flight.
	started time.Time

	// Guarded by the stripe lock.
	superseded          bool
	finished, abandoned bool

	waiters atomic.Int32
}

// Gen is the caller-defined generation the flight began under (the engine's
// flush generation): a result that began under an older one is not stored.
func (f *Flight) Gen() uint64 { return f.gen }

// Started is when the flight was led.
func (f *Flight) Started() time.Time { return f.started }

// Done is closed once the flight's result is published.
func (f *Flight) Done() <-chan struct{} { return f.done }

// Result is the published value and error; call it after Done is closed.
func (f *Flight) Result() ([]byte, error) { return f.val, f.err }

// Publish hands the flight's result to its waiters. It is called once.
func (f *Flight) Publish(val []byte, err error) {
	f.val, f.err = val, err
	close(f.done)
}

// Waiters is the number of callers that joined the flight with
// [Locked.Join]; read under the lock it is final, since joins take the lock.
func (f *Flight) Waiters() int32 { return f.waiters.Load() }

// Locked is a key's stripe held locked. Every method requires the lock,
// which only [Locked.Unlock] releases.
type Locked struct {
	s   *stripe
	key string
}

// Lock locks key's stripe.
func (t *Table) Lock(key string) Locked {
	s := &t.stripes[xxhash.Sum64String(key)%stripes]
	s.mu.Lock()
	if s.flights == nil {
		s.flights = map[string]*Flight{}
	}
	return Locked{s: s, key: key}
}

// Unlock releases the stripe.
func (l Locked) Unlock() { l.s.mu.Unlock() }

// Current is the key's flight, or nil.
func (l Locked) Current() *Flight { return l.s.flights[l.key] }

// Lead starts a new flight for the key under generation gen, replacing
// none: the caller checked Current first.
func (l Locked) Lead(gen uint64) *Flight {
	f := &Flight{done: make(chan struct{}), gen: gen, started: time.Now()}
	l.s.flights[l.key] = f
	return f
}

// Join returns the key's flight with one more waiter counted, or nil.
func (l Locked) Join() *Flight {
	f := l.s.flights[l.key]
	if f != nil {
		f.waiters.Add(1)
	}
	return f
}

// Supersede is the writer's side: the key's flight, if any, must not store
// its result, and it leaves the table so that later callers start afresh
// rather than join a flight that may carry the value the write replaced.
func (l Locked) Supersede() {
	if f := l.s.flights[l.key]; f != nil {
		f.superseded = true
		delete(l.s.flights, l.key)
	}
}

// Superseded reports whether a write superseded f.
func (l Locked) Superseded(f *Flight) bool { return f.superseded }

// Unlink removes f from the table if it is still the key's flight.
func (l Locked) Unlink(f *Flight) {
	if l.s.flights[l.key] == f {
		delete(l.s.flights, l.key)
	}
}

// Finish ends f as completed and unlinks it. It reports false if f was
// abandoned first: its waiters are gone and its result must be dropped.
func (l Locked) Finish(f *Flight) bool {
	if f.abandoned {
		return false
	}
	f.finished = true
	l.Unlink(f)
	return true
}

// Abandon ends f before its load returned (the load's context ended) and
// unlinks it, so the key is free for a fresh load. It reports false if f
// finished first. Exactly one of Finish and Abandon wins.
func (l Locked) Abandon(f *Flight) bool {
	if f.finished {
		return false
	}
	f.finished, f.abandoned = true, true
	l.Unlink(f)
	return true
}

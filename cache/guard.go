package cache

import (
	"math/rand/v2"
	"runtime"
	"sync/atomic"
)

// closeGuard lets many goroutines use a resource while one goroutine waits to
// close it. It is an RWMutex whose read side is spread over padded slots, so
// readers on different cores do not contend on one cache line: on the Get hit
// path a sync.RWMutex cost the store about two thirds of ristretto's
// throughput in BenchmarkStoreGet on two cores.
//
// Readers increment a slot and then check closing; close sets closing and then
// waits for every slot to drain. Go's atomics are sequentially consistent, so
// either the reader sees closing (and backs out) or close sees the reader's
// increment (and waits for it).
type closeGuard struct {
	closing atomic.Bool
	_       [63]byte // keep closing, read on every call, off the slots' lines
	slots   [guardSlots]paddedCounter
}

const guardSlots = 16

// paddedCounter is one reader slot on its own cache line, with the store's
// hit and miss counters for readers that drew this slot.
type paddedCounter struct {
	n            atomic.Int64
	hits, misses atomic.Int64
	_            [40]byte
}

// enter registers a reader; ok is false once close has started.
func (g *closeGuard) enter() (slot uint32, ok bool) {
	slot = rand.Uint32() % guardSlots
	g.slots[slot].n.Add(1)
	if g.closing.Load() {
		g.slots[slot].n.Add(-1)
		return 0, false
	}
	return slot, true
}

func (g *closeGuard) exit(slot uint32) { g.slots[slot].n.Add(-1) }

// count records a lookup outcome on the reader's slot.
func (g *closeGuard) count(slot uint32, hit bool) {
	if hit {
		g.slots[slot].hits.Add(1)
	} else {
		g.slots[slot].misses.Add(1)
	}
}

// counts sums the lookup outcomes of all slots.
func (g *closeGuard) counts() (hits, misses int64) {
	for i := range g.slots {
		hits += g.slots[i].hits.Load()
		misses += g.slots[i].misses.Load()
	}
	return hits, misses
}

// close refuses new readers and waits for the current ones to exit. Readers
// hold the guard for the length of one store call (microseconds), so yielding
// in a loop is enough.
func (g *closeGuard) close() {
	g.closing.Store(true)
	for i := range g.slots {
		for g.slots[i].n.Load() != 0 {
			runtime.Gosched()
		}
	}
}

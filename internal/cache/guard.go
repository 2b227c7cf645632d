package cache

import (
	"runtime"
	"sync"
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
//
// Readers draw their slot from a sync.Pool, whose fast path is per P: a core
// keeps reusing the same slot, so the slot's cache line stays in that core's
// cache; a random slot would make about half of all lookups pull the line
// from the other core, on the hottest path there is. The pool hands out pointers into a fixed
// array, round-robin, so a pool emptied by GC never makes the array grow; two
// Ps sharing a slot only share a cache line, which stays correct.
type closeGuard struct {
	closing atomic.Bool
	_       [63]byte // keep closing, read on every call, off the slots' lines
	slots   [guardSlots]paddedCounter
	next    atomic.Uint32
	pool    sync.Pool // of *paddedCounter, pointing into slots
}

// guardSlots bounds the slots (and so close's scan); well above the number of
// Ps of the machines we target, so that Ps rarely share one.
const guardSlots = 64

// paddedCounter is one reader slot on its own cache line, with the store's
// hit and miss counters for readers that drew this slot.
type paddedCounter struct {
	n            atomic.Int64
	hits, misses atomic.Int64
	_            [40]byte
}

// enter registers a reader; ok is false once close has started. The caller
// passes slot to exit (and count).
func (g *closeGuard) enter() (slot *paddedCounter, ok bool) {
	slot, _ = g.pool.Get().(*paddedCounter)
	if slot == nil {
		slot = &g.slots[g.next.Add(1)%guardSlots]
	}
	slot.n.Add(1)
	if g.closing.Load() {
		slot.n.Add(-1)
		g.pool.Put(slot)
		return nil, false
	}
	return slot, true
}

func (g *closeGuard) exit(slot *paddedCounter) {
	slot.n.Add(-1)
	g.pool.Put(slot)
}

// count records a lookup outcome on the reader's slot.
func (g *closeGuard) count(slot *paddedCounter, hit bool) {
	if hit {
		slot.hits.Add(1)
	} else {
		slot.misses.Add(1)
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

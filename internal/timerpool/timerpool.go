// Package timerpool reuses time.Timers for waits on hot paths, where a
// context.WithTimeout per call would allocate a context, a timer and a
// channel. Since Go 1.23 a stopped or reset timer never delivers a stale
// value, so a pooled timer is as good as a new one.
package timerpool

import (
	"sync"
	"time"
)

// Pool is a pool of timers. The zero value is ready to use.
type Pool struct{ p sync.Pool }

// Get returns a timer that fires after d; give it back with Put.
func (p *Pool) Get(d time.Duration) *time.Timer {
	if tm, ok := p.p.Get().(*time.Timer); ok {
		tm.Reset(d)
		return tm
	}
	return time.NewTimer(d)
}

// Put stops tm and returns it to the pool; tm must not be used afterwards.
func (p *Pool) Put(tm *time.Timer) {
	tm.Stop()
	p.p.Put(tm)
}

// Package stall detects when a process was not scheduled: a goroutine ticks
// every few milliseconds and records each gap much longer than its period.
// On a loaded host (2 cores shared with other test runs) a process can
// stall for seconds; a call that overran its deadline during such a stall
// says nothing about the engine, so the chaos checker tells them apart.
package stall

import (
	"context"
	"sync"
	"time"
)

// Interval is one stall, in Unix nanoseconds (the driver and its nodes share
// the host's clock).
type Interval struct {
	From int64 `json:"from"`
	To   int64 `json:"to"`
}

// Detector records stalls.
type Detector struct {
	period, min time.Duration
	keep        int

	mu     sync.Mutex // guards stalls
	stalls []Interval // the last keep stalls, oldest first
}

// New returns a detector that ticks every period and records gaps of at
// least min, keeping the last keep of them.
func New(period, min time.Duration, keep int) *Detector {
	return &Detector{period: period, min: min, keep: keep}
}

// Run ticks until ctx ends.
func (d *Detector) Run(ctx context.Context) {
	t := time.NewTicker(d.period)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			now := time.Now() // not the tick's time, which may predate the stall's end
			if gap := now.Sub(last); gap >= d.min {
				d.mu.Lock()
				d.stalls = append(d.stalls, Interval{From: last.UnixNano(), To: now.UnixNano()})
				if len(d.stalls) > d.keep {
					d.stalls = d.stalls[len(d.stalls)-d.keep:]
				}
				d.mu.Unlock()
			}
			last = now
		}
	}
}

// Stalls returns a copy of the recorded stalls.
func (d *Detector) Stalls() []Interval {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Interval(nil), d.stalls...)
}

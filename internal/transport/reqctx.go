package transport

import (
	"context"
	"sync"
	"time"
)

// reqCtx is both the state of one request being served and the context.Context handed to
// the Handler. Compared with context.WithDeadline it costs one allocation in all, and its
// Done channel and deadline timer only come into being if the handler (or a context derived
// from it) asks for them; a handler that answers from memory never arms a timer.
type reqCtx struct {
	sc       *serverConn
	handler  Handler
	hdr      frameHeader
	req      Request
	deadline time.Time // zero = none

	// mu guards the fields below.
	mu     sync.Mutex
	done   chan struct{}
	err    error
	timer  *time.Timer
	afters map[*func()]struct{}
}

var _ context.Context = (*reqCtx)(nil)

// Deadline implements context.Context.
func (c *reqCtx) Deadline() (time.Time, bool) { return c.deadline, !c.deadline.IsZero() }

// Value implements context.Context: a request context carries no values.
func (c *reqCtx) Value(any) any { return nil }

// Done implements context.Context.
func (c *reqCtx) Done() <-chan struct{} {
	c.mu.Lock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.err != nil {
			close(c.done)
		}
	}
	fire := c.armLocked()
	d := c.done
	c.mu.Unlock()
	runAll(fire)
	return d
}

// Err implements context.Context.
func (c *reqCtx) Err() error {
	c.mu.Lock()
	var fire []func()
	if c.err == nil && !c.deadline.IsZero() && !time.Now().Before(c.deadline) {
		fire = c.cancelLocked(context.DeadlineExceeded)
	}
	err := c.err
	c.mu.Unlock()
	runAll(fire)
	return err
}

// AfterFunc lets the context package propagate cancellation to derived contexts
// (WithCancel, WithTimeout, AfterFunc) without a goroutine each: it calls f on the
// cancelling goroutine once c is done (the context package itself starts a goroutine for
// user callbacks registered through context.AfterFunc). The returned stop unregisters f.
func (c *reqCtx) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		// The context package may hold the child's lock while calling AfterFunc, so f
		// must not run on this goroutine. This race (cancelled between its Done check and
		// this call) is rare; f only cancels the child.
		go f()
		return func() bool { return false }
	}
	if c.afters == nil {
		c.afters = make(map[*func()]struct{}, 1)
	}
	key := &f
	c.afters[key] = struct{}{}
	fire := c.armLocked()
	c.mu.Unlock()
	runAll(fire)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		_, ok := c.afters[key]
		delete(c.afters, key)
		return ok
	}
}

// armLocked starts the deadline timer (once) now that someone waits for Done. It returns
// callbacks to run after unlocking if the deadline has already passed.
func (c *reqCtx) armLocked() []func() {
	if c.err != nil || c.timer != nil || c.deadline.IsZero() {
		return nil
	}
	d := time.Until(c.deadline)
	if d <= 0 {
		return c.cancelLocked(context.DeadlineExceeded)
	}
	c.timer = time.AfterFunc(d, func() { c.cancel(context.DeadlineExceeded) })
	return nil
}

// cancel ends the context with err (first call wins).
func (c *reqCtx) cancel(err error) {
	c.mu.Lock()
	fire := c.cancelLocked(err)
	c.mu.Unlock()
	runAll(fire)
}

func (c *reqCtx) cancelLocked(err error) []func() {
	if c.err != nil {
		return nil
	}
	c.err = err
	if c.done != nil {
		close(c.done)
	}
	if c.timer != nil {
		c.timer.Stop()
	}
	var fire []func()
	for f := range c.afters {
		fire = append(fire, *f)
	}
	c.afters = nil
	return fire
}

func runAll(fs []func()) {
	for _, f := range fs {
		f()
	}
}

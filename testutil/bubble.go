package testutil

import (
	"testing"
	"testing/synctest"
	"time"
)

// BubbleDrain is how long Bubble lets the fake clock run after the test and
// its cleanups: longer than any memberlist timer (a probe waits up to eight
// probe intervals for its ack).
const BubbleDrain = time.Minute

// Bubble runs f in a testing/synctest bubble: time is fake and advances only
// when every goroutine of the bubble is blocked, so time-dependent behaviour
// (expiries, timeouts, backoffs) is checked to the instant, and waiting costs
// nothing. Engines in it must be InMemory: a goroutine blocked on a real
// socket never counts as blocked.
//
// After f and its cleanups (engines stopped), Bubble lets the fake clock run
// for BubbleDrain: memberlist's Shutdown does not wait for a probe in flight,
// which then still waits for its timeout, and a bubble whose test has
// returned no longer advances its clock.
func Bubble(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		t.Cleanup(func() { time.Sleep(BubbleDrain) }) // registered first: runs last
		f(t)
	})
}

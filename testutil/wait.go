package testutil

import (
	"testing"
	"time"
)

// DefaultWait bounds WaitFor when no timeout is given.
const DefaultWait = 15 * time.Second

// WaitFor polls cond every few milliseconds until it returns true, and fails
// the test with msg if it has not within timeout (0: DefaultWait).
func WaitFor(tb testing.TB, timeout time.Duration, cond func() bool, msg string, args ...any) {
	tb.Helper()
	if timeout <= 0 {
		timeout = DefaultWait
	}
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("condition not met within %v: "+msg, append([]any{timeout}, args...)...)
		}
		<-tick.C
	}
}

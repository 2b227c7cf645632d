package testutil

import (
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// MemberlistExitWithin bounds how long memberlist's own goroutines may
// outlive Memberlist.Shutdown: memberlist does not join them, and a probe in
// flight waits for its ack timer (about a probe interval) before it notices
// the stop. Goroutines that distcache itself starts have all exited when
// Engine.Stop or Cluster.Shutdown returns; this grace only covers
// memberlist's. goleak.VerifyTestMain retries for about half a second only.
const MemberlistExitWithin = 5 * time.Second

// VerifyTestMain runs the tests, then fails the run if goroutines are still
// running MemberlistExitWithin after they ended. Use it in TestMain of every
// package whose tests start engines or clusters.
func VerifyTestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(MemberlistExitWithin)
		for {
			err := goleak.Find() // retries internally for about 0.5 s
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				fmt.Fprintf(os.Stderr, "goleak: goroutines still running %v after the tests: %v\n", MemberlistExitWithin, err)
				code = 1
				break
			}
		}
	}
	os.Exit(code)
}

package membership

import (
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// memberlistExitWithin bounds how long memberlist's own goroutines may
// outlive Memberlist.Shutdown: it does not join them, and a probe in flight
// waits for its ack timer (ProbeInterval, 1 s) before noticing the stop.
// goleak.VerifyTestMain retries for only about half a second.
const memberlistExitWithin = 5 * time.Second

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(memberlistExitWithin)
		for {
			err := goleak.Find() // retries internally for ~0.5 s
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				fmt.Fprintf(os.Stderr, "goleak: goroutines still running %v after the tests: %v\n", memberlistExitWithin, err)
				code = 1
				break
			}
		}
	}
	os.Exit(code)
}

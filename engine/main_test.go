package engine_test

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// OpenTelemetry's global delegates and glog-free memberlist leave
		// nothing behind; ristretto, memberlist and our transport must all
		// have exited when Stop returns.
	)
}

package engine_test

import (
	"testing"

	"github.com/distcache/distcache/testutil"
)

// Every goroutine the engine starts has exited when Stop returns; the
// helper allows memberlist's own goroutines a moment to notice their stop.
func TestMain(m *testing.M) { testutil.VerifyTestMain(m) }

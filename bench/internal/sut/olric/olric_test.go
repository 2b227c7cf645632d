package olric

import (
	"testing"

	"github.com/distcache/distcache/bench/internal/sut/suttest"
)

// Olric v0.7.0 races itself (see cmd/distbench/race_on_test.go), so this
// test runs only without the race detector.
func TestConformance(t *testing.T) {
	if raceEnabled {
		t.Skip("olric v0.7.0 has a data race of its own (routingtable/update.go:88)")
	}
	suttest.Run(t, New())
}

package main

import (
	"testing"
	"time"
)

// The quickstart runs end to end (a shorter, smaller version of the README's
// first command) and reports no failed Gets.
func TestQuickstartRuns(t *testing.T) {
	if err := run(500*time.Millisecond, 3, 1000, 8); err != nil {
		t.Fatal(err)
	}
}

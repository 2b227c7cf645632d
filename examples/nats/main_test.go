package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// The example runs end to end: three engines find each other through the
// embedded NATS server and load each key once.
func TestNATSExample(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "found through NATS") {
		t.Fatalf("unexpected output:\n%s", out.String())
	}
}

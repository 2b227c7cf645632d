package main

import (
	"os"
	"testing"
)

// TestMain lets the test binary play a node: the launcher re-executes its
// own binary (here, the test binary) with the node subcommand.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "node" {
		if err := runNode(os.Args[2:]); err != nil {
			os.Stderr.WriteString("service node: " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// The smoke check passes: three processes, reads and writes through every
// node, kill -9 and restart of one, no child left at the end.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	if err := smoke(testWriter{t}, 200, false); err != nil {
		t.Fatal(err)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) { w.t.Log(string(b)); return len(b), nil }

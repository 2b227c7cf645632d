package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/distcache/distcache/chaos/internal/proc"
)

// fakeNode writes a node binary stand-in: it fails as a node whose port was
// taken on its first failures starts (counted in a file), then reports ready
// and waits to be killed.
func fakeNode(t *testing.T, failures int) string {
	t.Helper()
	dir := t.TempDir()
	script := filepath.Join(dir, "node")
	body := `#!/bin/sh
n=$(cat "` + dir + `/starts" 2>/dev/null || echo 0)
echo $((n+1)) > "` + dir + `/starts"
if [ "$n" -lt ` + strconv.Itoa(failures) + ` ]; then
  echo "start: listen tcp 127.0.0.1:1: bind: address already in use"
  exit 1
fi
echo "CHAOSNODE READY gossip=127.0.0.1:1 control=127.0.0.1:2"
exec sleep 60
`
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script
}

// A node that loses its port to another process between the port's choice
// and its start makes launch try again with fresh ports; a cluster whose
// every attempt loses is reported as such.
func TestLaunchRetriesATakenPort(t *testing.T) {
	ctx := context.Background()
	procs := proc.NewGroup()
	t.Cleanup(func() { procs.KillAll(5 * time.Second) })

	cfg := &config{nodes: 1, nodeBin: fakeNode(t, 1)}
	c, err := launch(ctx, cfg, procs, nil, t.TempDir(), "t", time.Now(), nil)
	if err != nil {
		t.Fatalf("one lost port: %v", err)
	}
	c.stopAll()

	cfg.nodeBin = fakeNode(t, 9)
	_, err = launch(ctx, cfg, procs, nil, t.TempDir(), "t", time.Now(), nil)
	if !errors.Is(err, errPortTaken) {
		t.Fatalf("every port lost: got %v, want errPortTaken", err)
	}
}

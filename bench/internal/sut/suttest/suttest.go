// Package suttest is a conformance test that every sut.System adapter
// runs in its own package: a 3-node cluster serves read-through Gets (one
// DataSource call per key), Puts, GetMany, a graceful stop and a restart.
package suttest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/distcache/distcache/bench/internal/sut"
)

// Run drives sys through the scenario; sys must be fresh (not started).
func Run(t *testing.T, sys sut.System) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	src := sut.NewSource(100)
	if err := sys.Start(ctx, 3, src); err != nil {
		t.Fatalf("%s: start: %v", sys.Name(), err)
	}
	defer func() {
		if err := sys.Close(ctx); err != nil {
			t.Errorf("%s: close: %v", sys.Name(), err)
		}
	}()
	if sys.Name() == "" || len(sys.Notes()) == 0 {
		t.Errorf("Name %q and Notes %v must be set", sys.Name(), sys.Notes())
	}
	var keys []string
	for i := range 30 {
		keys = append(keys, fmt.Sprintf("conf-%d", i))
	}
	for i, k := range keys {
		v, err := sys.Get(ctx, i%3, k)
		if err != nil || len(v) != 100 || string(v[:len(k)]) != k {
			t.Fatalf("%s: Get(%s) = %q, %v", sys.Name(), k, v, err)
		}
	}
	// Read again through another node: served from the cache.
	for i, k := range keys {
		if _, err := sys.Get(ctx, (i+1)%3, k); err != nil {
			t.Fatalf("%s: second Get(%s): %v", sys.Name(), k, err)
		}
	}
	if calls := src.Calls(); calls != int64(len(keys)) {
		t.Errorf("%s: %d DataSource calls for %d keys read twice through different nodes", sys.Name(), calls, len(keys))
	}
	if err := sys.Put(ctx, 0, "put-key", []byte("put-value")); err != nil {
		t.Fatalf("%s: Put: %v", sys.Name(), err)
	}
	if v, err := sys.Get(ctx, 2, "put-key"); err != nil || string(v) != "put-value" {
		t.Fatalf("%s: Get after Put = %q, %v", sys.Name(), v, err)
	}
	if n, err := sys.GetMany(ctx, 1, keys); err != nil || n != len(keys) {
		t.Fatalf("%s: GetMany = %d, %v", sys.Name(), n, err)
	}
	if err := sys.StopNode(ctx, 2); err != nil {
		t.Fatalf("%s: StopNode: %v", sys.Name(), err)
	}
	for i, k := range keys {
		if _, err := sys.Get(ctx, i%2, k); err != nil {
			t.Fatalf("%s: Get(%s) with node 2 stopped: %v", sys.Name(), k, err)
		}
	}
	if err := sys.RestartNode(ctx, 2); err != nil {
		t.Fatalf("%s: RestartNode: %v", sys.Name(), err)
	}
	if _, err := sys.Get(ctx, 2, keys[0]); err != nil {
		t.Fatalf("%s: Get through the restarted node: %v", sys.Name(), err)
	}
}

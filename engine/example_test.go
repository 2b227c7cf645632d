package engine_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/distcache/distcache/discovery/static"
	"github.com/distcache/distcache/engine"
	"github.com/distcache/distcache/keyspace"
)

// startExample starts a one-node engine on a free port of 127.0.0.1 over
// a keyspace "users" whose DataSource counts its fetches and knows users 1
// to 9. In a cluster, the provider lists the other nodes.
func startExample(fetches *atomic.Int64) (*engine.Engine, error) {
	users := keyspace.New("users", 1<<20, keyspace.DataSourceFunc(
		func(ctx context.Context, key string) ([]byte, error) {
			fetches.Add(1)
			if len(key) != 1 || key < "1" || key > "9" {
				return nil, keyspace.ErrNotFound
			}
			return []byte("user " + key), nil
		}))
	e, err := engine.New(engine.NewConfig(
		static.NewDiscovery(nil), // no peers: a one-node cluster
		[]keyspace.KeySpace{users},
		engine.WithNodeName("example"),
		engine.WithBindAddr("127.0.0.1"),
		engine.WithBindPort(0), // a free port; e.Addr() reports it
		engine.WithGossipSecret([]byte("0123456789abcdef0123456789abcdef")),
		engine.WithKeySpaceDefaultTTL("users", time.Minute),
	))
	if err != nil {
		return nil, err
	}
	return e, e.Start(context.Background())
}

// Get reads through the cache: the first Get of a key loads it from the
// DataSource, later ones are served from memory. A key the DataSource does
// not have is keyspace.ErrNotFound.
func ExampleEngine_Get() {
	var fetches atomic.Int64
	e, err := startExample(&fetches)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer e.Stop(context.Background())
	ctx := context.Background()

	for range 3 {
		v, err := e.Get(ctx, "users", "1")
		fmt.Println(string(v), err)
	}
	_, err = e.Get(ctx, "users", "404")
	fmt.Println(errors.Is(err, keyspace.ErrNotFound))
	fmt.Println("fetches:", fetches.Load())
	// Output:
	// user 1 <nil>
	// user 1 <nil>
	// user 1 <nil>
	// true
	// fetches: 2
}

// GetMany returns the keys it found in a map; missing keys are absent (not
// an error), and other failures are joined into the error, one
// *engine.KeyError per key.
func ExampleEngine_GetMany() {
	var fetches atomic.Int64
	e, err := startExample(&fetches)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer e.Stop(context.Background())

	vals, err := e.GetMany(context.Background(), "users", []string{"1", "2", "missing"})
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Printf("%s=%s\n", k, vals[k])
	}
	fmt.Println(err)
	// Output:
	// 1=user 1
	// 2=user 2
	// <nil>
}

// Writes go to your database first, then to the cache: Put stores the new
// value on the key's owner and drops copies elsewhere (write-through: the
// next Get is a hit), Delete removes the key everywhere (invalidation: the
// next Get loads it again).
func ExampleEngine_Put() {
	var fetches atomic.Int64
	e, err := startExample(&fetches)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer e.Stop(context.Background())
	ctx := context.Background()

	// db.UpdateUser(ctx, "3", "Ada") would run here.
	if err := e.Put(ctx, "users", engine.Entry{Key: "3", Value: []byte("Ada")}); err != nil {
		fmt.Println(err)
	}
	v, _ := e.Get(ctx, "users", "3")
	fmt.Println(string(v), "fetches:", fetches.Load())

	if err := e.Delete(ctx, "users", "3"); err != nil {
		fmt.Println(err)
	}
	v, _ = e.Get(ctx, "users", "3")
	fmt.Println(string(v), "fetches:", fetches.Load())
	// Output:
	// Ada fetches: 0
	// user 3 fetches: 1
}

// Stats is a snapshot of this node's counters, per keyspace.
func ExampleEngine_Stats() {
	var fetches atomic.Int64
	e, err := startExample(&fetches)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer e.Stop(context.Background())
	ctx := context.Background()
	for _, k := range []string{"1", "1", "1", "2"} {
		_, _ = e.Get(ctx, "users", k)
	}
	st, _ := e.Stats().KeySpace("users")
	fmt.Println("fetches:", st.Fetches, "entries:", st.Entries)
	// Output:
	// fetches: 2 entries: 2
}

// New validates the whole configuration at once: every problem is reported,
// each naming its field, wrapped in ErrInvalidConfig.
func ExampleNew_invalidConfig() {
	users := keyspace.New("users", 1<<20, keyspace.DataSourceFunc(
		func(context.Context, string) ([]byte, error) { return nil, keyspace.ErrNotFound }))
	_, err := engine.New(engine.NewConfig(static.NewDiscovery(nil), []keyspace.KeySpace{users},
		engine.WithBindPort(70000),
		engine.WithKeySpaceDefaultTTL("orders", time.Minute),
	))
	fmt.Println(errors.Is(err, engine.ErrInvalidConfig))
	// Output:
	// true
}

package keyspace_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/distcache/distcache/keyspace"
)

// A keyspace names a cache namespace, its per-node byte budget and the
// DataSource that loads a missing key. The engine calls Fetch on the key's
// owner; here it is called directly to show what it returns.
func ExampleNew() {
	users := keyspace.New("users", 64<<20, keyspace.DataSourceFunc(
		func(ctx context.Context, key string) ([]byte, error) {
			return []byte(`{"id":"` + key + `"}`), nil
		}))
	v, err := users.DataSource().Fetch(context.Background(), "42")
	fmt.Println(users.Name(), users.MaxBytes()>>20, "MiB")
	fmt.Println(string(v), err)
	// Output:
	// users 64 MiB
	// {"id":"42"} <nil>
}

// A DataSource reports a key that does not exist with ErrNotFound (wrapped
// or not): the engine then answers ErrNotFound on every node, and may
// remember it (WithKeySpaceNegativeTTL). Any other error is a failure.
func ExampleDataSourceFunc() {
	rows := map[string]string{"1": "Ada", "2": "Grace"}
	ds := keyspace.DataSourceFunc(func(ctx context.Context, key string) ([]byte, error) {
		name, ok := rows[key]
		if !ok {
			return nil, fmt.Errorf("user %s: %w", key, keyspace.ErrNotFound)
		}
		return []byte(name), nil
	})
	for _, k := range []string{"1", "3"} {
		v, err := ds.Fetch(context.Background(), k)
		fmt.Printf("%s: %q, not found: %v\n", k, v, errors.Is(err, keyspace.ErrNotFound))
	}
	// Output:
	// 1: "Ada", not found: false
	// 3: "", not found: true
}

// sessions is a KeySpace with a per-key expiry: each session ends at a time
// carried in the key itself. Implement KeySpace when keyspace.New's fixed
// settings are not enough.
type sessions struct{ ds keyspace.DataSource }

func (sessions) Name() string                      { return "sessions" }
func (sessions) MaxBytes() int64                   { return 8 << 20 }
func (s sessions) DataSource() keyspace.DataSource { return s.ds }
func (sessions) ExpiresAt(_ context.Context, key string) time.Time {
	// Keys look like "<unix expiry>:<id>".
	var unix int64
	if _, err := fmt.Sscanf(key, "%d:", &unix); err != nil {
		return time.Time{} // no expiry from the keyspace: the default TTL applies
	}
	return time.Unix(unix, 0).UTC()
}

// ExpiresAt gives each loaded or written key its own absolute expiry; the
// zero time falls back to the keyspace default TTL.
func Example_perKeyExpiry() {
	var ks keyspace.KeySpace = sessions{}
	fmt.Println(ks.ExpiresAt(context.Background(), "1767225600:abc"))
	fmt.Println(ks.ExpiresAt(context.Background(), "no-expiry").IsZero())
	// Output:
	// 2026-01-01 00:00:00 +0000 UTC
	// true
}

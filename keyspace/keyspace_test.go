package keyspace

import (
	"context"
	"errors"
	"testing"
)

func TestNew(t *testing.T) {
	ds := DataSourceFunc(func(_ context.Context, key string) ([]byte, error) {
		if key == "missing" {
			return nil, ErrNotFound
		}
		return []byte(key), nil
	})
	ks := New("users", 1<<20, ds)
	if ks.Name() != "users" || ks.MaxBytes() != 1<<20 || !ks.ExpiresAt(context.Background(), "k").IsZero() {
		t.Fatalf("unexpected keyspace %+v", ks)
	}
	v, err := ks.DataSource().Fetch(context.Background(), "k")
	if err != nil || string(v) != "k" {
		t.Fatalf("Fetch = %q, %v", v, err)
	}
	if _, err := ks.DataSource().Fetch(context.Background(), "missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing key: %v", err)
	}
}

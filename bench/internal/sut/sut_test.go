package sut

import (
	"context"
	"testing"
	"time"
)

func TestSource(t *testing.T) {
	s := NewSource(16)
	v, err := s.Fetch(context.Background(), "key")
	if err != nil || len(v) != 16 || string(v[:3]) != "key" {
		t.Fatalf("Fetch = %q, %v", v, err)
	}
	if s.Calls() != 1 {
		t.Fatalf("Calls = %d", s.Calls())
	}
	s.SetLatency(time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := s.Fetch(ctx, "slow"); err == nil {
		t.Fatal("a cancelled fetch returned no error")
	}
}

package engine

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/distcache/distcache/keyspace"
)

// Single-key writes that reach the owner while a write of the key holds its
// slot are applied as one round: invariants checked
//   - every write of the round returns nil, none before the slot is free;
//   - the store ends with the latest write joined, written once (one store
//     version for the whole round);
//   - the Puts counter counts every write.
func TestWritesOfABusyKeyCombineIntoOneRound(t *testing.T) {
	e := startLone(t, keyspace.DataSourceFunc(func(context.Context, string) ([]byte, error) { return []byte("ds"), nil }))
	st, err := e.keyspace("t")
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, e.Put(ctx, "t", Entry{Key: "k", Value: []byte("v0")}))

	// A write in progress: the slot is held.
	release, err := st.pending.claim(ctx, []string{"k"})
	require.NoError(t, err)
	puts0, ver0 := st.stats.puts.Load(), st.store.Version()

	const n = 5
	errs := make(chan error, n)
	for i := range n {
		go func() { errs <- e.Put(ctx, "t", Entry{Key: "k", Value: fmt.Appendf(nil, "v%d", i+1)}) }()
		// Join in order, so that the latest joined is known.
		require.Eventually(t, func() bool {
			st.pending.mu.Lock()
			defer st.pending.mu.Unlock()
			r := st.pending.next["k"]
			return r != nil && r.n == i+1
		}, 5*time.Second, time.Millisecond)
	}
	select {
	case err := <-errs:
		t.Fatalf("a write returned while the key's slot was held: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	release()
	for range n {
		require.NoError(t, <-errs)
	}
	got, err := e.Get(ctx, "t", "k")
	require.NoError(t, err)
	require.Equal(t, "v5", string(got), "the latest write joined wins")
	require.Equal(t, ver0+1, st.store.Version(), "one store write for the round")
	require.Equal(t, puts0+n, st.stats.puts.Load())
}

// A round whose leader's deadline passes before the slot frees is withdrawn
// unapplied; a write that joined it with time left retries and lands.
func TestRoundWithdrawnWhenItsLeaderTimesOut(t *testing.T) {
	e := startLone(t, keyspace.DataSourceFunc(func(context.Context, string) ([]byte, error) { return []byte("ds"), nil }))
	st, err := e.keyspace("t")
	require.NoError(t, err)
	ctx := context.Background()
	release, err := st.pending.claim(ctx, []string{"k"})
	require.NoError(t, err)

	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	leader := make(chan error, 1)
	go func() { leader <- e.Put(short, "t", Entry{Key: "k", Value: []byte("leader")}) }()
	require.Eventually(t, func() bool {
		st.pending.mu.Lock()
		defer st.pending.mu.Unlock()
		return st.pending.next["k"] != nil
	}, 5*time.Second, time.Millisecond)
	joiner := make(chan error, 1)
	go func() { joiner <- e.Put(ctx, "t", Entry{Key: "k", Value: []byte("joiner")}) }()

	require.ErrorIs(t, <-leader, context.DeadlineExceeded)
	release()
	require.NoError(t, <-joiner)
	got, err := e.Get(ctx, "t", "k")
	require.NoError(t, err)
	require.Equal(t, "joiner", string(got))
}

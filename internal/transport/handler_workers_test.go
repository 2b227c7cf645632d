package transport

import (
	"bytes"
	"context"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// goroutineID parses the running goroutine's id from its stack header.
func goroutineID() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	id, _ := strconv.ParseUint(string(b[:bytes.IndexByte(b, ' ')]), 10, 64)
	return id
}

// Invariants: requests that come one after another are served by one
// worker goroutine (its grown stack is kept); concurrent requests each get
// a goroutine of their own (no request waits for another's handler);
// Shutdown ends the waiting workers, so it returns although they would
// otherwise wait handlerIdle.
func TestHandlerWorkersAreReused(t *testing.T) {
	var (
		mu   sync.Mutex
		ids  = map[uint64]int{}
		hold = make(chan struct{})
		in   = make(chan struct{}, 8)
	)
	srv := newTestTransport(t, func(c *Config) {
		c.Handler = HandlerFunc(func(_ context.Context, req Request) Response {
			mu.Lock()
			ids[goroutineID()]++
			mu.Unlock()
			if req.Op == 2 {
				in <- struct{}{}
				<-hold
			}
			return Response{Status: req.Op}
		})
	})
	cli := newTestTransport(t, nil)
	ctx := context.Background()
	for range 20 {
		_, err := cli.Call(ctx, addrOf(srv), Request{Op: 1})
		require.NoError(t, err)
	}
	mu.Lock()
	require.Len(t, ids, 1, "sequential requests share one worker: %v", ids)
	clear(ids)
	mu.Unlock()

	// Four requests held at once: four workers, the first of them reused.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			_, err := cli.Call(ctx, addrOf(srv), Request{Op: 2})
			require.NoError(t, err)
		})
	}
	for range 4 {
		select {
		case <-in:
		case <-time.After(10 * time.Second):
			t.Fatal("held requests did not all start: one waited for another's worker")
		}
	}
	close(hold)
	wg.Wait()
	mu.Lock()
	require.Len(t, ids, 4, "each concurrent request has a goroutine")
	mu.Unlock()

	done := make(chan error, 1)
	go func() { done <- srv.Shutdown() }()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(handlerIdle / 2):
		t.Fatal("Shutdown waited for idle workers")
	}
}

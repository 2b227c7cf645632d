package transport

import (
	"context"
	"sync"
	"testing"
)

func TestDebugSyscalls(t *testing.T) {
	srv := newTestTransport(t, func(c *Config) { c.Handler = echo })
	cli := newTestTransport(t, func(c *Config) { c.ConnsPerPeer = 1 })
	addr := addrOf(srv)
	_, _ = cli.Call(context.Background(), addr, Request{})
	DebugWrites.Store(0)
	DebugReads.Store(0)
	var wg sync.WaitGroup
	const N = 20000
	for range 64 {
		wg.Go(func() {
			for range N / 64 {
				_, _ = cli.Call(context.Background(), addr, Request{Payload: make([]byte, 100)})
			}
		})
	}
	wg.Wait()
	t.Logf("writes/op %.2f reads/op %.2f", float64(DebugWrites.Load())/N, float64(DebugReads.Load())/N)
}

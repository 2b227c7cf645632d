package transport

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/distcache/distcache/internal/testcert"
	"github.com/stretchr/testify/require"
)

// Benchmarks compare Transport.Call with raw loopback TCP baselines measured in the same run:
//
//	go test -run '^$' -bench . -benchmem ./internal/transport/
//
// Each reports ops/s and, where meaningful, p50/p99 latency in µs. All use 100-byte
// payloads both ways.

const benchPayload = 100

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportLatency adds ops/s, p50 and p99 metrics from per-op latencies, and the process
// CPU time per op since cpu0 (both client and server run in this process), which is less
// sensitive than ops/s to other load on a shared machine.
func reportLatency(b *testing.B, lat []time.Duration, elapsed, cpu0 time.Duration) {
	b.Helper()
	if len(lat) == 0 {
		return
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Microsecond)/float64(len(lat)), "cpu-µs/op")
	slices.Sort(lat)
	us := func(q float64) float64 {
		return float64(lat[min(len(lat)-1, int(q*float64(len(lat))))]) / float64(time.Microsecond)
	}
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "ops/s")
	b.ReportMetric(us(0.50), "p50-µs")
	b.ReportMetric(us(0.99), "p99-µs")
}

// rawEchoServer echoes u32-length-prefixed frames, flushing when its input is drained.
func rawEchoServer(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	var wg sync.WaitGroup
	var conns []net.Conn
	var mu sync.Mutex
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				br := bufio.NewReaderSize(c, 64<<10)
				bw := bufio.NewWriterSize(c, 64<<10)
				buf := make([]byte, 4+benchPayload)
				for {
					if _, err := io.ReadFull(br, buf[:4]); err != nil {
						return
					}
					n := binary.BigEndian.Uint32(buf[:4])
					if _, err := io.ReadFull(br, buf[4:4+n]); err != nil {
						return
					}
					_, _ = bw.Write(buf[:4+n])
					if br.Buffered() == 0 {
						if bw.Flush() != nil {
							return
						}
					}
				}
			})
		}
	})
	b.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func rawFrame() []byte {
	f := make([]byte, 4+benchPayload)
	binary.BigEndian.PutUint32(f, benchPayload)
	return f
}

// BenchmarkRawPingPong is the latency floor: one request in flight on one TCP connection.
func BenchmarkRawPingPong(b *testing.B) {
	addr := rawEchoServer(b)
	c, err := net.Dial("tcp", addr)
	require.NoError(b, err)
	defer c.Close()
	frame, resp := rawFrame(), make([]byte, 4+benchPayload)
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	for range b.N {
		t0 := time.Now()
		if _, err := c.Write(frame); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, resp); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	elapsed := time.Since(start)
	b.StopTimer()
	reportLatency(b, lat, elapsed, cpu0)
}

// BenchmarkRawPipelined is the throughput ceiling: 64 requests in flight on one connection,
// a writer and a reader goroutine, writes batched and flushed when the window is full.
func BenchmarkRawPipelined(b *testing.B) {
	const window = 64
	addr := rawEchoServer(b)
	c, err := net.Dial("tcp", addr)
	require.NoError(b, err)
	defer c.Close()
	sent := make([]time.Time, b.N)
	lat := make([]time.Duration, b.N)
	sem := make(chan struct{}, window)
	frame := rawFrame()
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	var wg sync.WaitGroup
	wg.Go(func() {
		bw := bufio.NewWriterSize(c, 64<<10)
		for i := range b.N {
			select {
			case sem <- struct{}{}:
			default:
				if bw.Flush() != nil {
					return
				}
				sem <- struct{}{}
			}
			sent[i] = time.Now()
			_, _ = bw.Write(frame)
		}
		_ = bw.Flush()
	})
	br := bufio.NewReaderSize(c, 64<<10)
	resp := make([]byte, 4+benchPayload)
	for i := range b.N {
		if _, err := io.ReadFull(br, resp); err != nil {
			b.Fatal(err)
		}
		lat[i] = time.Since(sent[i])
		<-sem
	}
	elapsed := time.Since(start)
	wg.Wait()
	b.StopTimer()
	reportLatency(b, lat, elapsed, cpu0)
}

// BenchmarkCall measures Transport.Call against an echo handler: served on a goroutine per
// request (Handler), or on the reader goroutine (InlineHandler, "/inline").
func BenchmarkCall(b *testing.B) {
	for _, bc := range []struct {
		name           string
		callers, conns int
		handler        Handler
	}{
		{"callers=1", 1, 1, echo},
		{"callers=1/inline", 1, 1, inlineEcho{}},
		{"callers=64/conns=1", 64, 1, echo},
		{"callers=64/conns=1/inline", 64, 1, inlineEcho{}},
		{"callers=64/conns=2", 64, 2, echo},
	} {
		b.Run(bc.name, func(b *testing.B) {
			srv := newTestTransport(b, func(c *Config) { c.Handler = bc.handler })
			cli := newTestTransport(b, func(c *Config) { c.ConnsPerPeer = bc.conns })
			addr := addrOf(srv)
			payload := make([]byte, benchPayload)
			ctx := context.Background()
			for range 10 * bc.conns { // warm up: dial every pooled conn
				_, err := cli.Call(ctx, addr, Request{Payload: payload})
				require.NoError(b, err)
			}
			lats := make([][]time.Duration, bc.callers)
			var wg sync.WaitGroup
			b.ReportAllocs()
			b.ResetTimer()
			start, cpu0 := time.Now(), cpuTime()
			for g := range bc.callers {
				n := b.N / bc.callers
				if g < b.N%bc.callers {
					n++
				}
				wg.Go(func() {
					lat := make([]time.Duration, 0, n)
					for range n {
						t0 := time.Now()
						if _, err := cli.Call(ctx, addr, Request{Op: 1, Payload: payload}); err != nil {
							b.Error(err)
							return
						}
						lat = append(lat, time.Since(t0))
					}
					lats[g] = lat
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			reportLatency(b, slices.Concat(lats...), elapsed, cpu0)
		})
	}
}

// BenchmarkHandshake measures what a new connection costs (dial, handshake, close), per
// security mode: the secret's challenge-response adds one round trip and two HMACs, once
// per connection, nothing per request.
func BenchmarkHandshake(b *testing.B) {
	ca := testcert.NewCA(b)
	sTLS, cTLS := ca.MutualTLS(b, 2)
	for _, bc := range []struct {
		name string
		mod  func(*Config)
	}{
		{"plain", func(*Config) {}},
		{"secret", func(c *Config) { c.AuthSecret = secretA }},
		{"mTLS", func(c *Config) { c.ServerTLS, c.ClientTLS = sTLS, cTLS }},
		{"mTLS+secret", func(c *Config) { c.ServerTLS, c.ClientTLS, c.AuthSecret = sTLS, cTLS, secretA }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			srv := newTestTransport(b, func(c *Config) { bc.mod(c); c.Handler = echo; c.MaxConnsPerIP = -1; c.MaxPendingConns = -1 })
			cli := newTestTransport(b, bc.mod)
			addr := addrOf(srv)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := cli.Probe(context.Background(), addr); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

package transport

import (
	"context"
	"net"
	"os"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// attackMemoryBound is the most an attack may move the node's heap.
const attackMemoryBound = 100 << 20

// memSampler records, while an attack runs, the peaks of the live heap (marked by the last
// GC: what the node retains), of all heap objects (including garbage not yet collected,
// which the GC lets grow to about twice the live heap) and of the process RSS. All include
// this test process's attacker side, which allocates almost nothing: the bytes it sends
// come from one slice allocated before the baseline.
type memSampler struct {
	stop                       chan struct{}
	done                       sync.WaitGroup
	peakLive, peakObj, peakRSS atomic.Uint64
}

// heap returns the live heap and all heap objects, in bytes.
func heap() (live, objects uint64) {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64(), s[1].Value.Uint64()
}

func raise(a *atomic.Uint64, v uint64) {
	if v > a.Load() {
		a.Store(v)
	}
}

// rss reads the resident set size from /proc (0 where there is none).
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseUint(f[1], 10, 64)
	return pages * uint64(os.Getpagesize())
}

func startSampler() *memSampler {
	s := &memSampler{stop: make(chan struct{})}
	s.done.Go(func() {
		tk := time.NewTicker(2 * time.Millisecond)
		defer tk.Stop()
		for {
			live, obj := heap()
			raise(&s.peakLive, live)
			raise(&s.peakObj, obj)
			raise(&s.peakRSS, rss())
			select {
			case <-tk.C:
			case <-s.stop:
				return
			}
		}
	})
	return s
}

func (s *memSampler) finish() (peakLive, peakObj, peakRSS uint64) {
	close(s.stop)
	s.done.Wait()
	return s.peakLive.Load(), s.peakObj.Load(), s.peakRSS.Load()
}

// legitLoad keeps callers busy with small calls to addr and records their latencies.
type legitLoad struct {
	stop chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	lats []time.Duration
	errs atomic.Int64
}

func startLegit(cli *Transport, addr string, callers int) *legitLoad {
	l := &legitLoad{stop: make(chan struct{})}
	for range callers {
		l.wg.Go(func() {
			var lats []time.Duration
			payload := make([]byte, 256)
			for {
				select {
				case <-l.stop:
					l.mu.Lock()
					l.lats = append(l.lats, lats...)
					l.mu.Unlock()
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				t0 := time.Now()
				_, err := cli.Call(ctx, addr, Request{Op: 2, Payload: payload})
				lats = append(lats, time.Since(t0))
				cancel()
				if err != nil {
					l.errs.Add(1)
				}
			}
		})
	}
	return l
}

func (l *legitLoad) finish() (n int, p50, p99 time.Duration, errs int64) {
	close(l.stop)
	l.wg.Wait()
	slices.Sort(l.lats)
	if len(l.lats) == 0 {
		return 0, 0, 0, l.errs.Load()
	}
	return len(l.lats), l.lats[len(l.lats)/2], l.lats[len(l.lats)*99/100], l.errs.Load()
}

// TestAttackBoundsMemory attacks a live node over real sockets, with the defaults of a
// node that accepts unauthenticated peers (loopback, no secret): the attacker speaks the
// protocol. Each attack must move the node's live heap by less than 100 MB (and its RSS,
// when the race detector, whose shadow memory scales with allocations, is off) while other
// callers keep being served; the report gives the memory moved and the callers' latencies.
//
//	go test -run TestAttackBoundsMemory -v ./internal/transport/
func TestAttackBoundsMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("attack test runs for several seconds")
	}
	value := make([]byte, 4<<20)
	half := make([]byte, 8<<20) // what each half-sent frame carries
	srv := newTestTransport(t, func(c *Config) { c.Handler = bigInline{value} })
	cli := newTestTransport(t, nil)
	addr := addrOf(srv)
	_, err := cli.Call(context.Background(), addr, Request{Op: 2})
	require.NoError(t, err)

	run := func(name string, attack func(t *testing.T) (cleanup func())) {
		t.Run(name, func(t *testing.T) {
			runtime.GC()
			baseLive, baseObj := heap()
			baseRSS := rss()
			sampler := startSampler()
			legit := startLegit(cli, addr, 4)
			cleanup := attack(t)
			peakLive, peakObj, peakRSS := sampler.finish()
			n, p50, p99, errs := legit.finish()
			cleanup()
			liveMoved := int64(peakLive) - int64(baseLive)
			objMoved := int64(peakObj) - int64(baseObj)
			rssMoved := int64(peakRSS) - int64(baseRSS)
			t.Logf("%s: live heap moved %.1f MB, heap objects (with garbage) %.1f MB, RSS %.1f MB (race detector: %v); "+
				"other callers: %d calls, p50 %v, p99 %v, %d errors",
				name, mb(liveMoved), mb(objMoved), mb(rssMoved), raceEnabled, n, p50, p99, errs)
			assert.Less(t, liveMoved, int64(attackMemoryBound), "live heap moved by the attack")
			if !raceEnabled {
				assert.Less(t, rssMoved, int64(attackMemoryBound), "RSS moved by the attack")
			}
			assert.Zero(t, errs, "other callers failed during the attack")
			assert.Positive(t, n)
		})
	}

	run("non-reading client pipelining Gets of a 4 MiB value", func(t *testing.T) (cleanup func()) {
		c := handshaken(t, srv)
		var wg sync.WaitGroup
		wg.Go(func() { // ends when c is closed
			frames := make([]byte, 0, 64*frameHeaderLen)
			for i := uint64(1); ; i += 64 {
				frames = frames[:0]
				for j := range uint64(64) {
					frames = appendHeader(frames, frameHeader{typ: frameReq, code: 1, id: i + j})
				}
				if _, err := c.Write(frames); err != nil {
					return
				}
			}
		})
		require.Eventually(t, func() bool { return srv.Stats().ReadsPaused > 0 }, 5*time.Second, time.Millisecond)
		waitFor(2 * time.Second) // the attack's duration: hold it while memory is sampled
		return func() { _ = c.Close(); wg.Wait() }
	})

	run("40 half-sent 16 MiB frames", func(t *testing.T) (cleanup func()) {
		const conns = 40
		var wg sync.WaitGroup
		cs := make([]net.Conn, conns)
		for i := range cs {
			cs[i] = handshaken(t, srv)
			c := cs[i]
			wg.Go(func() { // ends when the server stops reading and the deadline passes, or c closes
				_ = c.SetWriteDeadline(time.Now().Add(2 * time.Second))
				hdr := appendHeader(nil, frameHeader{typ: frameReq, code: 2, id: 1, length: DefaultMaxFrameBytes - frameHeaderLen})
				if _, err := c.Write(hdr); err != nil {
					return
				}
				_, _ = c.Write(half)
			})
		}
		require.Eventually(t, func() bool { return srv.Stats().ReceiveBufferBytes > 0 }, 5*time.Second, time.Millisecond)
		wg.Wait() // every attacker has sent what the server would take
		waitFor(time.Second)
		return func() {
			for _, c := range cs {
				_ = c.Close()
			}
		}
	})
}

// waitFor lets an attack run for d: the duration is the measurement, not a wait for a
// condition.
func waitFor(d time.Duration) { <-time.After(d) }

func mb(b int64) float64 { return float64(b) / 1e6 }

package raw

import (
	"context"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dgraph-io/ristretto/v2"

	"github.com/distcache/distcache/bench/internal/hist"
)

// Measurement is what one baseline run produced.
type Measurement struct {
	Ops     int64
	Elapsed time.Duration
	Mallocs uint64
	// CPU is the process's user+system CPU time over the run.
	CPU time.Duration
	// Syscalls is the process's read+write system calls over the run (-1:
	// unknown).
	Syscalls int64
	Latency  *hist.Histogram
}

// CPUTime is the process's user+system CPU time so far (getrusage).
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// IOSyscalls is the number of read and write system calls the process has
// made so far (syscr + syscw of /proc/self/io, sockets included), or -1
// where that file does not exist.
func IOSyscalls() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	var n int64
	found := 0
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "syscr" && k != "syscw") {
			continue
		}
		x, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return -1
		}
		n += x
		found++
	}
	if found != 2 {
		return -1
	}
	return n
}

// since returns the counters' growth from a reading taken at the start.
func since(ms0 *runtime.MemStats, cpu0 time.Duration, sys0 int64) (mallocs uint64, cpu time.Duration, syscalls int64) {
	var ms1 runtime.MemStats
	runtime.ReadMemStats(&ms1)
	syscalls = -1
	if s1 := IOSyscalls(); sys0 >= 0 && s1 >= 0 {
		syscalls = s1 - sys0
	}
	return ms1.Mallocs - ms0.Mallocs, CPUTime() - cpu0, syscalls
}

// KeyDist selects a key index in [0, n).
type KeyDist func(r *rand.Rand) func() int

// Zipf returns Zipf(s=1.01, v=1) key indexes over n keys (math/rand/v2).
func Zipf(n int) KeyDist {
	return func(r *rand.Rand) func() int {
		z := rand.NewZipf(r, 1.01, 1, uint64(n-1))
		return func() int { return int(z.Uint64()) }
	}
}

// Uniform returns uniform key indexes over n keys.
func Uniform(n int) KeyDist {
	return func(r *rand.Rand) func() int { return func() int { return r.IntN(n) } }
}

// NewRistretto returns a ristretto cache holding every key with a value of
// valueSize bytes, sized so that nothing is evicted.
func NewRistretto(keys []string, valueSize int) (*ristretto.Cache[string, []byte], error) {
	c, err := ristretto.NewCache(&ristretto.Config[string, []byte]{
		NumCounters: int64(10 * len(keys)),
		MaxCost:     1 << 30,
		BufferItems: 64,
	})
	if err != nil {
		return nil, err
	}
	for range 3 { // Set may drop under contention; retry what is missing
		for _, k := range keys {
			if _, ok := c.Get(k); !ok {
				v := make([]byte, valueSize)
				copy(v, k)
				c.Set(k, v, int64(len(k)+valueSize))
			}
		}
		c.Wait()
	}
	return c, nil
}

// RistrettoGet runs workers goroutines doing ristretto Gets of keys drawn
// from dist for d.
func RistrettoGet(ctx context.Context, c *ristretto.Cache[string, []byte], keys []string, dist KeyDist, workers int, d time.Duration) Measurement {
	var stop atomic.Bool
	hs := make([]*hist.Histogram, workers)
	counts := make([]int64, workers)
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	cpu0, sys0 := CPUTime(), IOSyscalls()
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		h := &hist.Histogram{}
		hs[w] = h
		wg.Go(func() {
			next := dist(rand.New(rand.NewPCG(uint64(w), 0x5eed)))
			var n int64
			for !stop.Load() {
				k := keys[next()]
				t0 := time.Now()
				v, ok := c.Get(k)
				h.Record(time.Since(t0))
				if ok && len(v) == 0 {
					panic("raw: empty value")
				}
				n++
			}
			counts[w] = n
		})
	}
	sleepCtx(ctx, d)
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(start)
	m := Measurement{Elapsed: elapsed, Latency: &hist.Histogram{}}
	m.Mallocs, m.CPU, m.Syscalls = since(&ms0, cpu0, sys0)
	for w := range workers {
		m.Ops += counts[w]
		m.Latency.Merge(hs[w])
	}
	return m
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

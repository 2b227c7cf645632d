// Package benchutil holds the key sets, Zipf draws and raw-ristretto baseline
// that the cache and engine benchmarks share.
package benchutil

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/dgraph-io/ristretto/v2"
)

// Keys returns n distinct keys "user:%08d".
func Keys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("user:%08d", i)
	}
	return keys
}

// ZipfIndexes precomputes n indexes into a key set of size keys, drawn
// from Zipf(s=1.01, v=1) with a fixed seed, so that benchmarks keep the
// generator out of their timed loops and every run draws the same sequence.
// n must be a power of two (callers wrap with i & (n-1)).
func ZipfIndexes(n, keys int) []int {
	if n&(n-1) != 0 {
		panic("benchutil: ZipfIndexes: n must be a power of two")
	}
	z := rand.NewZipf(rand.New(rand.NewPCG(7, 9)), 1.01, 1, uint64(keys-1))
	idx := make([]int, n)
	for i := range idx {
		idx[i] = int(z.Uint64())
	}
	return idx
}

// BenchRawRistrettoGet is the raw-ristretto baseline the cache and engine
// benchmarks compare against: a parallel Zipf Get workload over keys of
// 100-byte values in a bare ristretto v2 cache. With copyValue each Get
// also copies the value, as the engine must for its caller.
func BenchRawRistrettoGet(b *testing.B, keys []string, copyValue bool) {
	c, err := ristretto.NewCache(&ristretto.Config[string, []byte]{NumCounters: 1 << 20, MaxCost: 256 << 20, BufferItems: 64})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	for _, k := range keys {
		for !c.Set(k, make([]byte, 100), 100+int64(len(k))) {
			c.Wait()
		}
	}
	c.Wait()
	idx := ZipfIndexes(1<<16, len(keys))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(len(idx))
		for pb.Next() {
			i = (i + 1) & (len(idx) - 1)
			v, ok := c.Get(keys[idx[i]])
			if !ok {
				b.Fatal("miss")
			}
			if copyValue {
				_ = bytes.Clone(v)
			}
		}
	})
}

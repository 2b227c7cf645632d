package cache

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/dgraph-io/ristretto/v2"
)

const benchKeys = 100_000

func benchKeyNames() []string {
	keys := make([]string, benchKeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("user:%08d", i)
	}
	return keys
}

// zipfIndexes precomputes a Zipf(1.01) sequence so that the generator's cost
// stays out of the timed loop.
func zipfIndexes(n int) []int {
	z := rand.NewZipf(rand.New(rand.NewPCG(1, 2)), 1.01, 1, benchKeys-1)
	idx := make([]int, n)
	for i := range idx {
		idx[i] = int(z.Uint64())
	}
	return idx
}

// BenchmarkStoreGet and BenchmarkRistrettoGet run the same parallel Zipf hit
// workload; their ratio is the cost of the Store's guarantees on the hit path.
func BenchmarkStoreGet(b *testing.B) {
	s, err := New(Config{MaxBytes: 256 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	keys := benchKeyNames()
	for _, k := range keys {
		if err := s.Set(k, Entry{Value: make([]byte, 100)}); err != nil {
			b.Fatal(err)
		}
	}
	idx := zipfIndexes(1 << 16)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(len(idx))
		for pb.Next() {
			i = (i + 1) & (len(idx) - 1)
			if _, ok := s.Get(keys[idx[i]]); !ok {
				b.Fatal("miss")
			}
		}
	})
}

func BenchmarkRistrettoGet(b *testing.B) {
	c, err := ristretto.NewCache(&ristretto.Config[string, []byte]{NumCounters: 1 << 20, MaxCost: 256 << 20, BufferItems: 64})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	keys := benchKeyNames()
	for _, k := range keys {
		for !c.Set(k, make([]byte, 100), 100+int64(len(k))) {
			c.Wait()
		}
	}
	c.Wait()
	idx := zipfIndexes(1 << 16)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(len(idx))
		for pb.Next() {
			i = (i + 1) & (len(idx) - 1)
			c.Get(keys[idx[i]])
		}
	})
}

func BenchmarkStoreSet(b *testing.B) {
	s, err := New(Config{MaxBytes: 256 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	keys := benchKeyNames()
	v := make([]byte, 100)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(benchKeys)
		for pb.Next() {
			i = (i + 1) % benchKeys
			if err := s.Set(keys[i], Entry{Value: v}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

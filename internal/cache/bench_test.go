package cache_test

import (
	"math/rand/v2"
	"testing"

	"github.com/distcache/distcache/internal/benchutil"
	"github.com/distcache/distcache/internal/cache"
)

const benchKeys = 100_000

func benchKeyNames() []string { return benchutil.Keys(benchKeys) }

func zipfIndexes(n int) []int { return benchutil.ZipfIndexes(n, benchKeys) }

// BenchmarkStoreGet and BenchmarkRistrettoGet run the same parallel Zipf hit
// workload; their ratio is the cost of the Store's guarantees on the hit path.
func BenchmarkStoreGet(b *testing.B) {
	s, err := cache.New(cache.Config{MaxBytes: 256 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	keys := benchKeyNames()
	for _, k := range keys {
		if err := s.Set(k, cache.Entry{Value: make([]byte, 100)}); err != nil {
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

func BenchmarkRistrettoGet(b *testing.B) { benchutil.BenchRawRistrettoGet(b, benchKeyNames(), false) }

func BenchmarkStoreSet(b *testing.B) {
	s, err := cache.New(cache.Config{MaxBytes: 256 << 20})
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
			if err := s.Set(keys[i], cache.Entry{Value: v}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

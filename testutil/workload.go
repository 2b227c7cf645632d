package testutil

import (
	"fmt"
	"math/rand/v2"
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
		panic("testutil: ZipfIndexes: n must be a power of two")
	}
	z := rand.NewZipf(rand.New(rand.NewPCG(7, 9)), 1.01, 1, uint64(keys-1))
	idx := make([]int, n)
	for i := range idx {
		idx[i] = int(z.Uint64())
	}
	return idx
}

package prefetch

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/distcache/distcache/warmup"
	"github.com/stretchr/testify/require"
)

func TestTrackerRanksByHits(t *testing.T) {
	tr := NewTracker(warmup.Config{MaxHotKeys: 10})
	for i := range 5 {
		for range (i + 1) * 3 {
			tr.Record(fmt.Sprint("k", i))
		}
	}
	tr.Record("once")
	hot := tr.Hot(3, 2)
	require.Equal(t, []warmup.HotKey{{Key: "k4", Hits: 15}, {Key: "k3", Hits: 12}, {Key: "k2", Hits: 9}}, hot)
	require.Len(t, tr.Hot(100, 2), 5, "MinHits excludes the key seen once")
	require.Len(t, tr.Hot(100, 1), 6)
	require.Nil(t, tr.Hot(0, 1))
	require.Equal(t, []string{"k4", "k3", "k2"}, Keys(hot))
}

func TestTrackerTiesAreOrderedByKey(t *testing.T) {
	tr := NewTracker(warmup.Config{})
	for _, k := range []string{"b", "c", "a"} {
		tr.Record(k)
	}
	require.Equal(t, []string{"a", "b", "c"}, Keys(tr.Hot(10, 1)))
}

func TestTrackerDecayAgesKeysOut(t *testing.T) {
	tr := NewTracker(warmup.Config{})
	for range 8 {
		tr.Record("old")
	}
	tr.Record("new")
	tr.Decay()
	require.Equal(t, []warmup.HotKey{{Key: "old", Hits: 4}}, tr.Hot(10, 1), "a count of 1 halves to 0 and is forgotten")
	require.Equal(t, 1, tr.Len())
	for range 3 {
		tr.Decay()
	}
	require.Zero(t, tr.Len(), "a key nobody asks for ages out")
}

// A flood of one-off keys does not push out keys that are really hot, and
// memory stays bounded.
func TestTrackerBoundedAndKeepsHotKeys(t *testing.T) {
	cfg := warmup.Config{MaxHotKeys: 10}
	tr := NewTracker(cfg)
	hot := []string{"h0", "h1", "h2", "h3", "h4"}
	for range 50 {
		for _, k := range hot {
			tr.Record(k)
		}
	}
	for i := range 20_000 {
		tr.Record(fmt.Sprint("cold-", i))
		if i%100 == 0 {
			for _, k := range hot {
				tr.Record(k)
			}
		}
	}
	require.LessOrEqual(t, tr.Len(), trackerShards*max(4*cfg.MaxHotKeys/trackerShards, minShardCap))
	require.ElementsMatch(t, hot, Keys(tr.Hot(5, 2)))
}

func TestTrackerSampling(t *testing.T) {
	tr := NewTracker(warmup.Config{SampleEvery: 4})
	for range 4000 {
		tr.Record("k")
	}
	hot := tr.Hot(1, 1)
	require.Len(t, hot, 1)
	require.InDelta(t, 4000, hot[0].Hits, 800, "sampled counts are scaled back up")
	require.Zero(t, hot[0].Hits%4)
}

func TestTrackerNilAndDisabled(t *testing.T) {
	var tr *Tracker
	tr.Record("k")
	tr.Decay()
	require.Nil(t, tr.Hot(10, 1))
	require.Zero(t, tr.Len())
	require.Nil(t, NewTracker(warmup.Config{MaxHotKeys: -1}))
}

func TestTrackerDoesNotRetainCallerBytes(t *testing.T) {
	tr := NewTracker(warmup.Config{})
	b := []byte("key")
	tr.Record(string(b))
	b[0] = 'X'
	require.Equal(t, "key", tr.Hot(1, 1)[0].Key)
}

func TestTrackerConcurrent(t *testing.T) {
	tr := NewTracker(warmup.Config{MaxHotKeys: 50})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				tr.Record(fmt.Sprint("k", i%20))
				if g == 0 && i%500 == 0 {
					tr.Decay()
					_ = tr.Hot(10, 1)
				}
			}
		})
	}
	wg.Wait()
	require.Len(t, tr.Hot(100, 1), 20)
}

// BenchmarkTrackerRecord measures Record on the Get path: "fits" has fewer
// distinct keys than the tracker holds, "zipf" draws from 100k keys with a
// Zipf(1.01) skew (a typical cache workload), "uniform" from 100k keys
// without skew (worst case: nearly every access is a new key).
func BenchmarkTrackerRecord(b *testing.B) {
	const n = 100_000
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("user:%08d", i)
	}
	z := rand.NewZipf(rand.New(rand.NewPCG(7, 9)), 1.01, 1, n-1)
	zipf := make([]int, 1<<16)
	uniform := make([]int, 1<<16)
	for i := range zipf {
		zipf[i] = int(z.Uint64())
		uniform[i] = rand.IntN(n)
	}
	fits := make([]int, 1<<16)
	for i := range fits {
		fits[i] = i % 64
	}
	for _, w := range []struct {
		name string
		idx  []int
	}{{"fits", fits}, {"zipf", zipf}, {"uniform", uniform}} {
		for _, sample := range []int{1, 8} {
			b.Run(fmt.Sprintf("%s/sample=%d", w.name, sample), func(b *testing.B) {
				tr := NewTracker(warmup.Config{SampleEvery: sample})
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					i := rand.IntN(len(w.idx))
					for pb.Next() {
						tr.Record(keys[w.idx[i&(1<<16-1)]])
						i++
					}
				})
			})
		}
	}
	b.Run("nil", func(b *testing.B) {
		var tr *Tracker
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			tr.Record(keys[i&1023])
		}
	})
}

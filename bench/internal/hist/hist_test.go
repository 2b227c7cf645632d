package hist

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestQuantilesWithinBucketError(t *testing.T) {
	h := &Histogram{}
	for i := 1; i <= 100_000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	require.Equal(t, uint64(100_000), h.Count())
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
		want := q * 100_000 * float64(time.Microsecond)
		got := float64(h.Quantile(q))
		require.InEpsilon(t, want, got, 0.016, "q=%v", q)
	}
}

func TestSmallValuesAreExact(t *testing.T) {
	h := &Histogram{}
	for _, v := range []time.Duration{0, 1, 63, 64, 127} {
		h.Record(v)
	}
	require.Equal(t, time.Duration(0), h.Quantile(0.2))
	require.Equal(t, time.Duration(127), h.Quantile(1))
}

func TestExtremesAndEmpty(t *testing.T) {
	h := &Histogram{}
	require.Zero(t, h.Quantile(0.99))
	h.Record(-time.Second)
	h.Record(time.Duration(1<<62 + 12345))
	require.Zero(t, h.Quantile(0.5))
	require.InEpsilon(t, float64(1<<62), float64(h.Quantile(1)), 0.016)
}

func TestMerge(t *testing.T) {
	a, b := &Histogram{}, &Histogram{}
	a.Record(time.Millisecond)
	b.Record(3 * time.Millisecond)
	b.Record(3 * time.Millisecond)
	a.Merge(b)
	require.Equal(t, uint64(3), a.Count())
	require.InEpsilon(t, float64(3*time.Millisecond), float64(a.Quantile(0.5)), 0.016)
}

func TestRecordDoesNotAllocate(t *testing.T) {
	h := &Histogram{}
	require.Zero(t, testing.AllocsPerRun(1000, func() { h.Record(1234567 * time.Nanosecond) }))
}

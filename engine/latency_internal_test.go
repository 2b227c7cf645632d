package engine

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Each duration lands in the first bucket whose bound it does not exceed.
func TestLatencyHistBuckets(t *testing.T) {
	var h latencyHist
	h.record(0)
	h.record(10 * time.Microsecond)
	h.record(11 * time.Microsecond)
	h.record(time.Second)
	h.record(time.Minute)
	c := h.counts(5)
	assert.EqualValues(t, 2+5, c[0], "two timed, five untimed")
	assert.EqualValues(t, 1, c[1])
	assert.EqualValues(t, 1, c[15], "1 s")
	assert.EqualValues(t, 1, c[latencyBuckets-1], "past the last bound")
	assert.EqualValues(t, 5, h.timed())
}

func TestQuantile(t *testing.T) {
	var c [latencyBuckets]int64
	assert.Zero(t, quantile(c, 0.99))
	c[0] = 99 // 99 hits under 10 µs
	c[9] = 1  // one Get between 5 and 10 ms
	assert.Equal(t, 10*time.Microsecond, quantile(c, 0.99))
	c[9] = 2
	p := quantile(c, 0.99)
	assert.Greater(t, p, 5*time.Millisecond)
	assert.LessOrEqual(t, p, 10*time.Millisecond)
	c = [latencyBuckets]int64{}
	c[latencyBuckets-1] = 3
	assert.Equal(t, 10*time.Second, quantile(c, 0.99), "past the last bound: the last bound")
}

// GetP99 covers the Gets since the newest reading at least a minute old
// (the lifetime before there is one): slow Gets stop counting a minute
// after a reading has seen them.
func TestP99Window(t *testing.T) {
	var h latencyHist
	t0 := time.Unix(1000, 0)
	for range 10 {
		h.record(2 * time.Second)
	}
	step := p99Window / (p99Samples - 1)
	fast := int64(0)
	for i := range p99Samples - 1 { // readings every step, fast Gets meanwhile
		require.Greater(t, h.p99(t0.Add(time.Duration(i)*step), h.counts(fast)), time.Second,
			"within the first minute: the lifetime")
		fast += 10
	}
	// A minute after the first reading (which had seen the slow Gets), the
	// window starts there: only fast Gets since.
	fast += 1000
	assert.LessOrEqual(t, h.p99(t0.Add(p99Window), h.counts(fast)), 10*time.Microsecond)
	// A slow Get now is in the window.
	h.record(3 * time.Second)
	got := h.p99(t0.Add(p99Window+2*time.Second), h.counts(fast))
	assert.LessOrEqual(t, got, 10*time.Microsecond, "one slow Get in a thousand is under the 99th percentile")
	for range 20 {
		h.record(3 * time.Second)
	}
	assert.Greater(t, h.p99(t0.Add(p99Window+3*time.Second), h.counts(fast)), 2500*time.Millisecond)
	// Long after, with no Gets since the last reading a minute back: zero.
	h.p99(t0.Add(3*p99Window), h.counts(fast))
	assert.Zero(t, h.p99(t0.Add(4*p99Window), h.counts(fast)))
}

package engine

import (
	"sync"
	"sync/atomic"
	"time"
)

// latencyBounds are the upper bounds of the Get latency buckets, from a
// memory hit to a DataSource at its timeout. The OpenTelemetry duration
// histograms use the same bounds, in seconds (latencyBoundsSeconds).
var latencyBounds = [...]time.Duration{
	10 * time.Microsecond, 25 * time.Microsecond, 50 * time.Microsecond,
	100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
}

// latencyBuckets counts one bucket per bound plus one past the last.
const latencyBuckets = len(latencyBounds) + 1

// latencyBoundsSeconds are latencyBounds in seconds, the unit of the
// engine's duration histograms.
func latencyBoundsSeconds() []float64 {
	out := make([]float64, len(latencyBounds))
	for i, b := range latencyBounds {
		out[i] = b.Seconds()
	}
	return out
}

// p99Window is how far back GetP99 looks.
const p99Window = time.Minute

// p99Samples is how many past readings the window keeps, one per
// p99Window/(p99Samples-1) at most: enough that one of them is between one
// and about one and a sixth windows old.
const p99Samples = 7

// latencyHist is a keyspace's Get latency histogram: fixed buckets, one
// atomic add per timed Get, no allocation. Only Gets that leave memory are
// timed (a forward, a load); Gets answered from memory (a local or near
// hit) are not, and count in the first bucket: the caller supplies their
// number when reading (see counts), so the hit path pays nothing.
type latencyHist struct {
	buckets [latencyBuckets]atomic.Int64

	// mu guards the readings the window is measured from.
	mu      sync.Mutex
	samples [p99Samples]latencySample
	next    int // index of the reading overwritten next
	filled  int // readings kept, at most p99Samples
}

// latencySample is a reading of the cumulative counts.
type latencySample struct {
	at     time.Time
	counts [latencyBuckets]int64
}

// record counts one timed Get.
func (h *latencyHist) record(d time.Duration) {
	i := 0
	for i < len(latencyBounds) && d > latencyBounds[i] {
		i++
	}
	h.buckets[i].Add(1)
}

// counts reads the cumulative counts; untimed is the number of Gets served
// from memory, all placed in the first bucket.
func (h *latencyHist) counts(untimed int64) [latencyBuckets]int64 {
	var c [latencyBuckets]int64
	for i := range h.buckets {
		c[i] = h.buckets[i].Load()
	}
	c[0] += max(untimed, 0)
	return c
}

// timed is the number of Gets recorded (the fast ones excluded).
func (h *latencyHist) timed() int64 {
	var n int64
	for i := range h.buckets {
		n += h.buckets[i].Load()
	}
	return n
}

// p99 is the 99th percentile of the Gets since the newest kept reading
// that is at least p99Window old, or since the start when there is none,
// given the current cumulative counts (0 without Gets in the window). It
// keeps now's counts as a reading when the newest is older than
// p99Window/(p99Samples-1).
func (h *latencyHist) p99(now time.Time, cur [latencyBuckets]int64) time.Duration {
	h.mu.Lock()
	var (
		base  [latencyBuckets]int64
		baseT time.Time
	)
	for i := range h.filled {
		s := &h.samples[i]
		if now.Sub(s.at) >= p99Window && s.at.After(baseT) {
			base, baseT = s.counts, s.at
		}
	}
	newest := (h.next + p99Samples - 1) % p99Samples
	if h.filled == 0 || now.Sub(h.samples[newest].at) >= p99Window/(p99Samples-1) {
		h.samples[h.next] = latencySample{at: now, counts: cur}
		h.next = (h.next + 1) % p99Samples
		h.filled = min(h.filled+1, p99Samples)
	}
	h.mu.Unlock()
	var win [latencyBuckets]int64
	for i := range cur {
		// A count below its base means the counts were read while a Get was
		// between two counters (see getCalls): take none for that bucket.
		win[i] = max(cur[i]-base[i], 0)
	}
	return quantile(win, 0.99)
}

// quantile estimates the q-quantile of bucketed counts the way Prometheus's
// histogram_quantile does: linear within the bucket that holds it. Past the
// last bound it returns that bound. No observations give 0.
func quantile(c [latencyBuckets]int64, q float64) time.Duration {
	var total int64
	for _, n := range c {
		total += n
	}
	if total == 0 {
		return 0
	}
	rank := q * float64(total)
	var below int64
	for i, n := range c {
		if n == 0 || float64(below+n) < rank {
			below += n
			continue
		}
		if i == len(latencyBounds) {
			return latencyBounds[len(latencyBounds)-1]
		}
		lo := time.Duration(0)
		if i > 0 {
			lo = latencyBounds[i-1]
		}
		frac := (rank - float64(below)) / float64(n)
		return lo + time.Duration(frac*float64(latencyBounds[i]-lo))
	}
	return latencyBounds[len(latencyBounds)-1]
}

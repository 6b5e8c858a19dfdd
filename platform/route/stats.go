package route

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// Latency buckets: log-linear, four per power of two from 1µs (bucket 0 holds everything below), so a
// percentile read from them is within about 19% of the true value; the last bucket holds everything above
// about 17 minutes.
const (
	latencySubBuckets = 4
	latencyOctaves    = 30
	latencyBuckets    = latencyOctaves*latencySubBuckets + 1
	latencyUnit       = time.Microsecond
)

// latencyBucket returns the bucket of d.
func latencyBucket(d time.Duration) int {
	u := uint64(d / latencyUnit)
	if u < 1 {
		return 0
	}
	octave := bits.Len64(u) - 1 // u in [2^octave, 2^(octave+1))
	var sub uint64
	if octave >= 2 {
		sub = (u >> (octave - 2)) & (latencySubBuckets - 1)
	} else {
		sub = (u << (2 - octave)) & (latencySubBuckets - 1)
	}
	b := 1 + octave*latencySubBuckets + int(sub)
	return min(b, latencyBuckets-1)
}

// latencyUpper is the upper bound of bucket b, used as the value of a percentile that falls in it.
func latencyUpper(b int) time.Duration {
	if b == 0 {
		return latencyUnit
	}
	octave, sub := (b-1)/latencySubBuckets, (b-1)%latencySubBuckets
	lower := (uint64(1) << octave) * uint64(latencySubBuckets+sub) / latencySubBuckets
	width := (uint64(1) << octave) / latencySubBuckets
	if width == 0 {
		width = 1
	}
	return time.Duration(lower+width) * latencyUnit
}

// counts is one period's tally of a side's calls.
type counts struct {
	calls    atomic.Uint64
	failures atomic.Uint64
	// latency counts the timed calls (every remote call, one local call in sampleEvery) per bucket.
	latency [latencyBuckets]atomic.Uint64
}

func (c *counts) reset() {
	c.calls.Store(0)
	c.failures.Store(0)
	for i := range c.latency {
		c.latency[i].Store(0)
	}
}

// sideStats measures one side of one method: totals since start (for metrics) and a ring of one-second
// periods (for the rollback rule and the dashboard).
type sideStats struct {
	total counts
	// sumNanos is the sum of the timed calls' latencies, for the metrics histogram.
	sumNanos atomic.Uint64
	// promBuckets counts timed calls per metrics histogram bucket (promBounds).
	promBuckets [len(promBounds) + 1]atomic.Uint64
	ring        []counts
}

func newSideStats(periods int) *sideStats {
	return &sideStats{ring: make([]counts, periods)}
}

// promBounds are the upper bounds of the metrics latency histogram, in seconds.
var promBounds = [...]float64{0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
	0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// record adds one call in period p: failed or not, and its latency when timed.
func (s *sideStats) record(p uint64, failed bool, timed bool, d time.Duration) {
	cur := &s.ring[p%uint64(len(s.ring))]
	if failed {
		s.total.failures.Add(1)
		cur.failures.Add(1)
	}
	if !timed {
		return
	}
	b := latencyBucket(d)
	s.total.latency[b].Add(1)
	cur.latency[b].Add(1)
	s.sumNanos.Add(uint64(d))
	secs := d.Seconds()
	i := 0
	for i < len(promBounds) && secs > promBounds[i] {
		i++
	}
	s.promBuckets[i].Add(1)
}

// count adds one call to the totals and to period p (calls are counted when they start).
func (s *sideStats) count(p uint64) uint64 {
	s.ring[p%uint64(len(s.ring))].calls.Add(1)
	return s.total.calls.Add(1)
}

// Window is what one side did over the last periods: calls, failures and latency percentiles.
type Window struct {
	Calls    uint64        `json:"calls"`
	Failures uint64        `json:"errors"`
	P50      time.Duration `json:"p50_ns"`
	P95      time.Duration `json:"p95_ns"`
	P99      time.Duration `json:"p99_ns"`
	// Timed is how many of the calls were timed (the percentiles' sample).
	Timed uint64 `json:"timed"`
}

// ErrorRate is Failures/Calls (0 without calls).
func (w Window) ErrorRate() float64 {
	if w.Calls == 0 {
		return 0
	}
	return float64(w.Failures) / float64(w.Calls)
}

// add merges o into w's counts; percentiles are recomputed by the caller from merged buckets.
type windowAcc struct {
	calls, failures uint64
	latency         [latencyBuckets]uint64
}

// collect adds the periods (now-n, now] of s into acc; the current period is included, the one being
// cleared for reuse is not.
func (s *sideStats) collect(acc *windowAcc, now uint64, n int) {
	n = min(n, len(s.ring)-1)
	for i := 0; i < n; i++ {
		if uint64(i) > now {
			break
		}
		c := &s.ring[(now-uint64(i))%uint64(len(s.ring))]
		acc.calls += c.calls.Load()
		acc.failures += c.failures.Load()
		for b := range c.latency {
			acc.latency[b] += c.latency[b].Load()
		}
	}
}

func (acc *windowAcc) window() Window {
	w := Window{Calls: acc.calls, Failures: acc.failures}
	for _, n := range acc.latency {
		w.Timed += n
	}
	if w.Timed == 0 {
		return w
	}
	w.P50 = acc.percentile(0.50, w.Timed)
	w.P95 = acc.percentile(0.95, w.Timed)
	w.P99 = acc.percentile(0.99, w.Timed)
	return w
}

func (acc *windowAcc) percentile(q float64, timed uint64) time.Duration {
	rank := uint64(q*float64(timed)+0.5) - 0
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for b, n := range acc.latency {
		seen += n
		if seen >= rank {
			return latencyUpper(b)
		}
	}
	return latencyUpper(latencyBuckets - 1)
}

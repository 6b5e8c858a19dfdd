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

// period is one second of a side's measurements. Calls and failures are counted once, in the side's
// totals; a period keeps what the totals were when it began, so a window's counts are differences. Only
// the latency of timed calls is counted per period.
type period struct {
	callsAtStart    atomic.Uint64
	failuresAtStart atomic.Uint64
	latency         [latencyBuckets]atomic.Uint64
}

// begin starts the period reusing p's slot: the totals now, and no latency yet.
func (p *period) begin(calls, failures uint64) {
	for i := range p.latency {
		p.latency[i].Store(0)
	}
	p.callsAtStart.Store(calls)
	p.failuresAtStart.Store(failures)
}

// sideStats measures one side of one method: totals since start (for metrics) and a ring of one-second
// periods (for the rollback rule and the dashboard). A call costs one atomic add; a failed or timed one a
// few more.
type sideStats struct {
	calls    atomic.Uint64
	failures atomic.Uint64
	// sumNanos is the sum of the timed calls' latencies, for the metrics histogram.
	sumNanos atomic.Uint64
	// promBuckets counts timed calls per metrics histogram bucket (promBounds).
	promBuckets [len(promBounds) + 1]atomic.Uint64
	// ring holds the periods, a power of two of them, period n in ring[n&mask].
	ring []period
	mask uint64
}

// newSideStats returns stats keeping at least periods periods.
func newSideStats(periods int) *sideStats {
	n := 1
	for n < periods {
		n *= 2
	}
	return &sideStats{ring: make([]period, n), mask: uint64(n - 1)}
}

// promBounds are the upper bounds of the metrics latency histogram, in seconds.
var promBounds = [...]float64{0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
	0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// count adds one call (calls are counted when they start) and returns how many there have been.
func (s *sideStats) count() uint64 { return s.calls.Add(1) }

// fail adds one failed call.
func (s *sideStats) fail() { s.failures.Add(1) }

// observe adds the latency d of a call timed in period p.
func (s *sideStats) observe(p uint64, d time.Duration) {
	s.ring[p&s.mask].latency[latencyBucket(d)].Add(1)
	s.sumNanos.Add(uint64(d))
	secs := d.Seconds()
	i := 0
	for i < len(promBounds) && secs > promBounds[i] {
		i++
	}
	s.promBuckets[i].Add(1)
}

// advance begins period next, which reuses the oldest slot.
func (s *sideStats) advance(next uint64) {
	s.ring[next&s.mask].begin(s.calls.Load(), s.failures.Load())
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

// windowAcc sums periods of one or more sides.
type windowAcc struct {
	calls, failures uint64
	latency         [latencyBuckets]uint64
}

// collect adds the periods (now-n, now] of s into acc, the current one included.
func (s *sideStats) collect(acc *windowAcc, now uint64, n int) {
	n = max(min(n, len(s.ring)-1, int(now)+1), 1)
	first := &s.ring[(now+1-uint64(n))&s.mask]
	acc.calls += s.calls.Load() - first.callsAtStart.Load()
	acc.failures += s.failures.Load() - first.failuresAtStart.Load()
	for i := range n {
		c := &s.ring[(now-uint64(i))&s.mask]
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
	rank := max(uint64(q*float64(timed)+0.5), 1)
	var seen uint64
	for b, n := range acc.latency {
		seen += n
		if seen >= rank {
			return latencyUpper(b)
		}
	}
	return latencyUpper(latencyBuckets - 1)
}

// Package stats holds the small statistics the benchmark suite reports: medians of repeated runs,
// percentiles of latency samples and closed-loop load runs that count completed operations.
package stats

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Median returns the median of xs (the mean of the two middle values for an even count), 0 for none.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Percentile returns the q-th quantile (0 < q <= 1) of sorted by the nearest-rank method, 0 for none.
func Percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

// Latencies is the outcome of a run that timed every operation.
type Latencies struct {
	// Sorted holds every operation's latency in increasing order.
	Sorted []time.Duration
	// Errors counts the operations that failed; they are not in Sorted.
	Errors int
	// Elapsed is how long the run took.
	Elapsed time.Duration
	// FirstError is the first failure's error, if any.
	FirstError error
}

// P returns the q-th quantile of the latencies.
func (l Latencies) P(q float64) time.Duration { return Percentile(l.Sorted, q) }

// Rate is the completed operations per second.
func (l Latencies) Rate() float64 {
	if l.Elapsed <= 0 {
		return 0
	}
	return float64(len(l.Sorted)) / l.Elapsed.Seconds()
}

// Op is one operation of a load run; it reports its failure.
type Op func(ctx context.Context) error

// ClosedLoop runs op from workers goroutines, each starting its next operation when the previous one ends,
// for warmup (not counted) and then for d, and returns every counted operation's latency. newOp is called
// once per worker, so each can hold its own connection or buffers.
func ClosedLoop(ctx context.Context, workers int, warmup, d time.Duration, newOp func(worker int) (Op, error)) (Latencies, error) {
	ops := make([]Op, workers)
	for i := range ops {
		op, err := newOp(i)
		if err != nil {
			return Latencies{}, err
		}
		ops[i] = op
	}
	var (
		counting atomic.Bool
		stop     atomic.Bool
		wg       sync.WaitGroup
		mu       sync.Mutex
		all      []time.Duration
		errCount int
		firstErr error
	)
	for _, op := range ops {
		wg.Go(func() {
			samples := make([]time.Duration, 0, 1<<14)
			errs := 0
			var first error
			for !stop.Load() && ctx.Err() == nil {
				start := time.Now()
				err := op(ctx)
				took := time.Since(start)
				// Completions inside the window count, whenever the operation began.
				if !counting.Load() || stop.Load() {
					continue
				}
				if err != nil {
					errs++
					if first == nil {
						first = err
					}
					continue
				}
				samples = append(samples, took)
			}
			mu.Lock()
			defer mu.Unlock()
			all = append(all, samples...)
			errCount += errs
			if firstErr == nil {
				firstErr = first
			}
		})
	}
	if err := sleep(ctx, warmup); err != nil {
		stop.Store(true)
		wg.Wait()
		return Latencies{}, err
	}
	counting.Store(true)
	start := time.Now()
	err := sleep(ctx, d)
	stop.Store(true)
	elapsed := time.Since(start)
	wg.Wait()
	if err != nil {
		return Latencies{}, err
	}
	slices.Sort(all)
	return Latencies{Sorted: all, Errors: errCount, Elapsed: elapsed, FirstError: firstErr}, nil
}

// sleep waits for d or until ctx ends, whose error it then returns.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// Package benchcmp measures a benchmark against a baseline doing the same
// work in the same run, so that results are reported as ratios that hold
// from one machine to another.
package benchcmp

import (
	"sync"
	"testing"
	"time"
)

// Compare runs baseline b.N times with the benchmark timer stopped, then
// subject b.N times with it running. The benchmark's ns/op, B/op and
// allocs/op are the subject's; it also reports the baseline's time as
// "base-ns/op" and the ratio of the subject's time to the baseline's as
// "x-base" (1.25 means 25% slower than the baseline). Both functions get
// the iteration number.
func Compare(b *testing.B, baseline, subject func(i int)) {
	b.Helper()
	b.StopTimer()
	start := time.Now()
	for i := range b.N {
		baseline(i)
	}
	base := time.Since(start)
	b.ResetTimer()
	b.StartTimer()
	start = time.Now()
	for i := range b.N {
		subject(i)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(base.Nanoseconds())/float64(b.N), "base-ns/op")
	if base > 0 {
		b.ReportMetric(float64(elapsed)/float64(base), "x-base")
	}
}

// CompareParallel is Compare with the b.N iterations of each side shared
// by writers goroutines.
func CompareParallel(b *testing.B, writers int, baseline, subject func(i int)) {
	b.Helper()
	run := func(f func(int)) time.Duration {
		next := make(chan int, b.N)
		for i := range b.N {
			next <- i
		}
		close(next)
		var wg sync.WaitGroup
		start := time.Now()
		for range max(writers, 1) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					f(i)
				}
			}()
		}
		wg.Wait()
		return time.Since(start)
	}
	b.StopTimer()
	base := run(baseline)
	b.ResetTimer()
	b.StartTimer()
	elapsed := run(subject)
	b.StopTimer()
	b.ReportMetric(float64(base.Nanoseconds())/float64(b.N), "base-ns/op")
	if base > 0 {
		b.ReportMetric(float64(elapsed)/float64(base), "x-base")
	}
}

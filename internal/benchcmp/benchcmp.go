// Package benchcmp measures a benchmark against a baseline doing the same
// work in the same run, so that results are reported as ratios that hold
// from one machine to another.
//
// The b.N iterations are split into chunks, and each chunk runs the
// baseline and the subject on the same iteration numbers, one after the
// other, with the order swapped from one chunk to the next, so that
// neither side always runs on caches warmed by the other and a spell of
// other work on the machine slows one chunk's pair rather than one side.
// Each chunk gives a ratio of the subject's time to the baseline's; the
// median is reported with the minimum and maximum, to say how far one run's
// ratio can be trusted.
//
// Times on a shared machine move; instruction counts move far less. With
// STRATA_BENCHCMP_SIDE=baseline (or subject) in the environment, Compare
// runs that side alone for all b.N iterations, so that a run under
// valgrind --tool=callgrind counts one side's instructions, GC included
// (scripts/callgrind-bench does this for both sides and prints the
// ratio).
package benchcmp

import (
	"os"
	"slices"
	"sync"
	"testing"
	"time"
)

// SideEnv names the environment variable that makes Compare run one side
// alone: "baseline" or "subject".
const SideEnv = "STRATA_BENCHCMP_SIDE"

// Chunks is the number of chunks b.N is split into (fewer when b.N is
// smaller).
const Chunks = 10

// Compare measures subject against baseline over b.N iterations each, in
// alternating chunks. The benchmark timer runs only while subject does,
// so ns/op, B/op and allocs/op are the subject's. It also reports:
//
//   - base-ns/op: the baseline's time per iteration;
//   - x-base: the median over the chunks of the subject's time over the
//     baseline's (1.25 means 25% slower than the baseline);
//   - x-base-min and x-base-max: the smallest and largest chunk ratio.
//
// Both functions get the iteration number, 0 to b.N-1.
func Compare(b *testing.B, baseline, subject func(i int)) {
	b.Helper()
	compare(b, baseline, subject, func(f func(int), from, to int) time.Duration {
		start := time.Now()
		for i := from; i < to; i++ {
			f(i)
		}
		return time.Since(start)
	})
}

// CompareParallel is Compare with the iterations of each chunk shared by
// writers goroutines; times are wall times.
func CompareParallel(b *testing.B, writers int, baseline, subject func(i int)) {
	b.Helper()
	compare(b, baseline, subject, func(f func(int), from, to int) time.Duration {
		next := make(chan int, to-from)
		for i := from; i < to; i++ {
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
	})
}

// compare runs the chunks; run runs f on iterations [from, to) and
// returns the time it took.
func compare(b *testing.B, baseline, subject func(int), run func(f func(int), from, to int) time.Duration) {
	b.Helper()
	switch side := os.Getenv(SideEnv); side {
	case "":
	case "baseline", "subject":
		f := subject
		if side == "baseline" {
			f = baseline
		}
		b.ResetTimer()
		run(f, 0, b.N)
		return
	default:
		b.Fatalf("%s=%q: want baseline or subject", SideEnv, side)
	}
	b.StopTimer()
	b.ResetTimer()
	chunks := min(Chunks, b.N)
	var base time.Duration
	ratios := make([]float64, 0, chunks)
	for c := range chunks {
		from, to := c*b.N/chunks, (c+1)*b.N/chunks
		var s, t time.Duration
		timeSubject := func() {
			b.StartTimer()
			s = run(subject, from, to)
			b.StopTimer()
		}
		if c%2 == 0 {
			t = run(baseline, from, to)
			timeSubject()
		} else {
			timeSubject()
			t = run(baseline, from, to)
		}
		base += t
		ratios = append(ratios, float64(s)/float64(max(t, 1)))
	}
	b.ReportMetric(float64(base.Nanoseconds())/float64(b.N), "base-ns/op")
	if len(ratios) > 0 {
		b.ReportMetric(median(ratios), "x-base")
		b.ReportMetric(slices.Min(ratios), "x-base-min")
		b.ReportMetric(slices.Max(ratios), "x-base-max")
	}
}

// median returns the middle value of xs, or the mean of the two middle
// values of an even count.
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}

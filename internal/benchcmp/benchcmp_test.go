package benchcmp_test

import (
	"crypto/sha256"
	"flag"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/strata-go/strata/internal/benchcmp"
)

// call is one call of a side: which side, and the iteration number.
type call struct {
	side string
	i    int
}

var work [16 << 10]byte

// TestCompareAlternatesTheSides checks what the ratios rest on: both sides
// run every iteration number once, in chunks that swap which side goes
// first, and the reported spread brackets the median.
func TestCompareAlternatesTheSides(t *testing.T) {
	// testing.Benchmark runs for -test.benchtime; a tenth of a second is
	// enough chunks.
	was := flag.Lookup("test.benchtime").Value.String()
	if err := flag.Set("test.benchtime", "100ms"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { flag.Set("test.benchtime", was) })
	for _, writers := range []int{0, 1, 4} {
		t.Run(fmt.Sprintf("with %d writers", writers), func(t *testing.T) {
			var mu sync.Mutex
			var calls []call
			var n int
			side := func(name string) func(int) {
				return func(i int) {
					// Some work, so that b.N stays small enough to record.
					sha256.Sum256(work[:])
					mu.Lock()
					calls = append(calls, call{name, i})
					mu.Unlock()
				}
			}
			res := testing.Benchmark(func(b *testing.B) {
				calls, n = nil, b.N
				if writers == 0 {
					benchcmp.Compare(b, side("baseline"), side("subject"))
				} else {
					benchcmp.CompareParallel(b, writers, side("baseline"), side("subject"))
				}
			})
			if len(calls) != 2*n {
				t.Fatalf("%d calls for b.N = %d", len(calls), n)
			}
			for _, name := range []string{"baseline", "subject"} {
				var is []int
				for _, c := range calls {
					if c.side == name {
						is = append(is, c.i)
					}
				}
				slices.Sort(is)
				for i, got := range is {
					if got != i {
						t.Fatalf("the %s ran iterations %v, want 0 to %d once each", name, is, n-1)
					}
				}
			}
			// The side of each run of calls: chunks alternate, so the
			// first sides of the runs alternate too.
			var runs []string
			for _, c := range calls {
				if len(runs) == 0 || runs[len(runs)-1] != c.side {
					runs = append(runs, c.side)
				}
			}
			chunks := min(benchcmp.Chunks, n)
			if n >= 2 && len(runs) != chunks+1 {
				t.Fatalf("b.N = %d: %d runs of one side (%v), want %d: chunks that swap which side goes first", n, len(runs), runs, chunks+1)
			}
			x, lo, hi := res.Extra["x-base"], res.Extra["x-base-min"], res.Extra["x-base-max"]
			if _, ok := res.Extra["base-ns/op"]; !ok || lo > x || x > hi {
				t.Fatalf("metrics %v: want base-ns/op and x-base-min <= x-base <= x-base-max", res.Extra)
			}
		})
	}
}

// TestOneSideRunsAlone checks the mode that instruction counting relies
// on: with the side named in the environment, only that side runs, once
// per iteration.
func TestOneSideRunsAlone(t *testing.T) {
	was := flag.Lookup("test.benchtime").Value.String()
	if err := flag.Set("test.benchtime", "50x"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { flag.Set("test.benchtime", was) })
	for _, only := range []string{"baseline", "subject"} {
		t.Run("only the "+only, func(t *testing.T) {
			t.Setenv(benchcmp.SideEnv, only)
			ran := map[string]int{}
			var n int
			testing.Benchmark(func(b *testing.B) {
				ran, n = map[string]int{}, b.N
				benchcmp.Compare(b, func(int) { ran["baseline"]++ }, func(int) { ran["subject"]++ })
			})
			if len(ran) != 1 || ran[only] != n {
				t.Fatalf("b.N = %d, calls %v: want only the %s, b.N times", n, ran, only)
			}
		})
	}
}

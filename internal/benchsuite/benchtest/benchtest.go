// Package benchtest runs the cases of package benchsuite as go test
// benchmarks. It is a package of its own, imported only by _test.go files,
// so that the strata command, which prints the same cases as a table, does
// not link package testing.
package benchtest

import (
	"context"
	"fmt"
	"testing"

	"github.com/strata-go/strata/internal/benchcmp"
	"github.com/strata-go/strata/internal/benchsuite"
)

// Bench runs the cases as go test benchmarks: one sub-benchmark per case,
// measured by [benchcmp.CompareParallel] with Strata as the subject, so
// that ns/op, B/op and allocs/op are Strata's and the metrics that
// function adds compare it with the baseline.
func Bench(b *testing.B, cases []benchsuite.Case) {
	ctx := context.Background()
	for _, c := range cases {
		name := fmt.Sprintf("%s/%d writers/vs %s", c.Name, max(c.Writers, 1), c.Baseline)
		b.Run(name, func(b *testing.B) {
			strata, base, err := c.Setup(ctx)
			if err != nil {
				b.Fatal(err)
			}
			wrap := func(op benchsuite.Op) func(int) {
				return func(i int) {
					if err := op(ctx, i); err != nil {
						b.Error(err)
					}
				}
			}
			b.ReportAllocs()
			benchcmp.CompareParallel(b, c.Writers, wrap(base), wrap(strata))
		})
	}
}

package benchsuite

import (
	"context"
	"fmt"
	"testing"

	"github.com/strata-go/strata/internal/benchcmp"
)

// Bench runs the cases as go test benchmarks: one sub-benchmark per case,
// reporting Strata's ns/op and the baseline's (base-ns/op), and their
// ratio (x-base).
func Bench(b *testing.B, cases []Case) {
	ctx := context.Background()
	for _, c := range cases {
		name := fmt.Sprintf("%s/%d writers/vs %s", c.Name, max(c.Writers, 1), c.Baseline)
		b.Run(name, func(b *testing.B) {
			strata, base, err := c.Setup(ctx)
			if err != nil {
				b.Fatal(err)
			}
			wrap := func(op Op) func(int) {
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

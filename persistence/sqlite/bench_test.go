package sqlite_test

import (
	"context"
	"testing"

	"github.com/strata-go/strata/internal/benchsuite"
	"github.com/strata-go/strata/internal/benchsuite/benchtest"
)

// BenchmarkRecorder compares the recorders with the raw driver on the
// same file and identical tables (x-base is the median over chunks of
// Strata's time over the raw driver's, x-base-min and x-base-max its
// spread). strata bench prints the same cases as a table.
func BenchmarkRecorder(b *testing.B) {
	cases, closeAll, err := benchsuite.SQLite(context.Background(), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer closeAll()
	benchtest.Bench(b, cases)
}

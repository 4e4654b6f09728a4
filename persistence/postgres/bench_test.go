package postgres_test

import (
	"context"
	"testing"

	"github.com/strata-go/strata/internal/benchsuite"
	"github.com/strata-go/strata/internal/benchsuite/benchtest"
	"github.com/strata-go/strata/internal/pgtest"
)

// BenchmarkRecorder compares the recorders with raw pgx inserts (no
// ordering guarantee) and with the reference design's table lock, on
// identical tables in the test database.
func BenchmarkRecorder(b *testing.B) {
	pgtest.Require(b)
	cases, closeAll, err := benchsuite.Postgres(context.Background(), pgtest.URL())
	if err != nil {
		b.Fatal(err)
	}
	defer closeAll()
	benchtest.Bench(b, cases)
}

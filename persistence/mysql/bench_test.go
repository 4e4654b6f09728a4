package mysql_test

import (
	"context"
	"testing"

	"github.com/strata-go/strata/internal/benchsuite"
	"github.com/strata-go/strata/internal/benchsuite/benchtest"
	"github.com/strata-go/strata/internal/mytest"
)

// BenchmarkRecorder compares the recorders with raw go-sql-driver inserts
// (no ordering guarantee), with saves serialised by a named lock, and with
// a post-commit sequencer, on tables of the same shape in a database of
// their own.
func BenchmarkRecorder(b *testing.B) {
	mytest.Require(b)
	cases, closeAll, err := benchsuite.MySQL(context.Background(), mytest.DSN())
	if err != nil {
		b.Fatal(err)
	}
	defer closeAll()
	benchtest.Bench(b, cases)
}

package jetstream_test

import (
	"context"
	"testing"

	"github.com/strata-go/strata/internal/benchsuite"
	"github.com/strata-go/strata/internal/benchsuite/benchtest"
	"github.com/strata-go/strata/internal/natstest"
)

// BenchmarkRecorders runs the cases of strata bench --store jetstream on
// the shared three-server cluster: Strata's saves against raw js.Publish
// of the same bytes to an R3 stream (1, 4 and 16 writers), and its reads
// against the client's ordered consumer.
func BenchmarkRecorders(b *testing.B) {
	cases, closeAll, err := benchsuite.JetStream(context.Background(), natstest.Shared(b).URL())
	if err != nil {
		b.Fatal(err)
	}
	defer closeAll()
	benchtest.Bench(b, cases)
}

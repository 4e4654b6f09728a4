package observe_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"

	"github.com/strata-go/strata/internal/benchcmp"
	"github.com/strata-go/strata/observe"
)

// BenchmarkInstrumentationOfASave runs what a save adds, a span begun and
// ended and the save counted, with no provider set (observe.Default())
// against observe.Disabled(), whose calls return at once. Its ns/op is the
// instrumentation's whole cost per save when telemetry is off: compare it
// with a save's own time (BenchmarkSaveTelemetry in package application).
func BenchmarkInstrumentationOfASave(b *testing.B) {
	ctx := context.Background()
	attrs := []attribute.KeyValue{attribute.String(observe.KeyApplication, "Worlds")}
	set := attribute.NewSet(attrs...)
	types := []string{"World"}
	run := func(t *observe.Telemetry) func(int) {
		return func(int) {
			ctx, op := t.Begin(ctx, observe.SpanSave, observe.OpSave, observe.MetricSaveDuration, set, attrs...)
			t.Saved(ctx, set, types)
			op.End(ctx, nil)
		}
	}
	b.ReportAllocs()
	benchcmp.Compare(b, run(observe.Disabled()), run(observe.Default()))
}

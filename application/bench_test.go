package application_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/internal/benchcmp"
	"github.com/strata-go/strata/observe"
)

// BenchmarkGet loads an aggregate with 10,000 events, with and without a
// snapshot 5 events before the end, against loading an aggregate with 10
// events (the baseline, x-base 1.0). With the snapshot, loading does not
// depend on the length of the history.
func BenchmarkGet(b *testing.B) {
	ctx := context.Background()
	app := newApp(b, application.WithSnapshotting(true))
	repo := counters(b, app)
	create := func(n int) uuid.UUID {
		c := newCounter(b, "c")
		for i := 1; i < n; i++ {
			_ = c.Increment(1)
			if i%1000 == 0 {
				if _, err := app.Save(ctx, c); err != nil {
					b.Fatal(err)
				}
			}
		}
		if _, err := app.Save(ctx, c); err != nil {
			b.Fatal(err)
		}
		return c.ID()
	}
	small := create(10)
	long := create(10_000)
	if _, err := repo.TakeSnapshot(ctx, long, application.AtVersion(9_995)); err != nil {
		b.Fatal(err)
	}
	get := func(id uuid.UUID, opts ...application.GetOption) func(int) {
		return func(int) {
			if _, err := repo.Get(ctx, id, opts...); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("10000 events with a snapshot", func(b *testing.B) {
		b.ReportAllocs()
		benchcmp.Compare(b, get(small, application.FromEvents()), get(long))
	})
	b.Run("10000 events without a snapshot", func(b *testing.B) {
		b.ReportAllocs()
		benchcmp.Compare(b, get(small, application.FromEvents()), get(long, application.FromEvents()))
	})
}

// BenchmarkSaveTelemetry measures a save of one event in memory
// against the same save with telemetry disabled (observe.Disabled, the
// baseline): with OpenTelemetry's global providers not set, Strata's
// default, and with the SDK's providers recording every span and metric.
// The baseline against itself shows how far the machine's noise goes.
func BenchmarkSaveTelemetry(b *testing.B) {
	ctx := context.Background()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() { _ = tp.Shutdown(ctx); _ = mp.Shutdown(ctx) })
	off := newApp(b, application.WithTelemetry(observe.Disabled()))
	// Each save records one event of one aggregate, whose history grows
	// alike on both sides.
	save := func(app *application.Application) func(int) {
		c := newCounter(b, "c")
		return func(int) {
			_ = c.Increment(1)
			if _, err := app.Save(ctx, c); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, c := range []struct {
		name string
		tel  *observe.Telemetry
	}{
		{"disabled against itself, the noise", observe.Disabled()},
		{"no provider set", nil},
		{"SDK recording", observe.New(observe.WithTracerProvider(tp), observe.WithMeterProvider(mp))},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			var opts []application.Option
			if c.tel != nil {
				opts = append(opts, application.WithTelemetry(c.tel))
			}
			benchcmp.Compare(b, save(off), save(newApp(b, opts...)))
		})
	}
}

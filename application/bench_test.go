package application_test

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/internal/benchcmp"
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

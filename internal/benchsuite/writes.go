package benchsuite

import (
	"context"
	"fmt"
	"sync"

	"github.com/strata-go/strata/persistence"
)

// Bulk is a baseline that inserts the events of one save, whatever
// aggregates they belong to, in one transaction, into a table of exactly
// the shape of Strata's events table (tenant, commit ID and headers
// included), and reads back their notification IDs.
type Bulk interface {
	InsertBulk(ctx context.Context, events []persistence.StoredEvent) error
}

// WriteTargets are the ratios of time the write cases aim at.
type WriteTargets struct {
	// Concurrent is the most that a save may take with ManyWriters
	// writers, as a share of its time alone (1/6: six times the rate of
	// one writer); 0 for none.
	Concurrent float64
	// Bulk is the most, as a ratio of the raw driver's time, for an
	// insert of 100 events (1/0.9: 90% of the raw driver's rate).
	Bulk float64
}

// WriteCases are the cases of the write path: single-event saves by
// ManyWriters writers against Strata's own saves one at a time (what
// group commit buys), and inserts of BatchSize events, of one aggregate
// and of as many new aggregates, against the raw driver inserting the
// same rows into a table of the same shape in one transaction.
func WriteCases(rec persistence.ApplicationRecorder, bulk Bulk, t WriteTargets) []Case {
	var one sync.Mutex
	insert := func(ctx context.Context, events []persistence.StoredEvent) error {
		ids, err := rec.InsertEvents(ctx, events)
		if err == nil && len(ids) != len(events) {
			err = fmt.Errorf("%d notification IDs for %d events", len(ids), len(events))
		}
		return err
	}
	bulkCase := func(name string, events func() []persistence.StoredEvent) Case {
		return Case{Name: name, Baseline: "raw INSERT of the same rows, one transaction", Writers: 1, Events: BatchSize, Target: t.Bulk,
			Setup: func(context.Context) (Op, Op, error) {
				strata := func(ctx context.Context, _ int) error { return insert(ctx, events()) }
				base := func(ctx context.Context, _ int) error { return bulk.InsertBulk(ctx, events()) }
				return strata, base, nil
			}}
	}
	return []Case{
		{Name: "save 1 event, concurrently", Baseline: "Strata, one save at a time", Writers: ManyWriters, Events: 1, Target: t.Concurrent,
			Setup: func(context.Context) (Op, Op, error) {
				strata := func(ctx context.Context, _ int) error { return insert(ctx, Events(1, StateSize)) }
				// The same saves by the same goroutines, one at a time: the
				// rate of a single writer.
				base := func(ctx context.Context, _ int) error {
					one.Lock()
					defer one.Unlock()
					return insert(ctx, Events(1, StateSize))
				}
				return strata, base, nil
			}},
		bulkCase("insert 100 events of 100 new aggregates", func() []persistence.StoredEvent { return Events(BatchSize, StateSize) }),
		bulkCase("insert 100 events of one aggregate", func() []persistence.StoredEvent { return History(BatchSize, StateSize) }),
	}
}

package benchsuite

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/strata-go/strata/persistence"
)

// Raw is the baseline: the raw driver doing each operation on a table of
// the same shape as Strata's.
type Raw interface {
	// Insert inserts the events of one save atomically and reads back
	// their notification IDs.
	Insert(ctx context.Context, events []persistence.StoredEvent) error
	// Scan reads every notification in order with one query, scanning
	// every column, and returns how many it read.
	Scan(ctx context.Context) (int, error)
	// SelectAggregate reads one aggregate's events in order and returns
	// how many it read.
	SelectAggregate(ctx context.Context, id uuid.UUID) (int, error)
}

// Sizes of the cases.
const (
	CatchUpEvents  = 100_000
	CatchUpPage    = 1_000
	AggregateSize  = 1_000
	BatchSize      = 100
	ManyWriters    = 16
	catchUpPerSave = 1_000
)

// CatchUpTarget is the ratio of time a catch-up aims at on the stores
// followers mostly read from (SQLite and PostgreSQL): at least the rate
// of the raw scan of the same rows.
const CatchUpTarget = 1.0

// setCatchUpTarget gives the catch-up case of cases the target.
func setCatchUpTarget(cases []Case, target float64) {
	for i := range cases {
		if strings.HasPrefix(cases[i].Name, "catch up") {
			cases[i].Target = target
		}
	}
}

// Pair is a Strata recorder and the raw baseline on tables of the same
// shape.
type Pair struct {
	Recorder persistence.ApplicationRecorder
	Raw      Raw
}

// RecorderCases are the cases that compare a recorder with the raw
// driver: single-event saves with one and with 16 writers, 100-event
// saves (on the writes pair), a catch-up read of the whole log and reading
// an aggregate's history (on the reads pair, which holds exactly the
// 100,000 events read). saveTarget and readTarget are the ratios aimed
// at.
func RecorderCases(writes, reads Pair, saveTarget, readTarget float64) []Case {
	rec, raw := writes.Recorder, writes.Raw
	save := func(n int) func(ctx context.Context) (Op, Op, error) {
		return func(context.Context) (Op, Op, error) {
			batch := func() []persistence.StoredEvent {
				if n == 1 {
					return Events(1, StateSize)
				}
				return History(n, StateSize)
			}
			strata := func(ctx context.Context, _ int) error {
				ids, err := rec.InsertEvents(ctx, batch())
				if err == nil && len(ids) != n {
					err = fmt.Errorf("%d notification IDs for %d events", len(ids), n)
				}
				return err
			}
			base := func(ctx context.Context, _ int) error { return raw.Insert(ctx, batch()) }
			return strata, base, nil
		}
	}
	return []Case{
		{Name: "save 1 event", Baseline: "raw INSERT", Writers: 1, Events: 1, Target: saveTarget, Setup: save(1)},
		{Name: "save 1 event", Baseline: "raw INSERT", Writers: ManyWriters, Events: 1, Target: saveTarget, Setup: save(1)},
		{Name: "save 100 events", Baseline: "raw INSERT", Writers: 1, Events: BatchSize, Target: saveTarget, Setup: save(BatchSize)},
		CatchUpCase(reads, CatchUpEvents, readTarget),
		{Name: "get aggregate of 1,000 events", Baseline: "raw SELECT", Writers: 1, Events: AggregateSize, Target: readTarget,
			Setup: func(ctx context.Context) (Op, Op, error) {
				rec, raw := writes.Recorder, writes.Raw
				history := History(AggregateSize, StateSize)
				if _, err := rec.InsertEvents(ctx, history); err != nil {
					return nil, nil, err
				}
				if err := raw.Insert(ctx, history); err != nil {
					return nil, nil, err
				}
				id := history[0].OriginatorID
				strata := func(ctx context.Context, _ int) error {
					events, err := rec.SelectEvents(ctx, id, persistence.EventQuery{})
					if err == nil && len(events) != AggregateSize {
						err = fmt.Errorf("%d events", len(events))
					}
					return err
				}
				base := func(ctx context.Context, _ int) error {
					n, err := raw.SelectAggregate(ctx, id)
					if err == nil && n != AggregateSize {
						err = fmt.Errorf("%d rows", n)
					}
					return err
				}
				return strata, base, nil
			}},
	}
}

// CatchUpCase is the case that reads a log of events notifications from
// the start, as a follower catching up does, against the baseline's scan
// of the same rows with one query, on the reads pair, which must hold
// exactly the events read.
func CatchUpCase(reads Pair, events int, target float64) Case {
	return Case{Name: "catch up " + Thousands(int64(events)) + " notifications", Baseline: "raw SELECT scan", Writers: 1, Events: events, Target: target,
		Setup: func(ctx context.Context) (Op, Op, error) {
			rec, raw := reads.Recorder, reads.Raw
			if err := fill(ctx, rec, raw, events); err != nil {
				return nil, nil, err
			}
			strata := func(ctx context.Context, _ int) error {
				n, err := catchUp(ctx, rec)
				if err == nil && n < events {
					err = fmt.Errorf("caught up %d notifications, want at least %d", n, events)
				}
				return err
			}
			base := func(ctx context.Context, _ int) error {
				n, err := raw.Scan(ctx)
				if err == nil && n < events {
					err = fmt.Errorf("scanned %d rows, want at least %d", n, events)
				}
				return err
			}
			return strata, base, nil
		}}
}

// Thousands writes n with commas between its thousands: "100,000".
func Thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return sign + b.String()
}

// fill puts the same events (a multiple of catchUpPerSave) in Strata's
// table and the raw one.
func fill(ctx context.Context, rec persistence.ApplicationRecorder, raw Raw, events int) error {
	have, err := rec.MaxNotificationID(ctx)
	if err != nil {
		return err
	}
	if have > 0 {
		return nil // filled by an earlier case of this run
	}
	for range events / catchUpPerSave {
		batch := Events(catchUpPerSave, StateSize)
		if _, err := rec.InsertEvents(ctx, batch); err != nil {
			return err
		}
		if err := raw.Insert(ctx, batch); err != nil {
			return err
		}
	}
	if a, ok := raw.(analyzer); ok {
		return a.Analyze(ctx)
	}
	return nil
}

// analyzer is a baseline whose database plans reads from statistics
// that a freshly filled table lacks until they are gathered: Analyze
// gathers them for both tables, as a database's routine maintenance
// (PostgreSQL's autovacuum) would have before a follower catches up.
type analyzer interface {
	Analyze(ctx context.Context) error
}

// catchUp reads the whole log as a follower catching up does: streaming
// if the recorder can, page by page otherwise.
func catchUp(ctx context.Context, rec persistence.ApplicationRecorder) (int, error) {
	n := 0
	for _, err := range persistence.ReadNotifications(ctx, rec, persistence.NotificationQuery{Start: 1}, CatchUpPage) {
		if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

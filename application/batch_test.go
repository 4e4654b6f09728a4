package application_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/domain"
	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/persistence/memory"
)

func tracking(n int64) persistence.Tracking {
	return persistence.Tracking{ApplicationName: "Upstream", NotificationID: n}
}

// A batch is the working copy of what it holds: a load with its context
// returns the aggregate as the notifications before left it, which the
// store does not have yet; Save records each notification's events as a
// commit of its own with its tracking record, and listeners hear of each.
func TestABatchServesLoadsFromItsWorkingCopyAndRecordsEachCommit(t *testing.T) {
	ctx := context.Background()
	app := newApp(t, application.WithTracking())
	repo := counters(t, app)
	var heard [][]application.Recording
	app.AddListener(func(_ context.Context, r []application.Recording) { heard = append(heard, r) })

	b := app.NewBatch()
	bctx := b.Context(ctx)
	c := newCounter(t, "c")
	if err := b.Add(tracking(1), application.Commit{Headers: persistence.Headers{"n": "1"}}, c); err != nil {
		t.Fatal(err)
	}
	for n := int64(2); n <= 4; n++ {
		got, err := repo.Get(bctx, c.ID())
		if err != nil {
			t.Fatalf("load in the batch: %v", err)
		}
		if got != c || got.Version() != n-1 {
			t.Fatalf("load %d in the batch returned %p at version %d, want the batch's copy %p at %d", n, got, got.Version(), c, n-1)
		}
		if err := got.Increment(1); err != nil {
			t.Fatal(err)
		}
		if err := b.Add(tracking(n), application.Commit{}, got); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := app.Contains(bctx, c.ID()); err != nil || !ok {
		t.Fatalf("Contains in the batch of an aggregate it created: %v %v", ok, err)
	}
	if ok, err := app.Contains(ctx, c.ID()); err != nil || ok {
		t.Fatalf("Contains outside the batch before it is saved: %v %v", ok, err)
	}
	if _, err := repo.Get(ctx, c.ID()); !errors.Is(err, application.ErrAggregateNotFound) {
		t.Fatalf("a load without the batch's context found %v before the save", err)
	}

	recs, err := b.Save(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 4 || len(heard) != 4 {
		t.Fatalf("a batch of 4 commits returned %d and listeners heard %d", len(recs), len(heard))
	}
	for i, r := range recs {
		if len(r) != 1 || r[0].Event.OriginatorVersion != int64(i+1) || r[0].NotificationID == 0 {
			t.Fatalf("commit %d recorded %+v", i+1, r)
		}
		if i > 0 && r[0].CommitID == recs[i-1][0].CommitID {
			t.Fatalf("commits %d and %d share their ID", i, i+1)
		}
	}
	if recs[0][0].Headers["n"] != "1" {
		t.Fatalf("the first commit's headers %v", recs[0][0].Headers)
	}
	stored, err := repo.Get(ctx, c.ID())
	if err != nil || stored.Count != 3 || stored.Version() != 4 {
		t.Fatalf("after the batch the store has %+v (%v)", stored, err)
	}
	rec := app.Recorder().(persistence.ProcessRecorder)
	if n, err := rec.MaxTrackingID(ctx, "Upstream"); err != nil || n != 4 {
		t.Fatalf("tracked up to %d (%v), want 4", n, err)
	}
}

// An aggregate that a policy changed without adding it leaves the working
// copy: the next load sees the store's state, not the unsaved change.
func TestABatchDropsAggregatesChangedButNotAdded(t *testing.T) {
	ctx := context.Background()
	app := newApp(t, application.WithTracking())
	repo := counters(t, app)
	c := newCounter(t, "c")
	if _, err := app.Save(ctx, c); err != nil {
		t.Fatal(err)
	}
	b := app.NewBatch()
	bctx := b.Context(ctx)
	loaded, err := repo.Get(bctx, c.ID())
	if err != nil {
		t.Fatal(err)
	}
	if err := loaded.Increment(5); err != nil {
		t.Fatal(err)
	}
	if err := b.Add(tracking(1), application.Commit{}); err != nil {
		t.Fatal(err)
	}
	again, err := repo.Get(bctx, c.ID())
	if err != nil {
		t.Fatal(err)
	}
	if again == loaded || again.Count != 0 {
		t.Fatalf("the next load returned the changed copy (count %d)", again.Count)
	}
}

// A batch that fails records nothing on a recorder that records batches
// in one transaction, and says so.
func TestAFailedBatchRecordsNothing(t *testing.T) {
	ctx := context.Background()
	app := newApp(t, application.WithTracking())
	if _, err := app.SaveTracked(ctx, tracking(2)); err != nil {
		t.Fatal(err)
	}
	b := app.NewBatch()
	c := newCounter(t, "c")
	if err := b.Add(tracking(1), application.Commit{}, c); err != nil {
		t.Fatal(err)
	}
	if err := b.Add(tracking(2), application.Commit{}); err != nil {
		t.Fatal(err)
	}
	recs, err := b.Save(ctx)
	var be *persistence.BatchError
	if !errors.Is(err, persistence.ErrIntegrity) || !errors.As(err, &be) || be.Recorded != 0 || len(recs) != 0 {
		t.Fatalf("a batch repeating a tracking record: %v (%d recorded), want an integrity error and nothing recorded", err, len(recs))
	}
	if ok, err := app.Contains(ctx, c.ID()); err != nil || ok {
		t.Fatalf("the failed batch recorded its first commit: %v %v", ok, err)
	}
}

// The batch after one saved whole starts from the aggregates it recorded,
// brought up to date with what the store recorded since: a change made
// outside the batches is seen, as a fresh load would see it.
func TestTheNextBatchBringsCarriedAggregatesUpToDate(t *testing.T) {
	ctx := context.Background()
	app := newApp(t, application.WithTracking())
	repo := counters(t, app)
	c := newCounter(t, "c")
	b := app.NewBatch()
	if err := b.Add(tracking(1), application.Commit{}, c); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Save(ctx); err != nil {
		t.Fatal(err)
	}
	incrementOutside(t, app, repo, c.ID(), 7)
	next := b.Next()
	got, err := repo.Get(next.Context(ctx), c.ID())
	if err != nil {
		t.Fatal(err)
	}
	if got.Count != 7 || got.Version() != 2 {
		t.Fatalf("the next batch loaded count %d at version %d, want 7 at 2", got.Count, got.Version())
	}
	if got != c {
		t.Fatalf("the next batch loaded a fresh copy, not the carried one brought up to date")
	}
	if err := got.Increment(1); err != nil {
		t.Fatal(err)
	}
	if err := next.Add(tracking(2), application.Commit{}, got); err != nil {
		t.Fatal(err)
	}
	if _, err := next.Save(ctx); err != nil {
		t.Fatalf("save the next batch: %v", err)
	}
	if stored, err := repo.Get(ctx, c.ID()); err != nil || stored.Count != 8 || stored.Version() != 3 {
		t.Fatalf("after the next batch the store has %+v (%v)", stored, err)
	}
	if again := app.NewBatch().Next(); again == nil {
		t.Fatal("Next of an unsaved batch returned nil")
	}
}

// selectCounts counts a process recorder's reads of aggregates' events.
type selectCounts struct {
	selects int
	afters  [][]persistence.After
}

// countingFactory is a memory factory whose process recorder counts its
// reads of events and selects events after versions in one call, as an
// AfterSelector.
type countingFactory struct {
	*memory.Factory
	counts *selectCounts
}

type countingRecorder struct {
	*memory.Recorder
	counts *selectCounts
}

func (f countingFactory) ProcessRecorder(ctx context.Context) (persistence.ProcessRecorder, error) {
	r, err := f.Factory.ProcessRecorder(ctx)
	if err != nil {
		return nil, err
	}
	return countingRecorder{r.(*memory.Recorder), f.counts}, nil
}

func (r countingRecorder) SelectEvents(ctx context.Context, id uuid.UUID, q persistence.EventQuery) ([]persistence.StoredEvent, error) {
	r.counts.selects++
	return r.Recorder.SelectEvents(ctx, id, q)
}

func (r countingRecorder) SelectEventsAfter(ctx context.Context, after []persistence.After) ([][]persistence.StoredEvent, error) {
	r.counts.afters = append(r.counts.afters, slices.Clone(after))
	return persistence.SelectEventsAfter(ctx, r.Recorder, after)
}

// The batch after one saved whole brings the aggregates the batch before
// used up to date in one query, at its first load of one of them, and
// serves their loads from it; one that no recent batch used is brought up
// to date alone, when it is loaded.
func TestTheNextBatchBringsWhatTheLastUsedUpToDateInOneQuery(t *testing.T) {
	ctx := context.Background()
	counts := &selectCounts{}
	app := newApp(t, application.WithTracking(), application.WithFactory(countingFactory{memory.NewFactory(), counts}))
	repo := counters(t, app)
	idle := newCounter(t, "idle")
	if _, err := app.Save(ctx, idle); err != nil {
		t.Fatal(err)
	}
	n := int64(0)
	// A batch that loads idle, then batches that do not: idle is carried
	// along, but no longer read ahead.
	b := app.NewBatch()
	got, err := repo.Get(b.Context(ctx), idle.ID())
	if err != nil {
		t.Fatal(err)
	}
	n++
	if err := b.Add(tracking(n), application.Commit{}, got); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Save(ctx); err != nil {
		t.Fatal(err)
	}
	cs := []*Counter{newCounter(t, "a"), newCounter(t, "b"), newCounter(t, "c")}
	roots := []domain.Root{cs[0], cs[1], cs[2]}
	// older is last used five batches before the one that loads, recent
	// four: only recent is read ahead with the counters.
	older, recent := newCounter(t, "older"), newCounter(t, "recent")
	for i := range 5 {
		b = b.Next()
		n++
		add := roots
		switch i {
		case 0:
			add = append(slices.Clone(roots), older)
		case 1:
			add = append(slices.Clone(roots), recent)
		}
		if err := b.Add(tracking(n), application.Commit{}, add...); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Save(ctx); err != nil {
			t.Fatal(err)
		}
	}
	incrementOutside(t, app, repo, cs[1].ID(), 7)

	*counts = selectCounts{}
	next := b.Next()
	for i, c := range cs {
		got, err := repo.Get(next.Context(ctx), c.ID())
		if err != nil {
			t.Fatal(err)
		}
		if got != c {
			t.Fatalf("counter %d was loaded afresh, not brought up to date", i)
		}
	}
	if cs[1].Count != 7 || cs[1].Version() != 2 {
		t.Fatalf("the counter changed outside the batches has count %d at version %d, want 7 at 2", cs[1].Count, cs[1].Version())
	}
	if counts.selects != 0 || len(counts.afters) != 1 || len(counts.afters[0]) != len(cs)+1 {
		t.Fatalf("loads of the carried counters made %d selects and selects after versions of %v, want one of %d", counts.selects, counts.afters, len(cs)+1)
	}
	read := map[uuid.UUID]bool{}
	for _, a := range counts.afters[0] {
		read[a.OriginatorID] = true
	}
	if !read[recent.ID()] || read[older.ID()] || read[idle.ID()] {
		t.Fatalf("read ahead: the counter used four batches back %v (want it), five back %v, six back %v (want neither)",
			read[recent.ID()], read[older.ID()], read[idle.ID()])
	}
	if got, err := repo.Get(next.Context(ctx), recent.ID()); err != nil || got != recent || len(counts.afters) != 1 {
		t.Fatalf("the counter read ahead was not served from it: %v, %d selects after versions", err, len(counts.afters))
	}
	got, err = repo.Get(next.Context(ctx), idle.ID())
	if err != nil || got.Name != "idle" {
		t.Fatalf("load the idle counter: %+v, %v", got, err)
	}
	if len(counts.afters) != 2 || len(counts.afters[1]) != 1 || counts.afters[1][0].OriginatorID != idle.ID() {
		t.Fatalf("the idle counter was brought up to date by %v, want a select of it alone", counts.afters)
	}
}

// incrementOutside adds n to counter id outside any batch: loaded, changed
// and saved by the application itself.
func incrementOutside(t *testing.T, app *application.Application, repo *application.Repository[*Counter], id uuid.UUID, n int) {
	t.Helper()
	ctx := context.Background()
	c, err := repo.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Increment(n); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Save(ctx, c); err != nil {
		t.Fatal(err)
	}
}

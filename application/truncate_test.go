package application_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/persistence/memory"
)

// countTo saves a new counter, then n-1 increments, one save each, and
// returns it.
func countTo(t *testing.T, app *application.Application, n int) *Counter {
	t.Helper()
	c := newCounter(t, "c")
	if _, err := app.Save(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	for range n - 1 {
		if err := c.Increment(1); err != nil {
			t.Fatal(err)
		}
		if _, err := app.Save(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func storedVersions(t *testing.T, app *application.Application, id uuid.UUID) []int64 {
	t.Helper()
	events, err := app.Recorder().SelectEvents(context.Background(), id, persistence.EventQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var vs []int64
	for _, e := range events {
		vs = append(vs, e.OriginatorVersion)
	}
	return vs
}

func TestTruncateDeletesTheEventsBeforeTheLatestSnapshotAndTheAggregateStillLoads(t *testing.T) {
	ctx := context.Background()
	app := newApp(t, application.WithSnapshotStore())
	counters, err := application.NewRepository[Counter](app)
	if err != nil {
		t.Fatal(err)
	}
	c := countTo(t, app, 7)
	stale, err := counters.Get(ctx, c.ID(), application.AtVersion(3))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := app.TakeSnapshot(ctx, c.ID()); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		c.Increment(1)
		if _, err := app.Save(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	res, err := app.Truncate(ctx, c.ID())
	if err != nil {
		t.Fatal(err)
	}
	if want := (application.Truncation{ID: c.ID(), Snapshot: 7, Before: 7, Deleted: 6}); res != want {
		t.Fatalf("truncation %+v, want %+v", res, want)
	}
	if got := storedVersions(t, app, c.ID()); !slices.Equal(got, []int64{7, 8, 9, 10}) {
		t.Fatalf("stored versions %v, want [7 8 9 10]", got)
	}
	got, err := counters.Get(ctx, c.ID())
	if err != nil || got.Version() != 10 || got.Count != 9 {
		t.Fatalf("get after truncation: version %d count %d (%v), want 10 and 9", got.Version(), got.Count, err)
	}
	if got, err := counters.Get(ctx, c.ID(), application.AtVersion(8)); err != nil || got.Version() != 8 {
		t.Fatalf("get at version 8, after the snapshot: %v", err)
	}
	for name, opts := range map[string][]application.GetOption{
		"from events only":       {application.FromEvents()},
		"at a truncated version": {application.AtVersion(5)},
	} {
		if _, err := counters.Get(ctx, c.ID(), opts...); !errors.Is(err, application.ErrTruncated) {
			t.Errorf("get %s: %v, want an error wrapping ErrTruncated", name, err)
		}
	}
	// A writer holding a copy from before the truncation gets a conflict,
	// not a gap in the stream.
	stale.Increment(100)
	if _, err := app.Save(ctx, stale); !errors.Is(err, application.ErrConflict) {
		t.Fatalf("save of a stale copy at a truncated version: %v, want ErrConflict", err)
	}
	// A snapshot of a truncated stream is rebuilt from the latest one.
	snap, err := app.TakeSnapshot(ctx, c.ID())
	if err != nil || snap.OriginatorVersion != 10 {
		t.Fatalf("snapshot of a truncated stream: %+v %v", snap, err)
	}
	again, err := app.Truncate(ctx, c.ID())
	if err != nil || again.Before != 10 || again.Deleted != 3 {
		t.Fatalf("second truncation: %+v %v, want before 10 and 3 deleted", again, err)
	}
}

func TestTruncateNeverGoesPastTheLatestSnapshot(t *testing.T) {
	ctx := context.Background()
	app := newApp(t, application.WithSnapshotStore())
	c := countTo(t, app, 4)
	res, err := app.Truncate(ctx, c.ID())
	if err != nil || res.Deleted != 0 || res.Snapshot != 0 {
		t.Fatalf("truncation without a snapshot: %+v %v, want nothing done", res, err)
	}
	if got := storedVersions(t, app, c.ID()); len(got) != 4 {
		t.Fatalf("stored versions %v", got)
	}
	// A snapshot the stream does not have a version for is refused.
	if _, err := app.Snapshots().Recorder().InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: c.ID(), OriginatorVersion: 9, Topic: "Counter", State: []byte("{}")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Truncate(ctx, c.ID()); err == nil {
		t.Fatal("a truncation up to a snapshot at a version the stream lacks was done")
	}
	if got := storedVersions(t, app, c.ID()); len(got) != 4 {
		t.Fatalf("stored versions %v after a refused truncation", got)
	}
}

func TestTruncateKeepsCommitsWhole(t *testing.T) {
	ctx := context.Background()
	app := newApp(t, application.WithSnapshotStore())
	c := countTo(t, app, 4)
	for range 4 {
		c.Increment(1)
	}
	if _, err := app.Save(ctx, c); err != nil { // versions 5 to 8, one commit
		t.Fatal(err)
	}
	if _, err := app.TakeSnapshot(ctx, c.ID(), application.AtVersion(7)); err != nil {
		t.Fatal(err)
	}
	res, err := app.Truncate(ctx, c.ID())
	if err != nil || res.Before != 5 || res.Deleted != 4 {
		t.Fatalf("truncation inside a commit: %+v %v, want before 5 (the commit's first version) and 4 deleted", res, err)
	}
}

func TestTruncateOlderThanKeepsYoungEvents(t *testing.T) {
	ctx := context.Background()
	app := newApp(t, application.WithSnapshotStore())
	c := countTo(t, app, 3)
	mid := time.Now().UTC()
	for range 3 {
		c.Increment(1)
		if _, err := app.Save(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := app.TakeSnapshot(ctx, c.ID()); err != nil {
		t.Fatal(err)
	}
	atMid := application.TruncateAt(func() time.Time { return mid.Add(time.Hour) })
	res, err := app.Truncate(ctx, c.ID(), application.TruncateOlderThan(time.Hour), atMid)
	if err != nil || res.Before != 4 || res.Deleted != 3 {
		t.Fatalf("truncation of the events older than an hour before the middle: %+v %v, want before 4", res, err)
	}
	res, err = app.Truncate(ctx, c.ID(), application.TruncateOlderThan(24*time.Hour))
	if err != nil || res.Deleted != 0 {
		t.Fatalf("truncation of events older than a day: %+v %v, want nothing", res, err)
	}
}

func TestTruncateArchivesBeforeDeleting(t *testing.T) {
	ctx := context.Background()
	app := newApp(t, application.WithSnapshotStore())
	archive := newApp(t, application.WithFactory(memory.NewFactory()))
	tenant, err := app.ForTenant("acme")
	if err != nil {
		t.Fatal(err)
	}
	c := countTo(t, tenant, 5)
	if _, err := tenant.TakeSnapshot(ctx, c.ID(), application.AtVersion(3)); err != nil {
		t.Fatal(err)
	}
	res, err := tenant.Truncate(ctx, c.ID(), application.ArchiveTo(archive))
	if err != nil || res.Archived != 2 || res.Deleted != 2 {
		t.Fatalf("truncate and archive: %+v %v, want 2 archived and deleted", res, err)
	}
	if _, err := tenant.TakeSnapshot(ctx, c.ID()); err != nil {
		t.Fatal(err)
	}
	if res, err = tenant.Truncate(ctx, c.ID(), application.ArchiveTo(archive)); err != nil || res.Archived != 2 {
		t.Fatalf("second truncation: %+v %v, want 2 more archived", res, err)
	}
	archived, err := archive.ForTenant("acme")
	if err != nil {
		t.Fatal(err)
	}
	if got := storedVersions(t, archived, c.ID()); !slices.Equal(got, []int64{1, 2, 3, 4}) {
		t.Fatalf("archived versions %v, want [1 2 3 4]", got)
	}
	if got := storedVersions(t, archive, c.ID()); len(got) != 0 {
		t.Fatalf("the archive's default tenant has versions %v of another tenant's aggregate", got)
	}
	// The archive holds the stream's beginning, with its commits: it loads
	// there as it was at the truncation point.
	old, err := archived.Get(ctx, c.ID())
	if err != nil || old.Version() != 4 {
		t.Fatalf("get from the archive: %v", err)
	}
	src, _ := app.ForTenant("acme")
	for v := int64(1); v <= 4; v++ {
		a, _ := archived.Recorder().SelectEvents(ctx, c.ID(), persistence.EventQuery{Gt: ptr(v - 1), Lte: ptr(v)})
		if len(a) != 1 || a[0].CommitID == uuid.Nil {
			t.Fatalf("archived version %d has no commit ID", v)
		}
	}
	if got := storedVersions(t, src, c.ID()); !slices.Equal(got, []int64{5}) {
		t.Fatalf("versions left %v, want [5]", got)
	}
}

func TestTruncateNeedsAStoreThatCanTruncate(t *testing.T) {
	app := newApp(t, application.WithSnapshotStore(), application.WithFactory(plainFactory{memory.NewFactory()}))
	c := countTo(t, app, 2)
	if _, err := app.Truncate(context.Background(), c.ID()); !errors.Is(err, application.ErrNotTruncatable) {
		t.Fatalf("truncate on a store without truncation: %v, want ErrNotTruncatable", err)
	}
}

// plainFactory hides what its factory offers beyond persistence.Factory.
type plainFactory struct{ persistence.Factory }

func ptr(v int64) *int64 { return &v }

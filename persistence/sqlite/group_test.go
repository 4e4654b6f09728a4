package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/persistence/sqlite"
)

// grouped runs the saves at once while the test holds the factory's write
// connection, waits until all of them are queued behind it, and releases
// it, after running whileQueued if not nil: the saves are then committed
// as one group. It returns each save's outcome.
func grouped(t *testing.T, f *sqlite.Factory, saves []func(ctx context.Context) error, whileQueued func()) []error {
	t.Helper()
	ctx := context.Background()
	writer, _ := f.DB()
	conn, err := writer.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	errs := make([]error, len(saves))
	var wg sync.WaitGroup
	for i, save := range saves {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = save(ctx)
		}()
	}
	for deadline := time.Now().Add(10 * time.Second); sqlite.QueuedSaves(f) < len(saves); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			conn.Close()
			wg.Wait()
			t.Fatalf("%d of %d saves queued for the write connection", sqlite.QueuedSaves(f), len(saves))
		}
	}
	if whileQueued != nil {
		whileQueued()
	}
	conn.Close()
	wg.Wait()
	return errs
}

func event(id uuid.UUID, version int64, topic string) persistence.StoredEvent {
	return persistence.StoredEvent{OriginatorID: id, OriginatorVersion: version, Topic: topic, State: []byte(fmt.Sprintf("%s@%d", id, version))}
}

// Saves committed together stay atomic and isolated: a save that
// conflicts fails alone, with an integrity error, and stores nothing (not
// even its events that did not conflict, nor its tracking record); the
// others are recorded with notification IDs in the order of the log.
func TestAConflictInAGroupFailsOnlyItsOwnSave(t *testing.T) {
	// With tracking records a save is several statements, in a savepoint;
	// without, most saves are one statement, which needs none.
	t.Run("with tracking records", func(t *testing.T) { testConflictInAGroup(t, true) })
	t.Run("without tracking records", func(t *testing.T) { testConflictInAGroup(t, false) })
}

func testConflictInAGroup(t *testing.T, tracking bool) {
	ctx := context.Background()
	f := open(t, filepath.Join(t.TempDir(), "group.db"))
	r, err := f.ProcessRecorder(ctx)
	if err != nil {
		t.Fatal(err)
	}
	taken := uuid.New()
	if _, err := r.InsertEvents(ctx, []persistence.StoredEvent{event(taken, 1, "t")}); err != nil {
		t.Fatal(err)
	}
	fresh := make([]uuid.UUID, 6)
	for i := range fresh {
		fresh[i] = uuid.New()
	}
	half := uuid.New()
	saves := [][]persistence.StoredEvent{
		{event(fresh[0], 1, "t")},
		{event(taken, 1, "t")}, // conflicts
		{event(fresh[1], 1, "t"), event(fresh[2], 1, "t")},
		{event(half, 1, "t"), event(taken, 1, "t")}, // conflicts on its second event
		{event(fresh[3], 1, "t")},
		{event(fresh[4], 1, "t"), event(fresh[4], 2, "t")},
		{event(fresh[5], 1, "t")},
	}
	conflicting := map[int]bool{1: true, 3: true}
	ids := make([][]int64, len(saves))
	var calls []func(ctx context.Context) error
	for i, events := range saves {
		calls = append(calls, func(ctx context.Context) error {
			var err error
			var opts []persistence.InsertOption
			if tracking {
				opts = append(opts, persistence.WithTracking(persistence.Tracking{ApplicationName: "up", NotificationID: int64(i + 1)}))
			}
			ids[i], err = r.InsertEvents(ctx, events, opts...)
			return err
		})
	}
	errs := grouped(t, f, calls, nil)
	for i, err := range errs {
		switch {
		case conflicting[i] && !errors.Is(err, persistence.ErrIntegrity):
			t.Errorf("save %d, which conflicts: %v, want an integrity error", i, err)
		case !conflicting[i] && err != nil:
			t.Errorf("save %d, which does not conflict: %v", i, err)
		case !conflicting[i] && len(ids[i]) != len(saves[i]):
			t.Errorf("save %d: %d notification IDs for %d events", i, len(ids[i]), len(saves[i]))
		}
	}
	for _, id := range append(fresh, half, taken) {
		got, err := r.SelectEvents(ctx, id, persistence.EventQuery{})
		if err != nil {
			t.Fatal(err)
		}
		want := 1
		switch id {
		case half:
			want = 0
		case fresh[4]:
			want = 2
		}
		if len(got) != want {
			t.Errorf("aggregate %s: %d events recorded, want %d", id, len(got), want)
		}
	}
	for i := range saves {
		if !tracking {
			break
		}
		has, err := r.HasTrackingID(ctx, "up", int64(i+1))
		if err != nil {
			t.Fatal(err)
		}
		if has == conflicting[i] {
			t.Errorf("save %d (conflicting: %v): tracking record recorded: %v", i, conflicting[i], has)
		}
	}
	log, err := r.SelectNotifications(ctx, persistence.NotificationQuery{Start: 1, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 1+7 {
		t.Fatalf("%d notifications, want 8", len(log))
	}
	byID := map[int64]bool{}
	for i, n := range log {
		if i > 0 && n.ID <= log[i-1].ID {
			t.Fatalf("notification IDs out of order: %d after %d", n.ID, log[i-1].ID)
		}
		byID[n.ID] = true
	}
	for i := range saves {
		for _, id := range ids[i] {
			if !byID[id] {
				t.Errorf("save %d was given notification ID %d, which the log does not have", i, id)
			}
		}
	}
}

// When the commit of a group fails, nothing of it is recorded and the
// failure belongs to no save in particular: each save runs again alone
// and gets its own outcome. Here one save breaks a deferred constraint,
// checked only at COMMIT: it fails, the others are recorded.
func TestAFailedGroupCommitGivesEachSaveItsOwnOutcome(t *testing.T) {
	ctx := context.Background()
	f := open(t, filepath.Join(t.TempDir(), "group.db"))
	r, err := f.ApplicationRecorder(ctx)
	if err != nil {
		t.Fatal(err)
	}
	writer, _ := f.DB()
	for _, stmt := range []string{
		"CREATE TABLE poison_parent (id INTEGER PRIMARY KEY)",
		"CREATE TABLE poison_child (parent INTEGER REFERENCES poison_parent (id) DEFERRABLE INITIALLY DEFERRED)",
		"CREATE TRIGGER poison AFTER INSERT ON " + f.Tables().Events + " WHEN NEW.topic = 'poison' BEGIN INSERT INTO poison_child VALUES (1); END",
	} {
		if _, err := writer.ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	ids := make([]uuid.UUID, 5)
	var calls []func(ctx context.Context) error
	for i := range ids {
		ids[i] = uuid.New()
		topic := "t"
		if i == 2 {
			topic = "poison"
		}
		calls = append(calls, func(ctx context.Context) error {
			_, err := r.InsertEvents(ctx, []persistence.StoredEvent{event(ids[i], 1, topic)})
			return err
		})
	}
	errs := grouped(t, f, calls, nil)
	for i, err := range errs {
		if i == 2 {
			if !errors.Is(err, persistence.ErrIntegrity) {
				t.Errorf("the save that breaks the deferred constraint: %v, want an integrity error", err)
			}
		} else if err != nil {
			t.Errorf("save %d: %v", i, err)
		}
		got, err := r.SelectEvents(ctx, ids[i], persistence.EventQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int{true: 0, false: 1}[i == 2]; len(got) != want {
			t.Errorf("save %d: %d events recorded, want %d", i, len(got), want)
		}
	}
	// The connection is usable afterwards: the failed COMMIT left no
	// transaction open on it.
	if _, err := r.InsertEvents(ctx, []persistence.StoredEvent{event(uuid.New(), 1, "t")}); err != nil {
		t.Fatalf("a save after the failed commit: %v", err)
	}
}

// A save whose context ends while it waits in the queue fails without
// reaching the database; the saves queued with it are recorded.
func TestASaveCancelledInTheQueueFailsAlone(t *testing.T) {
	ctx := context.Background()
	f := open(t, filepath.Join(t.TempDir(), "group.db"))
	r, err := f.ApplicationRecorder(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	ids := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
	var calls []func(ctx context.Context) error
	for i, id := range ids {
		calls = append(calls, func(ctx context.Context) error {
			if i == 1 {
				ctx = cancelled
			}
			_, err := r.InsertEvents(ctx, []persistence.StoredEvent{event(id, 1, "t")})
			return err
		})
	}
	errs := grouped(t, f, calls, func() {
		cancel()
		for sqlite.QueuedSaves(f) == len(ids) {
			time.Sleep(time.Millisecond) // until the cancelled save has left the queue
		}
	})
	for i, err := range errs {
		if i == 1 {
			if !errors.Is(err, persistence.ErrOperational) {
				t.Errorf("the cancelled save: %v, want an operational error", err)
			}
		} else if err != nil {
			t.Errorf("save %d: %v", i, err)
		}
		got, err := r.SelectEvents(ctx, ids[i], persistence.EventQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int{true: 0, false: 1}[i == 1]; len(got) != want {
			t.Errorf("save %d: %d events recorded, want %d", i, len(got), want)
		}
	}
}

// A trigger's RAISE in one save of a group may do more than undo its
// statement: ROLLBACK ends the whole transaction, with the saves before
// it, and FAIL keeps the rows the statement inserted before it. Either
// way the failing save fails alone and records nothing, and every other
// save of the group, before or after it, of one statement or with a
// tracking record (in a savepoint), is recorded, once, with no error.
func TestATriggerThatRaisesInAGroupFailsOnlyItsSave(t *testing.T) {
	for _, raise := range []string{"ROLLBACK", "FAIL", "ABORT"} {
		for _, tracked := range []bool{false, true} {
			t.Run(fmt.Sprintf("RAISE(%s), tracked %v", raise, tracked), func(t *testing.T) {
				ctx := context.Background()
				f := open(t, filepath.Join(t.TempDir(), "group.db"))
				r, err := f.ProcessRecorder(ctx)
				if err != nil {
					t.Fatal(err)
				}
				writer, _ := f.DB()
				if _, err := writer.ExecContext(ctx, "CREATE TRIGGER poison BEFORE INSERT ON "+f.Tables().Events+
					" WHEN NEW.topic = 'poison' BEGIN SELECT RAISE("+raise+", 'poison'); END"); err != nil {
					t.Fatal(err)
				}
				const poisoned = 2
				saves := make([][]persistence.StoredEvent, 5)
				var calls []func(ctx context.Context) error
				for i := range saves {
					saves[i] = []persistence.StoredEvent{event(uuid.New(), 1, "t")}
					if i == poisoned {
						// Its first event goes in before the trigger fails the
						// second.
						saves[i] = append(saves[i], event(uuid.New(), 1, "poison"))
					}
					var opts []persistence.InsertOption
					if tracked {
						opts = append(opts, persistence.WithTracking(persistence.Tracking{ApplicationName: "up", NotificationID: int64(i + 1)}))
					}
					calls = append(calls, func(ctx context.Context) error {
						_, err := r.InsertEvents(ctx, saves[i], opts...)
						return err
					})
				}
				errs := grouped(t, f, calls, nil)
				for i, events := range saves {
					got, err := r.SelectEvents(ctx, events[0].OriginatorID, persistence.EventQuery{})
					if err != nil {
						t.Fatal(err)
					}
					switch {
					case i == poisoned && (errs[i] == nil || len(got) != 0):
						t.Errorf("the save that the trigger failed: %v, %d of its events recorded, want an error and none", errs[i], len(got))
					case i != poisoned && (errs[i] != nil || len(got) != 1):
						t.Errorf("save %d: %v, %d events recorded, want no error and 1", i, errs[i], len(got))
					}
				}
			})
		}
	}
}

// A follower's batch of tracked inserts is committed in a group with the
// saves waiting beside it: one flush for all of them. A batch that
// conflicts fails alone, naming its insert at fault, and leaves nothing of
// itself, not even its tracking records; so does a batch of tracking
// records alone (one statement, without a savepoint) that repeats one.
func TestTrackedBatchesAreCommittedInGroupsWithSaves(t *testing.T) {
	ctx := context.Background()
	f := open(t, filepath.Join(t.TempDir(), "batches.db"))
	r, err := f.ProcessRecorder(ctx)
	if err != nil {
		t.Fatal(err)
	}
	batches, ok := r.(persistence.BatchProcessRecorder)
	if !ok {
		t.Fatal("the SQLite process recorder records no batches")
	}
	taken := uuid.New()
	if _, err := r.InsertEvents(ctx, []persistence.StoredEvent{event(taken, 1, "t")}); err != nil {
		t.Fatal(err)
	}
	before, after, lost := uuid.New(), uuid.New(), uuid.New()
	batched := []uuid.UUID{uuid.New(), uuid.New()}
	tracked := func(app string, n int64, events ...persistence.StoredEvent) persistence.TrackedInsert {
		return persistence.TrackedInsert{Events: events, Tracking: persistence.Tracking{ApplicationName: app, NotificationID: n}}
	}
	if _, err := batches.InsertTrackedBatch(ctx, []persistence.TrackedInsert{tracked("seen", 1)}); err != nil {
		t.Fatal(err)
	}
	var good, bad [][]int64
	var badErr, seenErr error
	errs := grouped(t, f, []func(ctx context.Context) error{
		func(ctx context.Context) error {
			_, err := r.InsertEvents(ctx, []persistence.StoredEvent{event(before, 1, "t")})
			return err
		},
		func(ctx context.Context) error {
			var err error
			good, err = batches.InsertTrackedBatch(ctx, []persistence.TrackedInsert{
				tracked("up", 1, event(batched[0], 1, "t")),
				tracked("up", 2), // a notification that made nothing
				tracked("up", 3, event(batched[1], 1, "t"), event(batched[1], 2, "t")),
			})
			return err
		},
		func(ctx context.Context) error {
			bad, badErr = batches.InsertTrackedBatch(ctx, []persistence.TrackedInsert{
				tracked("other", 1, event(lost, 1, "t")),
				tracked("other", 2, event(taken, 1, "t")), // conflicts
			})
			return nil
		},
		func(ctx context.Context) error {
			_, seenErr = batches.InsertTrackedBatch(ctx, []persistence.TrackedInsert{tracked("seen", 2), tracked("seen", 1)}) // repeats 1
			return nil
		},
		func(ctx context.Context) error {
			_, err := r.InsertEvents(ctx, []persistence.StoredEvent{event(after, 1, "t")})
			return err
		},
	}, nil)
	for i, err := range errs {
		if err != nil {
			t.Errorf("call %d: %v", i, err)
		}
	}
	if len(good) != 3 || len(good[0]) != 1 || len(good[1]) != 0 || len(good[2]) != 2 {
		t.Errorf("the batch that does not conflict got notification IDs %v, want 1, 0 and 2 per insert", good)
	}
	var be *persistence.BatchError
	if !errors.As(badErr, &be) || be.Index != 1 || !errors.Is(badErr, persistence.ErrIntegrity) || bad != nil {
		t.Errorf("the conflicting batch: %v (IDs %v), want a batch error of insert 1 that is an integrity error", badErr, bad)
	}
	if !errors.Is(seenErr, persistence.ErrIntegrity) {
		t.Errorf("the batch that repeats a tracking record: %v, want an integrity error", seenErr)
	}
	for id, want := range map[uuid.UUID]int{before: 1, after: 1, lost: 0, batched[0]: 1, batched[1]: 2, taken: 1} {
		got, err := r.SelectEvents(ctx, id, persistence.EventQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != want {
			t.Errorf("aggregate %s: %d events recorded, want %d", id, len(got), want)
		}
	}
	for _, c := range []struct {
		app  string
		n    int64
		want bool
	}{{"up", 1, true}, {"up", 2, true}, {"up", 3, true}, {"other", 1, false}, {"other", 2, false}, {"seen", 1, true}, {"seen", 2, false}} {
		if has, err := r.HasTrackingID(ctx, c.app, c.n); err != nil || has != c.want {
			t.Errorf("tracking record %s %d: %v %v, want %v", c.app, c.n, has, err, c.want)
		}
	}
}

// A snapshot replaced while saves wait for the write connection is
// committed in their group, not in a transaction of its own that the next
// save would wait for, and replaces what was there.
func TestSnapshotsAreReplacedInGroupsWithSaves(t *testing.T) {
	ctx := context.Background()
	f := open(t, filepath.Join(t.TempDir(), "snapshots.db"))
	r, err := f.ProcessRecorder(ctx)
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := f.AggregateRecorder(ctx, "snapshots")
	if err != nil {
		t.Fatal(err)
	}
	replacer, ok := snaps.(persistence.Replacer)
	if !ok {
		t.Fatal("the SQLite snapshot recorder replaces nothing")
	}
	old, fresh, saved := uuid.New(), uuid.New(), uuid.New()
	if err := replacer.ReplaceEvents(ctx, []persistence.StoredEvent{event(old, 3, "v1")}); err != nil {
		t.Fatal(err)
	}
	errs := grouped(t, f, []func(ctx context.Context) error{
		func(ctx context.Context) error {
			return replacer.ReplaceEvents(ctx, []persistence.StoredEvent{event(old, 3, "v2")})
		},
		func(ctx context.Context) error {
			_, err := r.InsertEvents(ctx, []persistence.StoredEvent{event(saved, 1, "t")})
			return err
		},
		func(ctx context.Context) error {
			return replacer.ReplaceEvents(ctx, []persistence.StoredEvent{event(fresh, 1, "v1"), event(fresh, 2, "v1")})
		},
	}, nil)
	for i, err := range errs {
		if err != nil {
			t.Errorf("call %d: %v", i, err)
		}
	}
	for _, c := range []struct {
		r     persistence.AggregateRecorder
		id    uuid.UUID
		topic []string
	}{{snaps, old, []string{"v2"}}, {snaps, fresh, []string{"v1", "v1"}}, {r, saved, []string{"t"}}} {
		got, err := c.r.SelectEvents(ctx, c.id, persistence.EventQuery{})
		if err != nil {
			t.Fatal(err)
		}
		var topics []string
		for _, e := range got {
			topics = append(topics, e.Topic)
		}
		if !slices.Equal(topics, c.topic) {
			t.Errorf("aggregate %s: topics %q, want %q", c.id, topics, c.topic)
		}
	}
}

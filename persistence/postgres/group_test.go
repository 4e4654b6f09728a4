package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-go/strata/internal/pgtest"
	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/persistence/postgres"
)

// grouped runs the saves at once while the test holds the only connection
// of the factory's pool (POSTGRES_POOL_SIZE=1), waits until all of them
// are queued behind it, and releases it: the saves are then committed as
// one group. It returns each save's outcome.
func grouped(t *testing.T, f *postgres.Factory, saves []func(ctx context.Context) error) []error {
	t.Helper()
	ctx := context.Background()
	conn, err := f.Pool().Acquire(ctx)
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
	deadline := time.Now().Add(10 * time.Second)
	for postgres.QueuedSaves(f) < len(saves) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	queued := postgres.QueuedSaves(f)
	conn.Release()
	wg.Wait()
	if queued < len(saves) {
		t.Fatalf("%d of %d saves queued for the connection", queued, len(saves))
	}
	return errs
}

func event(id uuid.UUID, version int64, state string) persistence.StoredEvent {
	return persistence.StoredEvent{OriginatorID: id, OriginatorVersion: version, Topic: "t", State: []byte(state)}
}

// Saves committed together stay atomic and isolated: a save that
// conflicts (on an event or on its tracking record) fails alone and
// stores nothing; the others are recorded, with their tracking records.
func TestAConflictInAGroupFailsOnlyItsOwnSave(t *testing.T) {
	ctx := context.Background()
	f := open(t, "POSTGRES_POOL_SIZE=1", "POSTGRES_NOTIFY=n")
	r, err := f.ProcessRecorder(ctx)
	if err != nil {
		t.Fatal(err)
	}
	taken := uuid.New()
	if _, err := r.InsertEvents(ctx, []persistence.StoredEvent{event(taken, 1, "x")}, persistence.WithTracking(persistence.Tracking{ApplicationName: "up", NotificationID: 100})); err != nil {
		t.Fatal(err)
	}
	fresh := make([]uuid.UUID, 6)
	for i := range fresh {
		fresh[i] = uuid.New()
	}
	half := uuid.New()
	type save struct {
		events   []persistence.StoredEvent
		tracking int64
		conflict bool
	}
	saves := []save{
		{events: []persistence.StoredEvent{event(fresh[0], 1, "a")}, tracking: 1},
		{events: []persistence.StoredEvent{event(taken, 1, "b")}, tracking: 2, conflict: true},
		{events: []persistence.StoredEvent{event(fresh[1], 1, "c"), event(fresh[2], 1, "c")}, tracking: 3},
		{events: []persistence.StoredEvent{event(half, 1, "d"), event(taken, 1, "d")}, tracking: 4, conflict: true},
		{events: []persistence.StoredEvent{event(fresh[3], 1, "e")}, tracking: 100, conflict: true}, // a tracking record already recorded
		{events: []persistence.StoredEvent{event(fresh[4], 1, "f"), event(fresh[4], 2, "f")}, tracking: 6},
		{events: []persistence.StoredEvent{event(fresh[5], 1, "g")}, tracking: 7},
	}
	ids := make([][]int64, len(saves))
	var calls []func(ctx context.Context) error
	for i, s := range saves {
		calls = append(calls, func(ctx context.Context) error {
			var err error
			ids[i], err = r.InsertEvents(ctx, s.events, persistence.WithTracking(persistence.Tracking{ApplicationName: "up", NotificationID: s.tracking}))
			return err
		})
	}
	errs := grouped(t, f, calls)
	for i, err := range errs {
		s := saves[i]
		switch {
		case s.conflict && !errors.Is(err, persistence.ErrIntegrity):
			t.Errorf("save %d, which conflicts: %v, want an integrity error", i, err)
		case !s.conflict && err != nil:
			t.Errorf("save %d, which does not conflict: %v", i, err)
		case !s.conflict && len(ids[i]) != len(s.events):
			t.Errorf("save %d: %d notification IDs for %d events", i, len(ids[i]), len(s.events))
		}
		if s.tracking == 100 {
			continue
		}
		has, err := r.HasTrackingID(ctx, "up", s.tracking)
		if err != nil {
			t.Fatal(err)
		}
		if has == s.conflict {
			t.Errorf("save %d (conflicting: %v): tracking record recorded: %v", i, s.conflict, has)
		}
	}
	for id, want := range map[uuid.UUID]int{fresh[0]: 1, fresh[1]: 1, fresh[2]: 1, fresh[3]: 0, fresh[4]: 2, fresh[5]: 1, half: 0, taken: 1} {
		got, err := r.SelectEvents(ctx, id, persistence.EventQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != want {
			t.Errorf("aggregate %s: %d events recorded, want %d", id, len(got), want)
		}
	}
	seen := map[int64]bool{}
	for i := range saves {
		for _, id := range ids[i] {
			if seen[id] {
				t.Errorf("notification ID %d given twice", id)
			}
			seen[id] = true
		}
	}
}

// When the connection breaks after a group's statement reached the
// server, every save of the group has an unknown outcome, and says so;
// here the server did record them, and saving each again with its commit
// ID is reported as already committed, never as a conflict.
func TestAGroupWhoseAnswerIsLostHasAnUnknownOutcomeForEverySave(t *testing.T) {
	ctx := context.Background()
	p := newProxy(t)
	schema := pgtest.Schema(t)
	env := map[string]string{"POSTGRES_URL": viaProxy(t, p), "POSTGRES_SCHEMA": schema, "POSTGRES_NOTIFY": "n", "POSTGRES_POOL_SIZE": "1"}
	f, err := postgres.OpenEnv(ctx, persistence.NewEnv("LostGroup", env))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := f.ApplicationRecorder(ctx)
	if err != nil {
		t.Fatal(err)
	}
	marker := "cut-" + uuid.NewString()
	saves := make([][]persistence.StoredEvent, 4)
	var calls []func(ctx context.Context) error
	for i := range saves {
		e := event(uuid.New(), 1, fmt.Sprint("save ", i))
		if i == 2 {
			e.State = []byte(marker)
		}
		e.CommitID = uuid.New()
		saves[i] = []persistence.StoredEvent{e}
		calls = append(calls, func(ctx context.Context) error {
			_, err := r.InsertEvents(ctx, saves[i])
			return err
		})
	}
	p.CutAnswerTo([]byte(marker))
	errs := grouped(t, f, calls)
	for i, err := range errs {
		if !errors.Is(err, persistence.ErrUnknownOutcome) {
			t.Errorf("save %d of the group whose answer was lost: %v, want ErrUnknownOutcome", i, err)
		}
	}
	select {
	case <-p.Cuts():
	case <-time.After(10 * time.Second):
		t.Fatal("the proxy did not cut the group's answer")
	}
	direct, err := postgres.OpenEnv(ctx, persistence.NewEnv("LostGroup", map[string]string{"POSTGRES_URL": pgtest.URL(), "POSTGRES_SCHEMA": schema, "POSTGRES_NOTIFY": "n"}))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	check, err := direct.ApplicationRecorder(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, events := range saves {
		var got []persistence.StoredEvent
		// The proxy cut the client only once the server had answered, so
		// the group is committed; the loop only rides out a slow reader.
		for deadline := time.Now().Add(30 * time.Second); len(got) == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if got, err = check.SelectEvents(ctx, events[0].OriginatorID, persistence.EventQuery{}); err != nil {
				t.Fatal(err)
			}
		}
		if len(got) != 1 {
			t.Fatalf("save %d: %d events recorded, want 1 (the group was committed)", i, len(got))
		}
		if _, err := check.InsertEvents(ctx, events); !errors.Is(err, persistence.ErrAlreadyCommitted) {
			t.Errorf("save %d again with its commit ID: %v, want ErrAlreadyCommitted", i, err)
		}
	}
}

// A group may hold saves of several applications that share the pool: it
// records each application's saves with a statement of its own, in one
// transaction, and a conflict in one application's saves fails only that
// save.
func TestAGroupOfSeveralApplications(t *testing.T) {
	ctx := context.Background()
	env := pgtest.Env(t)
	env["POSTGRES_POOL_SIZE"], env["POSTGRES_NOTIFY"] = "1", "n"
	var recs []persistence.ApplicationRecorder
	var first *postgres.Factory
	for _, app := range []string{"GroupA", "GroupB"} {
		f, err := postgres.OpenEnv(ctx, persistence.NewEnv(app, env))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		if first == nil {
			first = f
		}
		r, err := f.ApplicationRecorder(ctx)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	taken := uuid.New()
	if _, err := recs[1].InsertEvents(ctx, []persistence.StoredEvent{event(taken, 1, "x")}); err != nil {
		t.Fatal(err)
	}
	type save struct {
		app      int
		id       uuid.UUID
		conflict bool
	}
	saves := []save{{0, uuid.New(), false}, {1, uuid.New(), false}, {1, taken, true}, {0, taken, false}, {0, uuid.New(), false}}
	var calls []func(ctx context.Context) error
	for _, s := range saves {
		calls = append(calls, func(ctx context.Context) error {
			_, err := recs[s.app].InsertEvents(ctx, []persistence.StoredEvent{event(s.id, 1, "y")})
			return err
		})
	}
	errs := grouped(t, first, calls)
	for i, err := range errs {
		s := saves[i]
		if s.conflict != errors.Is(err, persistence.ErrIntegrity) || !s.conflict && err != nil {
			t.Errorf("save %d (application %d, conflicting: %v): %v", i, s.app, s.conflict, err)
		}
		got, err := recs[s.app].SelectEvents(ctx, s.id, persistence.EventQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || !s.conflict && string(got[0].State) != "y" {
			t.Errorf("save %d: %d events of %s in application %d", i, len(got), s.id, s.app)
		}
	}
}

// The saves of several tenants of one application are one statement per
// tenant, in one transaction: each statement numbers its events from
// where the one before stopped, so their notification IDs, unique across
// the table, do not collide and the group commits whole, in one
// transaction, rather than failing and going again save by save.
func TestAGroupOfSeveralTenantsIsOneTransaction(t *testing.T) {
	ctx := context.Background()
	f := open(t, "POSTGRES_POOL_SIZE=1", "POSTGRES_NOTIFY=n")
	var recs []persistence.ApplicationRecorder
	for _, tenant := range []string{"acme", "globex", "acme"} {
		tf, err := f.Tenant(tenant)
		if err != nil {
			t.Fatal(err)
		}
		r, err := tf.ApplicationRecorder(ctx)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	ids := make([][]int64, len(recs))
	var calls []func(ctx context.Context) error
	for i, r := range recs {
		calls = append(calls, func(ctx context.Context) error {
			id := uuid.New()
			var err error
			ids[i], err = r.InsertEvents(ctx, []persistence.StoredEvent{event(id, 1, "a"), event(id, 2, "b")})
			return err
		})
	}
	for i, err := range grouped(t, f, calls) {
		if err != nil {
			t.Fatalf("save %d: %v", i, err)
		}
	}
	seen := map[int64]bool{}
	for i, got := range ids {
		if len(got) != 2 {
			t.Fatalf("save %d: notification IDs %v, want 2", i, got)
		}
		for _, nid := range got {
			if nid>>16 != ids[0][0]>>16 {
				t.Errorf("save %d: notification ID %d is not of the group's transaction (that of %d): the group was not committed whole", i, nid, ids[0][0])
			}
			if seen[nid] {
				t.Errorf("notification ID %d given twice", nid)
			}
			seen[nid] = true
		}
	}
}

// A save whose context ends while it waits for its group is never sent:
// it fails with an operational error, not an unknown outcome, and records
// nothing; the saves queued with it are recorded. Two saves hold the two
// slots of groups first, waiting for the connection the test holds, so
// that the cancelled save is taken by their group rather than leading one.
func TestASaveCancelledInTheQueueFailsAlone(t *testing.T) {
	ctx := context.Background()
	f := open(t, "POSTGRES_POOL_SIZE=1", "POSTGRES_NOTIFY=n")
	r, err := f.ApplicationRecorder(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := f.Pool().Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	ids := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	save := func(i int, ctx context.Context) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = r.InsertEvents(ctx, []persistence.StoredEvent{event(ids[i], 1, "t")})
		}()
	}
	queued := func(n int) {
		for deadline := time.Now().Add(10 * time.Second); postgres.QueuedSaves(f) < n; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				conn.Release()
				wg.Wait()
				t.Fatalf("%d of %d saves queued", postgres.QueuedSaves(f), n)
			}
		}
	}
	save(0, ctx)
	save(1, ctx)
	queued(2)
	time.Sleep(50 * time.Millisecond) // both lead a group, waiting for the connection
	save(2, cancelled)
	queued(3)
	cancel()
	conn.Release()
	wg.Wait()
	if !errors.Is(errs[2], persistence.ErrOperational) || errors.Is(errs[2], persistence.ErrUnknownOutcome) {
		t.Errorf("the cancelled save: %v, want an operational error, not an unknown outcome", errs[2])
	}
	for i, id := range ids {
		if i < 2 && errs[i] != nil {
			t.Errorf("save %d: %v", i, errs[i])
		}
		got, err := r.SelectEvents(ctx, id, persistence.EventQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int{true: 0, false: 1}[i == 2]; len(got) != want {
			t.Errorf("save %d: %d events recorded, want %d", i, len(got), want)
		}
	}
}

package system_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/domain"
	"github.com/strata-go/strata/examples/counters"
	"github.com/strata-go/strata/examples/worlds"
	"github.com/strata-go/strata/internal/storetest"
	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/system"
)

// A journal is a process application that writes down every upstream
// event it accepts as an Entry aggregate of its own, with a new random ID:
// an event processed twice would show as two entries, so that a journal's
// log tells exactly how often each upstream notification was processed.

// Entry is what a journal wrote down about one upstream event.
type Entry struct {
	domain.Aggregate
	Noted Noted
}

// Noted creates an entry.
type Noted struct {
	Upstream       string `json:"upstream"`
	NotificationID int64  `json:"notification_id"`
	Topic          string `json:"topic"`
}

// ApplyTo fills the entry.
func (e Noted) ApplyTo(x *Entry) { x.Noted = e }

var journalTypes = domain.Types(
	domain.AggregateType[Entry](domain.Named("Entry"), domain.CreatedBy(Noted{})),
	domain.EventType[Noted](domain.Named("Entry.Noted")),
)

// hook runs in a journal's policy before it writes anything down: an error
// fails the event, skip=true accepts it without an entry.
type hook func(ctx context.Context, e domain.Event, p *system.Processing) (skip bool, err error)

// Journal is the process application of journals.
type Journal struct {
	*application.Application
	hook hook
}

// Policy writes an entry for the event, unless the hook says otherwise.
func (j *Journal) Policy(ctx context.Context, e domain.Event, p *system.Processing) error {
	if j.hook != nil {
		skip, err := j.hook(ctx, e, p)
		if err != nil || skip {
			return err
		}
	}
	entry, err := domain.New[Entry](domain.NewID(), Noted{Upstream: p.Upstream, NotificationID: p.Tracking.NotificationID, Topic: p.Notification.Topic})
	if err != nil {
		return err
	}
	p.Save(entry)
	return nil
}

func newJournal(ctx context.Context, name string, h hook, opts ...application.Option) (*Journal, error) {
	app, err := application.New(ctx, name, append([]application.Option{application.WithTypes(journalTypes)}, opts...)...)
	if err != nil {
		return nil, err
	}
	return &Journal{Application: app, hook: h}, nil
}

// journal defines a journal named name, whose policy runs h first.
func journal(name string, h hook) system.Def {
	return system.Define(name, journalTypes, func(ctx context.Context, opts ...application.Option) (*Journal, error) {
		return newJournal(ctx, name, h, opts...)
	})
}

// Plain is an application that processes nothing.
type Plain struct{ *application.Application }

func plain(name string) system.Def {
	return system.Define(name, domain.Types(), func(ctx context.Context, opts ...application.Option) (*Plain, error) {
		app, err := application.New(ctx, name, opts...)
		if err != nil {
			return nil, err
		}
		return &Plain{app}, nil
	})
}

var (
	worldsDef   = system.Define(worlds.Name, worlds.Types, worlds.New)
	countersDef = system.Define(counters.Name, counters.Types, counters.New)
)

func mustSystem(t testing.TB, defs []system.Def, pipes ...[]string) *system.System {
	t.Helper()
	sys, err := system.New(defs, pipes...)
	if err != nil {
		t.Fatal(err)
	}
	return sys
}

// entries returns what the journal app wrote down, in the order of its
// log.
func entries(t testing.TB, app *application.Application) []Noted {
	t.Helper()
	var out []Noted
	for n, err := range system.NewNotificationLogReader(app.Log()).Select(context.Background(), 1) {
		if err != nil {
			t.Fatal(err)
		}
		e, err := app.Mapper().ToEvent(n.StoredEvent)
		if err != nil {
			t.Fatal(err)
		}
		if noted, ok := e.Data.(Noted); ok { // not a parked notification's
			out = append(out, noted)
		}
	}
	return out
}

// ids returns the notification IDs that entries note of upstream.
func ids(entries []Noted, upstream string) []int64 {
	out := []int64{}
	for _, e := range entries {
		if e.Upstream == upstream {
			out = append(out, e.NotificationID)
		}
	}
	return out
}

// logIDs returns the IDs of the notifications in log, in order.
func logIDs(t testing.TB, log application.NotificationLog) []int64 {
	t.Helper()
	out := []int64{}
	for n, err := range system.NewNotificationLogReader(log).Select(context.Background(), 1) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, n.ID)
	}
	return out
}

// first returns the IDs of the first n notifications in log, waiting for
// them to be visible: on PostgreSQL, a save is visible only once the
// transactions older than it have ended, in any database of the cluster.
func first(t testing.TB, log application.NotificationLog, n int) []int64 {
	t.Helper()
	var all []int64
	eventually(t, fmt.Sprintf("%d notifications in the log", n), func() bool {
		all = logIDs(t, log)
		return len(all) >= n
	})
	return all[:n]
}

// checkExactlyOnce requires app's journal to have noted the notifications
// of upstream whose IDs are want, each once, in order.
func checkExactlyOnce(t testing.TB, app *application.Application, upstream string, want []int64) {
	t.Helper()
	if got := ids(entries(t, app), upstream); !slices.Equal(got, want) {
		t.Fatalf("%s noted notifications %v of %s, want %v once each", app.Name(), got, upstream, want)
	}
}

// eventually polls cond until it holds or a deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute) // slow stores (FerretDB) on a loaded machine
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// noted returns how many entries of upstream the journal has, failing
// the test on errors; for polling.
func noted(t testing.TB, app *application.Application, upstream string) int {
	t.Helper()
	return len(ids(entries(t, app), upstream))
}

// persistent runs test on the stores that outlive their applications
// (SQLite and PostgreSQL), for tests that reopen a store.
func persistent(t *testing.T, test func(t *testing.T, env map[string]string)) {
	t.Helper()
	for _, s := range storetest.Stores() {
		if s.Name == "memory" {
			continue
		}
		t.Run(s.Name, func(t *testing.T) { test(t, s.Env(t)) })
	}
}

// openJournal opens the journal named name in env directly, to read what
// a runner left.
func openJournal(t testing.TB, env map[string]string, name string) *Journal {
	t.Helper()
	j, err := newJournal(context.Background(), name, nil, application.WithEnv(env), application.WithTracking(), application.WithTypes(system.ParkingTypes))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

func tracked(t testing.TB, app *application.Application, upstream string) int64 {
	t.Helper()
	n, err := app.Recorder().(persistence.ProcessRecorder).MaxTrackingID(context.Background(), upstream)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// startRunner starts r and stops it when the test ends.
func startRunner(t testing.TB, r system.Runner) {
	t.Helper()
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Stop(context.Background()) })
}

func get[T system.Node](t testing.TB, r system.Runner, name string) T {
	t.Helper()
	n, err := system.Get[T](r, name)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// checkNoLeaks returns a function that waits until there are no more
// goroutines than when checkNoLeaks was called, or fails the test with
// their stacks.
func checkNoLeaks(t testing.TB) func() {
	t.Helper()
	before := runtime.NumGoroutine()
	return func() {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Fatalf("%d goroutines after Stop, %d before Start:\n%s", runtime.NumGoroutine(), before, buf)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// happen makes what happen in world id, failing the test on errors.
func happen(t testing.TB, w *worlds.Worlds, id uuid.UUID, whats ...string) {
	t.Helper()
	for _, what := range whats {
		if err := w.MakeItSo(context.Background(), id, what); err != nil {
			t.Fatal(err)
		}
	}
}

// createWorld creates a world, failing the test on errors.
func createWorld(t testing.TB, w *worlds.Worlds) uuid.UUID {
	t.Helper()
	id, err := w.CreateWorld(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return id
}

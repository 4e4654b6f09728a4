package system_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/domain"
	"github.com/strata-go/strata/examples/counters"
	"github.com/strata-go/strata/examples/worlds"
	"github.com/strata-go/strata/internal/childtest"
	"github.com/strata-go/strata/internal/pgtest"
	"github.com/strata-go/strata/internal/storetest"
	"github.com/strata-go/strata/system"
)

// poll is the poll interval of the runners under test. Saves prompt
// followers at once; polls are the safety net for a prompt that came
// before its save was visible to readers (as happens on PostgreSQL while an
// older transaction runs anywhere in the cluster, such as another test's).
const poll = 20 * time.Millisecond

// kinds are the runners under test, by name.
var kinds = []struct {
	name string
	new  func(*system.System, ...system.Option) system.Runner
}{
	{"single-threaded", func(s *system.System, o ...system.Option) system.Runner {
		return system.NewSingleThreadedRunner(s, o...)
	}},
	{"concurrent", func(s *system.System, o ...system.Option) system.Runner {
		return system.NewConcurrentRunner(s, o...)
	}},
}

func TestStartTwiceIsRefused(t *testing.T) {
	ctx := context.Background()
	for _, r := range runners(mustSystem(t, []system.Def{worldsDef, countersDef}, []string{worlds.Name, counters.Name})) {
		if err := r.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if err := r.Start(ctx); !errors.Is(err, system.ErrStarted) {
			t.Errorf("%T: second Start: %v, want ErrStarted", r, err)
		}
		// The runner still runs.
		if _, err := system.Get[*worlds.Worlds](r, worlds.Name); err != nil {
			t.Errorf("%T: Get after a second Start: %v", r, err)
		}
		if err := r.Stop(ctx); err != nil {
			t.Errorf("%T: Stop: %v", r, err)
		}
		if err := r.Stop(ctx); !errors.Is(err, system.ErrNotStarted) {
			t.Errorf("%T: second Stop: %v, want ErrNotStarted", r, err)
		}
	}
}

func TestGet(t *testing.T) {
	ctx := context.Background()
	for _, r := range runners(mustSystem(t, []system.Def{worldsDef, countersDef}, []string{worlds.Name, counters.Name})) {
		if _, err := r.Get(worlds.Name); !errors.Is(err, system.ErrNotStarted) {
			t.Errorf("%T: Get before Start: %v, want ErrNotStarted", r, err)
		}
		if _, err := system.Get[*worlds.Worlds](r, worlds.Name); !errors.Is(err, system.ErrNotStarted) {
			t.Errorf("%T: system.Get before Start: %v, want ErrNotStarted", r, err)
		}
		if err := r.Start(ctx); err != nil {
			t.Fatal(err)
		}
		_, err := r.Get("Reports")
		if !errors.Is(err, system.ErrUnknownApplication) || !strings.Contains(err.Error(), `"Reports"`) {
			t.Errorf("%T: Get of an unknown name: %v, want ErrUnknownApplication naming it", r, err)
		}
		n, err := r.Get(counters.Name)
		if _, ok := n.(*counters.Counters); err != nil || !ok {
			t.Errorf("%T: Get(Counters) = %T, %v", r, n, err)
		}
		if _, err := system.Get[*Journal](r, counters.Name); err == nil || !strings.Contains(err.Error(), "Counters is a *counters.Counters, not a *system_test.Journal") {
			t.Errorf("%T: system.Get of the wrong type: %v", r, err)
		}
		if err := r.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Get(worlds.Name); !errors.Is(err, system.ErrNotStarted) {
			t.Errorf("%T: Get after Stop: %v, want ErrNotStarted", r, err)
		}
	}
}

func TestHostingAnUnknownApplicationIsRefused(t *testing.T) {
	sys := mustSystem(t, []system.Def{worldsDef, countersDef}, []string{worlds.Name, counters.Name})
	r := system.NewConcurrentRunner(sys, system.Hosting("Conters"))
	if err := r.Start(context.Background()); !errors.Is(err, system.ErrUnknownApplication) || !strings.Contains(err.Error(), "Conters") {
		t.Fatalf("Start: %v, want ErrUnknownApplication naming Conters", err)
	}
}

// A system with two followers of one leader (Counters and Scribe follow
// Worlds) and a chain (Worlds → Scribe → Archive) processes every event
// once on either runner.
func TestFollowersAndChains(t *testing.T) {
	sys := mustSystem(t, []system.Def{worldsDef, countersDef, journal("Scribe", nil), journal("Archive", nil)},
		[]string{worlds.Name, counters.Name},
		[]string{worlds.Name, "Scribe", "Archive"})
	for _, kind := range kinds {
		t.Run(kind.name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T, env map[string]string) {
				r := kind.new(sys, system.WithEnv(env), system.PollInterval(poll))
				startRunner(t, r)
				w := get[*worlds.Worlds](t, r, worlds.Name)
				c := get[*counters.Counters](t, r, counters.Name)
				scribe, archive := get[*Journal](t, r, "Scribe"), get[*Journal](t, r, "Archive")
				check := func(n int64, counts map[string]int) {
					t.Helper()
					done := func() bool {
						return noted(t, scribe.App(), worlds.Name) >= int(n) && noted(t, archive.App(), "Scribe") >= int(n) && countsAre(t, c, counts)
					}
					if kind.name == "concurrent" {
						eventually(t, fmt.Sprintf("%d events to be processed", n), done)
					} else if !done() {
						t.Fatalf("not processed when the save returned: %v", entries(t, archive.App()))
					}
					checkExactlyOnce(t, scribe.App(), worlds.Name, first(t, w.Log(), int(n)))
					checkExactlyOnce(t, archive.App(), "Scribe", first(t, scribe.Log(), int(n)))
				}
				id1, id2 := createWorld(t, w), createWorld(t, w)
				check(2, map[string]int{"dinosaurs": 0})
				happen(t, w, id1, "dinosaurs", "trucks")
				happen(t, w, id2, "dinosaurs")
				check(5, map[string]int{"dinosaurs": 2, "trucks": 1})
				for i := range 20 {
					happen(t, w, id1, fmt.Sprint("thing ", i%3))
				}
				check(25, map[string]int{"dinosaurs": 2, "trucks": 1, "thing 0": 7, "thing 1": 7, "thing 2": 6})
				if err := r.Err(); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

func countsAre(t testing.TB, c *counters.Counters, want map[string]int) bool {
	t.Helper()
	for what, n := range want {
		got, err := c.Count(context.Background(), what)
		if err != nil {
			t.Fatal(err)
		}
		if got != n {
			return false
		}
	}
	return true
}

// A concurrent runner processes at once what its leaders saved before it
// started.
func TestConcurrentRunnerCatchesUp(t *testing.T) {
	persistent(t, func(t *testing.T, env map[string]string) {
		ctx := context.Background()
		leader, err := worlds.New(ctx, application.WithEnv(env))
		if err != nil {
			t.Fatal(err)
		}
		var ids []uuid.UUID
		for range 10 {
			ids = append(ids, createWorld(t, leader))
		}
		for i := range 150 {
			happen(t, leader, ids[i%len(ids)], fmt.Sprint("thing ", i%2))
		}
		all := first(t, leader.Log(), 160)
		leader.Close()

		sys := mustSystem(t, []system.Def{worldsDef, countersDef, journal("Scribe", nil)},
			[]string{worlds.Name, counters.Name}, []string{worlds.Name, "Scribe"})
		// Small pages, so that catching up takes many selects (where the
		// log is not streamed).
		r := system.NewConcurrentRunner(sys, system.WithEnv(env), system.PollInterval(poll), system.WithReaderOptions(system.PageSize(7)))
		startRunner(t, r)
		scribe := get[*Journal](t, r, "Scribe")
		c := get[*counters.Counters](t, r, counters.Name)
		eventually(t, "the backlog to be processed", func() bool {
			return tracked(t, scribe.App(), worlds.Name) == all[159] && tracked(t, c.App(), worlds.Name) == all[159]
		})
		checkExactlyOnce(t, scribe.App(), worlds.Name, all)
		if !countsAre(t, c, map[string]int{"thing 0": 75, "thing 1": 75}) {
			t.Fatal("Counters did not count every event once")
		}
		// And it goes on with new events.
		happen(t, get[*worlds.Worlds](t, r, worlds.Name), ids[0], "thing 0")
		eventually(t, "the new event to be processed", func() bool { return noted(t, scribe.App(), worlds.Name) >= 161 })
		checkExactlyOnce(t, scribe.App(), worlds.Name, first(t, get[*worlds.Worlds](t, r, worlds.Name).Log(), 161))
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
	})
}

// poisoned fails the events of things called "poison" while faulty holds,
// with an error marked temporary if temporary is true.
func poisoned(faulty *atomic.Bool, temporary bool) hook {
	return func(_ context.Context, e domain.Event, _ *system.Processing) (bool, error) {
		if h, ok := e.Data.(worlds.SomethingHappened); ok && h.What == "poison" && faulty.Load() {
			if temporary {
				return false, system.Temporary(errPoison)
			}
			return false, errPoison
		}
		return false, nil
	}
}

var errPoison = errors.New("poisoned")

// checkPoisoned requires err to be made of errors of Scribe's notification
// id of Worlds wrapping errPoison: *ProcessingErrors if the failure is
// temporary, or the *PoisonError that stopped Scribe.
func checkPoisoned(t testing.TB, err error, id int64, temporary bool) {
	t.Helper()
	if err == nil {
		t.Fatal("no processing error")
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, err := range errs {
		if !errors.Is(err, errPoison) {
			t.Fatalf("error %v, want one wrapping %v", err, errPoison)
		}
		if temporary {
			var pe *system.ProcessingError
			if !errors.As(err, &pe) || pe.Follower != "Scribe" || pe.Upstream != worlds.Name || pe.NotificationID != id {
				t.Fatalf("error %v, want Scribe's *ProcessingError of notification %d of Worlds", err, id)
			}
			if want := fmt.Sprintf("Scribe processing notification %d of Worlds: policy: temporary failure: poisoned", id); err.Error() != want {
				t.Fatalf("error %q, want %q", err, want)
			}
			continue
		}
		var pe *system.PoisonError
		if !errors.As(err, &pe) || !errors.Is(err, system.ErrStopped) || pe.Follower != "Scribe" || pe.Upstream != worlds.Name || pe.NotificationID != id || pe.Topic != "World.SomethingHappened" {
			t.Fatalf("error %v, want Scribe's *PoisonError of notification %d of Worlds that stopped it", err, id)
		}
		if want := fmt.Sprintf("follower stopped at a poison notification: Scribe cannot process notification %d of Worlds (topic \"World.SomethingHappened\"): policy: poisoned", id); err.Error() != want {
			t.Fatalf("error %q, want %q", err, want)
		}
	}
}

// checkLogged requires the logs to say once, at level, that Scribe failed
// to process notification id of Worlds.
func checkLogged(t testing.TB, logs *childtest.Buffer, id int64, level string) {
	t.Helper()
	var lines []string
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, fmt.Sprintf("notification %d of Worlds", id)) {
			lines = append(lines, line)
		}
	}
	if len(lines) != 1 {
		t.Fatalf("%d log lines about notification %d, want 1:\n%s", len(lines), id, logs)
	}
	for _, want := range []string{"level=" + level, "strata.follower=Scribe", "strata.upstream=Worlds", "poisoned"} {
		if !strings.Contains(lines[0], want) {
			t.Fatalf("the log line does not say %q: %s", want, lines[0])
		}
	}
}

// A policy that fails on an event with an error that is not temporary
// stops its follower at it, not the others; the error is returned by Err
// once and logged once, however many saves follow; once the fault is
// fixed, Process resumes, and every event is processed once.
func TestPolicyErrorsWithTheSingleThreadedRunner(t *testing.T) {
	storetest.Run(t, func(t *testing.T, env map[string]string) {
		ctx := context.Background()
		var faulty atomic.Bool
		faulty.Store(true)
		sys := mustSystem(t, []system.Def{worldsDef, countersDef, journal("Scribe", poisoned(&faulty, false))},
			[]string{worlds.Name, counters.Name}, []string{worlds.Name, "Scribe"})
		logs := &childtest.Buffer{}
		r := system.NewSingleThreadedRunner(sys, system.WithEnv(env), system.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
		startRunner(t, r)
		w, c, scribe := get[*worlds.Worlds](t, r, worlds.Name), get[*counters.Counters](t, r, counters.Name), get[*Journal](t, r, "Scribe")

		id := createWorld(t, w)
		happen(t, w, id, "dinosaurs", "poison")
		poison := first(t, w.Log(), 3)[2]
		checkPoisoned(t, r.Err(), poison, false)
		checkExactlyOnce(t, scribe.App(), worlds.Name, first(t, w.Log(), 2))
		if got, want := tracked(t, scribe.App(), worlds.Name), first(t, w.Log(), 2)[1]; got != want {
			t.Fatalf("Scribe tracked up to %d, want %d", got, want)
		}

		// Later events wait behind the poison one, which is not tried
		// again, reported or logged until Scribe resumes; Counters is not
		// held up.
		happen(t, w, id, "trucks", "internet")
		if err := r.Err(); err != nil {
			t.Fatalf("the stopped follower reported again: %v", err)
		}
		checkLogged(t, logs, poison, "ERROR")
		checkExactlyOnce(t, scribe.App(), worlds.Name, first(t, w.Log(), 2))
		if !countsAre(t, c, map[string]int{"dinosaurs": 1, "poison": 1, "trucks": 1, "internet": 1}) {
			t.Fatal("Counters was held up by Scribe's failure")
		}
		checkPoisoned(t, r.Process(ctx), poison, false)
		if err := r.Err(); err == nil {
			t.Fatal("Err does not return the failure of Process")
		}
		checkExactlyOnce(t, scribe.App(), worlds.Name, first(t, w.Log(), 2))

		faulty.Store(false)
		if err := r.Process(ctx); err != nil {
			t.Fatal(err)
		}
		checkExactlyOnce(t, scribe.App(), worlds.Name, first(t, w.Log(), 5))
		happen(t, w, id, "poison")
		checkExactlyOnce(t, scribe.App(), worlds.Name, first(t, w.Log(), 6))
		if err := r.Err(); err != nil {
			t.Fatalf("Err after the fix: %v", err)
		}
	})
}

// With the concurrent runner, an event that fails temporarily is retried
// at the poll interval until the fault passes; the failure is logged once,
// not at every poll, and Err reports it once until it is read.
func TestTemporaryPolicyErrorsWithTheConcurrentRunner(t *testing.T) {
	storetest.Run(t, func(t *testing.T, env map[string]string) {
		var faulty atomic.Bool
		faulty.Store(true)
		sys := mustSystem(t, []system.Def{worldsDef, countersDef, journal("Scribe", poisoned(&faulty, true))},
			[]string{worlds.Name, counters.Name}, []string{worlds.Name, "Scribe"})
		logs := &childtest.Buffer{}
		r := system.NewConcurrentRunner(sys, system.WithEnv(env), system.WithLogger(slog.New(slog.NewTextHandler(logs, nil))),
			system.PollInterval(5*time.Millisecond))
		startRunner(t, r)
		w, c, scribe := get[*worlds.Worlds](t, r, worlds.Name), get[*counters.Counters](t, r, counters.Name), get[*Journal](t, r, "Scribe")
		nextErr := func() error {
			t.Helper()
			var err error
			eventually(t, "a processing error", func() bool { err = r.Err(); return err != nil })
			return err
		}

		id := createWorld(t, w)
		happen(t, w, id, "dinosaurs", "poison")
		poison := first(t, w.Log(), 3)[2]
		checkPoisoned(t, nextErr(), poison, true)
		happen(t, w, id, "trucks", "internet")
		checkPoisoned(t, nextErr(), poison, true) // tried again, and failing still
		time.Sleep(50 * time.Millisecond)         // ten polls more
		checkLogged(t, logs, poison, "WARN")
		checkExactlyOnce(t, scribe.App(), worlds.Name, first(t, w.Log(), 2))
		eventually(t, "Counters to go on", func() bool {
			return countsAre(t, c, map[string]int{"dinosaurs": 1, "poison": 1, "trucks": 1, "internet": 1})
		})

		faulty.Store(false)
		eventually(t, "Scribe to resume", func() bool { return noted(t, scribe.App(), worlds.Name) >= 5 })
		happen(t, w, id, "poison")
		eventually(t, "Scribe to go on", func() bool { return noted(t, scribe.App(), worlds.Name) >= 6 })
		checkExactlyOnce(t, scribe.App(), worlds.Name, first(t, w.Log(), 6))
		if !strings.Contains(logs.String(), "processing works again") {
			t.Fatalf("the recovery was not logged:\n%s", logs)
		}
	})
}

// With the concurrent runner, a poison event stops its follower once: it
// is reported and logged once however many polls pass, and after the fix,
// Resume makes the follower go on.
func TestPoisonWithTheConcurrentRunner(t *testing.T) {
	storetest.Run(t, func(t *testing.T, env map[string]string) {
		var faulty atomic.Bool
		faulty.Store(true)
		sys := mustSystem(t, []system.Def{worldsDef, countersDef, journal("Scribe", poisoned(&faulty, false))},
			[]string{worlds.Name, counters.Name}, []string{worlds.Name, "Scribe"})
		logs := &childtest.Buffer{}
		r := system.NewConcurrentRunner(sys, system.WithEnv(env), system.WithLogger(slog.New(slog.NewTextHandler(logs, nil))),
			system.PollInterval(5*time.Millisecond))
		startRunner(t, r)
		w, scribe := get[*worlds.Worlds](t, r, worlds.Name), get[*Journal](t, r, "Scribe")

		id := createWorld(t, w)
		happen(t, w, id, "dinosaurs", "poison")
		poison := first(t, w.Log(), 3)[2]
		var err error
		eventually(t, "the poison to be reported", func() bool { err = r.Err(); return err != nil })
		checkPoisoned(t, err, poison, false)
		happen(t, w, id, "trucks")
		time.Sleep(50 * time.Millisecond) // ten polls more
		if err := r.Err(); err != nil {
			t.Fatalf("the stopped follower reported again: %v", err)
		}
		checkLogged(t, logs, poison, "ERROR")
		checkExactlyOnce(t, scribe.App(), worlds.Name, first(t, w.Log(), 2))

		faulty.Store(false)
		if err := r.Resume("Scribe"); err != nil {
			t.Fatal(err)
		}
		eventually(t, "Scribe to resume", func() bool { return noted(t, scribe.App(), worlds.Name) >= 4 })
		checkExactlyOnce(t, scribe.App(), worlds.Name, first(t, w.Log(), 4))
		if err := r.Resume("Worlds"); !errors.Is(err, system.ErrUnknownApplication) {
			t.Fatalf("resume a leader: %v", err)
		}
	})
}

// blocking makes Scribe's policy block on the event of "dinosaurs" while
// block holds: it signals entered, then waits for release or for its
// context to end.
func blocking(block *atomic.Bool, entered chan<- struct{}, release <-chan struct{}) hook {
	return func(ctx context.Context, e domain.Event, _ *system.Processing) (bool, error) {
		if h, ok := e.Data.(worlds.SomethingHappened); !ok || h.What != "dinosaurs" || !block.Load() {
			return false, nil
		}
		entered <- struct{}{}
		select {
		case <-release:
			return false, nil
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

func waitFor(t testing.TB, what string, c <-chan struct{}) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(20 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// openWorlds opens the Worlds application in env directly.
func openWorlds(t testing.TB, env map[string]string) *worlds.Worlds {
	t.Helper()
	w, err := worlds.New(context.Background(), application.WithEnv(env))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// Stop lets the notification in hand finish and be recorded, then stops:
// the events after it are left to the next runner, which processes them
// once.
func TestConcurrentRunnerStopsGracefully(t *testing.T) {
	persistent(t, func(t *testing.T, env map[string]string) {
		ctx := context.Background()
		var block atomic.Bool
		block.Store(true)
		entered, release := make(chan struct{}, 1), make(chan struct{})
		var once sync.Once
		unblock := func() { once.Do(func() { close(release) }) }
		sys := mustSystem(t, []system.Def{worldsDef, journal("Scribe", blocking(&block, entered, release))}, []string{worlds.Name, "Scribe"})
		r := system.NewConcurrentRunner(sys, system.WithEnv(env), system.PollInterval(poll))
		if err := r.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unblock(); r.Stop(ctx) })
		w := get[*worlds.Worlds](t, r, worlds.Name)
		id := createWorld(t, w)
		happen(t, w, id, "dinosaurs", "trucks", "internet")
		waitFor(t, "the policy to take the second event", entered)

		stopped := make(chan error, 1)
		go func() { stopped <- r.Stop(ctx) }()
		eventually(t, "Stop to begin", func() bool {
			_, err := r.Get(worlds.Name)
			return errors.Is(err, system.ErrNotStarted)
		})
		select {
		case err := <-stopped:
			t.Fatalf("Stop returned (%v) while a policy was in hand", err)
		default:
		}
		unblock()
		if err := <-stopped; err != nil {
			t.Fatalf("Stop: %v", err)
		}

		// The second event was recorded, whole; Stop came before the
		// fourth (and almost surely before the third).
		all := first(t, openWorlds(t, env).Log(), 4)
		scribe := openJournal(t, env, "Scribe")
		n := noted(t, scribe.App(), worlds.Name)
		if n != 2 && n != 3 {
			t.Fatalf("%d events processed when Stop returned, want 2 (or 3)", n)
		}
		checkExactlyOnce(t, scribe.App(), worlds.Name, all[:n])
		if got := tracked(t, scribe.App(), worlds.Name); got != all[n-1] {
			t.Fatalf("tracked up to %d after processing %v", got, all[:n])
		}

		block.Store(false)
		r2 := system.NewConcurrentRunner(sys, system.WithEnv(env), system.PollInterval(poll))
		startRunner(t, r2)
		eventually(t, "the next runner to go on", func() bool { return noted(t, scribe.App(), worlds.Name) >= 4 })
		checkExactlyOnce(t, scribe.App(), worlds.Name, all)
	})
}

// Stop with a context that has ended cancels the work in hand, which
// records nothing; the next runner processes it.
func TestConcurrentRunnerStopWithAnExpiredContext(t *testing.T) {
	persistent(t, func(t *testing.T, env map[string]string) {
		ctx := context.Background()
		var block atomic.Bool
		block.Store(true)
		entered := make(chan struct{}, 1)
		sys := mustSystem(t, []system.Def{worldsDef, journal("Scribe", blocking(&block, entered, nil))}, []string{worlds.Name, "Scribe"})
		r := system.NewConcurrentRunner(sys, system.WithEnv(env), system.PollInterval(poll))
		if err := r.Start(ctx); err != nil {
			t.Fatal(err)
		}
		w := get[*worlds.Worlds](t, r, worlds.Name)
		id := createWorld(t, w)
		happen(t, w, id, "dinosaurs", "trucks")
		all := first(t, w.Log(), 3)
		waitFor(t, "the policy to take the second event", entered)

		expired, cancel := context.WithDeadline(ctx, time.Now())
		defer cancel()
		if err := r.Stop(expired); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Stop: %v, want the context's error", err)
		}
		// Stop returned at once; the cancelled policy reports when it
		// returns.
		var err error
		eventually(t, "the cancelled processing to be reported", func() bool { err = r.Err(); return err != nil })
		var pe *system.ProcessingError
		if !errors.As(err, &pe) || pe.NotificationID != all[1] || !errors.Is(err, context.Canceled) {
			t.Fatalf("Err after Stop: %v, want the cancelled processing of notification %d", err, all[1])
		}

		scribe := openJournal(t, env, "Scribe")
		checkExactlyOnce(t, scribe.App(), worlds.Name, all[:1])
		if got := tracked(t, scribe.App(), worlds.Name); got != all[0] {
			t.Fatalf("tracked up to %d, want %d", got, all[0])
		}

		block.Store(false)
		r2 := system.NewConcurrentRunner(sys, system.WithEnv(env), system.PollInterval(poll))
		startRunner(t, r2)
		eventually(t, "the next runner to go on", func() bool { return noted(t, scribe.App(), worlds.Name) >= 3 })
		checkExactlyOnce(t, scribe.App(), worlds.Name, all)
	})
}

// After Stop, no goroutine of the runner or of its applications is left.
func TestStopLeavesNoGoroutines(t *testing.T) {
	sys := mustSystem(t, []system.Def{worldsDef, countersDef, journal("Scribe", nil), journal("Archive", nil)},
		[]string{worlds.Name, counters.Name}, []string{worlds.Name, "Scribe", "Archive"})
	for _, kind := range kinds {
		t.Run(kind.name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T, env map[string]string) {
				check := checkNoLeaks(t)
				r := kind.new(sys, system.WithEnv(env), system.PollInterval(5*time.Millisecond))
				if err := r.Start(context.Background()); err != nil {
					t.Fatal(err)
				}
				w := get[*worlds.Worlds](t, r, worlds.Name)
				archive := get[*Journal](t, r, "Archive")
				id := createWorld(t, w)
				happen(t, w, id, "dinosaurs", "trucks")
				eventually(t, "processing", func() bool { return noted(t, archive.App(), "Scribe") >= 3 })
				if err := r.Stop(context.Background()); err != nil {
					t.Fatal(err)
				}
				check()
			})
		})
	}
}

// A stopped runner can be started again: it builds the applications
// afresh and goes on where its followers stopped, with one goroutine per
// follower as before.
func TestARunnerStartsAgainAfterStop(t *testing.T) {
	sys := mustSystem(t, []system.Def{worldsDef, journal("Scribe", nil)}, []string{worlds.Name, "Scribe"})
	for _, kind := range kinds {
		t.Run(kind.name, func(t *testing.T) {
			persistent(t, func(t *testing.T, env map[string]string) {
				ctx := context.Background()
				r := kind.new(sys, system.WithEnv(env), system.PollInterval(5*time.Millisecond))
				id := createWorldIn(ctx, t, r)
				if err := r.Stop(ctx); err != nil {
					t.Fatal(err)
				}
				startRunner(t, r)
				happen(t, get[*worlds.Worlds](t, r, worlds.Name), id, "trucks")
				scribe := get[*Journal](t, r, "Scribe")
				eventually(t, "processing after a restart", func() bool { return noted(t, scribe.App(), worlds.Name) >= 3 })
				checkExactlyOnce(t, scribe.App(), worlds.Name, first(t, get[*worlds.Worlds](t, r, worlds.Name).Log(), 3))
			})
		})
	}
	t.Run("goroutines", func(t *testing.T) {
		ctx := context.Background()
		r := system.NewConcurrentRunner(sys, system.WithEnv(map[string]string{"PERSISTENCE_MODULE": "memory"}))
		for i := range 3 {
			if err := r.Start(ctx); err != nil {
				t.Fatal(err)
			}
			// In memory, the runner starts no goroutine but the
			// follower's.
			if n := goroutinesIn("created by github.com/strata-go/strata/system.(*ConcurrentRunner).Start"); n != 1 {
				t.Errorf("start %d: %d goroutines run the follower, want 1", i+1, n)
			}
			if err := r.Stop(ctx); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// goroutinesIn returns how many goroutines have fn in their stack traces.
func goroutinesIn(fn string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, fn) {
			count++
		}
	}
	return count
}

// createWorldIn starts r, creates a world and makes something happen in
// it, waits for Scribe to note both, and returns the world's ID.
func createWorldIn(ctx context.Context, t *testing.T, r system.Runner) uuid.UUID {
	t.Helper()
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	w := get[*worlds.Worlds](t, r, worlds.Name)
	uid := createWorld(t, w)
	happen(t, w, uid, "dinosaurs")
	scribe := get[*Journal](t, r, "Scribe")
	eventually(t, "processing", func() bool { return noted(t, scribe.App(), worlds.Name) >= 2 })
	return uid
}

// On PostgreSQL a save is visible to readers only once the transactions
// older than it have ended, in any database of the cluster. The
// single-threaded runner still has its followers process the save before
// it returns: it waits for the save to be visible.
func TestSingleThreadedRunnerWaitsForTheSaveToBeVisible(t *testing.T) {
	ctx := context.Background()
	env := pgtest.Env(t)
	sys := mustSystem(t, []system.Def{worldsDef, journal("Scribe", nil)}, []string{worlds.Name, "Scribe"})
	r := system.NewSingleThreadedRunner(sys, system.WithEnv(env))
	startRunner(t, r)
	w, scribe := get[*worlds.Worlds](t, r, worlds.Name), get[*Journal](t, r, "Scribe")
	id := createWorld(t, w)

	// An older transaction holds back what readers see.
	conn, err := pgx.Connect(ctx, pgtest.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SELECT pg_current_xact_id()"); err != nil {
		t.Fatal(err)
	}

	saved := make(chan error, 1)
	go func() { saved <- w.MakeItSo(ctx, id, "dinosaurs") }()
	eventually(t, "the save to be recorded", func() bool {
		history, err := w.History(ctx, id) // reads the aggregate, not the log
		if err != nil {
			t.Error(err)
			return true
		}
		return len(history) == 1
	})
	if got := noted(t, scribe.App(), worlds.Name); got != 1 {
		t.Fatalf("Scribe processed %d events while the save was invisible", got)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-saved; err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, scribe.App(), worlds.Name, first(t, w.Log(), 2))
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
}

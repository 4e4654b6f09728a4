package counters_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/domain"
	"github.com/strata-go/strata/examples/counters"
	"github.com/strata-go/strata/examples/worlds"
	"github.com/strata-go/strata/internal/childtest"
	"github.com/strata-go/strata/internal/pgtest"
	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/system"
)

// slowCounters takes a moment over each event, so that a kill lands in the
// middle of processing.
type slowCounters struct{ *counters.Counters }

func (s slowCounters) Policy(ctx context.Context, e domain.Event, p *system.Processing) error {
	time.Sleep(2 * time.Millisecond)
	return s.Counters.Policy(ctx, e, p)
}

// childConfig is what the follower process is given.
type childConfig struct {
	Env  map[string]string `json:"env"`
	Poll string            `json:"poll"` // its poll interval; empty for 50ms
}

// TestCrashChild is the follower process of TestFollowerKilledMidProcessing:
// it runs Counters until it is killed.
func TestCrashChild(t *testing.T) {
	var cfg childConfig
	childtest.Config(t, &cfg)
	env := cfg.Env
	sys, err := system.New([]system.Def{
		system.Define(worlds.Name, worlds.Types, worlds.New),
		system.Define(counters.Name, counters.Types, func(ctx context.Context, opts ...application.Option) (slowCounters, error) {
			c, err := counters.New(ctx, opts...)
			return slowCounters{c}, err
		}),
	}, []string{worlds.Name, counters.Name})
	if err != nil {
		t.Fatal(err)
	}
	poll := 50 * time.Millisecond
	if cfg.Poll != "" {
		poll, _ = time.ParseDuration(cfg.Poll)
	}
	r := system.NewConcurrentRunner(sys, system.WithEnv(env), system.Hosting(counters.Name), system.PollInterval(poll))
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Minute) // until killed
}

// A follower process killed with SIGKILL while processing, and restarted,
// processes every upstream event exactly once.
func TestFollowerKilledMidProcessing(t *testing.T) {
	childtest.SkipInChild(t)
	stores := map[string]func(t *testing.T) map[string]string{
		"sqlite": func(t *testing.T) map[string]string {
			return map[string]string{"PERSISTENCE_MODULE": "sqlite", "SQLITE_DBNAME": t.TempDir() + "/crash.db"}
		},
		"postgres": func(t *testing.T) map[string]string { return pgtest.Env(t) },
	}
	for name, store := range stores {
		t.Run(name, func(t *testing.T) { crashTest(t, store(t)) })
	}
}

func crashTest(t *testing.T, env map[string]string) {
	ctx := context.Background()
	leader, err := worlds.New(ctx, application.WithEnv(env))
	if err != nil {
		t.Fatal(err)
	}
	defer leader.Close()
	whats := []string{"dinosaurs", "trucks", "internet"}
	want := map[string]int{}
	const events = 240
	var ids []uuid.UUID
	for range 4 {
		id, err := leader.CreateWorld(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	for i := range events {
		what := whats[i%len(whats)]
		want[what]++
		if err := leader.MakeItSo(ctx, ids[i%len(ids)], what); err != nil {
			t.Fatal(err)
		}
	}

	// The observer reads the follower's state as it is recorded.
	observer, err := counters.New(ctx, application.WithEnv(env), application.WithTracking())
	if err != nil {
		t.Fatal(err)
	}
	defer observer.Close()
	processed := func() int {
		n := 0
		for _, what := range whats {
			c, err := observer.Count(ctx, what)
			if err != nil {
				t.Fatal(err)
			}
			n += c
		}
		return n
	}
	run := func() *childtest.Child { return startChild(t, env, "") }
	waitFor := func(n int) {
		deadline := time.Now().Add(90 * time.Second)
		for processed() < n {
			if time.Now().After(deadline) {
				t.Fatalf("only %d of %d events processed", processed(), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	kills := 0
	for _, at := range []int{40, 120} {
		child := run()
		waitFor(at)
		child.Kill()
		kills++
		if n := processed(); n >= events {
			t.Fatalf("all %d events were processed before kill %d: the test did not kill mid-processing", n, kills)
		}
	}
	child := run()
	waitFor(events)
	child.Kill()

	for _, what := range whats {
		got, _ := observer.Count(ctx, what)
		if got != want[what] {
			t.Errorf("%s counted %d times, want %d", what, got, want[what])
		}
		c, err := application.NewRepository[counters.Counter](observer.Application)
		if err != nil {
			t.Fatal(err)
		}
		counter, _ := c.Get(ctx, counters.CounterID(what))
		if counter.Version() != int64(want[what]+1) {
			t.Errorf("counter %s at version %d after %d increments", what, counter.Version(), want[what])
		}
	}
	last, _ := leader.Recorder().MaxNotificationID(ctx)
	tracked, err := observer.Recorder().(persistence.ProcessRecorder).MaxTrackingID(ctx, worlds.Name)
	if err != nil || tracked != last {
		t.Errorf("tracked up to %d, the leader's log ends at %d (%v)", tracked, last, err)
	}
	t.Logf("%d events processed exactly once across %d kills", events, kills)
}

// startChild starts a follower process running Counters; poll, if not
// empty, is its poll interval.
func startChild(t *testing.T, env map[string]string, poll string) *childtest.Child {
	t.Helper()
	return childtest.Start(t, "TestCrashChild", childConfig{Env: env, Poll: poll})
}

// A follower in another process, sharing PostgreSQL, is prompted by
// LISTEN/NOTIFY: with an hour between polls it still processes each event
// as soon as it is saved.
func TestProcessesPromptedByPostgresNotifications(t *testing.T) {
	childtest.SkipInChild(t)
	ctx := context.Background()
	env := pgtest.Env(t)
	leader, err := worlds.New(ctx, application.WithEnv(env))
	if err != nil {
		t.Fatal(err)
	}
	defer leader.Close()
	observer, err := counters.New(ctx, application.WithEnv(env), application.WithTracking())
	if err != nil {
		t.Fatal(err)
	}
	defer observer.Close()
	startChild(t, env, "1h")
	id, err := leader.CreateWorld(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		if err := leader.MakeItSo(ctx, id, "trucks"); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			n, err := observer.Count(ctx, "trucks")
			if err != nil {
				t.Fatal(err)
			}
			if n == i {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("count %d after %d saves: the follower process was not prompted", n, i)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

package counters_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-go/strata/examples/counters"
	"github.com/strata-go/strata/examples/worlds"
	"github.com/strata-go/strata/internal/storetest"
	"github.com/strata-go/strata/system"
)

func start(t *testing.T, r system.Runner) (*worlds.Worlds, *counters.Counters) {
	t.Helper()
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Stop(context.Background()) })
	w, err := system.Get[*worlds.Worlds](r, worlds.Name)
	if err != nil {
		t.Fatal(err)
	}
	c, err := system.Get[*counters.Counters](r, counters.Name)
	if err != nil {
		t.Fatal(err)
	}
	return w, c
}

func mustSystem(t *testing.T) *system.System {
	t.Helper()
	sys, err := counters.System()
	if err != nil {
		t.Fatal(err)
	}
	return sys
}

// scenario is the reference's: three worlds, things happen, and the
// counters count them. check asserts the counts, eventually if the runner
// is concurrent.
func scenario(t *testing.T, w *worlds.Worlds, check func(t *testing.T, want map[string]int)) {
	t.Helper()
	ctx := context.Background()
	var ids [3]uuid.UUID
	for i := range ids {
		id, err := w.CreateWorld(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
	}
	check(t, map[string]int{"dinosaurs": 0, "trucks": 0, "internet": 0})
	happen := func(i int, what string) {
		t.Helper()
		if err := w.MakeItSo(ctx, ids[i], what); err != nil {
			t.Fatal(err)
		}
	}
	happen(0, "dinosaurs")
	happen(1, "dinosaurs")
	happen(2, "dinosaurs")
	check(t, map[string]int{"dinosaurs": 3, "trucks": 0, "internet": 0})
	happen(0, "trucks")
	happen(1, "trucks")
	check(t, map[string]int{"dinosaurs": 3, "trucks": 2, "internet": 0})
	happen(0, "internet")
	check(t, map[string]int{"dinosaurs": 3, "trucks": 2, "internet": 1})
}

func counts(t *testing.T, c *counters.Counters, want map[string]int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for what := range want {
		n, err := c.Count(context.Background(), what)
		if err != nil {
			t.Fatal(err)
		}
		got[what] = n
	}
	return got
}

func equal(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestSingleThreadedRunner(t *testing.T) {
	storetest.Run(t, func(t *testing.T, env map[string]string) {
		w, c := start(t, system.NewSingleThreadedRunner(mustSystem(t), system.WithEnv(env)))
		scenario(t, w, func(t *testing.T, want map[string]int) {
			t.Helper()
			// Processing happened before each save returned.
			if got := counts(t, c, want); !equal(got, want) {
				t.Fatalf("counts %v, want %v", got, want)
			}
		})
	})
}

// eventually polls until the counts are as wanted or a deadline passes.
func eventually(c *counters.Counters) func(t *testing.T, want map[string]int) {
	return func(t *testing.T, want map[string]int) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			got := counts(t, c, want)
			if equal(got, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("counts %v, want %v", got, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func TestConcurrentRunner(t *testing.T) {
	storetest.Run(t, func(t *testing.T, env map[string]string) {
		// A long poll interval: processing is prompted by the saves (the
		// poll only guards against a transaction elsewhere holding back
		// PostgreSQL's readers for longer than the runner's re-checks).
		r := system.NewConcurrentRunner(mustSystem(t), system.WithEnv(env), system.PollInterval(5*time.Second))
		w, c := start(t, r)
		scenario(t, w, eventually(c))
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
	})
}

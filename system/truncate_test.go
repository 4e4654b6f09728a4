package system_test

import (
	"context"
	"slices"
	"testing"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/examples/worlds"
	"github.com/strata-go/strata/internal/storetest"
	"github.com/strata-go/strata/system"
)

// A follower that had not read a truncated stream's oldest events skips
// their positions: it processes the notifications left, in order, and
// tracks up to the last one.
func TestAFollowerSkipsTruncatedPositions(t *testing.T) {
	// The stores that outlive their applications and can truncate (memory
	// is tested by the recorder contract).
	for _, s := range storetest.Stores() {
		if s.Name == "sqlite" || s.Name == "postgres" {
			t.Run(s.Name, func(t *testing.T) { testFollowerSkipsTruncated(t, s.Env(t)) })
		}
	}
}

func testFollowerSkipsTruncated(t *testing.T, env map[string]string) {
	{
		ctx := context.Background()
		w, err := worlds.New(ctx, application.WithEnv(env), application.WithSnapshotStore())
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		world, _ := worlds.NewWorld()
		for _, what := range []string{"dinosaurs", "trucks", "internet"} {
			_ = world.MakeItSo(what)
			if _, err := w.App().Save(ctx, world); err != nil {
				t.Fatal(err)
			}
		}
		other, _ := worlds.NewWorld()
		if _, err := w.App().Save(ctx, other); err != nil {
			t.Fatal(err)
		}
		if _, err := w.App().TakeSnapshot(ctx, world.ID()); err != nil {
			t.Fatal(err)
		}
		_ = world.MakeItSo("ice age")
		if _, err := w.App().Save(ctx, world); err != nil {
			t.Fatal(err)
		}
		all := logIDs(t, w.App().Log()) // world 1-4, other, world 5
		res, err := w.App().Truncate(ctx, world.ID())
		if err != nil || res.Deleted != 3 {
			t.Fatalf("truncate: %+v %v, want 3 deleted", res, err)
		}
		left := logIDs(t, w.App().Log())
		if want := []int64{all[3], all[4], all[5]}; !slices.Equal(left, want) {
			t.Fatalf("log after truncation %v, want %v", left, want)
		}

		sys := mustSystem(t, []system.Def{worldsDef, journal("Scribe", nil)}, []string{worlds.Name, "Scribe"})
		r := system.NewSingleThreadedRunner(sys, system.WithEnv(env))
		startRunner(t, r)
		if err := r.Err(); err != nil {
			t.Fatalf("the follower stopped at truncated positions: %v", err)
		}
		scribe := get[*Journal](t, r, "Scribe")
		if got := tracked(t, scribe.App(), worlds.Name); got != all[5] {
			t.Fatalf("Scribe tracked up to %d, want %d", got, all[5])
		}
		checkExactlyOnce(t, scribe.App(), worlds.Name, left)
	}
}

package worlds_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/examples/worlds"
	"github.com/strata-go/strata/internal/storetest"
)

func newWorlds(t *testing.T, opts ...application.Option) *worlds.Worlds {
	t.Helper()
	app, err := worlds.New(context.Background(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	return app
}

// The application tutorial: create a world, make three things happen, and
// read its history, its versions and its notification log.
func TestTutorial(t *testing.T) {
	storetest.Run(t, func(t *testing.T, env map[string]string) {
		ctx := context.Background()
		app := newWorlds(t, application.WithEnv(env))
		id, err := app.CreateWorld(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, what := range []string{"dinosaurs", "trucks", "internet"} {
			if err := app.MakeItSo(ctx, id, what); err != nil {
				t.Fatal(err)
			}
		}
		history, err := app.History(ctx, id)
		if err != nil || strings.Join(history, ",") != "dinosaurs,trucks,internet" {
			t.Fatalf("history %v %v", history, err)
		}

		// The repository gets any version; past the last, the last.
		for v, want := range map[int64]string{1: "", 2: "dinosaurs", 3: "dinosaurs,trucks", 4: "dinosaurs,trucks,internet", 5: "dinosaurs,trucks,internet"} {
			w, err := app.Worlds().Get(ctx, id, application.AtVersion(v))
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(w.History, ","); got != want || w.Version() != min(v, 4) {
				t.Fatalf("version %d: history %q version %d", v, got, w.Version())
			}
		}
		if _, err := app.Worlds().Get(ctx, uuid.New()); !errors.Is(err, application.ErrAggregateNotFound) {
			t.Fatalf("get an unknown world: %v", err)
		}

		// The notification log has the four events. Notification IDs
		// increase; in memory and SQLite they are 1 to 4, in PostgreSQL
		// they are derived from transaction IDs (docs/postgres.md), in S3
		// from log positions (docs/s3.md).
		storetest.WaitForLog(t, app.Recorder(), 4)
		section, err := app.Log().Section(ctx, "1,10")
		if err != nil {
			t.Fatal(err)
		}
		if len(section.Items) != 4 || section.NextID != "" {
			t.Fatalf("section %q next %q with %d items", section.ID, section.NextID, len(section.Items))
		}
		if want := fmt.Sprintf("%d,%d", section.Items[0].ID, section.Items[3].ID); section.ID != want {
			t.Fatalf("section ID %q, want %q", section.ID, want)
		}
		if sparse := env["PERSISTENCE_MODULE"] == "postgres" || env["PERSISTENCE_MODULE"] == "s3"; !sparse && section.ID != "1,4" {
			t.Fatalf("section ID %q, want 1,4", section.ID)
		}
		topics := []string{"World.Created", "World.SomethingHappened", "World.SomethingHappened", "World.SomethingHappened"}
		for i, n := range section.Items {
			if i > 0 && n.ID <= section.Items[i-1].ID || n.OriginatorID != id || n.OriginatorVersion != int64(i+1) || n.Topic != topics[i] {
				t.Fatalf("notification %d: %+v", i, n)
			}
		}
		for i, what := range []string{"dinosaurs", "trucks", "internet"} {
			if !bytes.Contains(section.Items[i+1].State, []byte(what)) {
				t.Fatalf("notification %d state %q", i+2, section.Items[i+1].State)
			}
		}
		e, err := app.Mapper().ToEvent(section.Items[3].StoredEvent)
		if err != nil || e.Data.(worlds.SomethingHappened).What != "internet" || e.OriginatorID != id {
			t.Fatalf("decoded notification: %+v %v", e, err)
		}
	})
}

func TestSnapshottingIsSwitchedByEnvironment(t *testing.T) {
	storetest.Run(t, func(t *testing.T, env map[string]string) {
		ctx := context.Background()
		if app := newWorlds(t, application.WithEnv(env)); app.Snapshots() != nil {
			t.Fatal("snapshotting is on by default")
		}
		on := map[string]string{"IS_SNAPSHOTTING_ENABLED": "y"}
		app := newWorlds(t, application.WithEnv(env), application.WithEnv(on))
		if app.Snapshots() == nil {
			t.Fatal("IS_SNAPSHOTTING_ENABLED=y did not enable snapshotting")
		}
		id, _ := app.CreateWorld(ctx)
		for _, what := range []string{"dinosaurs", "trucks", "internet"} {
			_ = app.MakeItSo(ctx, id, what)
		}
		if _, err := app.TakeSnapshot(ctx, id); err != nil {
			t.Fatal(err)
		}
		snaps, err := app.Snapshots().Get(ctx, id, persistenceLatest())
		if err != nil || len(snaps) != 1 || snaps[0].OriginatorVersion != 4 || snaps[0].OriginatorID != id {
			t.Fatalf("snapshots %+v %v", snaps, err)
		}
		// A world loaded from its snapshot goes on.
		if err := app.MakeItSo(ctx, id, "robots"); err != nil {
			t.Fatal(err)
		}
		if h, _ := app.History(ctx, id); len(h) != 4 || h[3] != "robots" {
			t.Fatalf("history after the snapshot %v", h)
		}
	})
}

func TestSnapshotsEveryTwoVersions(t *testing.T) {
	storetest.Run(t, func(t *testing.T, env map[string]string) {
		ctx := context.Background()
		app := newWorlds(t, application.WithEnv(env), application.SnapshotInterval[worlds.World](2))
		id, _ := app.CreateWorld(ctx)
		for _, what := range []string{"dinosaurs", "trucks", "internet"} {
			if err := app.MakeItSo(ctx, id, what); err != nil {
				t.Fatal(err)
			}
		}
		snaps, err := app.Snapshots().Get(ctx, id, allEvents())
		if err != nil || len(snaps) != 2 || snaps[0].OriginatorVersion != 2 || snaps[1].OriginatorVersion != 4 {
			t.Fatalf("snapshots %+v %v", snaps, err)
		}
	})
}

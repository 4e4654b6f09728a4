package memory_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/persistence/memory"
	"github.com/strata-go/strata/persistence/recordertest"
)

// features are what the memory module offers beyond the contract.
var features = recordertest.Features{Replace: true, Erase: true, List: true, Batch: true}

func TestFactoryConforms(t *testing.T) {
	recordertest.TestFactory(t, features, func(t *testing.T) persistence.Factory { return memory.NewFactory() })
}

func TestRecorderConforms(t *testing.T) {
	recordertest.TestProcessRecorder(t, features, func(t *testing.T) persistence.ProcessRecorder {
		return memory.NewRecorder()
	})
}

func TestAggregateRecorderConforms(t *testing.T) {
	recordertest.TestAggregateRecorder(t, features, func(t *testing.T) persistence.AggregateRecorder {
		return memory.NewAggregateRecorder()
	})
}

func TestStress(t *testing.T) {
	res := recordertest.Stress(t, memory.NewRecorder(), recordertest.StressConfig{Writers: 16, SavesPerWriter: 200})
	t.Logf("%d saves, %d events, %d conflicts in %v", res.Saves, res.Events, res.Conflicts, res.Elapsed)
}

func TestModuleIsTheDefault(t *testing.T) {
	f, err := persistence.OpenFactory(context.Background(), persistence.NewEnv("app"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, ok := f.(*memory.Factory); !ok {
		t.Fatalf("default factory is %T", f)
	}
	ctx := context.Background()
	rec, _ := f.ProcessRecorder(ctx)
	app, _ := f.ApplicationRecorder(ctx)
	snaps, _ := f.AggregateRecorder(ctx, "snapshots")
	if _, err := rec.InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: uuid.New(), OriginatorVersion: 1, Topic: "t"}}); err != nil {
		t.Fatal(err)
	}
	if n, _ := app.MaxNotificationID(ctx); n != 1 {
		t.Fatalf("the application recorder does not see the process recorder's events (max ID %d)", n)
	}
	if n, _ := snaps.SelectEvents(ctx, uuid.Nil, persistence.EventQuery{}); len(n) != 0 {
		t.Fatal("snapshots share the events' recorder")
	}
	f.Close()
	if _, err := app.MaxNotificationID(context.Background()); !errors.Is(err, persistence.ErrInterface) {
		t.Fatalf("use after close: %v", err)
	}
}

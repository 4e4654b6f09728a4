package memory_test

import (
	"context"
	"errors"
	"testing"

	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/persistence/memory"
	"github.com/strata-go/strata/persistence/recordertest"
)

func TestRecorderConforms(t *testing.T) {
	recordertest.TestProcessRecorder(t, func(t *testing.T) persistence.ProcessRecorder {
		return memory.NewRecorder()
	})
}

func TestAggregateRecorderConforms(t *testing.T) {
	recordertest.TestAggregateRecorder(t, func(t *testing.T) persistence.AggregateRecorder {
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
	rec, _ := f.ProcessRecorder(context.Background())
	app, _ := f.ApplicationRecorder(context.Background())
	snaps, _ := f.AggregateRecorder(context.Background(), "snapshots")
	if any(rec) != any(app) || any(snaps) == any(app) {
		t.Fatal("the process and application recorders differ, or snapshots share the events' recorder")
	}
	f.Close()
	if _, err := app.MaxNotificationID(context.Background()); !errors.Is(err, persistence.ErrInterface) {
		t.Fatalf("use after close: %v", err)
	}
}

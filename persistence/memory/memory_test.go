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
var features = recordertest.Features{Replace: true, Erase: true, List: true, Truncate: true, Batch: true}

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

// TestCopiesCutFromSlabsAreSeparate checks what carving copies from shared
// slabs must keep: what one save is given back, or one read returns, can
// be appended to and changed without touching another's.
func TestCopiesCutFromSlabsAreSeparate(t *testing.T) {
	ctx := context.Background()
	rec := memory.NewRecorder()
	save := func(state string) ([]int64, uuid.UUID) {
		id := uuid.New()
		ids, err := rec.InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: id, OriginatorVersion: 1, Topic: "t", State: []byte(state)}})
		if err != nil {
			t.Fatal(err)
		}
		return ids, id
	}
	first, a := save("aaaa")
	second, b := save("bbbb")
	want := second[0]
	_ = append(first, 99)
	first[0] = -1
	if second[0] != want {
		t.Fatalf("the second save's ID became %d (was %d) with changes to the first's", second[0], want)
	}
	events, err := rec.SelectEvents(ctx, a, persistence.EventQuery{})
	if err != nil {
		t.Fatal(err)
	}
	_ = append(events[0].State, 'X', 'X', 'X', 'X')
	for _, id := range []uuid.UUID{a, b} {
		got, err := rec.SelectEvents(ctx, id, persistence.EventQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if want := map[uuid.UUID]string{a: "aaaa", b: "bbbb"}[id]; string(got[0].State) != want {
			t.Fatalf("stored state %q, want %q", got[0].State, want)
		}
	}
	// A later event of the first aggregate grows its slice away from the
	// slab without overwriting the second aggregate's.
	if _, err := rec.InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: a, OriginatorVersion: 2, Topic: "t", State: []byte("cccc")}}); err != nil {
		t.Fatal(err)
	}
	got, err := rec.SelectEvents(ctx, b, persistence.EventQuery{})
	if err != nil || len(got) != 1 || got[0].OriginatorVersion != 1 || string(got[0].State) != "bbbb" {
		t.Fatalf("the second aggregate reads %+v, %v", got, err)
	}
}

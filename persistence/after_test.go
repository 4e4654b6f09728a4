package persistence_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/persistence/memory"
)

// shortAfter is a recorder whose SelectEventsAfter answers for one
// aggregate fewer than it was asked.
type shortAfter struct{ *memory.Recorder }

func (r shortAfter) SelectEventsAfter(_ context.Context, after []persistence.After) ([][]persistence.StoredEvent, error) {
	return make([][]persistence.StoredEvent, len(after)-1), nil
}

// SelectEventsAfter gives each aggregate its events after its version,
// one SelectEvents each from a recorder that cannot do better, and
// refuses an AfterSelector's answer for the wrong number of aggregates.
func TestSelectEventsAfter(t *testing.T) {
	ctx := context.Background()
	r := memory.NewRecorder()
	a, b := uuid.New(), uuid.New()
	for _, e := range []persistence.StoredEvent{{OriginatorID: a, OriginatorVersion: 1, Topic: "t"}, {OriginatorID: a, OriginatorVersion: 2, Topic: "t"}, {OriginatorID: b, OriginatorVersion: 1, Topic: "t"}} {
		if _, err := r.InsertEvents(ctx, []persistence.StoredEvent{e}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := persistence.SelectEventsAfter(ctx, r, []persistence.After{{OriginatorID: a, Version: 1}, {OriginatorID: b}, {OriginatorID: uuid.New()}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || len(got[0]) != 1 || got[0][0].OriginatorVersion != 2 || len(got[1]) != 1 || len(got[2]) != 0 {
		t.Fatalf("got %+v", got)
	}
	_, err = persistence.SelectEventsAfter(ctx, shortAfter{r}, []persistence.After{{OriginatorID: a}, {OriginatorID: b}})
	if !errors.Is(err, persistence.ErrInternal) {
		t.Fatalf("an answer for too few aggregates: %v, want an error wrapping ErrInternal", err)
	}
}

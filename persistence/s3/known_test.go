package s3

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/google/uuid"

	"github.com/strata-go/strata/persistence"
)

// TestWhatAProcessKnowsOfAnAggregateFollowsOtherProcesses reads and saves
// an aggregate that a process knows (it read it whole, then saved it)
// while another process saves it, erases it and saves it anew: every
// read is the aggregate as it is, a save at a version the other process
// took is refused, and a save of the new life from version 1 is not.
func TestWhatAProcessKnowsOfAnAggregateFollowsOtherProcesses(t *testing.T) {
	ctx := context.Background()
	c := eraseConfig(t)
	var recs [2]persistence.ProcessRecorder
	var facs [2]*Factory
	for i := range facs {
		f, err := openWith(t, c, http.DefaultTransport)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		facs[i] = f
		recs[i], _ = f.ProcessRecorder(ctx)
	}
	a, b := recs[0], recs[1]
	id, other := uuid.New(), uuid.New()
	save := func(r persistence.ProcessRecorder, id uuid.UUID, v int64, state string) error {
		_, err := r.InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: id, OriginatorVersion: v, Topic: "t", State: []byte(state), CommitID: uuid.New()}})
		return err
	}
	read := func(r persistence.ProcessRecorder, want ...string) {
		t.Helper()
		evs, err := r.SelectEvents(ctx, id, persistence.EventQuery{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range evs {
			got = append(got, string(e.State))
		}
		if len(got) != len(want) {
			t.Fatalf("read %q, want %q", got, want)
		}
		for i := range got {
			if got[i] != want[i] || evs[i].OriginatorVersion != int64(i+1) {
				t.Fatalf("read %q, want %q", got, want)
			}
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(save(a, id, 1, "a1"))
	read(a, "a1")
	must(save(a, id, 2, "a2"))
	must(save(a, other, 1, "o1")) // another aggregate: what a knows of id stays good
	read(a, "a1", "a2")

	must(save(b, id, 3, "b3"))
	read(a, "a1", "a2", "b3")
	if err := save(a, id, 3, "a3"); !errors.Is(err, persistence.ErrIntegrity) {
		t.Fatalf("a save at a version another process took: %v, want ErrIntegrity", err)
	}
	must(save(a, id, 4, "a4"))

	// Erased by the other process, the aggregate starts again from 1.
	if _, err := facs[1].DeleteAggregate(ctx, id); err != nil {
		t.Fatal(err)
	}
	must(save(a, id, 1, "n1"))
	read(a, "n1")
	must(save(b, id, 2, "n2"))
	read(a, "n1", "n2")
	read(b, "n1", "n2")

	// Erased by this process.
	if _, err := facs[0].DeleteAggregate(ctx, id); err != nil {
		t.Fatal(err)
	}
	read(a)
	must(save(a, id, 1, "m1"))
	read(a, "m1")
	read(b, "m1")
	// A commit ID recorded is still reported as committed.
	commit := uuid.New()
	if _, err := a.InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: id, OriginatorVersion: 2, Topic: "t", State: []byte("m2"), CommitID: commit}}); err != nil {
		t.Fatal(err)
	}
	read(a, "m1", "m2")
	if _, err := a.InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: id, OriginatorVersion: 2, Topic: "t", State: []byte("m2"), CommitID: commit}}); !errors.Is(err, persistence.ErrAlreadyCommitted) {
		t.Fatalf("a save again: %v, want ErrAlreadyCommitted", err)
	}
}

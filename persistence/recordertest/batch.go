package recordertest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/strata-go/strata/persistence"
)

// testTrackedBatches states persistence.InsertTracked as tests: every
// process recorder records a batch of tracked inserts, natively or one by
// one, and one that declares Batch records it all or nothing.
func testTrackedBatches(t *testing.T, f Features, newRecorder func(t *testing.T) persistence.ProcessRecorder) {
	if !f.Batch {
		t.Run("a recorder that declares no Batch is no BatchProcessRecorder", func(t *testing.T) {
			if r, ok := newRecorder(t).(persistence.BatchProcessRecorder); ok {
				t.Fatalf("%T implements persistence.BatchProcessRecorder: declare Features.Batch", r)
			}
		})
	} else {
		t.Run("a recorder that declares Batch is a BatchProcessRecorder", func(t *testing.T) {
			if r, ok := newRecorder(t).(persistence.BatchProcessRecorder); !ok {
				t.Fatalf("Features.Batch is declared, but %T does not implement persistence.BatchProcessRecorder", r)
			}
		})
	}
	t.Run("a batch of tracked inserts records each with its tracking record and commit, in order", func(t *testing.T) {
		if msg := checkTrackedBatch(ctxFor(t), newRecorder(t)); msg != "" {
			t.Fatal(msg)
		}
	})
	t.Run("a batch that fails records exactly the inserts it says it recorded, and none of the failing one", func(t *testing.T) {
		if msg := checkFailedBatch(ctxFor(t), newRecorder(t), f.Batch); msg != "" {
			t.Fatal(msg)
		}
	})
}

// trackedInsert returns an insert of events as commit c with headers, the
// tracking record of notification n of "up".
func trackedInsert(n int64, c uuid.UUID, events ...persistence.StoredEvent) persistence.TrackedInsert {
	for i := range events {
		events[i].CommitID, events[i].Headers = c, persistence.Headers{"causation_id": fmt.Sprint("n", n)}
	}
	return persistence.TrackedInsert{Events: events, Tracking: persistence.Tracking{ApplicationName: "up", NotificationID: n}}
}

// checkTrackedBatch records a batch whose inserts follow each other (an
// aggregate's versions 1 and 2 in two inserts), one of two aggregates and
// one without events, and describes the first way what is recorded
// differs from what was given, or returns "".
func checkTrackedBatch(ctx context.Context, r persistence.ProcessRecorder) string {
	a, b := uuid.New(), uuid.New()
	commits := []uuid.UUID{uuid.New(), uuid.New(), uuid.New(), uuid.New()}
	batch := []persistence.TrackedInsert{
		trackedInsert(3, commits[0], ev(a, 1, "A", "a1")),
		trackedInsert(4, commits[1], ev(a, 2, "A", "a2"), ev(b, 1, "B", "b1")),
		trackedInsert(6, commits[2]),
		trackedInsert(7, commits[3], ev(b, 2, "B", "b2")),
	}
	ids, err := persistence.InsertTracked(ctx, r, batch)
	if err != nil {
		return fmt.Sprintf("insert a batch: %v", err)
	}
	if len(ids) != len(batch) {
		return fmt.Sprintf("a batch of %d inserts returned the notification IDs of %d", len(batch), len(ids))
	}
	var all []int64
	for i, in := range batch {
		if len(ids[i]) != len(in.Events) {
			return fmt.Sprintf("insert %d of %d events got %d notification IDs", i+1, len(in.Events), len(ids[i]))
		}
		all = append(all, ids[i]...)
	}
	if !slices.IsSorted(all) || len(slices.Compact(slices.Clone(all))) != len(all) {
		return fmt.Sprintf("notification IDs %v do not increase in the order of the inserts", all)
	}
	for _, in := range batch {
		ok, err := r.HasTrackingID(ctx, "up", in.Tracking.NotificationID)
		if err != nil || !ok {
			return fmt.Sprintf("tracking record %d of the batch is not recorded (%v)", in.Tracking.NotificationID, err)
		}
	}
	if n, err := r.MaxTrackingID(ctx, "up"); err != nil || n != 7 {
		return fmt.Sprintf("max tracking ID %d after a batch up to 7 (%v)", n, err)
	}
	want := map[uuid.UUID][]persistence.StoredEvent{}
	for _, in := range batch {
		for _, e := range in.Events {
			want[e.OriginatorID] = append(want[e.OriginatorID], e)
		}
	}
	for id, events := range want {
		got, err := r.SelectEvents(ctx, id, persistence.EventQuery{})
		if err != nil {
			return fmt.Sprintf("select the events of %s: %v", id, err)
		}
		if !slices.EqualFunc(got, events, func(x, y persistence.StoredEvent) bool {
			return equalEvents(x, y) && x.CommitID == y.CommitID && maps.Equal(x.Headers, y.Headers)
		}) {
			return fmt.Sprintf("aggregate %s has %d events %v after the batch, want %d with their inserts' commits and headers", id, len(got), versions(got), len(events))
		}
	}
	last := all[len(all)-1]
	for deadline := 0; deadline < 1000; deadline++ {
		ns, err := r.SelectNotifications(ctx, persistence.NotificationQuery{Start: all[0], Limit: 10})
		if err != nil {
			return fmt.Sprintf("select notifications: %v", err)
		}
		if len(ns) > 0 && ns[len(ns)-1].ID == last {
			got := make([]int64, len(ns))
			for i, n := range ns {
				got[i] = n.ID
			}
			if !slices.Equal(got, all) {
				return fmt.Sprintf("notifications %v after the batch, want %v", got, all)
			}
			return ""
		}
	}
	return fmt.Sprintf("notification %d of the batch never became visible", last)
}

// checkFailedBatch records a batch whose third insert has an event at a
// version already recorded, and describes the first way the store differs
// from what the error says was recorded (nothing, for an atomic recorder),
// or returns "".
func checkFailedBatch(ctx context.Context, r persistence.ProcessRecorder, atomic bool) string {
	ids := []uuid.UUID{uuid.New(), uuid.New(), uuid.New(), uuid.New()}
	if _, err := r.InsertEvents(ctx, []persistence.StoredEvent{ev(ids[2], 1, "t", "first")}); err != nil {
		return fmt.Sprintf("insert an event: %v", err)
	}
	batch := []persistence.TrackedInsert{
		trackedInsert(10, uuid.New(), ev(ids[0], 1, "t", "x")),
		trackedInsert(20, uuid.New(), ev(ids[1], 1, "t", "x")),
		trackedInsert(30, uuid.New(), ev(ids[2], 1, "t", "x")),
		trackedInsert(40, uuid.New(), ev(ids[3], 1, "t", "x")),
	}
	got, err := persistence.InsertTracked(ctx, r, batch)
	if !errors.Is(err, persistence.ErrIntegrity) {
		return fmt.Sprintf("a batch with an event at a recorded version: %v, want an error wrapping ErrIntegrity", err)
	}
	var be *persistence.BatchError
	if !errors.As(err, &be) {
		return fmt.Sprintf("a failed batch's error %v is no *persistence.BatchError", err)
	}
	switch {
	case atomic && be.Recorded != 0:
		return fmt.Sprintf("an atomic batch that failed says %d inserts were recorded", be.Recorded)
	case !atomic && be.Recorded != 2:
		return fmt.Sprintf("a batch recorded one by one that failed at its third insert says %d were recorded, want 2", be.Recorded)
	case len(got) != be.Recorded:
		return fmt.Sprintf("a failed batch returned the IDs of %d inserts and says %d were recorded", len(got), be.Recorded)
	case be.Index >= 0 && be.Index != 2:
		return fmt.Sprintf("a batch that failed at its third insert names insert %d", be.Index+1)
	}
	for i, in := range batch {
		tracked, err := r.HasTrackingID(ctx, "up", in.Tracking.NotificationID)
		if err != nil {
			return err.Error()
		}
		events, err := r.SelectEvents(ctx, ids[i], persistence.EventQuery{})
		if err != nil {
			return err.Error()
		}
		recorded := i < be.Recorded
		if i == 2 {
			if tracked || len(events) != 1 || string(events[0].State) != "first" {
				return fmt.Sprintf("the failing insert of a batch was recorded in part: tracking record %v, %d events", tracked, len(events))
			}
			continue
		}
		if tracked != recorded || (len(events) == 1) != recorded {
			return fmt.Sprintf("insert %d of a failed batch that says %d were recorded: tracking record recorded %v, %d events", i+1, be.Recorded, tracked, len(events))
		}
	}
	want := int64(0)
	if be.Recorded == 2 {
		want = 20
	}
	if n, err := r.MaxTrackingID(ctx, "up"); err != nil || n != want {
		return fmt.Sprintf("max tracking ID %d after a failed batch that recorded %d inserts, want %d (%v)", n, be.Recorded, want, err)
	}
	return ""
}

package recordertest

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/strata-go/strata/persistence"
)

// testTruncate tests truncating an aggregate's stream: its oldest events
// deleted with their notifications, their versions still taken.
func testTruncate(t *testing.T, f Features, open func(t *testing.T) persistence.Factory) {
	if !f.Truncate {
		t.Run("a factory that declares no Truncate is no Truncater", func(t *testing.T) {
			if tr, ok := open(t).(persistence.Truncater); ok {
				t.Fatalf("%T implements persistence.Truncater: declare Features.Truncate", tr)
			}
		})
		return
	}
	truncater := func(t *testing.T, f persistence.Factory) persistence.Truncater {
		t.Helper()
		tr, ok := f.(persistence.Truncater)
		if !ok {
			t.Fatalf("Features.Truncate is declared, but %T does not implement persistence.Truncater", f)
		}
		return tr
	}
	// stream records versions 1 to n of id, one commit each, and returns
	// the commits and notification IDs.
	stream := func(t *testing.T, r persistence.ApplicationRecorder, id uuid.UUID, n int64) ([]uuid.UUID, []int64) {
		t.Helper()
		var commits []uuid.UUID
		var ids []int64
		for v := int64(1); v <= n; v++ {
			c := uuid.New()
			commits = append(commits, c)
			ids = append(ids, mustInsert(t, r, commit(c, persistence.Headers{"v": string(rune('0' + v))}, ev(id, v, "t", string(rune('a'+v)))))...)
		}
		waitVisible(t, r, ids[len(ids)-1])
		return commits, ids
	}

	t.Run("truncating deletes the versions below the point with their notifications, and nothing else", func(t *testing.T) {
		fac := open(t)
		ta := tenant(t, fac, "a")
		r, other := processRecorder(t, fac), processRecorder(t, ta)
		id, kept := uuid.New(), uuid.New()
		stream(t, r, id, 5)
		stream(t, r, kept, 2)
		stream(t, other, id, 3)
		tr := truncater(t, fac)
		if p, err := tr.TruncationPoint(ctxFor(t), id); err != nil || p != 0 {
			t.Fatalf("the truncation point of a stream never truncated: %d %v, want 0", p, err)
		}
		n, err := tr.TruncateAggregate(ctxFor(t), id, 4)
		if err != nil || n != 3 {
			t.Fatalf("truncate before version 4: %d %v, want 3 events deleted", n, err)
		}
		if p, err := tr.TruncationPoint(ctxFor(t), id); err != nil || p != 4 {
			t.Fatalf("the truncation point: %d %v, want 4", p, err)
		}
		for name, f := range map[string]persistence.Factory{"another aggregate": fac, "another tenant": ta} {
			other := kept
			if name == "another tenant" {
				other = id
			}
			if p, err := truncater(t, f).TruncationPoint(ctxFor(t), other); err != nil || p != 0 {
				t.Fatalf("the truncation point of %s: %d %v, want 0", name, p, err)
			}
		}
		if got := versions(mustSelect(t, r, id, persistence.EventQuery{})); !slices.Equal(got, []int64{4, 5}) {
			t.Fatalf("versions %v after truncating before 4, want [4 5]", got)
		}
		if got := mustSelect(t, r, id, persistence.EventQuery{Lte: ptr(3)}); len(got) != 0 {
			t.Fatalf("a select up to version 3 returns %d truncated events", len(got))
		}
		if got := versions(mustSelect(t, r, kept, persistence.EventQuery{})); !slices.Equal(got, []int64{1, 2}) {
			t.Fatalf("another aggregate's versions %v, want [1 2]", got)
		}
		if got := versions(mustSelect(t, other, id, persistence.EventQuery{})); !slices.Equal(got, []int64{1, 2, 3}) {
			t.Fatalf("the same aggregate ID in another tenant has versions %v, want [1 2 3]", got)
		}
		var left []int64
		for _, n := range allNotifications(t, r, false) {
			if n.OriginatorID == id {
				left = append(left, n.OriginatorVersion)
			}
		}
		if !slices.Equal(left, []int64{4, 5}) {
			t.Fatalf("the log has versions %v of the truncated aggregate, want [4 5]", left)
		}
		if got := len(allNotifications(t, r, true)); got != 2+2+3 {
			t.Fatalf("the log of every tenant has %d notifications, want 7", got)
		}
	})

	t.Run("a truncated version stays taken, and its commit stays recorded", func(t *testing.T) {
		fac := open(t)
		r := processRecorder(t, fac)
		id := uuid.New()
		commits, ids := stream(t, r, id, 4)
		if _, err := truncater(t, fac).TruncateAggregate(ctxFor(t), id, 3); err != nil {
			t.Fatal(err)
		}
		_, err := r.InsertEvents(ctxFor(t), commit(uuid.New(), nil, ev(id, 2, "t", "stale writer")))
		wantIntegrity(t, err, "an insert at a truncated version")
		_, err = r.InsertEvents(ctxFor(t), commit(commits[0], persistence.Headers{"v": "1"}, ev(id, 1, "t", "b")))
		if !errors.Is(err, persistence.ErrAlreadyCommitted) && !errors.Is(err, persistence.ErrIntegrity) {
			t.Fatalf("a truncated commit retried: %v, want ErrAlreadyCommitted or ErrIntegrity", err)
		}
		if got := versions(mustSelect(t, r, id, persistence.EventQuery{})); !slices.Equal(got, []int64{3, 4}) {
			t.Fatalf("versions %v after refused inserts, want [3 4]", got)
		}
		// The stream goes on, with notification IDs after the truncated ones.
		next := mustInsert(t, r, commit(uuid.New(), nil, ev(id, 5, "t", "later")))
		if next[0] <= ids[len(ids)-1] {
			t.Fatalf("notification ID %d after %d", next[0], ids[len(ids)-1])
		}
	})

	t.Run("truncating keeps the last event and never deletes a stream", func(t *testing.T) {
		fac := open(t)
		r := processRecorder(t, fac)
		id := uuid.New()
		stream(t, r, id, 3)
		tr := truncater(t, fac)
		for _, before := range []int64{4, 100} {
			if n, err := tr.TruncateAggregate(ctxFor(t), id, before); !errors.Is(err, persistence.ErrProgramming) || n != 0 {
				t.Fatalf("truncate a stream of 3 before version %d: %d %v, want an error wrapping ErrProgramming", before, n, err)
			}
		}
		if n, err := tr.TruncateAggregate(ctxFor(t), uuid.New(), 2); !errors.Is(err, persistence.ErrProgramming) || n != 0 {
			t.Fatalf("truncate an aggregate without events: %d %v, want an error wrapping ErrProgramming", n, err)
		}
		if got := versions(mustSelect(t, r, id, persistence.EventQuery{})); !slices.Equal(got, []int64{1, 2, 3}) {
			t.Fatalf("a refused truncation deleted events: versions %v", got)
		}
		if n, err := tr.TruncateAggregate(ctxFor(t), id, 3); err != nil || n != 2 {
			t.Fatalf("truncate before the last version: %d %v, want 2", n, err)
		}
		if n, err := tr.TruncateAggregate(ctxFor(t), id, 2); err != nil || n != 0 {
			t.Fatalf("truncate again below the point: %d %v, want 0 and no error", n, err)
		}
		if p, err := tr.TruncationPoint(ctxFor(t), id); err != nil || p != 3 {
			t.Fatalf("the truncation point after a truncation below it: %d %v, want 3 (the highest)", p, err)
		}
		if got := versions(mustSelect(t, r, id, persistence.EventQuery{})); !slices.Equal(got, []int64{3}) {
			t.Fatalf("versions %v, want [3]", got)
		}
	})

	t.Run("a truncation with an ended context fails and deletes nothing", func(t *testing.T) {
		fac := open(t)
		r := processRecorder(t, fac)
		id := uuid.New()
		stream(t, r, id, 3)
		cancelled, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := truncater(t, fac).TruncateAggregate(cancelled, id, 3)
		if !errors.Is(err, context.Canceled) || !errors.Is(err, persistence.ErrOperational) {
			t.Fatalf("truncate with a cancelled context: %v, want an error wrapping context.Canceled and ErrOperational", err)
		}
		if got := versions(mustSelect(t, r, id, persistence.EventQuery{})); !slices.Equal(got, []int64{1, 2, 3}) {
			t.Fatalf("a cancelled truncation deleted events: versions %v", got)
		}
	})

	if f.Erase {
		t.Run("deleting a truncated aggregate frees its versions", func(t *testing.T) {
			fac := open(t)
			r := processRecorder(t, fac)
			id := uuid.New()
			stream(t, r, id, 3)
			if _, err := truncater(t, fac).TruncateAggregate(ctxFor(t), id, 3); err != nil {
				t.Fatal(err)
			}
			if _, err := fac.(persistence.Eraser).DeleteAggregate(ctxFor(t), id); err != nil {
				t.Fatal(err)
			}
			mustInsert(t, r, commit(uuid.New(), nil, ev(id, 1, "t", "new life")))
			if p, err := truncater(t, fac).TruncationPoint(ctxFor(t), id); err != nil || p != 0 {
				t.Fatalf("the truncation point of a deleted aggregate: %d %v, want 0", p, err)
			}
		})
	}

	t.Run("a truncation after Close fails with an interface error", func(t *testing.T) {
		fac := open(t)
		r := processRecorder(t, fac)
		id := uuid.New()
		stream(t, r, id, 2)
		if err := fac.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := truncater(t, fac).TruncateAggregate(ctxFor(t), id, 2); !errors.Is(err, persistence.ErrInterface) {
			t.Fatalf("truncate after Close: %v, want an error wrapping ErrInterface", err)
		}
	})
}

// Package recordertest is the conformance suite of Strata's recorders. Every
// adapter, Strata's own and any a user writes for another datastore, proves
// the semantics of package persistence by running these tests from its own
// _test.go against a real, fresh store, and declares with [Features] what it
// offers beyond the contract every adapter keeps:
//
//	func TestAdapter(t *testing.T) {
//		recordertest.TestFactory(t, recordertest.Features{Replace: true, Stream: true},
//			func(t *testing.T) persistence.Factory {
//				return openFreshFactory(t) // e.g. new tables in a test database, dropped in t.Cleanup
//			})
//	}
//
// [TestFactory] tests an adapter as applications use it: its aggregate
// recorders (for snapshots), application recorder and process recorder, and
// what the factory owes them (tracking refused by recorders that do not keep
// it, calls after Close refused). [TestProcessRecorder] runs the application
// recorder tests too, which run the aggregate recorder tests, for a recorder
// without a factory. Constructors are called once per subtest and must
// return a store that is empty.
//
// A feature an adapter declares is tested; one it does not declare is
// reported once, by name, as not offered (see [Features]), and no test is
// skipped. A recorder that has a capability it does not declare (a Replacer
// with Replace false) fails: a declaration is a promise either way.
//
// [Stress] is the concurrency test on its own, sized by a [StressConfig], for
// adapters' longer stress runs.
package recordertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-go/strata/persistence"
)

// ev returns a stored event of the aggregate at the version.
func ev(id uuid.UUID, version int64, topic string, state string) persistence.StoredEvent {
	return persistence.StoredEvent{OriginatorID: id, OriginatorVersion: version, Topic: topic, State: []byte(state)}
}

func ptr(v int64) *int64 { return &v }

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func mustInsert(t *testing.T, r persistence.AggregateRecorder, events []persistence.StoredEvent, opts ...persistence.InsertOption) []int64 {
	t.Helper()
	ids, err := r.InsertEvents(ctxFor(t), events, opts...)
	if err != nil {
		t.Fatalf("insert %d events: %v", len(events), err)
	}
	return ids
}

// waitVisible waits until readers can see notification id. A store may
// show a committed notification to readers a little later than its
// writer (PostgreSQL holds it back while an older transaction runs, even
// another program's), but never out of order.
func waitVisible(t *testing.T, r persistence.ApplicationRecorder, id int64) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		n, err := r.MaxNotificationID(ctxFor(t))
		if err != nil {
			t.Fatal(err)
		}
		if n >= id {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("notification %d is still not visible to readers after a minute (max visible %d)", id, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func mustSelect(t *testing.T, r persistence.AggregateRecorder, id uuid.UUID, q persistence.EventQuery) []persistence.StoredEvent {
	t.Helper()
	got, err := r.SelectEvents(ctxFor(t), id, q)
	if err != nil {
		t.Fatalf("select events of %s: %v", id, err)
	}
	return got
}

func versions(events []persistence.StoredEvent) []int64 {
	vs := make([]int64, len(events))
	for i, e := range events {
		vs[i] = e.OriginatorVersion
	}
	return vs
}

func equalEvents(a, b persistence.StoredEvent) bool {
	return a.OriginatorID == b.OriginatorID && a.OriginatorVersion == b.OriginatorVersion &&
		a.Topic == b.Topic && bytes.Equal(a.State, b.State)
}

func wantIntegrity(t *testing.T, err error, what string) {
	t.Helper()
	if !errors.Is(err, persistence.ErrIntegrity) {
		t.Fatalf("%s: got error %v, want one wrapping persistence.ErrIntegrity", what, err)
	}
	if !errors.Is(err, persistence.ErrConflict) || !errors.Is(err, persistence.ErrDatabase) {
		t.Fatalf("%s: integrity error %v does not wrap ErrConflict and ErrDatabase", what, err)
	}
}

// TestAggregateRecorder tests the semantics of an aggregate recorder.
func TestAggregateRecorder(t *testing.T, f Features, newRecorder func(t *testing.T) persistence.AggregateRecorder) {
	f.report(t)
	testAggregateRecorder(t, f, newRecorder)
}

func testAggregateRecorder(t *testing.T, f Features, newRecorder func(t *testing.T) persistence.AggregateRecorder) {
	testSelectAfter(t, f, newRecorder)
	t.Run("inserted events are selected exactly, in version order", func(t *testing.T) {
		r := newRecorder(t)
		id1, id2 := uuid.New(), uuid.New()
		binary := make([]byte, 256)
		for i := range binary {
			binary[i] = byte(i)
		}
		e1 := ev(id1, 1, "topic.A", `{"a":1}`)
		e2 := ev(id1, 2, "topic.B", "")
		e2.State = binary
		e3 := ev(id1, 3, "topic.A", `{"a":3}`)
		mustInsert(t, r, []persistence.StoredEvent{e1, e2})
		mustInsert(t, r, []persistence.StoredEvent{e3, ev(id2, 1, "topic.A", "other")})
		got := mustSelect(t, r, id1, persistence.EventQuery{})
		if len(got) != 3 || !equalEvents(got[0], e1) || !equalEvents(got[1], e2) || !equalEvents(got[2], e3) {
			t.Fatalf("selected %+v", got)
		}
		got[0].State[0] = 'X' // callers may change what they are given
		if again := mustSelect(t, r, id1, persistence.EventQuery{}); !equalEvents(again[0], e1) {
			t.Fatalf("changing selected state changed the store: %q", again[0].State)
		}
	})

	t.Run("an aggregate without events selects none and no error", func(t *testing.T) {
		r := newRecorder(t)
		if got := mustSelect(t, r, uuid.New(), persistence.EventQuery{}); len(got) != 0 {
			t.Fatalf("selected %d events", len(got))
		}
	})

	t.Run("an empty insert records nothing and succeeds", func(t *testing.T) {
		r := newRecorder(t)
		if ids, err := r.InsertEvents(ctxFor(t), nil); err != nil || len(ids) != 0 {
			t.Fatalf("insert nothing: %v %v", ids, err)
		}
	})

	t.Run("selects honour gt, lte, desc and limit", func(t *testing.T) {
		r := newRecorder(t)
		id := uuid.New()
		var events []persistence.StoredEvent
		for v := int64(0); v <= 10; v++ { // version 0 is a valid initial version
			events = append(events, ev(id, v, "t", fmt.Sprint(v)))
		}
		mustInsert(t, r, events)
		tests := []struct {
			name string
			q    persistence.EventQuery
			want []int64
		}{
			{"all", persistence.EventQuery{}, []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
			{"gt", persistence.EventQuery{Gt: ptr(7)}, []int64{8, 9, 10}},
			{"gt before the first", persistence.EventQuery{Gt: ptr(-1)}, []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
			{"lte", persistence.EventQuery{Lte: ptr(2)}, []int64{0, 1, 2}},
			{"gt and lte", persistence.EventQuery{Gt: ptr(3), Lte: ptr(6)}, []int64{4, 5, 6}},
			{"gt above lte", persistence.EventQuery{Gt: ptr(6), Lte: ptr(3)}, []int64{}},
			{"desc", persistence.EventQuery{Desc: true}, []int64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0}},
			{"limit", persistence.EventQuery{Limit: 3}, []int64{0, 1, 2}},
			{"gt and limit", persistence.EventQuery{Gt: ptr(4), Limit: 2}, []int64{5, 6}},
			{"desc and limit", persistence.EventQuery{Desc: true, Limit: 2}, []int64{10, 9}},
			{"lte, desc and limit 1 (the latest at or below)", persistence.EventQuery{Lte: ptr(7), Desc: true, Limit: 1}, []int64{7}},
			{"gt, lte, desc and limit", persistence.EventQuery{Gt: ptr(2), Lte: ptr(8), Desc: true, Limit: 3}, []int64{8, 7, 6}},
			{"lte below the first", persistence.EventQuery{Lte: ptr(-1)}, []int64{}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got := versions(mustSelect(t, r, id, tt.q))
				if !slices.Equal(got, tt.want) {
					t.Fatalf("versions %v, want %v", got, tt.want)
				}
			})
		}
	})

	t.Run("a save with one conflicting event records nothing", func(t *testing.T) {
		r := newRecorder(t)
		id1, id2 := uuid.New(), uuid.New()
		mustInsert(t, r, []persistence.StoredEvent{ev(id1, 1, "t", "first")})
		_, err := r.InsertEvents(ctxFor(t), []persistence.StoredEvent{
			ev(id2, 1, "t", "new aggregate"),
			ev(id2, 2, "t", "new aggregate"),
			ev(id1, 2, "t", "next version"),
			ev(id1, 1, "t", "conflict"),
		})
		wantIntegrity(t, err, "insert a save with a conflicting event")
		if got := mustSelect(t, r, id2, persistence.EventQuery{}); len(got) != 0 {
			t.Fatalf("%d events of the failed save are visible", len(got))
		}
		got := mustSelect(t, r, id1, persistence.EventQuery{})
		if len(got) != 1 || string(got[0].State) != "first" {
			t.Fatalf("aggregate after the failed save: %+v", got)
		}
		// The recorder still works.
		mustInsert(t, r, []persistence.StoredEvent{ev(id1, 2, "t", "second")})
	})

	t.Run("a save with two events at one version records nothing", func(t *testing.T) {
		r := newRecorder(t)
		id := uuid.New()
		_, err := r.InsertEvents(ctxFor(t), []persistence.StoredEvent{ev(id, 1, "t", "a"), ev(id, 1, "t", "b")})
		wantIntegrity(t, err, "insert two events at one version")
		if got := mustSelect(t, r, id, persistence.EventQuery{}); len(got) != 0 {
			t.Fatalf("%d events visible", len(got))
		}
	})

	t.Run("a large save is atomic", func(t *testing.T) {
		r := newRecorder(t)
		var events []persistence.StoredEvent
		ids := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
		for v := int64(1); v <= 200; v++ {
			for _, id := range ids {
				events = append(events, ev(id, v, "t", fmt.Sprint(v)))
			}
		}
		mustInsert(t, r, events)
		for _, id := range ids {
			if got := mustSelect(t, r, id, persistence.EventQuery{}); len(got) != 200 || got[199].OriginatorVersion != 200 {
				t.Fatalf("selected %d events", len(got))
			}
		}
		_, err := r.InsertEvents(ctxFor(t), append([]persistence.StoredEvent{ev(uuid.New(), 1, "t", "")}, events...))
		wantIntegrity(t, err, "insert a large save again")
	})

	t.Run("saves of the same aggregates in opposite orders conflict rather than deadlock", func(t *testing.T) {
		r := newRecorder(t)
		a, b := uuid.New(), uuid.New()
		for v := int64(1); v <= 20; v++ {
			errs := make(chan error, 2)
			for _, order := range [][]uuid.UUID{{a, b}, {b, a}} {
				go func() {
					_, err := r.InsertEvents(ctxFor(t), []persistence.StoredEvent{ev(order[0], v, "t", ""), ev(order[1], v, "t", "")})
					errs <- err
				}()
			}
			won := 0
			for range 2 {
				switch err := <-errs; {
				case err == nil:
					won++
				case !errors.Is(err, persistence.ErrIntegrity):
					t.Fatalf("version %d: %v, want success or an integrity error", v, err)
				}
			}
			if won != 1 {
				t.Fatalf("version %d: %d saves won", v, won)
			}
		}
	})

	if !f.Replace {
		t.Run("a recorder that declares no Replace is no Replacer", func(t *testing.T) {
			if r, ok := newRecorder(t).(persistence.Replacer); ok {
				t.Fatalf("%T implements persistence.Replacer: declare Features.Replace", r)
			}
		})
		return
	}
	t.Run("replacing events overwrites the state at existing versions", func(t *testing.T) {
		r := newRecorder(t)
		rep, ok := r.(persistence.Replacer)
		if !ok {
			t.Fatalf("Features.Replace is declared, but %T does not implement persistence.Replacer", r)
		}
		id := uuid.New()
		mustInsert(t, r, []persistence.StoredEvent{ev(id, 1, "t", "old"), ev(id, 2, "t", "two")})
		if err := rep.ReplaceEvents(ctxFor(t), []persistence.StoredEvent{ev(id, 1, "t2", "new"), ev(id, 3, "t", "three")}); err != nil {
			t.Fatal(err)
		}
		got := mustSelect(t, r, id, persistence.EventQuery{})
		if len(got) != 3 || string(got[0].State) != "new" || got[0].Topic != "t2" || string(got[2].State) != "three" {
			t.Fatalf("after replace: %+v", got)
		}
	})
}

// TestApplicationRecorder tests the semantics of an application recorder,
// including those of an aggregate recorder.
func TestApplicationRecorder(t *testing.T, f Features, newRecorder func(t *testing.T) persistence.ApplicationRecorder) {
	f.report(t)
	testApplicationRecorder(t, f, newRecorder)
}

func testApplicationRecorder(t *testing.T, f Features, newRecorder func(t *testing.T) persistence.ApplicationRecorder) {
	// An application recorder replaces nothing: an event with a
	// notification changed in place would never reach the readers who had
	// read it.
	testAggregateRecorder(t, Features{After: f.After}, func(t *testing.T) persistence.AggregateRecorder { return newRecorder(t) })
	testNotificationStreams(t, f, newRecorder)
	testStablePrefix(t, newRecorder)

	selectN := func(t *testing.T, r persistence.ApplicationRecorder, q persistence.NotificationQuery) []persistence.Notification {
		t.Helper()
		got, err := r.SelectNotifications(ctxFor(t), q)
		if err != nil {
			t.Fatalf("select notifications %+v: %v", q, err)
		}
		return got
	}
	maxID := func(t *testing.T, r persistence.ApplicationRecorder) int64 {
		t.Helper()
		n, err := r.MaxNotificationID(ctxFor(t))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	t.Run("an empty store has no notifications and max ID 0", func(t *testing.T) {
		r := newRecorder(t)
		if got := selectN(t, r, persistence.NotificationQuery{Start: 1, Limit: 10}); len(got) != 0 {
			t.Fatalf("%d notifications", len(got))
		}
		if n := maxID(t, r); n != 0 {
			t.Fatalf("max notification ID %d", n)
		}
	})

	t.Run("notification IDs increase in insert order and are returned by the insert", func(t *testing.T) {
		r := newRecorder(t)
		id1, id2, id3 := uuid.New(), uuid.New(), uuid.New()
		var inserted []persistence.StoredEvent
		var returned []int64
		for _, batch := range [][]persistence.StoredEvent{
			{ev(id1, 1, "A", "1")},
			{ev(id1, 2, "B", "2"), ev(id2, 1, "A", "3")},
			{ev(id3, 1, "C", "4"), ev(id3, 2, "B", "5"), ev(id2, 2, "A", "6")},
		} {
			ids := mustInsert(t, r, batch)
			if len(ids) != len(batch) {
				t.Fatalf("insert of %d events returned %d notification IDs", len(batch), len(ids))
			}
			returned = append(returned, ids...)
			inserted = append(inserted, batch...)
		}
		waitVisible(t, r, returned[len(returned)-1])
		got := selectN(t, r, persistence.NotificationQuery{Start: 1, Limit: 100})
		if len(got) != len(inserted) {
			t.Fatalf("%d notifications, want %d", len(got), len(inserted))
		}
		for i, n := range got {
			if !equalEvents(n.StoredEvent, inserted[i]) {
				t.Fatalf("notification %d is %+v, want %+v", i, n.StoredEvent, inserted[i])
			}
			if n.ID != returned[i] {
				t.Fatalf("notification %d has ID %d, the insert returned %d", i, n.ID, returned[i])
			}
			if i > 0 && n.ID <= got[i-1].ID {
				t.Fatalf("notification IDs %d then %d do not increase", got[i-1].ID, n.ID)
			}
		}
		if got[0].ID < 1 {
			t.Fatalf("first notification ID %d, want at least 1", got[0].ID)
		}
		if n := maxID(t, r); n != got[len(got)-1].ID {
			t.Fatalf("max notification ID %d, want %d", n, got[len(got)-1].ID)
		}
	})

	t.Run("selects honour start, limit, stop and topics", func(t *testing.T) {
		r := newRecorder(t)
		var events []persistence.StoredEvent
		topics := []string{"A", "B", "C"}
		for v := int64(1); v <= 9; v++ {
			events = append(events, ev(uuid.New(), v, topics[(v-1)%3], fmt.Sprint(v)))
		}
		ids := mustInsert(t, r, events)
		waitVisible(t, r, ids[len(ids)-1])
		states := func(ns []persistence.Notification) string {
			var b []byte
			for _, n := range ns {
				b = append(b, n.State...)
			}
			return string(b)
		}
		tests := []struct {
			name string
			q    persistence.NotificationQuery
			want string
		}{
			{"from the first", persistence.NotificationQuery{Start: ids[0], Limit: 100}, "123456789"},
			{"from 0", persistence.NotificationQuery{Start: 0, Limit: 100}, "123456789"},
			{"limited", persistence.NotificationQuery{Start: ids[0], Limit: 4}, "1234"},
			{"from the middle", persistence.NotificationQuery{Start: ids[4], Limit: 100}, "56789"},
			{"from the middle, limited", persistence.NotificationQuery{Start: ids[4], Limit: 2}, "56"},
			{"from beyond the last", persistence.NotificationQuery{Start: ids[8] + 1, Limit: 100}, ""},
			{"up to a stop", persistence.NotificationQuery{Start: ids[1], Limit: 100, Stop: ids[5]}, "23456"},
			{"up to a stop before the start", persistence.NotificationQuery{Start: ids[5], Limit: 100, Stop: ids[1]}, ""},
			{"of one topic", persistence.NotificationQuery{Start: ids[0], Limit: 100, Topics: []string{"B"}}, "258"},
			{"of two topics", persistence.NotificationQuery{Start: ids[0], Limit: 100, Topics: []string{"A", "C"}}, "134679"},
			{"of a topic, limited", persistence.NotificationQuery{Start: ids[0], Limit: 2, Topics: []string{"C"}}, "36"},
			{"of a topic, from the middle, up to a stop", persistence.NotificationQuery{Start: ids[2], Limit: 100, Stop: ids[7], Topics: []string{"A", "B"}}, "4578"},
			{"of a topic nothing has", persistence.NotificationQuery{Start: ids[0], Limit: 100, Topics: []string{"Z"}}, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if got := states(selectN(t, r, tt.q)); got != tt.want {
					t.Fatalf("selected %q, want %q", got, tt.want)
				}
			})
		}
	})

	t.Run("a limit that is not positive is a programming error", func(t *testing.T) {
		r := newRecorder(t)
		for _, limit := range []int{0, -1} {
			_, err := r.SelectNotifications(ctxFor(t), persistence.NotificationQuery{Start: 1, Limit: limit})
			if !errors.Is(err, persistence.ErrProgramming) {
				t.Fatalf("limit %d: got %v, want an error wrapping ErrProgramming", limit, err)
			}
		}
	})

	t.Run("a failed save leaves no notification", func(t *testing.T) {
		r := newRecorder(t)
		id := uuid.New()
		first := mustInsert(t, r, []persistence.StoredEvent{ev(id, 1, "t", "a")})
		waitVisible(t, r, first[0])
		_, err := r.InsertEvents(ctxFor(t), []persistence.StoredEvent{ev(uuid.New(), 1, "t", "lost"), ev(id, 1, "t", "conflict")})
		wantIntegrity(t, err, "insert a conflicting save")
		if n := maxID(t, r); n != first[0] {
			t.Fatalf("max notification ID %d after a failed save, want %d", n, first[0])
		}
		next := mustInsert(t, r, []persistence.StoredEvent{ev(id, 2, "t", "b")})
		waitVisible(t, r, next[0])
		got := selectN(t, r, persistence.NotificationQuery{Start: 1, Limit: 10})
		if len(got) != 2 || string(got[1].State) != "b" || next[0] <= first[0] {
			t.Fatalf("notifications after a failed save: %+v", got)
		}
	})

	t.Run("concurrent saves are read exactly once in order with one winner per contended version", func(t *testing.T) {
		r := newRecorder(t)
		Stress(t, r, StressConfig{Writers: 4, SavesPerWriter: 30, Contended: 2})
	})
}

// TestProcessRecorder tests the semantics of a process recorder, including
// those of an application recorder.
func TestProcessRecorder(t *testing.T, f Features, newRecorder func(t *testing.T) persistence.ProcessRecorder) {
	f.report(t)
	testProcessRecorder(t, f, newRecorder)
}

func testProcessRecorder(t *testing.T, f Features, newRecorder func(t *testing.T) persistence.ProcessRecorder) {
	testApplicationRecorder(t, f, func(t *testing.T) persistence.ApplicationRecorder { return newRecorder(t) })
	testTrackedBatches(t, f, newRecorder)

	maxTracking := func(t *testing.T, r persistence.ProcessRecorder, app string) int64 {
		t.Helper()
		n, err := r.MaxTrackingID(ctxFor(t), app)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	has := func(t *testing.T, r persistence.ProcessRecorder, app string, id int64) bool {
		t.Helper()
		ok, err := r.HasTrackingID(ctxFor(t), app, id)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}

	t.Run("tracking records are recorded with the events", func(t *testing.T) {
		r := newRecorder(t)
		if n := maxTracking(t, r, "upstream"); n != 0 {
			t.Fatalf("max tracking ID of an empty store %d", n)
		}
		id := uuid.New()
		mustInsert(t, r, []persistence.StoredEvent{ev(id, 1, "t", "a")}, persistence.WithTracking(persistence.Tracking{ApplicationName: "upstream", NotificationID: 1}))
		mustInsert(t, r, []persistence.StoredEvent{ev(id, 2, "t", "b")}, persistence.WithTracking(persistence.Tracking{ApplicationName: "upstream", NotificationID: 5}))
		if n := maxTracking(t, r, "upstream"); n != 5 {
			t.Fatalf("max tracking ID %d, want 5", n)
		}
		if !has(t, r, "upstream", 1) || !has(t, r, "upstream", 5) || has(t, r, "upstream", 3) || has(t, r, "other", 1) {
			t.Fatal("HasTrackingID does not match the recorded tracking records")
		}
		if got := mustSelect(t, r, id, persistence.EventQuery{}); len(got) != 2 {
			t.Fatalf("%d events", len(got))
		}
	})

	t.Run("a tracking record without events is recorded", func(t *testing.T) {
		r := newRecorder(t)
		if _, err := r.InsertEvents(ctxFor(t), nil, persistence.WithTracking(persistence.Tracking{ApplicationName: "up", NotificationID: 7})); err != nil {
			t.Fatal(err)
		}
		if n := maxTracking(t, r, "up"); n != 7 || !has(t, r, "up", 7) {
			t.Fatalf("max tracking ID %d", n)
		}
	})

	t.Run("a repeated tracking record is rejected with its events", func(t *testing.T) {
		r := newRecorder(t)
		track := persistence.WithTracking(persistence.Tracking{ApplicationName: "up", NotificationID: 3})
		mustInsert(t, r, []persistence.StoredEvent{ev(uuid.New(), 1, "t", "a")}, track)
		id := uuid.New()
		_, err := r.InsertEvents(ctxFor(t), []persistence.StoredEvent{ev(id, 1, "t", "again")}, track)
		wantIntegrity(t, err, "insert a repeated tracking record")
		if got := mustSelect(t, r, id, persistence.EventQuery{}); len(got) != 0 {
			t.Fatalf("events of the rejected save are visible: %+v", got)
		}
		_, err = r.InsertEvents(ctxFor(t), nil, track)
		wantIntegrity(t, err, "insert a repeated tracking record without events")
	})

	t.Run("a conflicting event rejects the tracking record with it", func(t *testing.T) {
		r := newRecorder(t)
		id := uuid.New()
		mustInsert(t, r, []persistence.StoredEvent{ev(id, 1, "t", "a")})
		_, err := r.InsertEvents(ctxFor(t), []persistence.StoredEvent{ev(id, 1, "t", "b")},
			persistence.WithTracking(persistence.Tracking{ApplicationName: "up", NotificationID: 9}))
		wantIntegrity(t, err, "insert a conflicting event with a tracking record")
		if has(t, r, "up", 9) || maxTracking(t, r, "up") != 0 {
			t.Fatal("the tracking record of a failed save was recorded")
		}
	})

	t.Run("tracking is kept per upstream application", func(t *testing.T) {
		r := newRecorder(t)
		for _, tr := range []persistence.Tracking{{ApplicationName: "a", NotificationID: 4}, {ApplicationName: "b", NotificationID: 2}, {ApplicationName: "b", NotificationID: 4}} {
			mustInsert(t, r, nil, persistence.WithTracking(tr))
		}
		if a, b, c := maxTracking(t, r, "a"), maxTracking(t, r, "b"), maxTracking(t, r, "c"); a != 4 || b != 4 || c != 0 {
			t.Fatalf("max tracking IDs %d %d %d", a, b, c)
		}
	})
}

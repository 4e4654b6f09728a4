package recordertest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-go/strata/persistence"
)

// Features declares what an adapter offers beyond the contract that every
// adapter keeps. The zero value declares nothing optional. A declared
// feature is tested; an undeclared one is reported as not offered, and an
// adapter that has a capability it does not declare fails, so that the
// declaration stays true. docs/architecture.md lists what each feature
// means for an adapter.
type Features struct {
	// Replace: the aggregate recorders of a factory (for snapshots)
	// implement persistence.Replacer, so that a snapshot taken again at the
	// same version replaces the old one. Without it, the first snapshot
	// at a version is kept.
	Replace bool
	// Stream: application recorders implement
	// persistence.NotificationStreamer, reading a run of notifications
	// without a round trip per page. It must return exactly what paged
	// selects return.
	Stream bool
	// Erase: factories implement persistence.Eraser, deleting one
	// aggregate's stream or purging a tenant atomically.
	Erase bool
	// List: the aggregate recorders of a factory implement
	// persistence.Lister, which rotating data keys needs.
	List bool
	// Truncate: factories implement persistence.Truncater, deleting an
	// aggregate's oldest events atomically with their notifications
	// while their versions stay taken.
	Truncate bool
	// Batch: process recorders implement
	// persistence.BatchProcessRecorder, recording a batch of tracked
	// inserts (a follower's batch of processed notifications) in one
	// transaction, all or nothing. Without it, persistence.InsertTracked
	// records a batch one insert at a time, each atomic with its tracking
	// record.
	Batch bool
	// After: every recorder of a factory implements
	// persistence.AfterSelector, selecting the events of several
	// aggregates, each after a version, in one query (or one per so many
	// aggregates). It must return
	// exactly what SelectEvents returns for each. Without it,
	// persistence.SelectEventsAfter (a follower's batch bringing the
	// aggregates it carries up to date) makes a query per aggregate.
	After bool
}

// names lists the features with whether they are declared and what is
// missing without them.
func (f Features) names() []struct {
	name     string
	declared bool
	without  string
} {
	return []struct {
		name     string
		declared bool
		without  string
	}{
		{"Replace", f.Replace, "a snapshot taken again at a version keeps the first one"},
		{"Stream", f.Stream, "readers select notifications a page at a time"},
		{"Erase", f.Erase, "streams cannot be deleted nor tenants purged"},
		{"List", f.List, "data keys cannot be rotated (RotateDataKeys)"},
		{"Truncate", f.Truncate, "streams cannot be truncated nor archived"},
		{"Batch", f.Batch, "a follower's batch is recorded one transaction per notification"},
		{"After", f.After, "a follower's batch brings the aggregates it carries up to date one query each"},
	}
}

// report logs, once per test, the features the adapter does not offer.
func (f Features) report(t *testing.T) {
	t.Helper()
	for _, n := range f.names() {
		if !n.declared {
			t.Logf("not offered: %s (%s)", n.name, n.without)
		}
	}
}

// TestFactory tests an adapter through its factory, as applications use
// it: the aggregate recorder of the "snapshots" purpose, the application
// recorder and the process recorder, each against the whole contract, and
// what the factory owes its recorders. newFactory is called once per
// subtest and must return a factory over an empty store; the suite closes
// the factories it is given.
func TestFactory(t *testing.T, f Features, newFactory func(t *testing.T) persistence.Factory) {
	f.report(t)
	open := func(t *testing.T) persistence.Factory {
		t.Helper()
		fac := newFactory(t)
		t.Cleanup(func() { fac.Close() })
		return fac
	}
	t.Run("aggregate recorder", func(t *testing.T) {
		testAggregateRecorder(t, f, func(t *testing.T) persistence.AggregateRecorder {
			r, err := open(t).AggregateRecorder(ctxFor(t), "snapshots")
			if err != nil {
				t.Fatal(err)
			}
			return r
		})
	})
	t.Run("application recorder", func(t *testing.T) {
		testApplicationRecorder(t, f, func(t *testing.T) persistence.ApplicationRecorder {
			r, err := open(t).ApplicationRecorder(ctxFor(t))
			if err != nil {
				t.Fatal(err)
			}
			return r
		})
	})
	t.Run("process recorder", func(t *testing.T) {
		testProcessRecorder(t, f, func(t *testing.T) persistence.ProcessRecorder {
			r, err := open(t).ProcessRecorder(ctxFor(t))
			if err != nil {
				t.Fatal(err)
			}
			return r
		})
	})

	testList(t, f, open)
	testCommits(t, open)
	testTenants(t, open)
	testErase(t, f, open)
	testTruncate(t, f, open)

	t.Run("recorders that keep no tracking records refuse them the same way", func(t *testing.T) {
		fac := open(t)
		ctx := ctxFor(t)
		snapshots, err := fac.AggregateRecorder(ctx, "snapshots")
		if err != nil {
			t.Fatal(err)
		}
		app, err := fac.ApplicationRecorder(ctx)
		if err != nil {
			t.Fatal(err)
		}
		proc, err := fac.ProcessRecorder(ctx)
		if err != nil {
			t.Fatal(err)
		}
		track := persistence.WithTracking(persistence.Tracking{ApplicationName: "upstream", NotificationID: 1})
		for name, r := range map[string]persistence.AggregateRecorder{"the snapshots recorder": snapshots, "the application recorder": app} {
			id := uuid.New()
			_, err := r.InsertEvents(ctx, []persistence.StoredEvent{ev(id, 1, "t", "x")}, track)
			if !errors.Is(err, persistence.ErrProgramming) {
				t.Errorf("%s took a tracking record: %v, want an error wrapping ErrProgramming", name, err)
			}
			if got := mustSelect(t, r, id, persistence.EventQuery{}); len(got) != 0 {
				t.Errorf("%s recorded the events of a refused save", name)
			}
		}
		if ok, err := proc.HasTrackingID(ctx, "upstream", 1); err != nil || ok {
			t.Fatalf("a refused tracking record was recorded: %v %v", ok, err)
		}
	})

	t.Run("calls after Close fail with an interface error", func(t *testing.T) {
		fac := newFactory(t)
		ctx := ctxFor(t)
		snapshots, err := fac.AggregateRecorder(ctx, "snapshots")
		if err != nil {
			t.Fatal(err)
		}
		proc, err := fac.ProcessRecorder(ctx)
		if err != nil {
			t.Fatal(err)
		}
		app, err := fac.ApplicationRecorder(ctx)
		if err != nil {
			t.Fatal(err)
		}
		id := uuid.New()
		mustInsert(t, proc, []persistence.StoredEvent{ev(id, 1, "t", "x")})
		if err := fac.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		if err := fac.Close(); err != nil {
			t.Fatalf("close again: %v", err)
		}
		for name, call := range recorderCalls(snapshots, app, proc, id) {
			if err := call(ctx); !errors.Is(err, persistence.ErrInterface) {
				t.Errorf("%s after Close: %v, want an error wrapping ErrInterface", name, err)
			}
		}
		for name, call := range map[string]func() error{
			"AggregateRecorder":   func() error { _, err := fac.AggregateRecorder(ctx, "snapshots"); return err },
			"ApplicationRecorder": func() error { _, err := fac.ApplicationRecorder(ctx); return err },
			"ProcessRecorder":     func() error { _, err := fac.ProcessRecorder(ctx); return err },
		} {
			if err := call(); !errors.Is(err, persistence.ErrInterface) {
				t.Errorf("factory's %s after Close: %v, want an error wrapping ErrInterface", name, err)
			}
		}
	})

	t.Run("a cancelled context fails every call and records nothing", func(t *testing.T) {
		fac := open(t)
		live := ctxFor(t)
		snapshots, err := fac.AggregateRecorder(live, "snapshots")
		if err != nil {
			t.Fatal(err)
		}
		proc, err := fac.ProcessRecorder(live)
		if err != nil {
			t.Fatal(err)
		}
		app, err := fac.ApplicationRecorder(live)
		if err != nil {
			t.Fatal(err)
		}
		id := uuid.New()
		cancelled, cancel := context.WithCancel(context.Background())
		cancel()
		for name, call := range recorderCalls(snapshots, app, proc, id) {
			if err := call(cancelled); !errors.Is(err, context.Canceled) || !errors.Is(err, persistence.ErrOperational) {
				t.Errorf("%s with a cancelled context: %v, want an error wrapping context.Canceled and ErrOperational", name, err)
			}
		}
		for _, r := range []persistence.AggregateRecorder{snapshots, proc} {
			if got := mustSelect(t, r, id, persistence.EventQuery{}); len(got) != 0 {
				t.Fatalf("a cancelled insert recorded %d events", len(got))
			}
		}
		if n, err := proc.MaxTrackingID(live, "upstream"); err != nil || n != 0 {
			t.Fatalf("a cancelled insert recorded its tracking record: %d %v", n, err)
		}
	})
}

// recorderCalls returns every call of the three recorders, named, each
// inserting or reading the aggregate id.
func recorderCalls(snapshots persistence.AggregateRecorder, app persistence.ApplicationRecorder, proc persistence.ProcessRecorder, id uuid.UUID) map[string]func(ctx context.Context) error {
	insert := func(r persistence.AggregateRecorder, opts ...persistence.InsertOption) func(ctx context.Context) error {
		return func(ctx context.Context) error {
			_, err := r.InsertEvents(ctx, []persistence.StoredEvent{ev(id, 2, "t", "y")}, opts...)
			return err
		}
	}
	selectEvents := func(r persistence.AggregateRecorder) func(ctx context.Context) error {
		return func(ctx context.Context) error {
			_, err := r.SelectEvents(ctx, id, persistence.EventQuery{})
			return err
		}
	}
	calls := map[string]func(ctx context.Context) error{
		"snapshots InsertEvents":             insert(snapshots),
		"snapshots SelectEvents":             selectEvents(snapshots),
		"application InsertEvents":           insert(app),
		"application SelectEvents":           selectEvents(app),
		"process InsertEvents":               insert(proc),
		"process InsertEvents with tracking": insert(proc, persistence.WithTracking(persistence.Tracking{ApplicationName: "upstream", NotificationID: 9})),
		"process InsertEvents of tracking only": func(ctx context.Context) error {
			_, err := proc.InsertEvents(ctx, nil, persistence.WithTracking(persistence.Tracking{ApplicationName: "upstream", NotificationID: 10}))
			return err
		},
		"process SelectEvents": selectEvents(proc),
		"SelectNotifications": func(ctx context.Context) error {
			_, err := app.SelectNotifications(ctx, persistence.NotificationQuery{Start: 1, Limit: 10})
			return err
		},
		"MaxNotificationID": func(ctx context.Context) error { _, err := app.MaxNotificationID(ctx); return err },
		"MaxTrackingID":     func(ctx context.Context) error { _, err := proc.MaxTrackingID(ctx, "upstream"); return err },
		"HasTrackingID":     func(ctx context.Context) error { _, err := proc.HasTrackingID(ctx, "upstream", 1); return err },
		"ReadNotifications": func(ctx context.Context) error {
			for _, err := range persistence.ReadNotifications(ctx, app, persistence.NotificationQuery{Start: 1}, 10) {
				return err
			}
			return errors.New("yielded nothing, not even an error")
		},
	}
	for name, r := range map[string]persistence.AggregateRecorder{"snapshots": snapshots, "application": app, "process": proc} {
		if s, ok := r.(persistence.AfterSelector); ok {
			calls[name+" SelectEventsAfter"] = func(ctx context.Context) error {
				_, err := s.SelectEventsAfter(ctx, []persistence.After{{OriginatorID: id}})
				return err
			}
		}
	}
	if rep, ok := snapshots.(persistence.Replacer); ok {
		calls["snapshots ReplaceEvents"] = func(ctx context.Context) error {
			return rep.ReplaceEvents(ctx, []persistence.StoredEvent{ev(id, 1, "t", "z")})
		}
	}
	return calls
}

// testNotificationStreams checks that a streaming recorder yields exactly
// what paged selects return, and that one which declares no Stream does
// not stream.
func testNotificationStreams(t *testing.T, f Features, newRecorder func(t *testing.T) persistence.ApplicationRecorder) {
	if !f.Stream {
		t.Run("a recorder that declares no Stream is no NotificationStreamer", func(t *testing.T) {
			if r, ok := newRecorder(t).(persistence.NotificationStreamer); ok {
				t.Fatalf("%T implements persistence.NotificationStreamer: declare Features.Stream", r)
			}
		})
		return
	}
	t.Run("a stream yields exactly what paged selects return", func(t *testing.T) {
		r := newRecorder(t)
		s, ok := r.(persistence.NotificationStreamer)
		if !ok {
			t.Fatalf("Features.Stream is declared, but %T does not implement persistence.NotificationStreamer", r)
		}
		var ids []int64
		topics := []string{"A", "B", "C"}
		for i := range 25 {
			id := uuid.New()
			batch := []persistence.StoredEvent{ev(id, 1, topics[i%3], fmt.Sprint(i))}
			if i%4 == 0 {
				batch = append(batch, ev(id, 2, topics[(i+1)%3], fmt.Sprint(i, "b")))
			}
			ids = append(ids, mustInsert(t, r, batch)...)
		}
		waitVisible(t, r, ids[len(ids)-1])
		queries := map[string]persistence.NotificationQuery{
			"all":                   {Start: 1},
			"from the middle":       {Start: ids[10]},
			"limited":               {Start: ids[3], Limit: 7},
			"up to a stop":          {Start: 0, Stop: ids[20]},
			"of two topics":         {Start: 1, Topics: []string{"A", "C"}},
			"of a topic, limited":   {Start: ids[2], Limit: 4, Topics: []string{"B"}},
			"beyond the last":       {Start: ids[len(ids)-1] + 1},
			"stop before the start": {Start: ids[9], Stop: ids[4]},
		}
		for name, q := range queries {
			t.Run(name, func(t *testing.T) {
				var streamed, paged []persistence.Notification
				for n, err := range s.Notifications(ctxFor(t), q) {
					if err != nil {
						t.Fatal(err)
					}
					streamed = append(streamed, n)
				}
				page := q
				for {
					page.Limit = 3
					if q.Limit > 0 {
						page.Limit = min(3, q.Limit-len(paged))
					}
					got, err := r.SelectNotifications(ctxFor(t), page)
					if err != nil {
						t.Fatal(err)
					}
					paged = append(paged, got...)
					if len(got) < page.Limit || q.Limit > 0 && len(paged) >= q.Limit {
						break
					}
					page.Start = got[len(got)-1].ID + 1
				}
				if !slices.EqualFunc(streamed, paged, func(a, b persistence.Notification) bool {
					return a.ID == b.ID && equalEvents(a.StoredEvent, b.StoredEvent)
				}) {
					t.Fatalf("streamed %d notifications, paged selects returned %d: %v against %v", len(streamed), len(paged), notificationIDs(streamed), notificationIDs(paged))
				}
			})
		}
	})
}

func notificationIDs(ns []persistence.Notification) []int64 {
	ids := make([]int64, len(ns))
	for i, n := range ns {
		ids[i] = n.ID
	}
	return ids
}

// testStablePrefix states the notification order as a test: while writers
// commit, a reader reads the whole log again and again, and no read may
// show a notification at or below the highest ID an earlier read showed
// that the earlier read did not show.
func testStablePrefix(t *testing.T, newRecorder func(t *testing.T) persistence.ApplicationRecorder) {
	t.Run("once a reader has seen notification n no later commit shows a new one at or below n", func(t *testing.T) {
		r := newRecorder(t)
		if msg := checkStablePrefix(r, 4, 40); msg != "" {
			t.Fatal(msg)
		}
	})
}

// checkStablePrefix runs writers saves each on r while a reader rereads
// the log, and describes the first violation of the stable prefix, or
// returns "".
func checkStablePrefix(r persistence.ApplicationRecorder, writers, saves int) string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range saves {
				id := uuid.New()
				batch := []persistence.StoredEvent{ev(id, 1, "t", fmt.Sprint(w, s))}
				if s%3 == 0 {
					batch = append(batch, ev(uuid.New(), 1, "t", fmt.Sprint(w, s, "b")))
				}
				if _, err := r.InsertEvents(ctx, batch); err != nil {
					errs <- fmt.Errorf("writer %d: %w", w, err)
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	seen := map[int64]bool{}
	var high int64
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true // one more read after the last commit
		default:
		}
		var round []int64
		for n, err := range persistence.ReadNotifications(ctx, r, persistence.NotificationQuery{Start: 1}, 500) {
			if err != nil {
				return fmt.Sprintf("read: %v", err)
			}
			round = append(round, n.ID)
		}
		var fresh []string
		for _, id := range round {
			if !seen[id] && id <= high {
				fresh = append(fresh, fmt.Sprint(id))
			}
		}
		if len(fresh) > 0 {
			return fmt.Sprintf("a read after one that showed up to notification %d shows notifications %s, which are at or below it and were not shown before: a reader that had read up to %d would never see them",
				high, strings.Join(fresh, ", "), high)
		}
		for _, id := range round {
			seen[id] = true
			high = max(high, id)
		}
	}
	select {
	case err := <-errs:
		return err.Error()
	default:
	}
	return ""
}

// testSelectAfter checks that a recorder that selects the events of
// several aggregates at once returns what SelectEvents returns for each,
// and that one which declares no After does not.
func testSelectAfter(t *testing.T, f Features, newRecorder func(t *testing.T) persistence.AggregateRecorder) {
	if !f.After {
		t.Run("a recorder that declares no After is no AfterSelector", func(t *testing.T) {
			if r, ok := newRecorder(t).(persistence.AfterSelector); ok {
				t.Fatalf("%T implements persistence.AfterSelector: declare Features.After", r)
			}
		})
		return
	}
	t.Run("events after versions of several aggregates are what SelectEvents selects of each", func(t *testing.T) {
		r := newRecorder(t)
		s, ok := r.(persistence.AfterSelector)
		if !ok {
			t.Fatalf("Features.After is declared, but %T does not implement persistence.AfterSelector", r)
		}
		ctx := ctxFor(t)
		c := uuid.New()
		h := persistence.Headers{"k": "v"}
		var ids []uuid.UUID
		for i := range 7 {
			id := uuid.New()
			ids = append(ids, id)
			for v := int64(1); v <= int64(i); v++ {
				mustInsert(t, r, commit(c, h, ev(id, v, fmt.Sprint("topic.", v%3), fmt.Sprintf(`{"agg":%d,"v":%d}`, i, v))))
				c = uuid.New()
			}
		}
		after := []persistence.After{
			{OriginatorID: ids[6], Version: 2},   // the events from version 3 on
			{OriginatorID: ids[3], Version: 0},   // all its events
			{OriginatorID: ids[5], Version: 5},   // none: 5 is its last
			{OriginatorID: uuid.New()},           // an aggregate without events
			{OriginatorID: ids[6], Version: 4},   // one named twice
			{OriginatorID: ids[1], Version: -1},  // below its first version
			{OriginatorID: ids[4], Version: 100}, // beyond its last
		}
		// More aggregates than one query may name on some engines.
		for i := range 450 {
			after = append(after, persistence.After{OriginatorID: ids[i%7], Version: int64(i % 4)})
		}
		got, err := s.SelectEventsAfter(ctx, after)
		if err != nil {
			t.Fatalf("select events after versions: %v", err)
		}
		if len(got) != len(after) {
			t.Fatalf("got the events of %d aggregates, want %d", len(got), len(after))
		}
		for i, a := range after {
			v := a.Version
			want := mustSelect(t, r, a.OriginatorID, persistence.EventQuery{Gt: &v})
			if len(got[i]) != len(want) {
				t.Fatalf("aggregate %d after version %d: got versions %v, want %v", i, v, versions(got[i]), versions(want))
			}
			for j := range want {
				g, w := got[i][j], want[j]
				if !equalEvents(g, w) || g.CommitID != w.CommitID || !maps.Equal(g.Headers, w.Headers) {
					t.Fatalf("aggregate %d after version %d, event %d: got %+v, want %+v", i, v, j, g, w)
				}
			}
		}
		if got, err := s.SelectEventsAfter(ctx, nil); err != nil || len(got) != 0 {
			t.Fatalf("select after no aggregates: %v, %v", got, err)
		}
	})
}

package recordertest

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/strata-go/strata/persistence"
)

// commit returns events made one commit, with its ID and headers.
func commit(id uuid.UUID, headers persistence.Headers, events ...persistence.StoredEvent) []persistence.StoredEvent {
	for i := range events {
		events[i].CommitID, events[i].Headers = id, headers
	}
	return events
}

func processRecorder(t *testing.T, f persistence.Factory) persistence.ProcessRecorder {
	t.Helper()
	r, err := f.ProcessRecorder(ctxFor(t))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func tenant(t *testing.T, f persistence.Factory, id string) persistence.Factory {
	t.Helper()
	tf, err := f.Tenant(id)
	if err != nil {
		t.Fatalf("tenant %q: %v", id, err)
	}
	return tf
}

func allNotifications(t *testing.T, r persistence.ApplicationRecorder, all bool) []persistence.Notification {
	t.Helper()
	var out []persistence.Notification
	for n, err := range persistence.ReadNotifications(ctxFor(t), r, persistence.NotificationQuery{Start: 1, AllTenants: all}, 100) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

// testCommits tests commit IDs and headers: kept with the events, read
// back by every read, and a commit recorded again refused as already
// committed, never as a conflict.
func testCommits(t *testing.T, open func(t *testing.T) persistence.Factory) {
	t.Run("commit IDs and headers are read back with the events and their notifications", func(t *testing.T) {
		r := processRecorder(t, open(t))
		c := uuid.New()
		headers := persistence.Headers{persistence.HeaderCorrelationID: "order-7", "user": "ada", "note": "ünïcode and \"quotes\""}
		a, b := uuid.New(), uuid.New()
		ids := mustInsert(t, r, commit(c, headers, ev(a, 1, "t", "a1"), ev(a, 2, "t", "a2"), ev(b, 1, "t", "b1")))
		plain := mustInsert(t, r, commit(uuid.New(), nil, ev(b, 2, "t", "b2")))
		waitVisible(t, r, plain[0])
		for _, e := range append(mustSelect(t, r, a, persistence.EventQuery{}), mustSelect(t, r, b, persistence.EventQuery{Lte: ptr(1)})...) {
			if e.CommitID != c || !maps.Equal(e.Headers, headers) {
				t.Fatalf("selected %s version %d with commit %s and headers %v, want %s and %v", e.OriginatorID, e.OriginatorVersion, e.CommitID, e.Headers, c, headers)
			}
		}
		if e := mustSelect(t, r, b, persistence.EventQuery{Gt: ptr(1)}); len(e) != 1 || len(e[0].Headers) != 0 || e[0].CommitID == c || e[0].CommitID == uuid.Nil {
			t.Fatalf("an event of a commit without headers: %+v", e)
		}
		ns := allNotifications(t, r, false)
		if len(ns) != 4 {
			t.Fatalf("%d notifications, want 4", len(ns))
		}
		for i, n := range ns[:3] {
			if n.ID != ids[i] || n.CommitID != c || !maps.Equal(n.Headers, headers) || n.Tenant != "" {
				t.Fatalf("notification %d: ID %d, commit %s, headers %v, tenant %q", i, n.ID, n.CommitID, n.Headers, n.Tenant)
			}
		}
	})

	t.Run("the events of one insert are one commit", func(t *testing.T) {
		r := processRecorder(t, open(t))
		id := uuid.New()
		mixed := []persistence.StoredEvent{commit(uuid.New(), nil, ev(id, 1, "t", ""))[0], commit(uuid.New(), nil, ev(id, 2, "t", ""))[0]}
		if _, err := r.InsertEvents(ctxFor(t), mixed); !errors.Is(err, persistence.ErrProgramming) {
			t.Fatalf("insert events of two commits: %v, want ErrProgramming", err)
		}
		c := uuid.New()
		mixed = []persistence.StoredEvent{commit(c, persistence.Headers{"a": "1"}, ev(id, 1, "t", ""))[0], commit(c, persistence.Headers{"a": "2"}, ev(id, 2, "t", ""))[0]}
		if _, err := r.InsertEvents(ctxFor(t), mixed); !errors.Is(err, persistence.ErrProgramming) {
			t.Fatalf("insert events of one commit with different headers: %v, want ErrProgramming", err)
		}
		if got := mustSelect(t, r, id, persistence.EventQuery{}); len(got) != 0 {
			t.Fatalf("%d events of a refused insert", len(got))
		}
	})

	t.Run("a commit recorded again is already committed, not a conflict", func(t *testing.T) {
		r := processRecorder(t, open(t))
		c := uuid.New()
		a, b := uuid.New(), uuid.New()
		first := commit(c, persistence.Headers{"try": "1"}, ev(a, 1, "t", "a1"), ev(b, 1, "t", "b1"))
		ids := mustInsert(t, r, first)
		wantCommitted := func(what string, events []persistence.StoredEvent, opts ...persistence.InsertOption) {
			t.Helper()
			_, err := r.InsertEvents(ctxFor(t), events, opts...)
			if !errors.Is(err, persistence.ErrAlreadyCommitted) {
				t.Fatalf("%s: %v, want an error wrapping ErrAlreadyCommitted", what, err)
			}
			if errors.Is(err, persistence.ErrConflict) || errors.Is(err, persistence.ErrIntegrity) {
				t.Fatalf("%s: %v: an already recorded commit is not a conflict", what, err)
			}
		}
		wantCommitted("the same save again", commit(c, persistence.Headers{"try": "1"}, ev(a, 1, "t", "a1"), ev(b, 1, "t", "b1")))
		// A command run again on the reloaded aggregates, with the same
		// commit ID, makes events at later versions: still the same commit.
		wantCommitted("the same commit at later versions", commit(c, persistence.Headers{"try": "2"}, ev(a, 2, "t", "a2"), ev(b, 2, "t", "b2")))
		wantCommitted("the same commit with a tracking record", commit(c, nil, ev(b, 2, "t", "b2")),
			persistence.WithTracking(persistence.Tracking{ApplicationName: "up", NotificationID: 1}))
		if has, err := r.HasTrackingID(ctxFor(t), "up", 1); err != nil || has {
			t.Fatalf("the tracking record of an already committed save was recorded: %v %v", has, err)
		}
		d := uuid.New()
		_, err := r.InsertEvents(ctxFor(t), commit(c, nil, ev(a, 2, "t", "a2"), ev(d, 1, "t", "d1")))
		if !errors.Is(err, persistence.ErrIntegrity) {
			t.Fatalf("a commit ID recorded for one aggregate of the save but not the other: %v, want ErrIntegrity", err)
		}
		for _, id := range []uuid.UUID{a, b, d} {
			if got := mustSelect(t, r, id, persistence.EventQuery{}); id != d && len(got) != 1 || id == d && len(got) != 0 {
				t.Fatalf("aggregate %s has %d events after the refused saves", id, len(got))
			}
		}
		waitVisible(t, r, ids[1])
		if ns := allNotifications(t, r, false); len(ns) != 2 {
			t.Fatalf("%d notifications after the refused saves, want 2", len(ns))
		}
		// A version conflict stays a conflict.
		_, err = r.InsertEvents(ctxFor(t), commit(uuid.New(), nil, ev(a, 1, "t", "other")))
		if !errors.Is(err, persistence.ErrIntegrity) || errors.Is(err, persistence.ErrAlreadyCommitted) {
			t.Fatalf("a version conflict: %v, want ErrIntegrity", err)
		}
	})
}

// testTenants tests that tenants are kept apart: the same aggregate ID in
// two tenants is two aggregates, each tenant reads only its own, and the
// operator's view reads every tenant's in one order.
func testTenants(t *testing.T, open func(t *testing.T) persistence.Factory) {
	t.Run("tenants cannot read, overwrite or detect each other's aggregates", func(t *testing.T) {
		f := open(t)
		if _, err := f.Tenant(""); !errors.Is(err, persistence.ErrConfig) {
			t.Fatalf("an empty tenant ID: %v, want ErrConfig", err)
		}
		def, a, b := processRecorder(t, f), processRecorder(t, tenant(t, f, "tenant-a")), processRecorder(t, tenant(t, f, "tenant b/ü"))
		id := uuid.New()
		c := uuid.New()
		for i, r := range []persistence.ProcessRecorder{def, a, b} {
			// The same aggregate ID, versions and commit ID in each tenant.
			ids := mustInsert(t, r, commit(c, nil, ev(id, 1, "t", []string{"default", "a", "b"}[i]), ev(id, 2, "t", "x")))
			waitVisible(t, r, ids[1])
		}
		for i, r := range []persistence.ProcessRecorder{def, a, b} {
			want := []string{"default", "a", "b"}[i]
			got := mustSelect(t, r, id, persistence.EventQuery{})
			if len(got) != 2 || string(got[0].State) != want {
				t.Fatalf("tenant %q reads %d events, the first %q", want, len(got), got[0].State)
			}
			ns := allNotifications(t, r, false)
			if len(ns) != 2 || string(ns[0].State) != want {
				t.Fatalf("tenant %q's log has %d notifications", want, len(ns))
			}
			if max, err := r.MaxNotificationID(ctxFor(t)); err != nil || max != ns[1].ID {
				t.Fatalf("tenant %q's max notification ID %d, want %d (%v)", want, max, ns[1].ID, err)
			}
		}
		a3, err := a.InsertEvents(ctxFor(t), commit(uuid.New(), nil, ev(id, 3, "t", "a3")))
		if err != nil {
			t.Fatalf("tenant a extends its aggregate: %v", err)
		}
		waitVisible(t, a, a3[0])
		if _, err := b.InsertEvents(ctxFor(t), commit(uuid.New(), nil, ev(id, 2, "t", "b2"))); !errors.Is(err, persistence.ErrIntegrity) {
			t.Fatalf("tenant b writes over its own version 2: %v", err)
		}
		if got := mustSelect(t, b, id, persistence.EventQuery{}); len(got) != 2 {
			t.Fatalf("tenant a's save changed tenant b's aggregate: %d events", len(got))
		}
		for i, r := range []persistence.ProcessRecorder{def, a, b} {
			s, ok := r.(persistence.AfterSelector)
			if !ok {
				continue
			}
			want := [][]string{{"default", "x"}, {"a", "x", "a3"}, {"b", "x"}}[i]
			got, err := s.SelectEventsAfter(ctxFor(t), []persistence.After{{OriginatorID: id}})
			if err != nil {
				t.Fatalf("tenant %q selects events after versions: %v", want[0], err)
			}
			var states []string
			for _, e := range got[0] {
				states = append(states, string(e.State))
			}
			if !slices.Equal(states, want) {
				t.Fatalf("tenant %q selects events after versions %q, want %q", want[0], states, want)
			}
		}

		all := allNotifications(t, def, true)
		var tenants []string
		for i, n := range all {
			tenants = append(tenants, n.Tenant)
			if i > 0 && n.ID <= all[i-1].ID {
				t.Fatalf("the operator's view is out of order: %d after %d", n.ID, all[i-1].ID)
			}
		}
		if !slices.Equal(tenants, []string{"", "", "tenant-a", "tenant-a", "tenant b/ü", "tenant b/ü", "tenant-a"}) {
			t.Fatalf("the operator's view has the tenants %q", tenants)
		}
		// The head of the operator's view is the last notification of any
		// tenant, whichever tenant's recorder asks, natively or probed.
		for _, r := range []persistence.ProcessRecorder{def, a, b} {
			// Embedded, the recorder hides any AcrossTenantsMaxer.
			probed := hidden{r}
			for how, asked := range map[string]persistence.ApplicationRecorder{"asked": r, "probed": probed} {
				if max, err := persistence.MaxNotificationIDAcrossTenants(ctxFor(t), asked); err != nil || max != all[len(all)-1].ID {
					t.Fatalf("max notification ID across tenants, %s: %d, want %d (%v)", how, max, all[len(all)-1].ID, err)
				}
			}
		}
		// A checkpoint works across tenants: reading on from any position
		// gives the rest.
		rest, err := def.SelectNotifications(ctxFor(t), persistence.NotificationQuery{Start: all[3].ID + 1, Limit: 10, AllTenants: true})
		if err != nil || len(rest) != 3 || rest[0].ID != all[4].ID {
			t.Fatalf("read across tenants from a checkpoint: %d notifications, %v", len(rest), err)
		}

		snaps := func(tf persistence.Factory) persistence.AggregateRecorder {
			r, err := tf.AggregateRecorder(ctxFor(t), "snapshots")
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		sa, sb := snaps(tenant(t, f, "tenant-a")), snaps(tenant(t, f, "tenant b/ü"))
		mustInsert(t, sa, []persistence.StoredEvent{ev(id, 2, "snap", "a's snapshot")})
		if got := mustSelect(t, sb, id, persistence.EventQuery{}); len(got) != 0 {
			t.Fatalf("tenant b sees tenant a's snapshot")
		}
		mustInsert(t, sb, []persistence.StoredEvent{ev(id, 2, "snap", "b's snapshot")})
		if got := mustSelect(t, sa, id, persistence.EventQuery{}); len(got) != 1 || string(got[0].State) != "a's snapshot" {
			t.Fatalf("tenant a's snapshot after tenant b's: %+v", got)
		}
	})

	t.Run("tracking positions are kept with their tenant and read across tenants", func(t *testing.T) {
		f := open(t)
		a, b := processRecorder(t, tenant(t, f, "a")), processRecorder(t, tenant(t, f, "b"))
		mustInsert(t, a, nil, persistence.WithTracking(persistence.Tracking{ApplicationName: "up", NotificationID: 5}))
		mustInsert(t, b, nil, persistence.WithTracking(persistence.Tracking{ApplicationName: "up", NotificationID: 9}))
		_, err := b.InsertEvents(ctxFor(t), nil, persistence.WithTracking(persistence.Tracking{ApplicationName: "up", NotificationID: 5}))
		wantIntegrity(t, err, "a position recorded by another tenant")
		for _, r := range []persistence.ProcessRecorder{a, b, processRecorder(t, f)} {
			if n, err := r.MaxTrackingID(ctxFor(t), "up"); err != nil || n != 9 {
				t.Fatalf("max tracking ID %d (%v), want 9 from every tenant", n, err)
			}
			if ok, err := r.HasTrackingID(ctxFor(t), "up", 5); err != nil || !ok {
				t.Fatalf("has tracking ID 5: %v %v", ok, err)
			}
		}
	})
}

// testErase tests deleting an aggregate's stream and purging a tenant.
func testErase(t *testing.T, f Features, open func(t *testing.T) persistence.Factory) {
	if !f.Erase {
		t.Run("a factory that declares no Erase is no Eraser", func(t *testing.T) {
			if e, ok := open(t).(persistence.Eraser); ok {
				t.Fatalf("%T implements persistence.Eraser: declare Features.Erase", e)
			}
		})
		return
	}
	eraser := func(t *testing.T, f persistence.Factory) persistence.Eraser {
		t.Helper()
		e, ok := f.(persistence.Eraser)
		if !ok {
			t.Fatalf("Features.Erase is declared, but %T does not implement persistence.Eraser", f)
		}
		return e
	}
	snapshots := func(t *testing.T, f persistence.Factory) persistence.AggregateRecorder {
		t.Helper()
		r, err := f.AggregateRecorder(ctxFor(t), "snapshots")
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	t.Run("deleting an aggregate deletes its events, snapshots, commits and notifications, and nothing else", func(t *testing.T) {
		fac := open(t)
		ta := tenant(t, fac, "a")
		r, other := processRecorder(t, ta), processRecorder(t, fac)
		gone, kept := uuid.New(), uuid.New()
		c := uuid.New()
		mustInsert(t, r, commit(c, nil, ev(gone, 1, "t", "g1"), ev(kept, 1, "t", "k1")))
		mustInsert(t, other, commit(uuid.New(), nil, ev(gone, 1, "t", "default's")))
		mustInsert(t, snapshots(t, ta), []persistence.StoredEvent{ev(gone, 1, "snap", "")})
		ids := mustInsert(t, r, commit(uuid.New(), nil, ev(gone, 2, "t", "g2")))
		waitVisible(t, r, ids[0])
		had, err := eraser(t, ta).DeleteAggregate(ctxFor(t), gone)
		if err != nil || !had {
			t.Fatalf("delete: %v %v", had, err)
		}
		if got := mustSelect(t, r, gone, persistence.EventQuery{}); len(got) != 0 {
			t.Fatalf("%d events of a deleted aggregate", len(got))
		}
		if got := mustSelect(t, snapshots(t, ta), gone, persistence.EventQuery{}); len(got) != 0 {
			t.Fatal("the snapshot of a deleted aggregate is left")
		}
		if ns := allNotifications(t, r, false); len(ns) != 1 || ns[0].OriginatorID != kept {
			t.Fatalf("notifications after the deletion: %d", len(ns))
		}
		if got := mustSelect(t, other, gone, persistence.EventQuery{}); len(got) != 1 {
			t.Fatal("deleting in tenant a deleted the default tenant's aggregate of the same ID")
		}
		// Its commit is gone with it, and its notification IDs are not
		// given again.
		again := mustInsert(t, r, commit(c, nil, ev(gone, 1, "t", "new life")))
		if again[0] <= ids[0] {
			t.Fatalf("a notification ID %d after a deleted one %d", again[0], ids[0])
		}
		if had, err := eraser(t, ta).DeleteAggregate(ctxFor(t), uuid.New()); err != nil || had {
			t.Fatalf("delete an aggregate that has no events: %v %v", had, err)
		}
	})

	t.Run("purging a tenant deletes all its data and nothing of the others", func(t *testing.T) {
		fac := open(t)
		ta, tb := tenant(t, fac, "a"), tenant(t, fac, "b")
		ra, rb := processRecorder(t, ta), processRecorder(t, tb)
		id := uuid.New()
		for _, r := range []persistence.ProcessRecorder{ra, rb} {
			mustInsert(t, r, commit(uuid.New(), nil, ev(id, 1, "t", "x"), ev(uuid.New(), 1, "t", "y")))
		}
		mustInsert(t, ra, nil, persistence.WithTracking(persistence.Tracking{ApplicationName: "up", NotificationID: 3}))
		mustInsert(t, rb, nil, persistence.WithTracking(persistence.Tracking{ApplicationName: "up", NotificationID: 2}))
		mustInsert(t, snapshots(t, ta), []persistence.StoredEvent{ev(id, 1, "snap", "")})
		mustInsert(t, snapshots(t, tb), []persistence.StoredEvent{ev(id, 1, "snap", "")})
		if err := eraser(t, ta).PurgeTenant(ctxFor(t)); err != nil {
			t.Fatal(err)
		}
		if got := mustSelect(t, ra, id, persistence.EventQuery{}); len(got) != 0 {
			t.Fatal("a purged tenant's events are left")
		}
		if got := mustSelect(t, snapshots(t, ta), id, persistence.EventQuery{}); len(got) != 0 {
			t.Fatal("a purged tenant's snapshots are left")
		}
		if ok, _ := ra.HasTrackingID(ctxFor(t), "up", 3); ok {
			t.Fatal("a purged tenant's tracking records are left")
		}
		if ns := allNotifications(t, ra, true); len(ns) != 2 || ns[0].Tenant != "b" {
			t.Fatalf("the log after the purge has %d notifications", len(ns))
		}
		if got := mustSelect(t, rb, id, persistence.EventQuery{}); len(got) != 1 {
			t.Fatal("purging tenant a deleted tenant b's events")
		}
		if got := mustSelect(t, snapshots(t, tb), id, persistence.EventQuery{}); len(got) != 1 {
			t.Fatal("purging tenant a deleted tenant b's snapshots")
		}
		if n, _ := rb.MaxTrackingID(ctxFor(t), "up"); n != 2 {
			t.Fatalf("tenant b's tracking after the purge: %d", n)
		}
		if err := eraser(t, fac).PurgeTenant(ctxFor(t)); !errors.Is(err, persistence.ErrProgramming) {
			t.Fatalf("purge the default tenant: %v, want ErrProgramming", err)
		}
	})
}

// testList tests that an aggregate recorder lists its tenant's
// aggregates.
func testList(t *testing.T, f Features, open func(t *testing.T) persistence.Factory) {
	recorder := func(t *testing.T, fac persistence.Factory) persistence.AggregateRecorder {
		t.Helper()
		r, err := fac.AggregateRecorder(ctxFor(t), "snapshots")
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if !f.List {
		t.Run("a recorder that declares no List is no Lister", func(t *testing.T) {
			if r, ok := recorder(t, open(t)).(persistence.Lister); ok {
				t.Fatalf("%T implements persistence.Lister: declare Features.List", r)
			}
		})
		return
	}
	t.Run("an aggregate recorder lists its tenant's aggregates", func(t *testing.T) {
		fac := open(t)
		r, other := recorder(t, fac), recorder(t, tenant(t, fac, "other"))
		l, ok := r.(persistence.Lister)
		if !ok {
			t.Fatalf("Features.List is declared, but %T does not implement persistence.Lister", r)
		}
		var want []uuid.UUID
		for range 3 {
			id := uuid.New()
			want = append(want, id)
			mustInsert(t, r, []persistence.StoredEvent{ev(id, 1, "t", ""), ev(id, 2, "t", "")})
		}
		mustInsert(t, other, []persistence.StoredEvent{ev(uuid.New(), 1, "t", "")})
		var got []uuid.UUID
		for id, err := range l.Originators(ctxFor(t)) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, id)
		}
		less := func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) }
		slices.SortFunc(got, less)
		slices.SortFunc(want, less)
		if !slices.Equal(got, want) {
			t.Fatalf("listed %v, want %v", got, want)
		}
	})
}

// hidden is an application recorder that offers none of the optional
// interfaces of the one it embeds.
type hidden struct {
	persistence.ApplicationRecorder
}

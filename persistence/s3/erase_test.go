package s3

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/uuid"

	"github.com/strata-go/strata/internal/awsconf"
	"github.com/strata-go/strata/internal/awstest"
	"github.com/strata-go/strata/persistence"
)

// faulty lets a budget of requests through once armed, then fails every
// request, as a process that dies at that point sends nothing more.
type faulty struct {
	armed  atomic.Bool
	budget atomic.Int64
	next   http.RoundTripper
}

var errInjected = errors.New("injected: the process died")

func (f *faulty) RoundTrip(r *http.Request) (*http.Response, error) {
	if f.armed.Load() && f.budget.Add(-1) < 0 {
		return nil, errInjected
	}
	return f.next.RoundTrip(r)
}

// openWith opens a factory of c whose requests go through rt.
func openWith(t *testing.T, c Config, rt http.RoundTripper) (*Factory, error) {
	t.Helper()
	ac, err := awsconf.Load(context.Background(), c.AWS)
	if err != nil {
		t.Fatal(err)
	}
	ac.HTTPClient = &http.Client{Transport: rt}
	return New(context.Background(), awss3.NewFromConfig(ac, func(o *awss3.Options) { o.UsePathStyle = true }), c)
}

func eraseConfig(t *testing.T) Config {
	t.Helper()
	c, err := ConfigFromEnv(persistence.NewEnv("App", awstest.S3Env(t)))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// keysUnder lists the keys under the factory's prefix that contain part.
func keysUnder(t *testing.T, f *Factory, part string) []string {
	t.Helper()
	var keys []string
	if err := f.s.o.list(context.Background(), f.s.cfg.Prefix, "", "", func(k string) bool {
		if strings.Contains(k, part) {
			keys = append(keys, k)
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return keys
}

// erasureWorld records, in tenant "a", an aggregate with two saves (one
// with a commit ID, shared with another aggregate), a snapshot of it and a
// tracking record, and the same aggregate ID in the default tenant.
func erasureWorld(t *testing.T, f *Factory, gone, kept uuid.UUID) {
	t.Helper()
	ctx := context.Background()
	ta, _ := f.Tenant("a")
	r, _ := ta.ProcessRecorder(ctx)
	def, _ := f.ProcessRecorder(ctx)
	snaps, _ := ta.AggregateRecorder(ctx, "snapshots")
	ev := func(id uuid.UUID, v int64, commit uuid.UUID) persistence.StoredEvent {
		return persistence.StoredEvent{OriginatorID: id, OriginatorVersion: v, Topic: "t", State: []byte(fmt.Sprint(id, v)), CommitID: commit}
	}
	c := uuid.New()
	for _, step := range []func() error{
		func() error {
			_, err := r.InsertEvents(ctx, []persistence.StoredEvent{ev(gone, 1, c), ev(kept, 1, c)})
			return err
		},
		func() error {
			_, err := r.InsertEvents(ctx, []persistence.StoredEvent{ev(gone, 2, uuid.New())},
				persistence.WithTracking(persistence.Tracking{ApplicationName: "up", NotificationID: 7}))
			return err
		},
		func() error {
			_, err := def.InsertEvents(ctx, []persistence.StoredEvent{ev(gone, 1, uuid.Nil)})
			return err
		},
		func() error {
			_, err := snaps.InsertEvents(ctx, []persistence.StoredEvent{ev(gone, 2, uuid.Nil)})
			return err
		},
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
}

// checkErased checks what every reader of f must see once gone is erased
// in tenant "a" (or the tenant purged): nothing of gone there, the rest
// untouched.
func checkErased(t *testing.T, f *Factory, gone, kept uuid.UUID, purged bool) {
	t.Helper()
	ctx := context.Background()
	ta, _ := f.Tenant("a")
	r, _ := ta.ProcessRecorder(ctx)
	def, _ := f.ProcessRecorder(ctx)
	snaps, _ := ta.AggregateRecorder(ctx, "snapshots")
	if evs, err := r.SelectEvents(ctx, gone, persistence.EventQuery{}); err != nil || len(evs) != 0 {
		t.Fatalf("events of an erased aggregate: %d %v", len(evs), err)
	}
	if evs, err := snaps.SelectEvents(ctx, gone, persistence.EventQuery{}); err != nil || len(evs) != 0 {
		t.Fatalf("snapshots of an erased aggregate: %d %v", len(evs), err)
	}
	for id, err := range snaps.(persistence.Lister).Originators(ctx) {
		if err != nil || id == gone {
			t.Fatalf("an erased aggregate listed: %v %v", id, err)
		}
	}
	if evs, err := def.SelectEvents(ctx, gone, persistence.EventQuery{}); err != nil || len(evs) != 1 {
		t.Fatalf("the default tenant's aggregate of the same ID: %d %v", len(evs), err)
	}
	ns, err := r.SelectNotifications(ctx, persistence.NotificationQuery{Start: 1, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	want := 1 // kept's
	if purged {
		want = 0
	}
	if len(ns) != want || want == 1 && ns[0].OriginatorID != kept {
		t.Fatalf("tenant a's notifications: %+v", ns)
	}
	ok, err := r.HasTrackingID(ctx, "up", 7)
	if err != nil || ok != !purged {
		t.Fatalf("tracking record after the erasure: %v %v", ok, err)
	}
	if n, err := r.MaxTrackingID(ctx, "up"); err != nil || purged && n != 0 || !purged && n != 7 {
		t.Fatalf("max tracking ID after the erasure: %d %v", n, err)
	}
}

// checkDeleted checks that no object holds gone's data in tenant a: no
// index object, and no commit record with its events.
func checkDeleted(t *testing.T, f *Factory, gone uuid.UUID, purged bool) {
	t.Helper()
	ctx := context.Background()
	tseg := tenantSeg("a")
	for _, part := range []string{"/agg/" + tseg + "/" + gone.String(), "/cid/" + tseg + "/" + gone.String()} {
		if keys := keysUnder(t, f, part); len(keys) > 0 {
			t.Errorf("erased objects left: %v", keys)
		}
	}
	if purged {
		if keys := keysUnder(t, f, "/"+tseg+"/"); len(keys) > 0 {
			t.Errorf("objects of a purged tenant left: %v", keys)
		}
	}
	for _, sp := range []*space{f.s.events, f.s.purpose("snapshots")} {
		pos, _, err := sp.head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for p := int64(1); p <= pos; p++ {
			rec, err := sp.readRecord(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range rec.Events {
				if e.ID == gone && rec.Tenant == "a" || purged && rec.Tenant == "a" && !e.erased() {
					t.Errorf("log position %d of %s still holds an erased event", p, sp.prefix)
				}
			}
			if purged && rec.Erase == nil && rec.Track != nil && rec.Tenant == "a" {
				t.Errorf("log position %d still holds a purged tracking record", p)
			}
		}
	}
	if keys := keysUnder(t, f, "/ers/"); len(keys) == 0 || !strings.HasSuffix(keys[len(keys)-1], "/done") {
		t.Errorf("the marker is not marked done: %v", keys)
	}
}

// TestAnErasureCutShortReadsErasedAndTheNextOpenFinishesIt stops the
// eraser's process at every point of its deletion after the marker: from
// the moment the marker is claimed readers see the erasure, whatever is
// left; a factory opened afterwards deletes what was left.
func TestAnErasureCutShortReadsErasedAndTheNextOpenFinishesIt(t *testing.T) {
	for _, purge := range []bool{false, true} {
		// Budgets of requests after the marker: none, in the sweep of
		// the events (lists, gets, the rewrite of a commit record), in
		// that of the snapshots.
		for _, budget := range []int64{0, 2, 4, 7, 10} {
			t.Run(fmt.Sprintf("purge=%v after %d requests", purge, budget), func(t *testing.T) {
				ctx := context.Background()
				c := eraseConfig(t)
				rt := &faulty{next: http.DefaultTransport}
				f, err := openWith(t, c, rt)
				if err != nil {
					t.Fatal(err)
				}
				gone, kept := uuid.New(), uuid.New()
				erasureWorld(t, f, gone, kept)
				f.s.afterMarker = func() { rt.budget.Store(budget); rt.armed.Store(true) }
				ta, _ := f.Tenant("a")
				if purge {
					err = ta.(persistence.Eraser).PurgeTenant(ctx)
				} else {
					_, err = ta.(persistence.Eraser).DeleteAggregate(ctx, gone)
				}
				if err != nil && !errors.Is(err, errInjected) {
					t.Fatalf("erasure: %v", err)
				}
				// What the dead process left, read by a process that
				// finishes nothing.
				ro := c
				ro.ReadOnly = true
				reader, err := openWith(t, ro, http.DefaultTransport)
				if err != nil {
					t.Fatal(err)
				}
				if purge {
					checkPurged(t, reader, gone)
				} else {
					checkErased(t, reader, gone, kept, false)
				}
				// A stalled writer writes an index object of an erased
				// save late: it stays hidden.
				late := reader.s.events.chunkKey("a", gone, 1, 1, 1)
				wrote := true
				if err := reader.s.o.create(ctx, late, encode(chunk{Pos: 1, Events: []storedEvent{{ID: gone, Version: 1, Topic: "t"}}})); errors.Is(err, errPrecondition) {
					wrote = false // the eraser died before deleting it
				} else if err != nil {
					t.Fatal(err)
				}
				if purge {
					checkPurged(t, reader, gone)
				} else {
					checkErased(t, reader, gone, kept, false)
				}
				if wrote {
					if err := reader.s.o.remove(ctx, []string{late}); err != nil {
						t.Fatal(err)
					}
				}
				next, err := openWith(t, c, http.DefaultTransport)
				if err != nil {
					t.Fatalf("open after the cut-short erasure: %v", err)
				}
				checkDeleted(t, next, gone, purge)
				if !purge {
					checkErased(t, next, gone, kept, false)
				}
				// The aggregate lives again from version 1, commit and
				// all.
				r, _ := ta.ProcessRecorder(ctx)
				if _, err := r.InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: gone, OriginatorVersion: 1, Topic: "t"}}); err == nil {
					t.Fatal("the dead factory saved")
				}
				nta, _ := next.Tenant("a")
				nr, _ := nta.ProcessRecorder(ctx)
				if _, err := nr.InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: gone, OriginatorVersion: 1, Topic: "t", State: []byte("new")}}); err != nil {
					t.Fatal(err)
				}
				if evs, err := nr.SelectEvents(ctx, gone, persistence.EventQuery{}); err != nil || len(evs) != 1 || string(evs[0].State) != "new" {
					t.Fatalf("the aggregate saved anew: %+v %v", evs, err)
				}
			})
		}
	}
}

// checkPurged checks what readers see of a purged tenant "a".
func checkPurged(t *testing.T, f *Factory, gone uuid.UUID) {
	t.Helper()
	ctx := context.Background()
	ta, _ := f.Tenant("a")
	r, _ := ta.ProcessRecorder(ctx)
	def, _ := f.ProcessRecorder(ctx)
	snaps, _ := ta.AggregateRecorder(ctx, "snapshots")
	for _, rec := range []persistence.AggregateRecorder{r, snaps} {
		if evs, err := rec.SelectEvents(ctx, gone, persistence.EventQuery{}); err != nil || len(evs) != 0 {
			t.Fatalf("records of a purged tenant: %d %v", len(evs), err)
		}
	}
	for id, err := range snaps.(persistence.Lister).Originators(ctx) {
		t.Fatalf("an aggregate of a purged tenant listed: %v %v", id, err)
	}
	if ns, err := r.SelectNotifications(ctx, persistence.NotificationQuery{Start: 1, Limit: 100, AllTenants: true}); err != nil || len(ns) != 1 || ns[0].Tenant != "" {
		t.Fatalf("the log after a purge: %+v %v", ns, err)
	}
	if ok, err := r.HasTrackingID(ctx, "up", 7); err != nil || ok {
		t.Fatalf("a purged tracking record: %v %v", ok, err)
	}
	if n, err := def.MaxTrackingID(ctx, "up"); err != nil || n != 0 {
		t.Fatalf("max tracking ID after a purge: %d %v", n, err)
	}
	if evs, err := def.SelectEvents(ctx, gone, persistence.EventQuery{}); err != nil || len(evs) != 1 {
		t.Fatalf("the default tenant's aggregate of the same ID: %d %v", len(evs), err)
	}
}

// TestTwoProcessesReplacingASnapshotAtOnce replaces one snapshot from two
// factories at once, with a reader reading it meanwhile: every read finds
// exactly one snapshot, and the last replacement in the log wins.
func TestTwoProcessesReplacingASnapshotAtOnce(t *testing.T) {
	ctx := context.Background()
	c := eraseConfig(t)
	var recs []*AggregateRecorder
	var facs []*Factory
	for range 2 {
		f, err := openWith(t, c, http.DefaultTransport)
		if err != nil {
			t.Fatal(err)
		}
		r, _ := f.AggregateRecorder(ctx, "snapshots")
		recs, facs = append(recs, r.(*AggregateRecorder)), append(facs, f)
	}
	id := uuid.New()
	snap := func(state string) []persistence.StoredEvent {
		return []persistence.StoredEvent{{OriginatorID: id, OriginatorVersion: 5, Topic: "snap", State: []byte(state)}}
	}
	if _, err := recs[0].InsertEvents(ctx, snap("first")); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var reads atomic.Int64
	readErr := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				close(readErr)
				return
			default:
			}
			evs, err := recs[1].SelectEvents(ctx, id, persistence.EventQuery{})
			if err == nil && len(evs) != 1 {
				err = fmt.Errorf("a read found %d snapshots", len(evs))
			}
			if err != nil {
				readErr <- err
				close(readErr)
				return
			}
			reads.Add(1)
		}
	}()
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 4 {
				if err := recs[w%2].ReplaceEvents(ctx, snap(fmt.Sprintf("w%d-%d", w, i))); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	if err := <-readErr; err != nil {
		t.Fatal(err)
	}
	sp := facs[0].s.purpose("snapshots")
	pos, _, err := sp.head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	last, err := sp.readRecord(ctx, pos)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		evs, err := r.SelectEvents(ctx, id, persistence.EventQuery{})
		if err != nil || len(evs) != 1 || string(evs[0].State) != string(last.Events[0].State) {
			t.Fatalf("after the replacements: %+v %v, want the last one in the log, %q", evs, err, last.Events[0].State)
		}
	}
	if pos != 17 {
		t.Fatalf("the snapshots' log ends at %d, want 17 saves", pos)
	}
	t.Logf("%d reads during 16 replacements; %d chunks left", reads.Load(), len(keysUnder(t, facs[0], "/agg/")))
}

// TestAMarkerWhoseEraserDiedBeforeIndexingIt puts an erase marker at the
// next log position without its index object, as an eraser that dies
// right after its put leaves it: readers see the erasure from the log
// itself, a factory opened afterwards deletes what it erased, and the
// next save indexes it.
func TestAMarkerWhoseEraserDiedBeforeIndexingIt(t *testing.T) {
	ctx := context.Background()
	c := eraseConfig(t)
	f, err := openWith(t, c, http.DefaultTransport)
	if err != nil {
		t.Fatal(err)
	}
	gone, kept := uuid.New(), uuid.New()
	erasureWorld(t, f, gone, kept)
	bounds, err := f.s.purposeHeads(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	sp := f.s.events
	pos, _, err := sp.head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	died := &commitRecord{Tenant: "a", Nonce: "died", Erase: &eraseRecord{Aggregate: &gone, Bounds: bounds}}
	if err := sp.o.create(ctx, sp.logKey(pos+1), encode(died)); err != nil {
		t.Fatal(err)
	}
	ro := c
	ro.ReadOnly = true
	reader, err := openWith(t, ro, http.DefaultTransport)
	if err != nil {
		t.Fatal(err)
	}
	checkErased(t, reader, gone, kept, false)
	// The factory that saw the log before the marker sees it too.
	checkErased(t, f, gone, kept, false)
	next, err := openWith(t, c, http.DefaultTransport)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := next.ProcessRecorder(ctx)
	if _, err := r.InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: uuid.New(), OriginatorVersion: 1, Topic: "t"}}); err != nil {
		t.Fatal(err)
	}
	checkDeleted(t, next, gone, false)
	if ok, err := sp.o.exists(ctx, sp.markerKey(pos+1)); err != nil || !ok {
		t.Fatalf("the next save did not index the marker: %v %v", ok, err)
	}
}

// TestErasuresRacingSaves deletes an aggregate again and again while
// writers of two factories append to it and a reader reads it: every
// read is one life of the aggregate (all its saves between the same two
// markers), whole up to its last save, in version order, and after the
// last deletion nothing of it is left. A life need not start at version
// 1 nor be consecutive: a writer that read the aggregate before a marker
// and saves after it saves the version after the one it read, which no
// chunk of the new life conflicts with (as on every store, whose
// versions may have gaps), so the check is by positions, not versions.
func TestErasuresRacingSaves(t *testing.T) {
	ctx := context.Background()
	c := eraseConfig(t)
	var recs []persistence.ProcessRecorder
	var facs []*Factory
	for range 2 {
		f, err := openWith(t, c, http.DefaultTransport)
		if err != nil {
			t.Fatal(err)
		}
		r, _ := f.ProcessRecorder(ctx)
		recs, facs = append(recs, r), append(facs, f)
	}
	id := uuid.New()
	ordered := func(evs []persistence.StoredEvent) error {
		for i := 1; i < len(evs); i++ {
			if evs[i].OriginatorVersion <= evs[i-1].OriginatorVersion {
				return fmt.Errorf("versions %d then %d in one read", evs[i-1].OriginatorVersion, evs[i].OriginatorVersion)
			}
		}
		return nil
	}
	// The position of each save, by its commit ID, and the commit IDs of
	// each read, checked against the markers once all is done.
	var mu sync.Mutex
	savedAt := map[uuid.UUID]int64{}
	var readCommits [][]uuid.UUID
	var wg sync.WaitGroup
	var saves, conflicts, reads atomic.Int64
	errs := make(chan error, 16)
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := recs[w%2]
			for range 8 {
				last, err := r.SelectEvents(ctx, id, persistence.EventQuery{Desc: true, Limit: 1})
				if err != nil {
					errs <- err
					return
				}
				v := int64(1)
				if len(last) == 1 {
					v = last[0].OriginatorVersion + 1
				}
				commit := uuid.New()
				var nids []int64
				nids, err = r.InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: id, OriginatorVersion: v, Topic: "t", CommitID: commit}})
				if err == nil {
					mu.Lock()
					savedAt[commit] = nids[0] / NotificationStride
					mu.Unlock()
				}
				switch {
				case errors.Is(err, persistence.ErrIntegrity):
					conflicts.Add(1)
				case err != nil:
					errs <- err
					return
				default:
					saves.Add(1)
				}
			}
		}()
	}
	done := make(chan struct{})
	var readers sync.WaitGroup
	readers.Add(1)
	go func() {
		defer readers.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			evs, err := recs[1].SelectEvents(ctx, id, persistence.EventQuery{})
			if err == nil {
				err = ordered(evs)
			}
			if err != nil {
				errs <- err
				return
			}
			var commits []uuid.UUID
			for _, e := range evs {
				commits = append(commits, e.CommitID)
			}
			mu.Lock()
			readCommits = append(readCommits, commits)
			mu.Unlock()
			reads.Add(1)
		}
	}()
	var deleted int
	for range 4 {
		had, err := facs[0].DeleteAggregate(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if had {
			deleted++
		}
	}
	wg.Wait()
	if _, err := facs[1].DeleteAggregate(ctx, id); err != nil {
		t.Fatal(err)
	}
	close(done)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	ms, err := facs[0].s.events.currentMarkers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	life := func(pos int64) int { // the markers before pos
		n := 0
		for _, m := range ms {
			if m.Pos < pos {
				n++
			}
		}
		return n
	}
	for _, commits := range readCommits {
		if len(commits) == 0 {
			continue
		}
		var last int64
		in := map[int64]bool{}
		for _, c := range commits {
			p, ok := savedAt[c]
			if !ok {
				t.Fatalf("a read returned commit %s, which no writer saved", c)
			}
			in[p] = true
			last = max(last, p)
		}
		for c, p := range savedAt {
			if life(p) == life(last) && p <= last && !in[p] {
				t.Errorf("a read up to position %d lacks the save at %d (commit %s) of the same life: a hole", last, p, c)
			}
		}
		for p := range in {
			if life(p) != life(last) {
				t.Errorf("a read mixes the save at %d with the save at %d across a marker", p, last)
			}
		}
	}
	for _, r := range recs {
		if evs, err := r.SelectEvents(ctx, id, persistence.EventQuery{}); err != nil || len(evs) != 0 {
			t.Fatalf("after the last deletion: %d events, %v", len(evs), err)
		}
	}
	if keys := keysUnder(t, facs[0], "/"+id.String()+"/"); len(keys) > 0 {
		t.Fatalf("objects of the deleted aggregate left: %v", keys)
	}
	t.Logf("%d saves, %d conflicts, %d reads, %d of 4 deletions found events", saves.Load(), conflicts.Load(), reads.Load(), deleted)
}

// TestKeysWrittenBeforePositionsAreReadAndErased writes a save as the
// store laid it out before index keys carried positions: it is read, its
// commit and tracking records count, and a purge hides and deletes it.
func TestKeysWrittenBeforePositionsAreReadAndErased(t *testing.T) {
	ctx := context.Background()
	c := eraseConfig(t)
	f, err := openWith(t, c, http.DefaultTransport)
	if err != nil {
		t.Fatal(err)
	}
	sp := f.s.events
	id, commit := uuid.New(), uuid.New()
	rec := &commitRecord{Tenant: "a", Commit: commit.String(), Track: &persistence.Tracking{ApplicationName: "up", NotificationID: 9}, Nonce: "old",
		Events: []storedEvent{{ID: id, Version: 1, Topic: "t", State: []byte("old")}}}
	seg := tenantSeg("a")
	for key, body := range map[string][]byte{
		sp.logKey(1): encode(rec),
		sp.prefix + "agg/" + seg + "/" + id.String() + "/" + sortable(1) + "-" + sortable(1): encode(chunk{Pos: 1, Commit: rec.Commit, Events: rec.Events}),
		sp.commitPrefix("a", id, commit): []byte("1"),
		sp.trackPrefix("up", 9):          []byte("a"),
		sp.trackMaxKey("up"):             []byte("9"),
		sp.tenantMaxKey("a"):             []byte("1"),
		sp.hintKey():                     []byte("1"),
	} {
		if err := sp.o.create(ctx, key, body); err != nil {
			t.Fatal(err)
		}
	}
	f, err = openWith(t, c, http.DefaultTransport)
	if err != nil {
		t.Fatal(err)
	}
	ta, _ := f.Tenant("a")
	r, _ := ta.ProcessRecorder(ctx)
	if evs, err := r.SelectEvents(ctx, id, persistence.EventQuery{}); err != nil || len(evs) != 1 || string(evs[0].State) != "old" {
		t.Fatalf("events under the old keys: %+v %v", evs, err)
	}
	if ok, err := r.HasTrackingID(ctx, "up", 9); err != nil || !ok {
		t.Fatalf("tracking record under the old key: %v %v", ok, err)
	}
	_, err = r.InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: id, OriginatorVersion: 2, Topic: "t", CommitID: commit}})
	if !errors.Is(err, persistence.ErrAlreadyCommitted) {
		t.Fatalf("a commit under the old key again: %v, want ErrAlreadyCommitted", err)
	}
	if err := ta.(persistence.Eraser).PurgeTenant(ctx); err != nil {
		t.Fatal(err)
	}
	if evs, err := r.SelectEvents(ctx, id, persistence.EventQuery{}); err != nil || len(evs) != 0 {
		t.Fatalf("events of a purged tenant under the old keys: %+v %v", evs, err)
	}
	if ok, err := r.HasTrackingID(ctx, "up", 9); err != nil || ok {
		t.Fatalf("a purged tracking record under the old key: %v %v", ok, err)
	}
	if n, err := r.MaxTrackingID(ctx, "up"); err != nil || n != 0 {
		t.Fatalf("max tracking ID after the purge: %d %v", n, err)
	}
	checkDeleted(t, f, id, true)
}

package s3

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"

	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/uuid"

	"github.com/strata-go/strata/internal/awsconf"
	"github.com/strata-go/strata/internal/awstest"
	"github.com/strata-go/strata/persistence"
)

func openTest(t *testing.T, page int) *Factory {
	t.Helper()
	c, err := ConfigFromEnv(persistence.NewEnv("App", awstest.S3Env(t)))
	if err != nil {
		t.Fatal(err)
	}
	c.PageSize = page
	f, err := Open(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestASaveWhoseWriterDiedBeforeIndexingIsReadAndIndexedByTheNext puts a
// commit record at the next log position without its indexes, as a
// writer that dies right after its put leaves it: readers see the save,
// a save that conflicts with it is refused, and the next save writes its
// indexes before it claims the position after it.
func TestASaveWhoseWriterDiedBeforeIndexingIsReadAndIndexedByTheNext(t *testing.T) {
	ctx := context.Background()
	f := openTest(t, 0)
	r, err := f.ProcessRecorder(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.New()
	commit := uuid.New()
	if _, err := r.InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: id, OriginatorVersion: 1, Topic: "t", State: []byte("a")}}); err != nil {
		t.Fatal(err)
	}
	sp := f.s.events
	died := &commitRecord{Commit: commit.String(), Track: &persistence.Tracking{ApplicationName: "up", NotificationID: 4}, Nonce: "died",
		Events: []storedEvent{{ID: id, Version: 2, Topic: "t", State: []byte("b")}}}
	if err := sp.o.create(ctx, sp.logKey(2), encode(died)); err != nil {
		t.Fatal(err)
	}

	evs, err := r.SelectEvents(ctx, id, persistence.EventQuery{})
	if err != nil || len(evs) != 2 || string(evs[1].State) != "b" || evs[1].CommitID != commit {
		t.Fatalf("events of an unindexed save: %+v %v", evs, err)
	}
	if desc, err := r.SelectEvents(ctx, id, persistence.EventQuery{Desc: true, Limit: 1}); err != nil || len(desc) != 1 || desc[0].OriginatorVersion != 2 {
		t.Fatalf("last event of an unindexed save: %+v %v", desc, err)
	}
	if n, err := r.MaxNotificationID(ctx); err != nil || n != 2*NotificationStride+1 {
		t.Fatalf("max notification ID %d %v", n, err)
	}
	if ok, err := r.HasTrackingID(ctx, "up", 4); err != nil || !ok {
		t.Fatalf("tracking record of an unindexed save: %v %v", ok, err)
	}
	if n, err := r.MaxTrackingID(ctx, "up"); err != nil || n != 4 {
		t.Fatalf("max tracking ID %d %v", n, err)
	}
	ns, err := r.SelectNotifications(ctx, persistence.NotificationQuery{Start: 1, Limit: 10})
	if err != nil || len(ns) != 2 || ns[1].ID != 2*NotificationStride+1 {
		t.Fatalf("notifications: %+v %v", ns, err)
	}

	_, err = r.InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: id, OriginatorVersion: 2, Topic: "t", State: []byte("c")}})
	if !errors.Is(err, persistence.ErrIntegrity) {
		t.Fatalf("a save conflicting with an unindexed one: %v, want ErrIntegrity", err)
	}
	_, err = r.InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: id, OriginatorVersion: 2, Topic: "t", State: []byte("b"), CommitID: commit}})
	if !errors.Is(err, persistence.ErrAlreadyCommitted) {
		t.Fatalf("the unindexed save again: %v, want ErrAlreadyCommitted", err)
	}
	if hint, _, _, err := sp.readInt(ctx, sp.hintKey()); err != nil || hint < 2 {
		t.Errorf("hint %d after the next save indexed position 2: %v", hint, err)
	}
	for _, key := range []string{sp.commitKey("", id, commit, 2), sp.trackKey("up", 4, "", 2), sp.chunkKey("", id, 2, 2, 2)} {
		if ok, err := sp.o.exists(ctx, key); err != nil || !ok {
			t.Errorf("index object %s was not written: %v", key, err)
		}
	}
}

// TestEveryListFollowsEveryPage reads with two keys a page: the log, an
// aggregate's chunks, a tenant's aggregates and the end of the log with
// no hint (aett's S3 store lists once, at most 1,000 keys).
func TestEveryListFollowsEveryPage(t *testing.T) {
	ctx := context.Background()
	f := openTest(t, 2)
	tf, err := f.Tenant("a/b_c")
	if err != nil {
		t.Fatal(err)
	}
	r, _ := f.ApplicationRecorder(ctx)
	tr, _ := tf.ApplicationRecorder(ctx)
	snaps, _ := tf.AggregateRecorder(ctx, "snapshots")
	id := uuid.New()
	var others []uuid.UUID
	for v := int64(1); v <= 7; v++ {
		if _, err := r.InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: id, OriginatorVersion: v, Topic: "t", State: []byte(fmt.Sprint(v))}}); err != nil {
			t.Fatal(err)
		}
		o := uuid.New()
		others = append(others, o)
		if _, err := tr.InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: o, OriginatorVersion: 1, Topic: "t"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := snaps.InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: o, OriginatorVersion: 1, Topic: "s"}}); err != nil {
			t.Fatal(err)
		}
	}
	evs, err := r.SelectEvents(ctx, id, persistence.EventQuery{})
	if err != nil || len(evs) != 7 || string(evs[6].State) != "7" {
		t.Fatalf("selected %d of 7 events: %v", len(evs), err)
	}
	mid, err := r.SelectEvents(ctx, id, persistence.EventQuery{Gt: ptr(2), Lte: ptr(5), Desc: true})
	if err != nil || len(mid) != 3 || mid[0].OriginatorVersion != 5 || mid[2].OriginatorVersion != 3 {
		t.Fatalf("versions 5 to 3: %+v %v", mid, err)
	}
	ns, err := tr.SelectNotifications(ctx, persistence.NotificationQuery{Start: 1, Limit: 100})
	if err != nil || len(ns) != 7 || ns[6].OriginatorID != others[6] || ns[0].Tenant != "a/b_c" {
		t.Fatalf("selected %d of the tenant's 7 notifications: %v", len(ns), err)
	}
	all, err := r.SelectNotifications(ctx, persistence.NotificationQuery{Start: 1, Limit: 100, AllTenants: true})
	if err != nil || len(all) != 14 {
		t.Fatalf("selected %d of all 14 notifications: %v", len(all), err)
	}
	seen := map[uuid.UUID]bool{}
	for o, err := range snaps.(persistence.Lister).Originators(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		seen[o] = true
	}
	if len(seen) != 7 {
		t.Fatalf("listed %d of 7 aggregates", len(seen))
	}
	// Without its hint, a new process finds the end of the log by
	// listing it all.
	if err := f.s.o.remove(ctx, []string{f.s.events.hintKey()}); err != nil {
		t.Fatal(err)
	}
	f, err = New(ctx, f.s.o.client, f.s.cfg)
	if err != nil {
		t.Fatal(err)
	}
	r, _ = f.ApplicationRecorder(ctx)
	if pos, _, err := f.s.events.head(ctx); err != nil || pos != 14 {
		t.Fatalf("end of the log without a hint: %d %v, want 14", pos, err)
	}
	if _, err := r.InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: id, OriginatorVersion: 8, Topic: "t"}}); err != nil {
		t.Fatal(err)
	}
	if n, err := r.MaxNotificationID(ctx); err != nil || n != 15*NotificationStride+1 {
		t.Fatalf("max notification ID %d %v", n, err)
	}
}

func ptr(v int64) *int64 { return &v }

// FuzzDecode feeds damaged objects and keys to the decoders of what a
// bucket holds: errors wrapping ErrCorrupt, never a panic.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"tenant":"a","commit":"x","events":[{"id":"00000000-0000-0000-0000-000000000001","v":1,"topic":"t","state":"AA=="}],"nonce":"n"}`), "agg/-/id/"+sortable(2)+"-"+sortable(1))
	f.Add([]byte(`{"pos":1,"events":null}`), "x")
	f.Fuzz(func(t *testing.T, b []byte, key string) {
		var r commitRecord
		if err := decode("k", b, &r); err != nil {
			if !errors.Is(err, persistence.ErrCorrupt) {
				t.Fatalf("decode: %v", err)
			}
		} else if _, err := r.commitID(); err != nil && !errors.Is(err, persistence.ErrCorrupt) {
			t.Fatalf("commit ID: %v", err)
		}
		var c chunk
		if err := decode("k", b, &c); err != nil && !errors.Is(err, persistence.ErrCorrupt) {
			t.Fatalf("decode chunk: %v", err)
		}
		if _, _, _, err := parseChunkKey(key); err != nil && !errors.Is(err, persistence.ErrCorrupt) {
			t.Fatalf("chunk key: %v", err)
		}
	})
}

// counting counts the requests a client sends.
type counting struct {
	n    atomic.Int64
	next http.RoundTripper
}

func (c *counting) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

// TestASaveOfOneProcessIsSixRequests counts what docs/s3.md claims: in the
// steady state of one writing process, a save of one aggregate with a
// commit ID is eight requests (six without: the commit record is read
// and written), and reading the aggregate back is two lists of the end
// of the log and a list of its chunks, with a get of each chunk the
// process has not seen.
func TestASaveOfOneProcessIsSixRequests(t *testing.T) {
	ctx := context.Background()
	awstest.Require(t)
	c, err := ConfigFromEnv(persistence.NewEnv("App", awstest.S3Env(t)))
	if err != nil {
		t.Fatal(err)
	}
	rt := &counting{next: http.DefaultTransport}
	ac, err := awsconf.Load(ctx, c.AWS)
	if err != nil {
		t.Fatal(err)
	}
	ac.HTTPClient = &http.Client{Transport: rt}
	f, err := New(ctx, awss3.NewFromConfig(ac, func(o *awss3.Options) { o.UsePathStyle = true }), c)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, _ := f.ApplicationRecorder(ctx)
	id := uuid.New()
	save := func(v int64, commit uuid.UUID) int64 {
		before := rt.n.Load()
		if _, err := r.InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: id, OriginatorVersion: v, Topic: "t", CommitID: commit}}); err != nil {
			t.Fatal(err)
		}
		return rt.n.Load() - before
	}
	save(1, uuid.Nil) // the first save creates the hint and the tenant's maximum
	if n := save(2, uuid.Nil); n != 6 {
		t.Errorf("a save without a commit ID took %d requests, want 6", n)
	}
	if n := save(3, uuid.New()); n != 8 {
		t.Errorf("a save with a commit ID took %d requests, want 8", n)
	}
	before := rt.n.Load()
	if evs, err := r.SelectEvents(ctx, id, persistence.EventQuery{}); err != nil || len(evs) != 3 {
		t.Fatalf("%d events, %v", len(evs), err)
	}
	// The end of the log, the list, the end of the log again (for markers
	// claimed during the list); the chunks are the process's own, cached
	// when it wrote them.
	if n := rt.n.Load() - before; n != 3 {
		t.Errorf("reading an aggregate of 3 saves took %d requests, want 3", n)
	}
	// Another process gets each chunk once.
	other, err := New(ctx, f.s.o.client, c)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	or, _ := other.ApplicationRecorder(ctx)
	// Once a process has read an aggregate whole, it knows its chunks
	// until another process writes: a save checks against them with no
	// list, a conflicting one is refused after one list of the end of
	// the log, and a read is that one list.
	if n := save(4, uuid.New()); n != 6 {
		t.Errorf("a save with a commit ID of a known aggregate took %d requests, want 6", n)
	}
	if n := save(5, uuid.Nil); n != 5 {
		t.Errorf("a save without a commit ID of a known aggregate took %d requests, want 5", n)
	}
	before = rt.n.Load()
	if _, err := r.InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: id, OriginatorVersion: 5, Topic: "t"}}); !errors.Is(err, persistence.ErrIntegrity) {
		t.Fatalf("a save at a recorded version: %v, want ErrIntegrity", err)
	}
	if n := rt.n.Load() - before; n != 1 {
		t.Errorf("a conflicting save of a known aggregate took %d requests, want 1", n)
	}
	before = rt.n.Load()
	if evs, err := r.SelectEvents(ctx, id, persistence.EventQuery{}); err != nil || len(evs) != 5 {
		t.Fatalf("%d events, %v", len(evs), err)
	}
	if n := rt.n.Load() - before; n != 1 {
		t.Errorf("reading a known aggregate took %d requests, want 1", n)
	}
	// Another process finds the end of the log, reads the hint and lists
	// the markers again (the log grew since it opened), lists the chunks,
	// finds the end again and gets each chunk; then it knows the
	// aggregate, and a read is one list.
	for i, want := range []int64{5 + 5, 1} {
		before := rt.n.Load()
		if evs, err := or.SelectEvents(ctx, id, persistence.EventQuery{}); err != nil || len(evs) != 5 {
			t.Fatalf("%d events, %v", len(evs), err)
		}
		if n := rt.n.Load() - before; n != want {
			t.Errorf("read %d of the aggregate by another process took %d requests, want %d", i+1, n, want)
		}
	}
}

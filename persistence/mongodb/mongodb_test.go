package mongodb_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/strata-go/strata/internal/faultproxy"

	"github.com/strata-go/strata/internal/mongotest"
	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/persistence/mongodb"
	"github.com/strata-go/strata/persistence/recordertest"
)

// features are what the adapter offers, on MongoDB and FerretDB alike: no
// part of it needs what only MongoDB has (see docs/mongodb.md).
var features = recordertest.Features{Replace: true, Erase: true, List: true}

func open(t testing.TB, env map[string]string) *mongodb.Factory {
	t.Helper()
	f, err := mongodb.OpenEnv(context.Background(), persistence.NewEnv("Strata Test", mongotest.Env(t), env))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestFactory(t *testing.T) {
	recordertest.TestFactory(t, features, func(t *testing.T) persistence.Factory { return open(t, nil) })
}

func TestStress(t *testing.T) {
	f := open(t, nil)
	t.Cleanup(func() { f.Close() })
	r, err := f.ApplicationRecorder(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	res := recordertest.Stress(t, r, recordertest.StressConfig{Writers: 16, SavesPerWriter: 50})
	t.Logf("%d saves, %d events, %d conflicts in %v", res.Saves, res.Events, res.Conflicts, res.Elapsed)
}

// splitRecorder sends each save to one of several recorders in turn, as
// writers in several processes would, and reads through the first.
type splitRecorder struct {
	persistence.ApplicationRecorder
	others []persistence.ApplicationRecorder
	n      atomic.Int64
}

func (s *splitRecorder) InsertEvents(ctx context.Context, events []persistence.StoredEvent, opts ...persistence.InsertOption) ([]int64, error) {
	all := append([]persistence.ApplicationRecorder{s.ApplicationRecorder}, s.others...)
	return all[s.n.Add(1)%int64(len(all))].InsertEvents(ctx, events, opts...)
}

// processes opens n factories of the application named app on one fresh
// database, as n processes would, and returns a recorder of each.
func processes(t *testing.T, app string, n int) []persistence.ApplicationRecorder {
	t.Helper()
	ctx := context.Background()
	env := map[string]string{"MONGODB_URI": mongotest.URI(), "MONGODB_DATABASE": mongotest.Database(t)}
	var recs []persistence.ApplicationRecorder
	for range n {
		f, err := mongodb.OpenEnv(ctx, persistence.NewEnv(app, env))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		r, err := f.ApplicationRecorder(ctx)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	return recs
}

// Writers of three factories (three processes, as far as the log can tell)
// race for the same positions: the unique _id, not the factory's lock,
// decides, and the order still holds.
func TestWritersOfSeveralProcessesShareOneOrder(t *testing.T) {
	recs := processes(t, "Shared", 3)
	res := recordertest.Stress(t, &splitRecorder{ApplicationRecorder: recs[0], others: recs[1:]}, recordertest.StressConfig{Writers: 16, SavesPerWriter: 20})
	t.Logf("%d saves, %d events, %d conflicts in %v", res.Saves, res.Events, res.Conflicts, res.Elapsed)
}

func TestSettingsThatCannotBeUsedNameTheirVariable(t *testing.T) {
	for _, tt := range []struct{ env, name string }{
		{"MONGODB_URI=postgres://x", "MONGODB_URI"},
		{"MONGODB_DATABASE=a.b", "MONGODB_DATABASE"},
		{"MONGODB_COLLECTION_PREFIX=Bad-Prefix", "MONGODB_COLLECTION_PREFIX"},
		{"MONGODB_TIMEOUT=soon", "MONGODB_TIMEOUT"},
		{"CREATE_TABLE=perhaps", "CREATE_TABLE"},
		{"READ_ONLY=2", "READ_ONLY"},
	} {
		t.Run(tt.env, func(t *testing.T) {
			k, v, _ := strings.Cut(tt.env, "=")
			_, err := mongodb.ConfigFromEnv(persistence.NewEnv("App", map[string]string{k: v}))
			if !errors.Is(err, persistence.ErrConfig) || !strings.Contains(err.Error(), tt.name) {
				t.Fatalf("got %v, want an ErrConfig naming %s", err, tt.name)
			}
		})
	}
	if _, ok := persistence.LookupModule("mongodb"); !ok {
		t.Fatal("PERSISTENCE_MODULE=mongodb is not registered")
	}
}

func TestAMissingCollectionIsNotCreatedWhenTablesAreNot(t *testing.T) {
	ctx := context.Background()
	db := mongotest.Database(t)
	for _, env := range []string{"CREATE_TABLE=n", "READ_ONLY=y"} {
		k, v, _ := strings.Cut(env, "=")
		f, err := mongodb.OpenEnv(ctx, persistence.NewEnv("Absent", map[string]string{"MONGODB_URI": mongotest.URI(), "MONGODB_DATABASE": db, k: v}))
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.ApplicationRecorder(ctx)
		f.Close()
		if !errors.Is(err, persistence.ErrNoTable) || !strings.Contains(err.Error(), "absent_log") {
			t.Fatalf("%s: %v, want ErrNoTable naming absent_log", env, err)
		}
	}
	// Once the collection exists, a read-only store reads it and refuses
	// writes.
	f := open(t, map[string]string{"MONGODB_DATABASE": db})
	w, err := f.ApplicationRecorder(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.New()
	if _, err := w.InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: id, OriginatorVersion: 1, Topic: "t", State: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	ro := open(t, map[string]string{"MONGODB_DATABASE": db, "READ_ONLY": "y"})
	defer ro.Close()
	r, err := ro.ApplicationRecorder(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := r.SelectEvents(ctx, id, persistence.EventQuery{}); err != nil || len(got) != 1 {
		t.Fatalf("read-only read: %d events, %v", len(got), err)
	}
	if _, err := r.InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: id, OriginatorVersion: 2, Topic: "t"}}); !errors.Is(err, persistence.ErrReadOnly) {
		t.Fatalf("read-only write: %v, want ErrReadOnly", err)
	}
}

func TestACollectionOfOtherDocumentsIsRefused(t *testing.T) {
	ctx := context.Background()
	db := mongotest.Database(t)
	if _, err := mongotest.Client(t).Database(db).Collection("other_log").InsertOne(ctx, bson.D{{Key: "_id", Value: "not a position"}}); err != nil {
		t.Fatal(err)
	}
	g, err := mongodb.OpenEnv(ctx, persistence.NewEnv("Other", map[string]string{"MONGODB_URI": mongotest.URI(), "MONGODB_DATABASE": db}))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if _, err := g.ApplicationRecorder(ctx); !errors.Is(err, persistence.ErrProgramming) || !strings.Contains(err.Error(), "other_log") {
		t.Fatalf("a foreign collection: %v, want ErrProgramming naming other_log", err)
	}
}

// A save whose answer is lost on the way back is not taken for a conflict
// nor lost: the recorder finds its own document at the position (by its
// nonce) and reports the save recorded, or, if it cannot tell, an unknown
// outcome; either way saving it again with its commit ID records nothing
// twice.
func TestASaveWhoseAnswerIsLostIsFoundRecorded(t *testing.T) {
	ctx := context.Background()
	mongotest.Client(t)
	u, err := url.Parse(mongotest.URI())
	if err != nil {
		t.Fatal(err)
	}
	p, err := faultproxy.New(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	db := mongotest.Database(t)
	u.Host = p.Addr()
	if u.Path == "" {
		u.Path = "/"
	}
	q := u.Query()
	q.Set("directConnection", "true")
	q.Set("retryWrites", "false") // the recorder's own check, not the driver's retry
	u.RawQuery = q.Encode()
	f, err := mongodb.OpenEnv(ctx, persistence.NewEnv("Lost", map[string]string{"MONGODB_URI": u.String(), "MONGODB_DATABASE": db}))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := f.ProcessRecorder(ctx)
	if err != nil {
		t.Fatal(err)
	}
	marker := []byte("cut-" + uuid.NewString())
	commit := uuid.New()
	events := []persistence.StoredEvent{{OriginatorID: uuid.New(), OriginatorVersion: 1, Topic: "t", State: marker, CommitID: commit}}
	p.CutAnswerTo(marker)
	ids, err := r.InsertEvents(ctx, events)
	select {
	case <-p.Cuts():
	case <-time.After(10 * time.Second):
		t.Fatal("the proxy did not cut the save's answer")
	}
	switch {
	case err == nil:
		if len(ids) != 1 {
			t.Fatalf("%d notification IDs", len(ids))
		}
	case errors.Is(err, persistence.ErrUnknownOutcome):
	default:
		t.Fatalf("a save whose answer was lost: %v, want success or ErrUnknownOutcome", err)
	}
	if _, err := r.InsertEvents(ctx, events); !errors.Is(err, persistence.ErrAlreadyCommitted) {
		t.Fatalf("saving the same commit again: %v, want ErrAlreadyCommitted", err)
	}
	if got, err := r.SelectEvents(ctx, events[0].OriginatorID, persistence.EventQuery{}); err != nil || len(got) != 1 {
		t.Fatalf("the save is recorded once: %d events, %v", len(got), err)
	}
}

// Writers of three factories (three processes, as far as the store can
// tell) save the same versions of one aggregate: each version is recorded
// by exactly one of them, and the others are told of a conflict.
func TestEachVersionOfAContendedAggregateIsRecordedOnce(t *testing.T) {
	ctx := context.Background()
	recs := processes(t, "Contended", 3)
	id := uuid.New()
	const versions = 15
	var mu sync.Mutex
	wins := map[int64][]string{}
	var wg sync.WaitGroup
	for w := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for v := int64(1); v <= versions; v++ {
				state := fmt.Sprintf("w%d-v%d", w, v)
				_, err := recs[w%3].InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: id, OriginatorVersion: v, Topic: "C", State: []byte(state)}})
				switch {
				case err == nil:
					mu.Lock()
					wins[v] = append(wins[v], state)
					mu.Unlock()
				case !errors.Is(err, persistence.ErrIntegrity):
					t.Errorf("writer %d, version %d: %v", w, v, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for v := int64(1); v <= versions; v++ {
		if len(wins[v]) != 1 {
			t.Errorf("version %d was recorded by %d saves: %v", v, len(wins[v]), wins[v])
		}
	}
}

// A log with a position below its end but no document there (removed by
// hand: Strata never removes one) cannot be appended to: the save fails
// after its attempts, saying which position is missing, rather than loops.
func TestAHoleInTheLogFailsSavesNamingThePosition(t *testing.T) {
	ctx := context.Background()
	env := map[string]string{"MONGODB_URI": mongotest.URI(), "MONGODB_DATABASE": mongotest.Database(t)}
	f, err := mongodb.OpenEnv(ctx, persistence.NewEnv("Holed", env))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := f.ApplicationRecorder(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a, b := uuid.New(), uuid.New()
	for _, id := range []uuid.UUID{a, b} {
		if _, err := r.InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: id, OriginatorVersion: 1, Topic: "t"}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.Collection().DeleteOne(ctx, bson.D{{Key: "_id", Value: int64(1)}}); err != nil {
		t.Fatal(err)
	}
	// The claim of a's version 1 names position 1, which now holds nothing.
	_, err = r.InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: a, OriginatorVersion: 1, Topic: "t"}})
	if !errors.Is(err, persistence.ErrOperational) || !strings.Contains(err.Error(), "no document at position 1") {
		t.Fatalf("a save meeting a hole at position 1: %v, want ErrOperational naming the position", err)
	}
	t.Log(err)
}

// A tenant's last notification is found past other tenants' later
// documents and its own purge: nothing before the purge counts.
func TestTheMaxNotificationIDOfATenantAfterAPurge(t *testing.T) {
	ctx := context.Background()
	root, err := mongodb.OpenEnv(ctx, persistence.NewEnv("Purged", mongotest.Env(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	tenant := func(id string) (*mongodb.Factory, persistence.ApplicationRecorder) {
		f, err := root.Tenant(id)
		if err != nil {
			t.Fatal(err)
		}
		r, err := f.ApplicationRecorder(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return f.(*mongodb.Factory), r
	}
	save := func(r persistence.ApplicationRecorder) int64 {
		ids, err := r.InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: uuid.New(), OriginatorVersion: 1, Topic: "t"}, {OriginatorID: uuid.New(), OriginatorVersion: 1, Topic: "t"}})
		if err != nil {
			t.Fatal(err)
		}
		return ids[len(ids)-1]
	}
	max := func(r persistence.ApplicationRecorder, want int64, when string) {
		t.Helper()
		if got, err := r.MaxNotificationID(ctx); err != nil || got != want {
			t.Fatalf("%s: max notification ID %d, want %d (%v)", when, got, want, err)
		}
	}
	f, mine := tenant("mine")
	_, other := tenant("other")
	save(mine)
	last := save(mine)
	save(other)
	max(mine, last, "past another tenant's save")
	if err := f.PurgeTenant(ctx); err != nil {
		t.Fatal(err)
	}
	save(other)
	max(mine, 0, "after the purge")
	last = save(mine)
	save(other)
	max(mine, last, "after a save since the purge")
}

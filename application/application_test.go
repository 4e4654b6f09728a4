package application_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/domain"
	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/persistence/memory"
)

// Counter is the test domain: a counter that counts up.
type Counter struct {
	domain.Aggregate
	Name  string
	Count int
}

type CounterStarted struct{ Name string }
type Incremented struct{ By int }

func (c *Counter) Apply(event any) error {
	switch e := event.(type) {
	case CounterStarted:
		c.Name = e.Name
	case Incremented:
		c.Count += e.By
	default:
		return fmt.Errorf("%w: %T", domain.ErrUnknownEvent, event)
	}
	return nil
}

func (c *Counter) Increment(by int) error { return domain.Trigger(c, Incremented{By: by}) }

// Gauge is another aggregate type.
type Gauge struct {
	domain.Aggregate
	Level int
}

type GaugeInstalled struct{}

func (e GaugeInstalled) ApplyTo(*Gauge) {}

var counterTypes = domain.Types(
	domain.AggregateType[Counter](domain.Named("Counter"), domain.CreatedBy(CounterStarted{}), domain.Events(Incremented{})),
	domain.AggregateType[Gauge](domain.Named("Gauge"), domain.CreatedBy(GaugeInstalled{})),
)

func newApp(t testing.TB, opts ...application.Option) *application.Application {
	t.Helper()
	app, err := application.New(context.Background(), "Counters",
		append([]application.Option{application.WithTypes(counterTypes), application.WithoutProcessEnv()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	return app
}

func newCounter(t testing.TB, name string) *Counter {
	t.Helper()
	c, err := domain.New[Counter](domain.NewID(), CounterStarted{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func counters(t testing.TB, app *application.Application) *application.Repository[*Counter] {
	t.Helper()
	r, err := application.NewRepository[Counter](app)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSaveRecordsSeveralAggregatesAtomically(t *testing.T) {
	ctx := context.Background()
	app := newApp(t)
	a, b := newCounter(t, "a"), newCounter(t, "b")
	_ = a.Increment(1)
	recs, err := app.Save(ctx, a, b, a) // a given twice is saved once
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || recs[0].NotificationID != 1 || recs[2].NotificationID != 3 || recs[2].Event.OriginatorID != b.ID() {
		t.Fatalf("recordings %+v", recs)
	}
	if len(a.PendingEvents())+len(b.PendingEvents()) != 0 {
		t.Fatal("saved events are still pending")
	}

	// A second writer loaded a at version 2 and increments it; so do we.
	repo := counters(t, app)
	theirs, _ := repo.Get(ctx, a.ID())
	_ = theirs.Increment(10)
	if _, err := app.Save(ctx, theirs); err != nil {
		t.Fatal(err)
	}
	c := newCounter(t, "c")
	_ = a.Increment(5)
	_, err = app.Save(ctx, c, a)
	if !errors.Is(err, application.ErrConflict) || !errors.Is(err, persistence.ErrIntegrity) {
		t.Fatalf("conflicting save: %v", err)
	}
	if ok, _ := repo.Contains(ctx, c.ID()); ok {
		t.Fatal("the new counter of the failed save was recorded")
	}
	if len(a.PendingEvents()) != 1 || len(c.PendingEvents()) != 1 {
		t.Fatal("the failed save lost pending events")
	}
	got, _ := repo.Get(ctx, a.ID())
	if got.Count != 11 || got.Version() != 3 {
		t.Fatalf("counter after the conflict: %+v", got)
	}
	copyOfA, _ := repo.Get(ctx, a.ID())
	_ = copyOfA.Increment(1)
	if _, err := app.Save(ctx, copyOfA, a); !errors.Is(err, persistence.ErrProgramming) || errors.Is(err, application.ErrConflict) {
		t.Fatalf("save two copies of one aggregate: %v", err)
	}
	if recs, err := app.Save(ctx); err != nil || recs != nil {
		t.Fatalf("save nothing: %v %v", recs, err)
	}
}

func TestRetryRunsACommandAgainAfterAConflict(t *testing.T) {
	ctx := context.Background()
	app := newApp(t)
	repo := counters(t, app)
	c := newCounter(t, "shared")
	if _, err := app.Save(ctx, c); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var attempts atomic.Int64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := application.Retry(ctx, func(ctx context.Context) error {
				attempts.Add(1)
				c, err := repo.Get(ctx, c.ID())
				if err != nil {
					return err
				}
				_ = c.Increment(1)
				_, err = app.Save(ctx, c)
				return err
			}, application.Attempts(50), application.Backoff(time.Millisecond, 5*time.Millisecond))
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got, _ := repo.Get(ctx, c.ID())
	if got.Count != 8 {
		t.Fatalf("count %d after 8 increments (%d attempts)", got.Count, attempts.Load())
	}

	// Other errors are not retried; the last conflict is returned.
	boom := errors.New("boom")
	n := 0
	if err := application.Retry(ctx, func(context.Context) error { n++; return boom }); err != boom || n != 1 {
		t.Fatalf("retry of another error: %v after %d runs", err, n)
	}
	n = 0
	err := application.Retry(ctx, func(context.Context) error { n++; return persistence.ErrIntegrity },
		application.Attempts(3), application.Backoff(time.Microsecond, time.Microsecond))
	if !errors.Is(err, application.ErrConflict) || n != 3 {
		t.Fatalf("retry of conflicts: %v after %d runs", err, n)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	err = application.Retry(cancelled, func(context.Context) error { return persistence.ErrIntegrity })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("retry with a cancelled context: %v", err)
	}
}

func TestRepositoryRefusesAggregatesOfAnotherType(t *testing.T) {
	ctx := context.Background()
	app := newApp(t)
	g, _ := domain.New[Gauge](domain.NewID(), GaugeInstalled{})
	if _, err := app.Save(ctx, g); err != nil {
		t.Fatal(err)
	}
	_, err := counters(t, app).Get(ctx, g.ID())
	if !errors.Is(err, application.ErrAggregateType) || !strings.Contains(err.Error(), "Gauge") {
		t.Fatalf("get a gauge as a counter: %v", err)
	}
	// Untyped loading finds the type from the created event.
	agg, err := app.Get(ctx, g.ID())
	if _, ok := agg.(*Gauge); !ok || err != nil {
		t.Fatalf("untyped get: %T %v", agg, err)
	}
	if _, err := application.NewRepository[struct{ domain.Aggregate }](app); !errors.Is(err, domain.ErrUnregistered) {
		t.Fatalf("repository of an unregistered type: %v", err)
	}
}

func TestListenersSeeWhatWasRecorded(t *testing.T) {
	ctx := context.Background()
	app := newApp(t)
	var seen []int64
	app.AddListener(func(_ context.Context, recs []application.Recording) {
		for _, r := range recs {
			seen = append(seen, r.NotificationID)
		}
	})
	c := newCounter(t, "x")
	_ = c.Increment(1)
	_, _ = app.Save(ctx, c)
	_, _ = app.Save(ctx, c) // nothing pending: no call
	_ = c.Increment(1)
	_, _ = app.Save(ctx, c)
	if fmt.Sprint(seen) != "[1 2 3]" {
		t.Fatalf("listener saw %v", seen)
	}
}

func TestConfigurationPrecedence(t *testing.T) {
	enabled := func(t *testing.T, opts ...application.Option) bool {
		t.Helper()
		app, err := application.New(context.Background(), "Counters", append([]application.Option{application.WithTypes(counterTypes)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		defer app.Close()
		return app.Snapshots() != nil
	}
	t.Run("the default is off", func(t *testing.T) {
		if enabled(t) {
			t.Fatal("on")
		}
	})
	t.Run("settings in code turn it on", func(t *testing.T) {
		if !enabled(t, application.WithSnapshotting(true)) || !enabled(t, application.WithSettings(map[string]string{"IS_SNAPSHOTTING_ENABLED": "yes"})) {
			t.Fatal("off")
		}
	})
	t.Run("the process environment overrides settings in code", func(t *testing.T) {
		t.Setenv("IS_SNAPSHOTTING_ENABLED", "n")
		if enabled(t, application.WithSnapshotting(true)) {
			t.Fatal("on")
		}
		t.Setenv("IS_SNAPSHOTTING_ENABLED", "y")
		if !enabled(t, application.WithSnapshotting(false)) {
			t.Fatal("off")
		}
	})
	t.Run("the constructor's environment overrides the process environment", func(t *testing.T) {
		t.Setenv("IS_SNAPSHOTTING_ENABLED", "y")
		if enabled(t, application.WithEnv(map[string]string{"IS_SNAPSHOTTING_ENABLED": "off"})) {
			t.Fatal("on")
		}
	})
	t.Run("the application's own variable wins over the general one", func(t *testing.T) {
		t.Setenv("COUNTERS_IS_SNAPSHOTTING_ENABLED", "t")
		if !enabled(t, application.WithEnv(map[string]string{"IS_SNAPSHOTTING_ENABLED": "f"})) {
			t.Fatal("off")
		}
	})
	t.Run("a bad value is an error naming the variable", func(t *testing.T) {
		_, err := application.New(context.Background(), "Counters", application.WithEnv(map[string]string{"IS_SNAPSHOTTING_ENABLED": "sometimes"}))
		if !errors.Is(err, persistence.ErrConfig) || !strings.Contains(err.Error(), `IS_SNAPSHOTTING_ENABLED="sometimes"`) {
			t.Fatalf("got %v", err)
		}
		_, err = application.New(context.Background(), "Counters", application.WithEnv(map[string]string{"SNAPSHOT_THRESHOLD": "ten"}))
		if !errors.Is(err, persistence.ErrConfig) || !strings.Contains(err.Error(), `SNAPSHOT_THRESHOLD="ten"`) {
			t.Fatalf("got %v", err)
		}
		_, err = application.New(context.Background(), "Counters", application.WithEnv(map[string]string{"PERSISTENCE_MODULE": "nosuch"}))
		if !errors.Is(err, persistence.ErrConfig) || !strings.Contains(err.Error(), `PERSISTENCE_MODULE="nosuch"`) {
			t.Fatalf("got %v", err)
		}
		_, err = application.New(context.Background(), "")
		if !errors.Is(err, persistence.ErrConfig) {
			t.Fatalf("empty name: %v", err)
		}
	})
	t.Run("encryption and compression are switched on by the environment", func(t *testing.T) {
		key, _ := persistence.CreateKey(16)
		app := newApp(t, application.WithEnv(map[string]string{"CIPHER_KEY": key, "COMPRESSOR_TOPIC": "zlib"}))
		c := newCounter(t, "secret name")
		if _, err := app.Save(context.Background(), c); err != nil {
			t.Fatal(err)
		}
		ns, _ := app.Log().Select(context.Background(), 1, 10)
		if bytes.Contains(ns[0].State, []byte("secret name")) {
			t.Fatal("state is not encrypted")
		}
		got, err := counters(t, app).Get(context.Background(), c.ID())
		if err != nil || got.Name != "secret name" {
			t.Fatalf("decrypted %+v %v", got, err)
		}
	})
}

func TestThresholdSnapshotting(t *testing.T) {
	ctx := context.Background()
	app := newApp(t, application.WithSnapshotThreshold(0)) // the default, 10
	repo := counters(t, app)
	c := newCounter(t, "c")
	for i := range 8 {
		_ = c.Increment(i)
	}
	_, _ = app.Save(ctx, c) // versions 1-9: 9 events, no snapshot
	latest := func() int64 {
		s, ok, err := app.Snapshots().Latest(ctx, c.ID(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return 0
		}
		return s.OriginatorVersion
	}
	if v := latest(); v != 0 {
		t.Fatalf("snapshot at version %d after 9 events", v)
	}
	_ = c.Increment(1)
	_, _ = app.Save(ctx, c) // version 10: 10 events
	if v := latest(); v != 10 {
		t.Fatalf("latest snapshot %d after 10 events", v)
	}
	for range 9 {
		_ = c.Increment(1)
		_, _ = app.Save(ctx, c)
	}
	if v := latest(); v != 10 {
		t.Fatalf("latest snapshot %d after 9 more events", v)
	}
	_ = c.Increment(1)
	_, _ = app.Save(ctx, c)
	if v := latest(); v != 20 {
		t.Fatalf("latest snapshot %d after 10 more events", v)
	}
	got, err := repo.Get(ctx, c.ID())
	if err != nil || got.Count != c.Count || got.Version() != 20 {
		t.Fatalf("loaded %+v %v", got, err)
	}

	// A new application instance (another process) knows nothing of the
	// snapshots and finds the last one in the store.
	other := newApp(t, application.WithFactory(app.Factory()), application.WithEnv(map[string]string{"SNAPSHOT_THRESHOLD": "5"}))
	c2, _ := counters(t, other).Get(ctx, c.ID())
	for range 4 {
		_ = c2.Increment(1)
	}
	_, _ = other.Save(ctx, c2)
	if v := latest(); v != 20 {
		t.Fatalf("latest snapshot %d after 4 events with threshold 5", v)
	}
	_ = c2.Increment(1)
	_, _ = other.Save(ctx, c2)
	if v := latest(); v != 25 {
		t.Fatalf("latest snapshot %d after 5 events with threshold 5", v)
	}
}

// failingSnapshots fails every insert into the snapshot recorder.
type failingSnapshots struct{ *memory.Factory }

type failingRecorder struct{ memory.AggregateRecorder }

func (failingRecorder) InsertEvents(context.Context, []persistence.StoredEvent, ...persistence.InsertOption) ([]int64, error) {
	return nil, &persistence.Error{Op: "insert", Kind: persistence.ErrOperational, Err: errors.New("disk full")}
}

func (failingRecorder) ReplaceEvents(context.Context, []persistence.StoredEvent) error {
	return &persistence.Error{Op: "replace", Kind: persistence.ErrOperational, Err: errors.New("disk full")}
}

func (f failingSnapshots) AggregateRecorder(ctx context.Context, purpose string) (persistence.AggregateRecorder, error) {
	r, _ := f.Factory.AggregateRecorder(ctx, purpose)
	return failingRecorder{r.(memory.AggregateRecorder)}, nil
}

func TestASnapshotFailureDoesNotFailTheSave(t *testing.T) {
	var logged bytes.Buffer
	app := newApp(t, application.WithFactory(failingSnapshots{memory.NewFactory()}),
		application.SnapshotInterval[Counter](1), application.WithLogger(slog.New(slog.NewTextHandler(&logged, nil))))
	c := newCounter(t, "c")
	recs, err := app.Save(context.Background(), c)
	if err != nil || len(recs) != 1 {
		t.Fatalf("save: %v", err)
	}
	if !strings.Contains(logged.String(), "automatic snapshot failed") || !strings.Contains(logged.String(), "disk full") {
		t.Fatalf("log: %s", logged.String())
	}
	if _, err := counters(t, app).Get(context.Background(), c.ID()); err != nil {
		t.Fatal(err)
	}
}

// CounterV2 is Counter after its state changed shape: snapshots of the
// first version are upcast, or not used if they cannot be.
type CounterV2 struct {
	domain.Aggregate
	Name  string
	Total int
}

func (c *CounterV2) Apply(event any) error {
	switch e := event.(type) {
	case CounterStarted:
		c.Name = e.Name
	case Incremented:
		c.Total += e.By
	}
	return nil
}

func TestOldSnapshotsAreUpcastOrIgnored(t *testing.T) {
	ctx := context.Background()
	factory := memory.NewFactory()
	v1 := newApp(t, application.WithFactory(factory), application.WithSnapshotting(true))
	c := newCounter(t, "c")
	_ = c.Increment(3)
	_, _ = v1.Save(ctx, c)
	if _, err := counters(t, v1).TakeSnapshot(ctx, c.ID()); err != nil {
		t.Fatal(err)
	}
	_ = c.Increment(4)
	_, _ = v1.Save(ctx, c)

	load := func(t *testing.T, def domain.Def) *CounterV2 {
		t.Helper()
		app, err := application.New(ctx, "Counters", application.WithoutProcessEnv(), application.WithFactory(factory), application.WithSnapshotting(true),
			application.WithTypes(def, domain.EventType[CounterStarted](), domain.EventType[Incremented]()))
		if err != nil {
			t.Fatal(err)
		}
		repo, _ := application.NewRepository[CounterV2](app)
		got, err := repo.Get(ctx, c.ID())
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	t.Run("upcast", func(t *testing.T) {
		var upcasts int
		got := load(t, domain.AggregateType[CounterV2](domain.Named("Counter"), domain.ClassVersion(2),
			domain.Upcast(1, func(s map[string]any) error { upcasts++; s["Total"] = s["Count"]; return nil })))
		if got.Total != 7 || upcasts != 1 {
			t.Fatalf("total %d after %d upcasts", got.Total, upcasts)
		}
	})
	t.Run("ignored without an upcaster", func(t *testing.T) {
		got := load(t, domain.AggregateType[CounterV2](domain.Named("Counter"), domain.ClassVersion(2)))
		if got.Total != 7 || got.Version() != 3 {
			t.Fatalf("rebuilt %+v", got)
		}
	})
}

func TestTakeSnapshot(t *testing.T) {
	ctx := context.Background()
	if _, err := newApp(t).TakeSnapshot(ctx, uuid.New()); !errors.Is(err, application.ErrSnapshotting) {
		t.Fatalf("snapshot without snapshotting: %v", err)
	}
	app := newApp(t, application.WithSnapshotting(true))
	c := newCounter(t, "c")
	_ = c.Increment(2)
	_ = c.Increment(2)
	_, _ = app.Save(ctx, c)
	snap, err := app.TakeSnapshot(ctx, c.ID(), application.AtVersion(2))
	if err != nil || snap.OriginatorVersion != 2 || snap.State.(*Counter).Count != 2 {
		t.Fatalf("snapshot at version 2: %+v %v", snap, err)
	}
	// Taking it again replaces it.
	if _, err := app.TakeSnapshot(ctx, c.ID(), application.AtVersion(2)); err != nil {
		t.Fatal(err)
	}
	if _, err := app.TakeSnapshot(ctx, uuid.New()); !errors.Is(err, application.ErrAggregateNotFound) {
		t.Fatalf("snapshot of nothing: %v", err)
	}
	got, _ := counters(t, app).Get(ctx, c.ID(), application.AtVersion(2))
	if got.Count != 2 {
		t.Fatalf("count at version 2: %d", got.Count)
	}
}

// Package projectiontest is the conformance suite of projection stores:
// the same tests of exactly-once processing, rebuilds under load, poison
// events and versions, run against each store with a tally projection
// written in the store's own terms.
package projectiontest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/domain"
	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/projection"
	"github.com/strata-go/strata/system"
)

// Tally is the aggregate the suite's upstream application saves.
type Tally struct {
	domain.Aggregate
	Total int `json:"total"`
}

// Started starts a tally.
type Started struct{}

// Added adds N to a tally. The tally projections treat a negative N as
// poison: they refuse it with an error that is not temporary.
type Added struct {
	N int `json:"n"`
}

// Noted is an event the tally projections read only when the source does
// not filter topics; with a topic filter, they never see it.
type Noted struct {
	Text string `json:"text"`
}

// ApplyTo does nothing: a tally starts at zero.
func (Started) ApplyTo(*Tally) {}

// ApplyTo adds N.
func (e Added) ApplyTo(t *Tally) { t.Total += e.N }

// ApplyTo does nothing.
func (Noted) ApplyTo(*Tally) {}

// Types are the persisted types of tallies.
var Types = domain.Types(
	domain.AggregateType[Tally](domain.Named("Tally"), domain.CreatedBy(Started{})),
	domain.EventType[Started](domain.Named("Tally.Started")),
	domain.EventType[Added](domain.Named("Tally.Added")),
	domain.EventType[Noted](domain.Named("Tally.Noted")),
)

// AddedTopic is the topic of Added events.
const AddedTopic = "Tally.Added"

// Totals is what a tally model holds: per tally, the sum of its Added
// events and how many there were.
type Totals struct {
	Tallies int // rows
	Sum     int // of every N
	Events  int // Added events applied
}

// Hook is called by a tally projection before it applies an Added event;
// an error it returns is the projection's.
type Hook func(e projection.Event, n int) error

// Harness adapts the suite to one store.
type Harness[Tx any] struct {
	// Open returns a fresh, empty store and an application named
	// "Tallies" with the suite's Types, in the same database where the
	// store can be (so that the store's transactions and the
	// application's saves contend as they do in use). Both are closed
	// when the test ends.
	Open func(t *testing.T) (projection.Store[Tx], *application.Application)
	// Projection returns version v of the tally projection: one row per
	// tally (total, events) in a table "tallies"; version 2 and later
	// add a column, so that a rebuild changes the table's shape. hook is
	// called before each Added event is applied.
	Projection func(version int, hook Hook) projection.Projection[Tx]
	// Read returns the live model's totals, as readers see them (through
	// the views, in SQL), or an error if there is no live model.
	Read func(ctx context.Context, store projection.Store[Tx]) (Totals, error)
	// Tables, if not nil, returns the names of the tables of the
	// projection named name, of every version, that exist.
	Tables func(ctx context.Context, store projection.Store[Tx], name string) ([]string, error)
	// Parked returns the events the projection named name parked.
	Parked func(ctx context.Context, store projection.Store[Tx], name string) ([]projection.ParkedEvent, error)
}

// Open returns a fresh application named "Tallies" with the suite's
// types, configured by env, closed when the test ends.
func Open(t *testing.T, env map[string]string) *application.Application {
	t.Helper()
	app, err := application.New(context.Background(), "Tallies", application.WithTypes(Types), application.WithEnv(env), application.WithoutProcessEnv())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	return app
}

// Run runs the suite.
func Run[Tx any](t *testing.T, h Harness[Tx]) {
	t.Run("CatchesUpThenFollows", func(t *testing.T) { testCatchUp(t, h) })
	t.Run("EachEventOnceAcrossStops", func(t *testing.T) { testStops(t, h) })
	t.Run("TwoRunnersOfOneVersion", func(t *testing.T) { testTwoRunners(t, h) })
	t.Run("RebuildUnderLoad", func(t *testing.T) { testRebuild(t, h, false) })
	t.Run("RebuildOvertaken", func(t *testing.T) { testRebuild(t, h, true) })
	t.Run("HoldsLapse", func(t *testing.T) { testHolds(t, h) })
	t.Run("PoisonStopsTheRunner", func(t *testing.T) { testPoisonStops(t, h) })
	t.Run("PoisonIsParked", func(t *testing.T) { testPoisonParked(t, h) })
	t.Run("TemporaryFailuresAreRetried", func(t *testing.T) { testTemporary(t, h) })
	t.Run("OlderVersionsAreRefused", func(t *testing.T) { testVersions(t, h) })
	t.Run("TopicFilters", func(t *testing.T) { testTopics(t, h) })
	t.Run("WaitForOwnSaves", func(t *testing.T) { testWaitFor(t, h) })
}

// SaveTally saves a new tally with an Added event of each of ns and
// returns the recordings of the save.
func SaveTally(t testing.TB, app *application.Application, ns ...int) []application.Recording {
	t.Helper()
	tally, err := domain.New[Tally](uuid.New(), Started{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		if err := domain.Trigger(tally, Added{N: n}); err != nil {
			t.Fatal(err)
		}
	}
	recs, err := app.Save(context.Background(), tally)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// writer saves tallies and records what it saved.
type writer struct {
	app     *application.Application
	mu      sync.Mutex
	ids     []uuid.UUID
	sum     int
	events  int
	tallies map[uuid.UUID]bool
}

func newWriter(app *application.Application) *writer {
	return &writer{app: app, tallies: map[uuid.UUID]bool{}}
}

// add saves a new tally with Added events of ns.
func (w *writer) add(ctx context.Context, ns ...int) error {
	_, err := w.save(ctx, ns...)
	return err
}

// save saves a new tally with Added events of ns and returns the
// recordings of the save.
func (w *writer) save(ctx context.Context, ns ...int) ([]application.Recording, error) {
	tally, err := domain.New[Tally](uuid.New(), Started{})
	if err != nil {
		return nil, err
	}
	for _, n := range ns {
		if err := domain.Trigger(tally, Added{N: n}); err != nil {
			return nil, err
		}
	}
	recs, err := w.app.Save(ctx, tally)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ids = append(w.ids, tally.ID())
	w.tallies[tally.ID()] = true
	w.events += len(ns)
	for _, n := range ns {
		w.sum += n
	}
	return recs, nil
}

func (w *writer) want() Totals {
	w.mu.Lock()
	defer w.mu.Unlock()
	return Totals{Tallies: len(w.tallies), Sum: w.sum, Events: w.events}
}

// keepWriting saves tallies in n goroutines, each pausing for pause
// between saves, until the function it returns is called, which waits for
// them; the test's end calls it too.
func (w *writer) keepWriting(t *testing.T, n int, pause time.Duration) (stopAndWait func()) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var once sync.Once
	stopAndWait = func() {
		once.Do(func() { close(stop) })
		wg.Wait()
	}
	t.Cleanup(stopAndWait)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := w.add(context.Background(), i+1, k%5+1); err != nil {
					t.Errorf("save: %v", err)
					return
				}
				time.Sleep(pause)
			}
		}()
	}
	return stopAndWait
}

func start[Tx any](t *testing.T, store projection.Store[Tx], proj projection.Projection[Tx], app *application.Application, opts ...projection.Option) *projection.Runner[Tx] {
	t.Helper()
	return startFrom(t, store, proj, projection.FromApplication(t.Context(), app, AddedTopic), opts...)
}

func startFrom[Tx any](t *testing.T, store projection.Store[Tx], proj projection.Projection[Tx], src projection.Source, opts ...projection.Option) *projection.Runner[Tx] {
	t.Helper()
	r, err := projection.NewRunner(store, proj, []projection.Source{src},
		append([]projection.Option{projection.BatchSize(7), projection.PollInterval(20 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Stop(context.Background()) })
	return r
}

func wait[Tx any](t *testing.T, r *projection.Runner[Tx]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := r.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}

// settle waits until the live model's totals are want: on PostgreSQL a
// commit reaches readers of the log only once older transactions of any
// program have ended, so a runner can be at the head before the last saves
// are visible.
func settle[Tx any](t *testing.T, h Harness[Tx], store projection.Store[Tx], want Totals) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	var got Totals
	var err error
	for time.Now().Before(deadline) {
		got, err = h.Read(context.Background(), store)
		if err == nil && got == want {
			return
		}
		if err == nil && (got.Events > want.Events || got.Sum > want.Sum) {
			break // more than was saved: applied twice
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("the model holds %+v (error %v), want %+v", got, err, want)
}

func noHook(projection.Event, int) error { return nil }

func testCatchUp[Tx any](t *testing.T, h Harness[Tx]) {
	ctx := context.Background()
	store, app := h.Open(t)
	w := newWriter(app)
	for i := range 20 {
		if err := w.add(ctx, i, 1, 2); err != nil {
			t.Fatal(err)
		}
	}
	r := start(t, store, h.Projection(1, noHook), app)
	wait(t, r)
	settle(t, h, store, w.want())
	if !r.Live() {
		t.Fatal("the only version of the projection is not live after catching up")
	}
	for i := range 5 {
		if err := w.add(ctx, 100+i); err != nil {
			t.Fatal(err)
		}
	}
	// Prompted by the saves, not only by its poll.
	settle(t, h, store, w.want())
	if err := r.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Err(); err != nil {
		t.Fatalf("the runner stopped with %v", err)
	}
}

func testStops[Tx any](t *testing.T, h Harness[Tx]) {
	store, app := h.Open(t)
	w := newWriter(app)
	stopWriting := w.keepWriting(t, 2, time.Millisecond)
	for range 6 {
		r := start(t, store, h.Projection(1, noHook), app)
		time.Sleep(30 * time.Millisecond)
		// A context already ended cancels the batch in hand: it must
		// record nothing, neither its writes nor its positions.
		ended, cancel := context.WithCancel(context.Background())
		cancel()
		r.Stop(ended)
		if err := r.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	stopWriting()
	r := start(t, store, h.Projection(1, noHook), app)
	wait(t, r)
	settle(t, h, store, w.want())
}

func testTwoRunners[Tx any](t *testing.T, h Harness[Tx]) {
	store, app := h.Open(t)
	w := newWriter(app)
	stopWriting := w.keepWriting(t, 2, time.Millisecond)
	a := start(t, store, h.Projection(1, noHook), app)
	b := start(t, store, h.Projection(1, noHook), app)
	time.Sleep(200 * time.Millisecond)
	stopWriting()
	wait(t, a)
	wait(t, b)
	settle(t, h, store, w.want())
	for _, r := range []*projection.Runner[Tx]{a, b} {
		if err := r.Err(); err != nil {
			t.Fatalf("a runner failed: %v", err)
		}
	}
}

// overtakenLog is a notification log whose every select is overtaken:
// once it has read, another save is made and the live version is given
// time to record it, so that a rebuild reading through it is behind the
// live version whenever it records a batch, and draws level only if it
// holds the live version still.
type overtakenLog struct {
	application.NotificationLog
	overtake func(ctx context.Context)
}

func (l overtakenLog) Select(ctx context.Context, start int64, limit int, opts ...application.SelectOption) ([]persistence.Notification, error) {
	ns, err := l.NotificationLog.Select(ctx, start, limit, opts...)
	if err == nil {
		l.overtake(ctx)
	}
	return ns, err
}

func testRebuild[Tx any](t *testing.T, h Harness[Tx], overtaken bool) {
	ctx := context.Background()
	store, app := h.Open(t)
	w := newWriter(app)
	for i := range 50 {
		if err := w.add(ctx, i+1); err != nil {
			t.Fatal(err)
		}
	}
	// Batches larger than the other tests' let the rebuild outpace the
	// writers on a loaded machine, as the default size does in use.
	rebuildBatches := projection.BatchSize(25)
	v1 := start(t, store, h.Projection(1, noHook), app, rebuildBatches)
	wait(t, v1)
	settle(t, h, store, w.want())

	// Readers from now on must never see an empty, half-built or
	// shrinking model.
	stopReading := make(chan struct{})
	var reads, violations atomic.Int64
	var firstViolation atomic.Value
	var reading sync.WaitGroup
	for range 2 {
		reading.Add(1)
		go func() {
			defer reading.Done()
			last := Totals{}
			for {
				select {
				case <-stopReading:
					return
				default:
				}
				got, err := h.Read(ctx, store)
				reads.Add(1)
				var bad string
				switch {
				case err != nil:
					bad = fmt.Sprintf("read failed: %v", err)
				case got.Events < last.Events || got.Sum < last.Sum || got.Tallies < last.Tallies:
					bad = fmt.Sprintf("the model went back from %+v to %+v", last, got)
				case got.Tallies < 50:
					bad = fmt.Sprintf("the model holds %+v, less than before the rebuild", got)
				}
				if bad != "" {
					if violations.Add(1) == 1 {
						firstViolation.Store(bad)
					}
				} else {
					last = got
				}
			}
		}()
	}
	// An overtaken rebuild waits, every batch, for the live version to
	// record one more save, which takes longer the more the machine is
	// loaded: writers at full speed could then outpace it for good, which
	// is the hook's doing, not the runner's. Writers pausing 20 ms save at
	// most 100 times a second, which a rebuild of up to 200 events a batch
	// outpaces unless each of its batches takes two seconds.
	pause := time.Millisecond
	if overtaken {
		pause = 20 * time.Millisecond
	}
	stopWriting := w.keepWriting(t, 2, pause)
	time.Sleep(50 * time.Millisecond)
	var v2 *projection.Runner[Tx]
	if overtaken {
		src := projection.FromApplication(t.Context(), app, AddedTopic)
		src.Log = overtakenLog{NotificationLog: src.Log, overtake: func(ctx context.Context) {
			// A held live version records nothing: the rebuild's read
			// is then as far as it goes.
			held := 0
			if err := store.Transact(ctx, func(ctx context.Context, tx Tx) (err error) {
				held, err = store.Held(ctx, tx, "tallies")
				return err
			}); err != nil || held > 1 {
				return
			}
			recs, err := w.save(ctx, 1)
			if err != nil {
				if ctx.Err() == nil {
					t.Errorf("save: %v", err)
				}
				return
			}
			waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			err = v1.WaitFor(waitCtx, map[string]int64{app.Name(): recs[len(recs)-1].NotificationID})
			if err != nil && ctx.Err() == nil && !errors.Is(err, projection.ErrSuperseded) {
				t.Errorf("waiting for the live version: %v", err)
			}
		}}
		v2 = startFrom(t, store, h.Projection(2, noHook), src, rebuildBatches)
	} else {
		v2 = start(t, store, h.Projection(2, noHook), app, rebuildBatches)
	}
	deadline := time.Now().Add(time.Minute)
	for !v2.Live() {
		if time.Now().After(deadline) {
			t.Fatalf("version 2 is not live after a minute (error: %v); positions: %s", v2.Err(), positionsOf(store, v1.Model(), v2.Model()))
		}
		time.Sleep(5 * time.Millisecond)
	}
	for v1.Err() == nil {
		if time.Now().After(deadline) {
			t.Fatal("version 1's runner goes on after version 2 went live")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !errors.Is(v1.Err(), projection.ErrSuperseded) {
		t.Fatalf("version 1's runner stopped with %v, want ErrSuperseded", v1.Err())
	}
	time.Sleep(50 * time.Millisecond)
	stopWriting()
	wait(t, v2)
	settle(t, h, store, w.want())
	close(stopReading)
	reading.Wait()
	if n := violations.Load(); n > 0 {
		t.Fatalf("%d of %d reads during the rebuild were wrong; the first: %s", n, reads.Load(), firstViolation.Load())
	}
	t.Logf("%d reads during the rebuild, all whole", reads.Load())
	if h.Tables != nil {
		tables, err := h.Tables(ctx, store, "tallies")
		if err != nil {
			t.Fatal(err)
		}
		for _, table := range tables {
			if table != (projection.Model{Name: "tallies", Version: 2}).Table("tallies") {
				t.Fatalf("table %s is left after the switch to version 2 (tables: %v)", table, tables)
			}
		}
		if len(tables) != 1 {
			t.Fatalf("tables after the switch: %v, want version 2's only", tables)
		}
	}
	// A runner of the replaced version is refused.
	r, err := projection.NewRunner(store, h.Projection(1, noHook), []projection.Source{projection.FromApplication(t.Context(), app)})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); !errors.Is(err, projection.ErrSuperseded) {
		t.Fatalf("starting version 1 after version 2 went live: %v, want ErrSuperseded", err)
	}
}

func testHolds[Tx any](t *testing.T, h Harness[Tx]) {
	ctx := context.Background()
	store, _ := h.Open(t)
	if err := store.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	held := func() int {
		t.Helper()
		var v int
		if err := store.Transact(ctx, func(ctx context.Context, tx Tx) (err error) {
			v, err = store.Held(ctx, tx, "holds")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return v
	}
	hold := func(version int, d time.Duration, commit bool) {
		t.Helper()
		rollback := errors.New("roll back")
		err := store.Transact(ctx, func(ctx context.Context, tx Tx) error {
			if err := store.Hold(ctx, tx, projection.Model{Name: "holds", Version: version}, d); err != nil {
				return err
			}
			if !commit {
				return rollback
			}
			return nil
		})
		if err != nil && !(errors.Is(err, rollback) && !commit) {
			t.Fatal(err)
		}
	}
	if v := held(); v != 0 {
		t.Fatalf("a projection never held is held by version %d", v)
	}
	hold(2, time.Hour, false)
	if v := held(); v != 0 {
		t.Fatalf("a hold rolled back holds: version %d", v)
	}
	hold(2, time.Hour, true)
	if v := held(); v != 2 {
		t.Fatalf("held by version %d, want 2", v)
	}
	hold(3, 200*time.Millisecond, true)
	if v := held(); v != 3 {
		t.Fatalf("held by version %d after a later hold by 3", v)
	}
	time.Sleep(400 * time.Millisecond)
	if v := held(); v != 0 {
		t.Fatalf("held by version %d after the hold lapsed", v)
	}
}

func testPoisonStops[Tx any](t *testing.T, h Harness[Tx]) {
	ctx := context.Background()
	store, app := h.Open(t)
	w := newWriter(app)
	if err := w.add(ctx, 1, 2); err != nil {
		t.Fatal(err)
	}
	if err := w.add(ctx, 3, -1, 4); err != nil {
		t.Fatal(err)
	}
	r := start(t, store, h.Projection(1, noHook), app)
	ctxWait, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	err := r.Wait(ctxWait)
	var poison *system.PoisonError
	if !errors.As(err, &poison) {
		t.Fatalf("a poison event: the runner returned %v, want a *system.PoisonError", err)
	}
	if poison.Upstream != "Tallies" || poison.Topic != AddedTopic || poison.NotificationID == 0 {
		t.Fatalf("the poison error names %+v", poison)
	}
	// Its batch was not recorded, and a version that never caught up
	// is not live.
	if r.Live() {
		t.Fatal("a version that never caught up went live")
	}
}

func testPoisonParked[Tx any](t *testing.T, h Harness[Tx]) {
	ctx := context.Background()
	store, app := h.Open(t)
	w := newWriter(app)
	if err := w.add(ctx, 1, 2); err != nil {
		t.Fatal(err)
	}
	if err := w.add(ctx, 3, -1, 4); err != nil {
		t.Fatal(err)
	}
	r := start(t, store, h.Projection(1, noHook), app, projection.WithPoisonPolicy(system.ParkPoison))
	wait(t, r)
	// The poison event is not applied; those after it are.
	settle(t, h, store, Totals{Tallies: 2, Sum: 1 + 2 + 3 + 4, Events: 4})
	parked, err := h.Parked(ctx, store, "tallies")
	if err != nil {
		t.Fatal(err)
	}
	if len(parked) != 1 || parked[0].Upstream != "Tallies" || parked[0].Topic != AddedTopic || parked[0].Model.Version != 1 || parked[0].Error == "" {
		t.Fatalf("parked: %+v, want the one poison event", parked)
	}
}

func testTemporary[Tx any](t *testing.T, h Harness[Tx]) {
	ctx := context.Background()
	store, app := h.Open(t)
	w := newWriter(app)
	for i := range 10 {
		if err := w.add(ctx, i+1); err != nil {
			t.Fatal(err)
		}
	}
	var failures atomic.Int64
	hook := func(e projection.Event, n int) error {
		if n == 5 && failures.Add(1) <= 3 {
			return system.Temporary(errors.New("the read model's database is away"))
		}
		return nil
	}
	r := start(t, store, h.Projection(1, hook), app)
	wait(t, r)
	settle(t, h, store, w.want())
	if failures.Load() < 4 {
		t.Fatalf("the failing event was tried %d times, want 4 (3 failures, then success)", failures.Load())
	}
}

func testVersions[Tx any](t *testing.T, h Harness[Tx]) {
	ctx := context.Background()
	store, app := h.Open(t)
	w := newWriter(app)
	if err := w.add(ctx, 1); err != nil {
		t.Fatal(err)
	}
	v1 := start(t, store, h.Projection(1, noHook), app)
	wait(t, v1)
	m1 := v1.Model()
	if err := projection.DropVersion(ctx, store, m1); err == nil {
		t.Fatal("the live version was dropped")
	}
	// A rebuild given up is dropped, tables and all.
	v3 := start(t, store, h.Projection(3, func(projection.Event, int) error {
		return system.Temporary(errors.New("never gets anywhere"))
	}), app)
	time.Sleep(50 * time.Millisecond)
	if err := v3.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := projection.DropVersion(ctx, store, v3.Model()); err != nil {
		t.Fatal(err)
	}
	if h.Tables != nil {
		tables, err := h.Tables(ctx, store, "tallies")
		if err != nil {
			t.Fatal(err)
		}
		if len(tables) != 1 || tables[0] != m1.Table("tallies") {
			t.Fatalf("tables after dropping version 3: %v, want version 1's only", tables)
		}
	}
	settle(t, h, store, w.want())
}

func testTopics[Tx any](t *testing.T, h Harness[Tx]) {
	ctx := context.Background()
	store, app := h.Open(t)
	w := newWriter(app)
	tally, err := domain.New[Tally](uuid.New(), Started{})
	if err != nil {
		t.Fatal(err)
	}
	if err := domain.Trigger(tally, Noted{Text: "not for the tally model"}); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Save(ctx, tally); err != nil {
		t.Fatal(err)
	}
	if err := w.add(ctx, 5, 6); err != nil {
		t.Fatal(err)
	}
	var seen []string
	var mu sync.Mutex
	hook := func(e projection.Event, n int) error {
		mu.Lock()
		seen = append(seen, e.Notification.Topic)
		mu.Unlock()
		return nil
	}
	r := start(t, store, h.Projection(1, hook), app)
	wait(t, r)
	settle(t, h, store, w.want())
	mu.Lock()
	defer mu.Unlock()
	for _, topic := range seen {
		if topic != AddedTopic {
			t.Fatalf("a source filtered to %s passed an event of %s", AddedTopic, topic)
		}
	}
}

// testWaitFor saves while the runner follows and waits for the last save
// by its notification ID, which is of a topic the runner skips: the model
// must then hold every save, with no settling.
func testWaitFor[Tx any](t *testing.T, h Harness[Tx]) {
	ctx := context.Background()
	store, app := h.Open(t)
	w := newWriter(app)
	r := start(t, store, h.Projection(1, noHook), app)
	for i := range 20 {
		if err := w.add(ctx, i, 1); err != nil {
			t.Fatal(err)
		}
	}
	tally, err := domain.New[Tally](uuid.New(), Started{})
	if err != nil {
		t.Fatal(err)
	}
	if err := domain.Trigger(tally, Noted{Text: "the last save, of a topic the model skips"}); err != nil {
		t.Fatal(err)
	}
	recs, err := app.Save(ctx, tally)
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	last := recs[len(recs)-1].NotificationID
	if err := r.WaitFor(wctx, map[string]int64{app.Name(): last}); err != nil {
		t.Fatal(err)
	}
	if got, err := h.Read(ctx, store); err != nil || got != w.want() {
		t.Fatalf("after waiting for notification %d the model holds %+v (error %v), want %+v", last, got, err, w.want())
	}
	if err := r.WaitFor(wctx, map[string]int64{"Elsewhere": 1}); !errors.Is(err, persistence.ErrConfig) {
		t.Fatalf("waiting for a source the runner does not read: %v, want %v", err, persistence.ErrConfig)
	}
}

// positionsOf describes the positions of models, for failure messages.
func positionsOf[Tx any](store projection.Store[Tx], models ...projection.Model) string {
	out := ""
	err := store.Transact(context.Background(), func(ctx context.Context, tx Tx) error {
		for _, m := range models {
			ps, err := store.Positions(ctx, tx, m)
			if err != nil {
				return err
			}
			out += fmt.Sprintf("version %d at %v; ", m.Version, ps)
		}
		return nil
	})
	if err != nil {
		return err.Error()
	}
	return out
}

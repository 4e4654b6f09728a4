package application

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strconv"
	"sync"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"

	"github.com/strata-go/strata/domain"
	"github.com/strata-go/strata/observe"
	"github.com/strata-go/strata/persistence"
)

// Errors of the application layer; test with errors.Is.
var (
	// ErrAggregateNotFound means no events are recorded for the ID.
	ErrAggregateNotFound = errors.New("aggregate not found")
	// ErrAggregateType means the events of an ID are of another aggregate
	// type than the one asked for.
	ErrAggregateType = errors.New("aggregate is of another type")
	// ErrConflict means another writer recorded a version first: nothing
	// of the save was recorded. Load the aggregate again and retry (see
	// [Retry]). It is persistence.ErrConflict, which integrity errors wrap.
	ErrConflict = persistence.ErrConflict
	// ErrSnapshotting means snapshotting is not enabled.
	ErrSnapshotting = errors.New("snapshotting is not enabled")
	// ErrAlreadyCommitted means a save whose commit ID the store already
	// has for its aggregates: the save was recorded before, nothing new
	// is. It is persistence.ErrAlreadyCommitted, and not a conflict.
	ErrAlreadyCommitted = persistence.ErrAlreadyCommitted
)

// Recording is an event that a save recorded, with the notification ID it
// got in the application's log (0 where it is not known, as when read by
// aggregate) and the commit that recorded it.
type Recording struct {
	Event          domain.Event
	NotificationID int64
	// Tenant is the tenant of the event's aggregate ("" is the default).
	Tenant   string
	CommitID uuid.UUID
	Headers  persistence.Headers
}

// Listener is called after each save that recorded events, with what was
// recorded, in order. It runs in the saving goroutine and must not block
// for long; a system's leader uses it to prompt its followers.
type Listener func(ctx context.Context, recorded []Recording)

// Application is an event-sourced application: the event store of a
// domain model, its snapshots, and its notification log, configured from
// options and environment variables. User applications embed or wrap one
// and add their commands and queries:
//
//	type Worlds struct{ *application.Application; worlds *application.Repository[*World] }
//
// An Application is safe for concurrent use.
type Application struct {
	name      string
	env       persistence.Env
	types     *domain.Registry
	factory   persistence.Factory
	ownsStore bool
	mapper    *persistence.Mapper
	recorder  persistence.ApplicationRecorder
	events    *persistence.EventStore
	snapshots *persistence.SnapshotStore
	log       *LocalNotificationLog
	logger    *slog.Logger
	tracking  bool
	policy    *snapshotPolicy
	// unwritable, if not nil, is why saves are refused: the store holds
	// events that this application's cipher or compressor cannot read, and
	// writing more would leave a log that no one configuration reads.
	unwritable error
	dataKeys   *persistence.DataKeys // nil unless CIPHER_DATA_KEYS
	detector   *ConflictDetector
	tenant     string  // "" for the default tenant
	shared     *shared // what the views of every tenant share
	tel        *observe.Telemetry
	attrs      attribute.Set        // the application's metric attributes
	spanAttrs  []attribute.KeyValue // and its spans'
}

// shared is what an application and the views of its tenants share.
type shared struct {
	mu        sync.RWMutex
	listeners []Listener
	closed    bool
	tenants   map[string]*Application
	base      *Application // the default tenant's
}

// New builds the named application. The name scopes its tables or streams
// in the datastore and prefixes its environment variables (WORLDS_ for
// "Worlds"); by convention it is the name of the application's type (see
// [TypeName]).
//
// Configuration comes, from lowest to highest precedence, from options
// (settings in code), the process environment, and maps given with
// [WithEnv]. With no configuration the application keeps its events in
// memory.
func New(ctx context.Context, name string, opts ...Option) (*Application, error) {
	if name == "" {
		return nil, fmt.Errorf("new application: %w: empty name", persistence.ErrConfig)
	}
	c := newConfig()
	for _, o := range opts {
		o(c)
	}
	if c.err != nil {
		return nil, fmt.Errorf("new application %s: %w", name, c.err)
	}
	layers := []map[string]string{c.settings}
	if c.processEnv {
		layers = append(layers, persistence.ProcessEnv())
	}
	layers = append(layers, c.env...)
	env := persistence.NewEnv(name, layers...)

	types, err := domain.NewRegistry(c.types...)
	if err != nil {
		return nil, fmt.Errorf("new application %s: %w", name, err)
	}
	a := &Application{name: name, env: env, types: types, logger: c.logger, tracking: c.tracking, detector: c.detector,
		shared: &shared{tenants: map[string]*Application{}}}
	a.shared.base = a
	if a.logger == nil {
		a.logger = slog.Default()
	}
	a.logger = a.logger.With(observe.KeyApplication, name)
	a.tel = observe.Or(c.telemetry)
	a.spanAttrs = []attribute.KeyValue{attribute.String(observe.KeyApplication, name)}
	a.attrs = attribute.NewSet(a.spanAttrs...)

	if a.policy, err = c.snapshotPolicy(env, types); err != nil {
		return nil, fmt.Errorf("new application %s: %w", name, err)
	}
	transcoder, err := persistence.NewJSONTranscoder(c.transcodings...)
	if err != nil {
		return nil, fmt.Errorf("new application %s: %w", name, err)
	}
	if a.mapper, err = persistence.NewMapperFromEnv(env, types, append([]persistence.MapperOption{persistence.WithTranscoder(transcoder)}, c.mapperOpts...)...); err != nil {
		return nil, fmt.Errorf("new application %s: %w", name, err)
	}

	a.factory = c.factory
	if a.factory == nil {
		if a.factory, err = persistence.OpenFactory(ctx, env); err != nil {
			return nil, fmt.Errorf("new application %s: %w", name, err)
		}
		a.ownsStore = true
	}
	if err := a.openDataKeys(ctx); err != nil {
		if a.ownsStore {
			a.factory.Close()
		}
		return nil, fmt.Errorf("new application %s: %w", name, err)
	}
	if err := a.openRecorders(ctx, c.tracking); err != nil {
		if a.ownsStore {
			a.factory.Close()
		}
		return nil, fmt.Errorf("new application %s: %w", name, err)
	}
	a.events = persistence.NewEventStore(a.mapper, a.recorder)
	a.log = NewLocalNotificationLog(a.recorder, types)
	a.log.observe(a)
	if c.sectionSize > 0 {
		a.log.SetSectionSize(c.sectionSize)
	}
	if err := a.checkStore(ctx); err != nil {
		a.Close()
		return nil, fmt.Errorf("new application %s: %w", name, err)
	}
	return a, nil
}

// checkStore reads the newest notification and, if the mapper cannot
// decrypt or decompress it (another CIPHER_KEY, a missing COMPRESSOR_TOPIC),
// makes saves fail: reads then fail one by one, which tells the operator
// what is wrong, but a save would add events that only this configuration
// reads. One notification stands for the others: a key change that keeps
// the old key among the previous ones reads it.
func (a *Application) checkStore(ctx context.Context) error {
	last, err := a.recorder.MaxNotificationID(ctx)
	if err != nil || last == 0 {
		return err
	}
	newest, err := a.recorder.SelectNotifications(ctx, persistence.NotificationQuery{Start: last, Limit: 1})
	if err != nil || len(newest) == 0 {
		return err
	}
	if err := a.mapper.CheckState(newest[0].State); err != nil && !errors.Is(err, persistence.ErrErased) {
		a.unwritable = fmt.Errorf("%w: this application's settings cannot read the events already in its store (notification %d: %w), so it records nothing until they can: set CIPHER_KEY (and COMPRESSOR_TOPIC) as they were when the events were written",
			persistence.ErrConfig, newest[0].ID, err)
		a.logger.ErrorContext(ctx, "saves are refused", "error", a.unwritable)
	}
	return nil
}

func (a *Application) openRecorders(ctx context.Context, tracking bool) error {
	var err error
	if tracking {
		a.recorder, err = a.factory.ProcessRecorder(ctx)
	} else {
		a.recorder, err = a.factory.ApplicationRecorder(ctx)
	}
	if err != nil {
		return err
	}
	if a.policy.enabled {
		rec, err := a.factory.AggregateRecorder(ctx, "snapshots")
		if errors.Is(err, persistence.ErrNoTable) {
			// A store opened read-only that has no snapshots table has no
			// snapshots: aggregates load from their events.
			if readOnly, _ := a.env.Bool("READ_ONLY", false); readOnly {
				return nil
			}
		}
		if err != nil {
			return err
		}
		a.snapshots = persistence.NewSnapshotStore(a.mapper, rec)
	}
	return nil
}

// TypeName returns the name of type T without its package, the
// conventional name of an application of that type.
func TypeName[T any]() string {
	t := reflect.TypeFor[T]()
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Name()
}

// Name returns the application's name.
func (a *Application) Name() string { return a.name }

// App returns a. Types that embed an *Application get it as a method, which
// is how a system finds the application inside them.
func (a *Application) App() *Application { return a }

// Env returns the environment the application was configured from.
func (a *Application) Env() persistence.Env { return a.env }

// Types returns the registry of the application's persisted types.
func (a *Application) Types() *domain.Registry { return a.types }

// Mapper returns the application's mapper, which also decodes the state of
// its notifications.
func (a *Application) Mapper() *persistence.Mapper { return a.mapper }

// Recorder returns the recorder of the application's events. It is a
// persistence.ProcessRecorder if the application was built
// [WithTracking].
func (a *Application) Recorder() persistence.ApplicationRecorder { return a.recorder }

// Tracks reports whether the application was built [WithTracking], so
// that it can record tracking records with its events.
func (a *Application) Tracks() bool { return a.tracking }

// Events returns the application's event store.
func (a *Application) Events() *persistence.EventStore { return a.events }

// Snapshots returns the application's snapshot store, or nil if
// snapshotting is not enabled.
func (a *Application) Snapshots() *persistence.SnapshotStore { return a.snapshots }

// Log returns the application's notification log.
func (a *Application) Log() *LocalNotificationLog { return a.log }

// Logger returns the application's logger.
func (a *Application) Logger() *slog.Logger { return a.logger }

// Factory returns the persistence factory the application's recorders
// come from.
func (a *Application) Factory() persistence.Factory { return a.factory }

// AddListener registers a listener that is called after every save that
// recorded events.
func (a *Application) AddListener(l Listener) {
	a.shared.mu.Lock()
	a.shared.listeners = append(a.shared.listeners, l)
	a.shared.mu.Unlock()
}

// Save records the pending events of the aggregates atomically, in the
// order the aggregates are given, as one commit with a new ID and the
// headers of ctx (see [ContextWithHeaders]), and returns what was
// recorded. If another writer recorded one of the versions first, nothing
// is recorded, the aggregates keep their pending events, and the error
// wraps [ErrConflict] (and persistence.ErrIntegrity), unless the
// application resolves conflicts (see [WithConflictDetector]); other
// failures also keep the pending events, so that nothing is lost.
//
// After a successful save, automatic snapshots are taken as configured
// (a failure to snapshot is logged, never returned) and listeners are
// called.
func (a *Application) Save(ctx context.Context, aggregates ...domain.Root) ([]Recording, error) {
	return a.save(ctx, nil, Commit{}, aggregates)
}

// SaveCommit is Save as the commit c: with its ID, so that the save is
// idempotent, and its headers. If c's ID is already recorded for the
// aggregates (an earlier attempt of the same save was recorded), nothing
// is recorded, the aggregates' pending events are discarded (the store has
// that commit's events), and the error wraps [ErrAlreadyCommitted]: the
// save's effect is in the store, and aggregates loaded again show it.
func (a *Application) SaveCommit(ctx context.Context, c Commit, aggregates ...domain.Root) ([]Recording, error) {
	return a.save(ctx, nil, c, aggregates)
}

// SaveTracked is Save that also records the position of a processed
// upstream notification, atomically with the events (which may be none).
// If that position was recorded before, nothing is recorded and the error
// wraps persistence.ErrIntegrity. The application must have been built
// [WithTracking].
func (a *Application) SaveTracked(ctx context.Context, t persistence.Tracking, aggregates ...domain.Root) ([]Recording, error) {
	return a.save(ctx, &t, Commit{}, aggregates)
}

// SaveTrackedCommit is SaveTracked as the commit c.
func (a *Application) SaveTrackedCommit(ctx context.Context, t persistence.Tracking, c Commit, aggregates ...domain.Root) ([]Recording, error) {
	return a.save(ctx, &t, c, aggregates)
}

func (a *Application) save(ctx context.Context, tracking *persistence.Tracking, c Commit, aggregates []domain.Root) (recordings []Recording, err error) {
	ctx, op := a.tel.Begin(ctx, observe.SpanSave, observe.OpSave, observe.MetricSaveDuration, a.attrs, a.spanAttrs...)
	defer func() { a.observeSave(ctx, op, aggregates, recordings, err) }()
	if a.unwritable != nil {
		return nil, fmt.Errorf("save: %w", a.unwritable)
	}
	saved := aggregates[:0:0]
	for i, agg := range aggregates {
		if isNil(agg) {
			return nil, fmt.Errorf("save: %w: aggregate %d of %d is a nil %T", persistence.ErrProgramming, i+1, len(aggregates), agg)
		}
		if containsRoot(saved, agg) {
			continue
		}
		for _, other := range saved {
			if other.ID() == agg.ID() {
				// Two copies of one aggregate would conflict with each
				// other however often the save is retried.
				return nil, fmt.Errorf("save: %w: two copies of aggregate %s (%T)", persistence.ErrProgramming, agg.ID(), agg)
			}
		}
		saved = append(saved, agg)
	}
	pending := func() []domain.Event {
		var events []domain.Event
		for _, agg := range saved {
			events = append(events, agg.PendingEvents()...)
		}
		return events
	}
	events := pending()
	if len(events) == 0 && tracking == nil {
		return nil, nil
	}
	commit := persistence.Commit{ID: c.ID, Headers: mergeHeaders(HeadersFrom(ctx), c.Headers)}
	if commit.ID == uuid.Nil {
		// Made once, so that a save that resolves conflicts is one commit
		// however often it tries.
		commit.ID = uuid.New()
	}
	opts := []persistence.InsertOption{persistence.WithCommit(commit)}
	if tracking != nil {
		opts = append(opts, persistence.WithTracking(*tracking))
	}
	detector := a.detector
	if c.Detector != nil {
		detector = c.Detector
	}
	var ids []int64
	for attempt := 1; ; attempt++ {
		var err error
		ids, err = a.events.Put(ctx, events, opts...)
		if err == nil {
			break
		}
		if errors.Is(err, persistence.ErrAlreadyCommitted) {
			for _, agg := range saved {
				agg.CollectEvents()
			}
			return nil, fmt.Errorf("save %s: %w", describe(events), err)
		}
		if detector == nil || !errors.Is(err, persistence.ErrIntegrity) || attempt > detector.maxAttempts() {
			return nil, fmt.Errorf("save %s: %w", describe(events), err)
		}
		a.tel.Retry(ctx, observe.OpSave, a.attrs)
		rebased, rerr := a.rebase(ctx, detector, saved)
		if rerr != nil {
			return nil, fmt.Errorf("save %s: %w", describe(events), rerr)
		}
		if !rebased {
			return nil, fmt.Errorf("save %s: %w", describe(events), err)
		}
		events = pending()
	}
	for _, agg := range saved {
		agg.CollectEvents()
	}
	recordings = make([]Recording, len(events))
	for i, e := range events {
		recordings[i] = Recording{Event: e, Tenant: a.tenant, CommitID: commit.ID, Headers: commit.Headers}
		if i < len(ids) {
			recordings[i].NotificationID = ids[i]
		}
	}
	a.autoSnapshot(ctx, saved, events)
	if len(recordings) > 0 {
		a.shared.mu.RLock()
		listeners := a.shared.listeners
		a.shared.mu.RUnlock()
		for _, l := range listeners {
			l(ctx, recordings)
		}
	}
	return recordings, nil
}

// observeSave ends the span and metrics of a save.
func (a *Application) observeSave(ctx context.Context, op observe.Op, aggregates []domain.Root, recorded []Recording, err error) {
	if err != nil {
		if errors.Is(err, persistence.ErrConflict) {
			a.tel.Conflict(ctx, a.attrs)
		}
		op.End(ctx, err)
		return
	}
	if len(recorded) == 0 {
		op.End(ctx, nil, attribute.Int(observe.KeyEventCount, 0))
		return
	}
	span := op.Span().IsRecording()
	var types []string
	if span || a.tel.EventsEnabled(ctx) {
		types = a.aggregateTypes(aggregates, recorded)
	}
	a.tel.Saved(ctx, a.attrs, types)
	if !span {
		op.End(ctx, nil)
		return
	}
	op.End(ctx, nil, attribute.Int(observe.KeyEventCount, len(recorded)),
		attribute.StringSlice(observe.KeyAggregateType, distinct(types)),
		attribute.Int64(observe.KeyFirstNotificationID, recorded[0].NotificationID),
		attribute.Int64(observe.KeyLastNotificationID, recorded[len(recorded)-1].NotificationID))
}

// aggregateTypes names the aggregate type of each recorded event.
func (a *Application) aggregateTypes(aggregates []domain.Root, recorded []Recording) []string {
	names := make(map[uuid.UUID]string, len(aggregates))
	for _, agg := range aggregates {
		if isNil(agg) {
			continue
		}
		if info, err := a.types.Lookup(agg); err == nil {
			names[agg.ID()] = info.Name()
		} else {
			names[agg.ID()] = reflect.TypeOf(agg).String()
		}
	}
	out := make([]string, len(recorded))
	for i, r := range recorded {
		out[i] = names[r.Event.OriginatorID]
	}
	return out
}

// distinct returns the distinct strings of ss, in order.
func distinct(ss []string) []string {
	var out []string
	for _, s := range ss {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// isNil reports whether agg is nil or a nil pointer in an interface, whose
// methods would panic.
func isNil(agg domain.Root) bool {
	if agg == nil {
		return true
	}
	v := reflect.ValueOf(agg)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

func containsRoot(aggs []domain.Root, agg domain.Root) bool {
	for _, x := range aggs {
		if x == agg {
			return true
		}
	}
	return false
}

// describe names the aggregates of a save for error messages.
func describe(events []domain.Event) string {
	if len(events) == 0 {
		return "tracking record"
	}
	first := events[0]
	s := fmt.Sprintf("%T %s version %d", first.Data, first.OriginatorID, first.OriginatorVersion)
	if len(events) > 1 {
		s += " and " + strconv.Itoa(len(events)-1) + " more events"
	}
	return s
}

// Get loads an aggregate of whatever registered type its events belong
// to, which needs the type's created events declared with
// domain.CreatedBy. Typed code should use a [Repository] instead.
func (a *Application) Get(ctx context.Context, id uuid.UUID, opts ...GetOption) (domain.Root, error) {
	return a.load(ctx, id, nil, newGetConfig(opts))
}

// Close releases the application's datastore resources, if the
// application opened them.
func (a *Application) Close() error {
	if a.tenant != "" {
		return nil // a tenant's view closes with its application
	}
	a.shared.mu.Lock()
	defer a.shared.mu.Unlock()
	if a.shared.closed {
		return nil
	}
	a.shared.closed = true
	if a.ownsStore {
		return a.factory.Close()
	}
	return nil
}

// Package memory is Strata's in-memory persistence module: recorders that
// keep stored events in the process's memory, with the same semantics as the
// database adapters (atomic multi-aggregate inserts, integrity errors, a
// total order of notifications, tracking records). It is the default
// module, and the fastest store for tests; nothing survives the process.
//
// Select it with PERSISTENCE_MODULE=memory (or leave PERSISTENCE_MODULE
// unset). It reads no other variables.
package memory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"

	"github.com/google/uuid"

	"github.com/strata-go/strata/persistence"
)

func init() {
	persistence.RegisterModule(persistence.Module{
		Name:    "memory",
		Aliases: []string{"popo", "eventsourcing.popo:Factory"},
		Open: func(context.Context, persistence.Env) (persistence.Factory, error) {
			return NewFactory(), nil
		},
	})
}

// Recorder is an in-memory process recorder, which also serves as an
// application recorder or an aggregate recorder. It is safe for concurrent
// use.
type Recorder struct {
	mu            sync.RWMutex
	closed        bool
	aggregates    map[uuid.UUID][]persistence.StoredEvent // ordered by version
	notifications []persistence.Notification              // notification ID = index + 1
	tracking      map[string]map[int64]struct{}
	maxTracking   map[string]int64
}

var _ persistence.ProcessRecorder = (*Recorder)(nil)

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder {
	return &Recorder{
		aggregates:  map[uuid.UUID][]persistence.StoredEvent{},
		tracking:    map[string]map[int64]struct{}{},
		maxTracking: map[string]int64{},
	}
}

func errClosed(op string) error {
	return &persistence.Error{Op: op, Kind: persistence.ErrInterface, Err: fmt.Errorf("recorder is closed")}
}

// done returns the error of a call whose context has ended, as a database
// adapter's call would fail.
func done(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return &persistence.Error{Op: op, Kind: persistence.ErrOperational, Err: err}
	}
	return nil
}

// errNoTracking is the error of a tracking record given to a recorder that
// does not keep them.
func errNoTracking(op string) error {
	return &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: errors.New("this recorder does not record tracking records")}
}

// InsertEvents records the events and the tracking record, if any,
// atomically, and returns the events' notification IDs.
func (r *Recorder) InsertEvents(ctx context.Context, events []persistence.StoredEvent, opts ...persistence.InsertOption) ([]int64, error) {
	if err := done(ctx, "insert events"); err != nil {
		return nil, err
	}
	cfg := persistence.NewInsertConfig(opts)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errClosed("insert events")
	}
	if err := r.check(events); err != nil {
		return nil, err
	}
	if t := cfg.Tracking; t != nil {
		if _, dup := r.tracking[t.ApplicationName][t.NotificationID]; dup {
			return nil, &persistence.Error{Op: "insert events", Kind: persistence.ErrIntegrity,
				Err: fmt.Errorf("tracking record %s %d is already recorded", t.ApplicationName, t.NotificationID)}
		}
		if r.tracking[t.ApplicationName] == nil {
			r.tracking[t.ApplicationName] = map[int64]struct{}{}
		}
		r.tracking[t.ApplicationName][t.NotificationID] = struct{}{}
		r.maxTracking[t.ApplicationName] = max(r.maxTracking[t.ApplicationName], t.NotificationID)
	}
	ids := make([]int64, len(events))
	for i, e := range events {
		e.State = bytes.Clone(e.State)
		r.put(e)
		ids[i] = int64(len(r.notifications) + 1)
		r.notifications = append(r.notifications, persistence.Notification{ID: ids[i], StoredEvent: e})
	}
	return ids, nil
}

// check refuses a batch with an event at a recorded version, or two events
// at one version.
func (r *Recorder) check(events []persistence.StoredEvent) error {
	type key struct {
		id      uuid.UUID
		version int64
	}
	seen := make(map[key]struct{}, len(events))
	for _, e := range events {
		k := key{e.OriginatorID, e.OriginatorVersion}
		_, dup := seen[k]
		if !dup {
			_, dup = r.find(e.OriginatorID, e.OriginatorVersion)
		}
		if dup {
			return &persistence.Error{Op: "insert events", Kind: persistence.ErrIntegrity,
				Err: fmt.Errorf("event of %s at version %d is already recorded", e.OriginatorID, e.OriginatorVersion)}
		}
		seen[k] = struct{}{}
	}
	return nil
}

func (r *Recorder) find(id uuid.UUID, version int64) (int, bool) {
	evs := r.aggregates[id]
	i := sort.Search(len(evs), func(i int) bool { return evs[i].OriginatorVersion >= version })
	return i, i < len(evs) && evs[i].OriginatorVersion == version
}

func (r *Recorder) put(e persistence.StoredEvent) {
	i, found := r.find(e.OriginatorID, e.OriginatorVersion)
	evs := r.aggregates[e.OriginatorID]
	if found {
		evs[i] = e
		return
	}
	r.aggregates[e.OriginatorID] = slices.Insert(evs, i, e)
}

// AggregateRecorder is an in-memory aggregate recorder, for snapshots: its
// events can be replaced, which events with notifications cannot.
type AggregateRecorder struct{ *Recorder }

var _ persistence.Replacer = AggregateRecorder{}

// NewAggregateRecorder returns an empty aggregate recorder.
func NewAggregateRecorder() AggregateRecorder { return AggregateRecorder{NewRecorder()} }

// InsertEvents records the events atomically. It refuses a tracking
// record: an aggregate recorder keeps none.
func (r AggregateRecorder) InsertEvents(ctx context.Context, events []persistence.StoredEvent, opts ...persistence.InsertOption) ([]int64, error) {
	if persistence.NewInsertConfig(opts).Tracking != nil {
		return nil, errNoTracking("insert events")
	}
	if _, err := r.Recorder.InsertEvents(ctx, events); err != nil {
		return nil, err
	}
	return nil, nil
}

// ReplaceEvents records the events, replacing events recorded at the same
// versions.
func (r AggregateRecorder) ReplaceEvents(ctx context.Context, events []persistence.StoredEvent) error {
	if err := done(ctx, "replace events"); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errClosed("replace events")
	}
	for _, e := range events {
		e.State = bytes.Clone(e.State)
		r.put(e)
	}
	return nil
}

// SelectEvents returns one aggregate's events as the query asks.
func (r *Recorder) SelectEvents(ctx context.Context, id uuid.UUID, q persistence.EventQuery) ([]persistence.StoredEvent, error) {
	if err := done(ctx, "select events"); err != nil {
		return nil, err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		return nil, errClosed("select events")
	}
	evs := r.aggregates[id]
	lo, hi := 0, len(evs)
	if q.Gt != nil {
		lo = sort.Search(len(evs), func(i int) bool { return evs[i].OriginatorVersion > *q.Gt })
	}
	if q.Lte != nil {
		hi = sort.Search(len(evs), func(i int) bool { return evs[i].OriginatorVersion > *q.Lte })
	}
	if hi < lo {
		hi = lo
	}
	n := hi - lo
	if q.Limit > 0 && q.Limit < n {
		n = q.Limit
	}
	out := make([]persistence.StoredEvent, 0, n)
	for i := range n {
		j := lo + i
		if q.Desc {
			j = hi - 1 - i
		}
		e := evs[j]
		e.State = bytes.Clone(e.State)
		out = append(out, e)
	}
	return out, nil
}

// SelectNotifications returns notifications from q.Start in order.
func (r *Recorder) SelectNotifications(ctx context.Context, q persistence.NotificationQuery) ([]persistence.Notification, error) {
	if err := done(ctx, "select notifications"); err != nil {
		return nil, err
	}
	if q.Limit <= 0 {
		return nil, &persistence.Error{Op: "select notifications", Kind: persistence.ErrProgramming, Err: fmt.Errorf("limit %d is not positive", q.Limit)}
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		return nil, errClosed("select notifications")
	}
	var out []persistence.Notification
	for i := max(q.Start, 1) - 1; i < int64(len(r.notifications)) && len(out) < q.Limit; i++ {
		n := r.notifications[i]
		if q.Stop > 0 && n.ID > q.Stop {
			break
		}
		if len(q.Topics) > 0 && !slices.Contains(q.Topics, n.Topic) {
			continue
		}
		n.State = bytes.Clone(n.State)
		out = append(out, n)
	}
	return out, nil
}

// MaxNotificationID returns the highest notification ID, or 0.
func (r *Recorder) MaxNotificationID(ctx context.Context) (int64, error) {
	if err := done(ctx, "max notification ID"); err != nil {
		return 0, err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		return 0, errClosed("max notification ID")
	}
	return int64(len(r.notifications)), nil
}

// MaxTrackingID returns the highest notification ID recorded for the
// upstream application, or 0.
func (r *Recorder) MaxTrackingID(ctx context.Context, app string) (int64, error) {
	if err := done(ctx, "max tracking ID"); err != nil {
		return 0, err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		return 0, errClosed("max tracking ID")
	}
	return r.maxTracking[app], nil
}

// HasTrackingID reports whether the notification ID was recorded for the
// upstream application.
func (r *Recorder) HasTrackingID(ctx context.Context, app string, id int64) (bool, error) {
	if err := done(ctx, "has tracking ID"); err != nil {
		return false, err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		return false, errClosed("has tracking ID")
	}
	_, ok := r.tracking[app][id]
	return ok, nil
}

// Close makes further calls fail with an error wrapping
// persistence.ErrInterface.
func (r *Recorder) Close() error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	return nil
}

// Factory is the memory module's factory: its recorders live as long as
// the factory.
type Factory struct {
	mu        sync.Mutex
	events    *Recorder
	purposes  map[string]AggregateRecorder
	closed    bool
	closeOnce sync.Once
}

// NewFactory returns a factory with empty recorders.
func NewFactory() *Factory {
	return &Factory{events: NewRecorder(), purposes: map[string]AggregateRecorder{}}
}

// AggregateRecorder returns the recorder for the purpose ("snapshots").
func (f *Factory) AggregateRecorder(_ context.Context, purpose string) (persistence.AggregateRecorder, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, &persistence.Error{Op: "open the " + purpose + " recorder", Kind: persistence.ErrInterface, Err: errors.New("factory is closed")}
	}
	if f.purposes[purpose].Recorder == nil {
		f.purposes[purpose] = NewAggregateRecorder()
	}
	return f.purposes[purpose], nil
}

// ApplicationRecorder returns the recorder of the application's events,
// which refuses tracking records as every adapter's application recorder
// does.
func (f *Factory) ApplicationRecorder(context.Context) (persistence.ApplicationRecorder, error) {
	if err := f.open("open the application recorder"); err != nil {
		return nil, err
	}
	return applicationRecorder{f.events}, nil
}

// ProcessRecorder returns the recorder of the application's events and
// tracking records.
func (f *Factory) ProcessRecorder(context.Context) (persistence.ProcessRecorder, error) {
	if err := f.open("open the process recorder"); err != nil {
		return nil, err
	}
	return f.events, nil
}

func (f *Factory) open(op string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return &persistence.Error{Op: op, Kind: persistence.ErrInterface, Err: errors.New("factory is closed")}
	}
	return nil
}

// applicationRecorder is the factory's process recorder seen as an
// application recorder: the same events, and no tracking records.
type applicationRecorder struct{ r *Recorder }

func (a applicationRecorder) InsertEvents(ctx context.Context, events []persistence.StoredEvent, opts ...persistence.InsertOption) ([]int64, error) {
	if persistence.NewInsertConfig(opts).Tracking != nil {
		return nil, errNoTracking("insert events")
	}
	return a.r.InsertEvents(ctx, events)
}

func (a applicationRecorder) SelectEvents(ctx context.Context, id uuid.UUID, q persistence.EventQuery) ([]persistence.StoredEvent, error) {
	return a.r.SelectEvents(ctx, id, q)
}

func (a applicationRecorder) SelectNotifications(ctx context.Context, q persistence.NotificationQuery) ([]persistence.Notification, error) {
	return a.r.SelectNotifications(ctx, q)
}

func (a applicationRecorder) MaxNotificationID(ctx context.Context) (int64, error) {
	return a.r.MaxNotificationID(ctx)
}

// Close closes the recorders.
func (f *Factory) Close() error {
	f.closeOnce.Do(func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.closed = true
		f.events.Close()
		for _, r := range f.purposes {
			r.Close()
		}
	})
	return nil
}

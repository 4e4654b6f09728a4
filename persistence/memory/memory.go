// Package memory is Strata's in-memory persistence module: recorders that
// keep stored events in the process's memory, with the same semantics as the
// database adapters (atomic multi-aggregate inserts, integrity errors,
// commits, tenants, a total order of notifications, tracking records). It
// is the default module, and the fastest store for tests; nothing survives
// the process.
//
// Select it with PERSISTENCE_MODULE=memory (or leave PERSISTENCE_MODULE
// unset, once this package is imported). It reads no other variables.
package memory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"maps"
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

// aggKey is an aggregate of a tenant.
type aggKey struct {
	tenant string
	id     uuid.UUID
}

// commitKey is a commit recorded for an aggregate of a tenant.
type commitKey struct {
	aggKey
	commit uuid.UUID
}

// store is one table's worth of data, shared by the views of every
// tenant.
type store struct {
	mu            sync.RWMutex
	closed        bool
	aggregates    map[aggKey][]persistence.StoredEvent // ordered by version
	notifications []persistence.Notification           // ordered by ID
	lastID        int64                                // IDs are never given twice
	commits       map[commitKey]struct{}
	tracking      map[string]map[int64]string // upstream → notification ID → tenant
	// truncated are the aggregates' truncation points: versions below
	// them are taken, though their events are deleted.
	truncated map[aggKey]int64

	// Slabs that inserts carve their copies from, under mu, so that a save
	// allocates once per many saves rather than once per event: states,
	// the event slices of new aggregates, and the notification IDs handed
	// back. A carved piece has its capacity cut to its length, so that an
	// append to it (by a caller, or by a later save of the aggregate)
	// copies it away rather than writing over its neighbour. A slab lives
	// as long as any piece of it, a small price for a store that keeps
	// everything anyway.
	stateSlab []byte
	eventSlab []persistence.StoredEvent
	idSlab    []int64
}

const (
	stateSlabSize = 64 << 10
	eventSlabSize = 64
	idSlabSize    = 256
)

// carve returns n elements of *slab with their capacity cut to n, taking
// a new slab of size elements first if too few are left. Requests larger
// than a quarter of a slab get an allocation of their own.
func carve[T any](slab *[]T, n, size int) []T {
	if n > size/4 {
		return make([]T, n)
	}
	if len(*slab) < n {
		*slab = make([]T, size)
	}
	piece := (*slab)[:n:n]
	*slab = (*slab)[n:]
	return piece
}

func newStore() *store {
	return &store{
		aggregates: map[aggKey][]persistence.StoredEvent{},
		commits:    map[commitKey]struct{}{},
		tracking:   map[string]map[int64]string{},
		truncated:  map[aggKey]int64{},
	}
}

// Recorder is an in-memory process recorder of one tenant, which also
// serves as an application recorder or an aggregate recorder. It is safe
// for concurrent use.
type Recorder struct {
	s      *store
	tenant string
}

var _ persistence.ProcessRecorder = (*Recorder)(nil)

// NewRecorder returns an empty recorder of the default tenant.
func NewRecorder() *Recorder { return &Recorder{s: newStore()} }

// Tenant returns the recorder of the same store for tenant id.
func (r *Recorder) Tenant(id string) *Recorder { return &Recorder{s: r.s, tenant: id} }

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

// InsertEvents records the events, their commit and the tracking record,
// if any, atomically, and returns the events' notification IDs.
func (r *Recorder) InsertEvents(ctx context.Context, events []persistence.StoredEvent, opts ...persistence.InsertOption) ([]int64, error) {
	const op = "insert events"
	if err := done(ctx, op); err != nil {
		return nil, err
	}
	if err := persistence.CheckCommit(op, events); err != nil {
		return nil, err
	}
	cfg := persistence.NewInsertConfig(opts)
	s := r.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed(op)
	}
	return r.insertLocked(events, cfg.Tracking, nil)
}

// undo is what a batch recorded so far, to be taken back if a later
// insert of the batch fails.
type undo struct {
	events        []aggKey // with versions below
	versions      []int64
	commits       []commitKey
	tracking      []persistence.Tracking
	notifications int
	lastID        int64
}

// rollback takes back what u recorded.
func (r *Recorder) rollback(u *undo) {
	s := r.s
	for i, k := range u.events {
		evs := s.aggregates[k]
		j := sort.Search(len(evs), func(j int) bool { return evs[j].OriginatorVersion >= u.versions[i] })
		if j < len(evs) && evs[j].OriginatorVersion == u.versions[i] {
			evs = slices.Delete(evs, j, j+1)
		}
		if len(evs) == 0 {
			delete(s.aggregates, k)
		} else {
			s.aggregates[k] = evs
		}
	}
	for _, c := range u.commits {
		delete(s.commits, c)
	}
	for _, t := range u.tracking {
		delete(s.tracking[t.ApplicationName], t.NotificationID)
	}
	s.notifications = s.notifications[:u.notifications]
	s.lastID = u.lastID
}

// insertLocked is InsertEvents with the store locked; it notes in u, if
// not nil, what it recorded.
func (r *Recorder) insertLocked(events []persistence.StoredEvent, tracking *persistence.Tracking, u *undo) ([]int64, error) {
	s := r.s
	if err := r.checkCommit(events); err != nil {
		return nil, err
	}
	if err := r.check(events); err != nil {
		return nil, err
	}
	if t := tracking; t != nil {
		if _, dup := s.tracking[t.ApplicationName][t.NotificationID]; dup {
			return nil, &persistence.Error{Op: "insert events", Kind: persistence.ErrIntegrity,
				Err: fmt.Errorf("tracking record %s %d is already recorded", t.ApplicationName, t.NotificationID)}
		}
		if s.tracking[t.ApplicationName] == nil {
			s.tracking[t.ApplicationName] = map[int64]string{}
		}
		s.tracking[t.ApplicationName][t.NotificationID] = r.tenant
		if u != nil {
			u.tracking = append(u.tracking, *t)
		}
	}
	ids := carve(&s.idSlab, len(events), idSlabSize)
	size := 0
	for _, e := range events {
		size += len(e.State)
	}
	states := carve(&s.stateSlab, size, stateSlabSize)
	// Every event of one insert has the same headers (CheckCommit), and
	// nothing changes a stored map: one copy serves them all.
	var headers persistence.Headers
	if len(events) > 0 {
		headers = maps.Clone(events[0].Headers)
	}
	s.notifications = slices.Grow(s.notifications, len(events))
	// A run of events of one aggregate costs one lookup and one store in
	// the maps, not one per event.
	for i := 0; i < len(events); {
		j := i + 1
		for j < len(events) && events[j].OriginatorID == events[i].OriginatorID {
			j++
		}
		k := aggKey{r.tenant, events[i].OriginatorID}
		evs, known := s.aggregates[k]
		if !known {
			evs = carve(&s.eventSlab, j-i, eventSlabSize)[:0]
		}
		for n := i; n < j; n++ {
			e := events[n]
			e.State, states = cloneInto(states, e.State)
			e.Headers = headers
			evs = insertEvent(evs, e)
			if u != nil {
				u.events = append(u.events, k)
				u.versions = append(u.versions, e.OriginatorVersion)
			}
			s.lastID++
			ids[n] = s.lastID
			s.notifications = append(s.notifications, persistence.Notification{ID: ids[n], Tenant: r.tenant, StoredEvent: e})
		}
		s.aggregates[k] = evs
		if c := events[i].CommitID; c != uuid.Nil {
			ck := commitKey{k, c}
			if _, had := s.commits[ck]; !had && u != nil {
				u.commits = append(u.commits, ck)
			}
			s.commits[ck] = struct{}{}
		}
		i = j
	}
	return ids, nil
}

var _ persistence.BatchProcessRecorder = (*Recorder)(nil)

// InsertTrackedBatch records the inserts, each with its tracking record,
// atomically: one that fails takes back those before it.
func (r *Recorder) InsertTrackedBatch(ctx context.Context, inserts []persistence.TrackedInsert) ([][]int64, error) {
	const op = "insert tracked batch"
	if err := done(ctx, op); err != nil {
		return nil, err
	}
	if err := persistence.CheckTrackedBatch(op, inserts); err != nil {
		return nil, err
	}
	s := r.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed(op)
	}
	u := &undo{notifications: len(s.notifications), lastID: s.lastID}
	out := make([][]int64, len(inserts))
	for i, in := range inserts {
		ids, err := r.insertLocked(in.Events, &in.Tracking, u)
		if err != nil {
			r.rollback(u)
			return nil, &persistence.BatchError{Index: i, Err: err}
		}
		out[i] = ids
	}
	return out, nil
}

// checkCommit refuses a commit already recorded for the events'
// aggregates.
func (r *Recorder) checkCommit(events []persistence.StoredEvent) error {
	if len(events) == 0 || events[0].CommitID == uuid.Nil {
		return nil
	}
	c := events[0].CommitID
	var have, lack []uuid.UUID
	for _, e := range events {
		if slices.Contains(have, e.OriginatorID) || slices.Contains(lack, e.OriginatorID) {
			continue
		}
		if _, ok := r.s.commits[commitKey{aggKey{r.tenant, e.OriginatorID}, c}]; ok {
			have = append(have, e.OriginatorID)
		} else {
			lack = append(lack, e.OriginatorID)
		}
	}
	switch {
	case len(have) == 0:
		return nil
	case len(lack) == 0:
		return &persistence.Error{Op: "insert events", Kind: persistence.ErrAlreadyCommitted, Err: fmt.Errorf("commit %s is recorded", c)}
	}
	return &persistence.Error{Op: "insert events", Kind: persistence.ErrIntegrity,
		Err: fmt.Errorf("commit %s is recorded for aggregate %s but not for %s: a commit ID names one save", c, have[0], lack[0])}
}

// cloneInto copies b to the front of buf and returns the copy, with its
// capacity cut to its length, and the rest of buf. A nil b stays nil.
func cloneInto(buf, b []byte) ([]byte, []byte) {
	if b == nil {
		return nil, buf
	}
	n := copy(buf, b)
	return buf[:n:n], buf[n:]
}

// check refuses a batch with an event at a recorded version, or two events
// at one version.
func (r *Recorder) check(events []persistence.StoredEvent) error {
	if r.ascending(events) {
		// No two events of the batch can share a version: only the
		// recorded ones need looking at.
		for _, e := range events {
			if _, dup := r.find(e.OriginatorID, e.OriginatorVersion); dup || r.truncatedAt(e) {
				return errDuplicate(e)
			}
		}
		return nil
	}
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
		if !dup {
			dup = r.truncatedAt(e)
		}
		if dup {
			return errDuplicate(e)
		}
		seen[k] = struct{}{}
	}
	return nil
}

// truncatedAt reports whether e is below its aggregate's truncation
// point: a version taken, though its event is deleted.
func (r *Recorder) truncatedAt(e persistence.StoredEvent) bool {
	return len(r.s.truncated) > 0 && e.OriginatorVersion < r.s.truncated[aggKey{r.tenant, e.OriginatorID}]
}

func errDuplicate(e persistence.StoredEvent) error {
	return &persistence.Error{Op: "insert events", Kind: persistence.ErrIntegrity,
		Err: fmt.Errorf("event of %s at version %d is already recorded", e.OriginatorID, e.OriginatorVersion)}
}

// ascending reports whether the batch is the usual shape, for which
// check needs no map: each aggregate's events in one run, in ascending
// order of version. A batch of many runs is left to the map.
func (r *Recorder) ascending(events []persistence.StoredEvent) bool {
	var runs [8]uuid.UUID
	n := 0
	for i, e := range events {
		if i > 0 && e.OriginatorID == events[i-1].OriginatorID {
			if e.OriginatorVersion <= events[i-1].OriginatorVersion {
				return false
			}
			continue
		}
		if n == len(runs) || slices.Contains(runs[:n], e.OriginatorID) {
			return false
		}
		runs[n] = e.OriginatorID
		n++
	}
	return true
}

func (r *Recorder) find(id uuid.UUID, version int64) (int, bool) {
	evs := r.s.aggregates[aggKey{r.tenant, id}]
	i := sort.Search(len(evs), func(i int) bool { return evs[i].OriginatorVersion >= version })
	return i, i < len(evs) && evs[i].OriginatorVersion == version
}

// put records e, replacing an event at its version.
func (r *Recorder) put(e persistence.StoredEvent) {
	k := aggKey{r.tenant, e.OriginatorID}
	r.s.aggregates[k] = insertEvent(r.s.aggregates[k], e)
}

// insertEvent puts e in an aggregate's events, in order of version,
// replacing an event at its version.
func insertEvent(evs []persistence.StoredEvent, e persistence.StoredEvent) []persistence.StoredEvent {
	if len(evs) == 0 || evs[len(evs)-1].OriginatorVersion < e.OriginatorVersion {
		return append(evs, e)
	}
	i := sort.Search(len(evs), func(i int) bool { return evs[i].OriginatorVersion >= e.OriginatorVersion })
	if i < len(evs) && evs[i].OriginatorVersion == e.OriginatorVersion {
		evs[i] = e
		return evs
	}
	return slices.Insert(evs, i, e)
}

// AggregateRecorder is an in-memory aggregate recorder, for snapshots: its
// events can be replaced, which events with notifications cannot.
type AggregateRecorder struct{ *Recorder }

var (
	_ persistence.Replacer = AggregateRecorder{}
	_ persistence.Lister   = AggregateRecorder{}
)

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

// Originators yields the IDs of the aggregates the recorder's tenant has.
func (r AggregateRecorder) Originators(ctx context.Context) iter.Seq2[uuid.UUID, error] {
	return func(yield func(uuid.UUID, error) bool) {
		if err := done(ctx, "list aggregates"); err != nil {
			yield(uuid.Nil, err)
			return
		}
		r.s.mu.RLock()
		var ids []uuid.UUID
		for k := range r.s.aggregates {
			if k.tenant == r.tenant {
				ids = append(ids, k.id)
			}
		}
		r.s.mu.RUnlock()
		for _, id := range ids {
			if !yield(id, nil) {
				return
			}
		}
	}
}

// ReplaceEvents records the events, replacing events recorded at the same
// versions.
func (r AggregateRecorder) ReplaceEvents(ctx context.Context, events []persistence.StoredEvent) error {
	if err := done(ctx, "replace events"); err != nil {
		return err
	}
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if r.s.closed {
		return errClosed("replace events")
	}
	for _, e := range events {
		e.State = bytes.Clone(e.State)
		e.Headers = maps.Clone(e.Headers)
		r.put(e)
	}
	return nil
}

// SelectEvents returns one aggregate's events as the query asks.
func (r *Recorder) SelectEvents(ctx context.Context, id uuid.UUID, q persistence.EventQuery) ([]persistence.StoredEvent, error) {
	if err := done(ctx, "select events"); err != nil {
		return nil, err
	}
	r.s.mu.RLock()
	defer r.s.mu.RUnlock()
	if r.s.closed {
		return nil, errClosed("select events")
	}
	evs := r.s.aggregates[aggKey{r.tenant, id}]
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
	size := 0
	for _, e := range evs[lo : lo+n] {
		size += len(e.State)
	}
	if q.Desc {
		size = 0
		for _, e := range evs[hi-n : hi] {
			size += len(e.State)
		}
	}
	// One copy of all the states, cut into one per event: callers may
	// change what they are given, not what the store holds.
	states := make([]byte, size)
	for i := range n {
		j := lo + i
		if q.Desc {
			j = hi - 1 - i
		}
		e := evs[j]
		e.State, states = cloneInto(states, e.State)
		e.Headers = maps.Clone(e.Headers)
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
	r.s.mu.RLock()
	defer r.s.mu.RUnlock()
	if r.s.closed {
		return nil, errClosed("select notifications")
	}
	ns := r.s.notifications
	var out []persistence.Notification
	for i := sort.Search(len(ns), func(i int) bool { return ns[i].ID >= q.Start }); i < len(ns) && len(out) < q.Limit; i++ {
		n := ns[i]
		if q.Stop > 0 && n.ID > q.Stop {
			break
		}
		if !q.AllTenants && n.Tenant != r.tenant || len(q.Topics) > 0 && !slices.Contains(q.Topics, n.Topic) {
			continue
		}
		n.State = bytes.Clone(n.State)
		n.Headers = maps.Clone(n.Headers)
		out = append(out, n)
	}
	return out, nil
}

// MaxNotificationID returns the highest notification ID of the recorder's
// tenant, or 0.
func (r *Recorder) MaxNotificationID(ctx context.Context) (int64, error) {
	if err := done(ctx, "max notification ID"); err != nil {
		return 0, err
	}
	r.s.mu.RLock()
	defer r.s.mu.RUnlock()
	if r.s.closed {
		return 0, errClosed("max notification ID")
	}
	for i := len(r.s.notifications) - 1; i >= 0; i-- {
		if n := r.s.notifications[i]; n.Tenant == r.tenant {
			return n.ID, nil
		}
	}
	return 0, nil
}

// MaxNotificationIDAcrossTenants returns the highest notification ID of
// every tenant, or 0.
func (r *Recorder) MaxNotificationIDAcrossTenants(ctx context.Context) (int64, error) {
	if err := done(ctx, "max notification ID"); err != nil {
		return 0, err
	}
	r.s.mu.RLock()
	defer r.s.mu.RUnlock()
	if r.s.closed {
		return 0, errClosed("max notification ID")
	}
	if n := len(r.s.notifications); n > 0 {
		return r.s.notifications[n-1].ID, nil
	}
	return 0, nil
}

// MaxTrackingID returns the highest notification ID recorded for the
// upstream application, or 0.
func (r *Recorder) MaxTrackingID(ctx context.Context, app string) (int64, error) {
	if err := done(ctx, "max tracking ID"); err != nil {
		return 0, err
	}
	r.s.mu.RLock()
	defer r.s.mu.RUnlock()
	if r.s.closed {
		return 0, errClosed("max tracking ID")
	}
	var most int64
	for id := range r.s.tracking[app] {
		most = max(most, id)
	}
	return most, nil
}

// HasTrackingID reports whether the notification ID was recorded for the
// upstream application.
func (r *Recorder) HasTrackingID(ctx context.Context, app string, id int64) (bool, error) {
	if err := done(ctx, "has tracking ID"); err != nil {
		return false, err
	}
	r.s.mu.RLock()
	defer r.s.mu.RUnlock()
	if r.s.closed {
		return false, errClosed("has tracking ID")
	}
	_, ok := r.s.tracking[app][id]
	return ok, nil
}

// Close makes further calls fail with an error wrapping
// persistence.ErrInterface, in every tenant.
func (r *Recorder) Close() error {
	r.s.mu.Lock()
	r.s.closed = true
	r.s.mu.Unlock()
	return nil
}

// deleteAggregate deletes the aggregate's events, commits and
// notifications, and reports whether it had any. The caller holds s.mu.
func (s *store) deleteAggregate(tenant string, id uuid.UUID) bool {
	k := aggKey{tenant, id}
	_, had := s.aggregates[k]
	delete(s.aggregates, k)
	delete(s.truncated, k)
	maps.DeleteFunc(s.commits, func(c commitKey, _ struct{}) bool { return c.aggKey == k })
	s.notifications = slices.DeleteFunc(s.notifications, func(n persistence.Notification) bool {
		return n.Tenant == tenant && n.OriginatorID == id
	})
	return had
}

// purge deletes everything of tenant. The caller holds s.mu.
func (s *store) purge(tenant string) {
	maps.DeleteFunc(s.aggregates, func(k aggKey, _ []persistence.StoredEvent) bool { return k.tenant == tenant })
	maps.DeleteFunc(s.truncated, func(k aggKey, _ int64) bool { return k.tenant == tenant })
	maps.DeleteFunc(s.commits, func(c commitKey, _ struct{}) bool { return c.tenant == tenant })
	s.notifications = slices.DeleteFunc(s.notifications, func(n persistence.Notification) bool { return n.Tenant == tenant })
	for _, byID := range s.tracking {
		maps.DeleteFunc(byID, func(_ int64, t string) bool { return t == tenant })
	}
}

// Factory is the memory module's factory: its recorders live as long as
// the factory. A tenant's factory shares the stores of the factory it
// came from.
type Factory struct {
	shared *shared
	tenant string
}

// shared is what the factories of every tenant of one store share.
type shared struct {
	mu        sync.Mutex
	events    *store
	purposes  map[string]*store
	closed    bool
	closeOnce sync.Once
}

var (
	_ persistence.Eraser    = (*Factory)(nil)
	_ persistence.Truncater = (*Factory)(nil)
)

// NewFactory returns a factory with empty recorders.
func NewFactory() *Factory {
	return &Factory{shared: &shared{events: newStore(), purposes: map[string]*store{}}}
}

func (f *Factory) open(op string) error {
	if f.shared.closed {
		return &persistence.Error{Op: op, Kind: persistence.ErrInterface, Err: errors.New("factory is closed")}
	}
	return nil
}

// AggregateRecorder returns the recorder for the purpose ("snapshots").
func (f *Factory) AggregateRecorder(_ context.Context, purpose string) (persistence.AggregateRecorder, error) {
	f.shared.mu.Lock()
	defer f.shared.mu.Unlock()
	if err := f.open("open the " + purpose + " recorder"); err != nil {
		return nil, err
	}
	s := f.shared.purposes[purpose]
	if s == nil {
		s = newStore()
		f.shared.purposes[purpose] = s
	}
	return AggregateRecorder{&Recorder{s: s, tenant: f.tenant}}, nil
}

// ApplicationRecorder returns the recorder of the application's events,
// which refuses tracking records as every adapter's application recorder
// does.
func (f *Factory) ApplicationRecorder(context.Context) (persistence.ApplicationRecorder, error) {
	f.shared.mu.Lock()
	defer f.shared.mu.Unlock()
	if err := f.open("open the application recorder"); err != nil {
		return nil, err
	}
	return persistence.ApplicationView(&Recorder{s: f.shared.events, tenant: f.tenant}), nil
}

// ProcessRecorder returns the recorder of the application's events and
// tracking records.
func (f *Factory) ProcessRecorder(context.Context) (persistence.ProcessRecorder, error) {
	f.shared.mu.Lock()
	defer f.shared.mu.Unlock()
	if err := f.open("open the process recorder"); err != nil {
		return nil, err
	}
	return &Recorder{s: f.shared.events, tenant: f.tenant}, nil
}

// Tenant returns the factory of tenant id, on the same stores.
func (f *Factory) Tenant(id string) (persistence.Factory, error) {
	if err := persistence.CheckTenant(id); err != nil {
		return nil, err
	}
	return &Factory{shared: f.shared, tenant: id}, nil
}

// DeleteAggregate deletes the aggregate's events, commits and snapshots in
// the factory's tenant, atomically.
func (f *Factory) DeleteAggregate(ctx context.Context, id uuid.UUID) (bool, error) {
	const op = "delete aggregate"
	if err := done(ctx, op); err != nil {
		return false, err
	}
	unlock, err := f.lockAll(op)
	if err != nil {
		return false, err
	}
	defer unlock()
	had := f.shared.events.deleteAggregate(f.tenant, id)
	for _, s := range f.shared.purposes {
		had = s.deleteAggregate(f.tenant, id) || had
	}
	return had, nil
}

// TruncateAggregate deletes the aggregate's events below version before
// in the factory's tenant, with their notifications, atomically; the
// versions stay taken (see persistence.Truncater).
func (f *Factory) TruncateAggregate(ctx context.Context, id uuid.UUID, before int64) (int, error) {
	op := fmt.Sprintf("truncate aggregate %s before version %d", id, before)
	if err := done(ctx, op); err != nil {
		return 0, err
	}
	unlock, err := f.lockAll(op)
	if err != nil {
		return 0, err
	}
	defer unlock()
	s := f.shared.events
	k := aggKey{f.tenant, id}
	evs := s.aggregates[k]
	if len(evs) == 0 {
		return 0, &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: errors.New("the aggregate has no events")}
	}
	if last := evs[len(evs)-1].OriginatorVersion; before > last {
		return 0, &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: fmt.Errorf("its last version is %d, which a truncation keeps", last)}
	}
	n := sort.Search(len(evs), func(i int) bool { return evs[i].OriginatorVersion >= before })
	s.aggregates[k] = slices.Clone(evs[n:])
	s.truncated[k] = max(s.truncated[k], before)
	s.notifications = slices.DeleteFunc(s.notifications, func(x persistence.Notification) bool {
		return x.Tenant == f.tenant && x.OriginatorID == id && x.OriginatorVersion < before
	})
	return n, nil
}

// TruncationPoint returns the version the aggregate was truncated
// before, or 0.
func (f *Factory) TruncationPoint(ctx context.Context, id uuid.UUID) (int64, error) {
	const op = "truncation point"
	if err := done(ctx, op); err != nil {
		return 0, err
	}
	s := f.shared.events
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := f.open(op); err != nil {
		return 0, err
	}
	return s.truncated[aggKey{f.tenant, id}], nil
}

// PurgeTenant deletes everything of the factory's tenant, atomically.
func (f *Factory) PurgeTenant(ctx context.Context) error {
	const op = "purge tenant"
	if err := done(ctx, op); err != nil {
		return err
	}
	if f.tenant == "" {
		return &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: errors.New("the default tenant cannot be purged")}
	}
	unlock, err := f.lockAll(op)
	if err != nil {
		return err
	}
	defer unlock()
	f.shared.events.purge(f.tenant)
	for _, s := range f.shared.purposes {
		s.purge(f.tenant)
	}
	return nil
}

// lockAll locks every store, in a fixed order, so that a deletion is
// atomic across them.
func (f *Factory) lockAll(op string) (func(), error) {
	f.shared.mu.Lock()
	if err := f.open(op); err != nil {
		f.shared.mu.Unlock()
		return nil, err
	}
	stores := []*store{f.shared.events}
	for _, p := range slices.Sorted(maps.Keys(f.shared.purposes)) {
		stores = append(stores, f.shared.purposes[p])
	}
	for _, s := range stores {
		s.mu.Lock()
	}
	return func() {
		for _, s := range stores {
			s.mu.Unlock()
		}
		f.shared.mu.Unlock()
	}, nil
}

// Close closes the recorders of every tenant. Closing a tenant's factory
// does nothing.
func (f *Factory) Close() error {
	if f.tenant != "" {
		return nil
	}
	f.shared.closeOnce.Do(func() {
		f.shared.mu.Lock()
		defer f.shared.mu.Unlock()
		f.shared.closed = true
		f.shared.events.mu.Lock()
		f.shared.events.closed = true
		f.shared.events.mu.Unlock()
		for _, s := range f.shared.purposes {
			s.mu.Lock()
			s.closed = true
			s.mu.Unlock()
		}
	})
	return nil
}

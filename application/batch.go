package application

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"

	"github.com/strata-go/strata/domain"
	"github.com/strata-go/strata/observe"
	"github.com/strata-go/strata/persistence"
)

// Batch records the results of processing several upstream
// notifications in one transaction: each notification's events as a
// commit of their own, with its tracking record, as [Application.SaveTrackedCommit]
// would record them one by one, but at the cost of one commit (see
// persistence.InsertTracked). A process application's runner uses one per
// run of notifications.
//
// A batch is also a working copy: an aggregate the batch holds (one given
// to Add, or loaded with the batch's context, see [Batch.Context]) is
// loaded from the batch, with the changes of the notifications before,
// not from the store, which does not have them yet. A Batch is used by
// one goroutine at a time.
type Batch struct {
	app    *Application
	copies map[uuid.UUID]domain.Root
	saves  []batchSave
	// recorded holds aggregates as an earlier batch recorded them (see
	// [Batch.Next]): a load brings one up to date with the events recorded
	// since, instead of rebuilding it from a snapshot and the events after.
	// The first such load brings up to date at once, in one query, those
	// that recent batches used, leaving their events in ahead (see
	// [Batch.bringUpToDate]).
	recorded  map[uuid.UUID]carried
	ahead     map[uuid.UUID][]persistence.StoredEvent
	readAhead bool
	// seq numbers the batches of a chain of Next calls, from 0.
	seq int
	// whole says that Save recorded every notification's results.
	whole bool
}

// carried is an aggregate that a batch carries from the one before, with
// the seq of the last batch that used it.
type carried struct {
	agg  domain.Root
	used int
}

// carryLimit bounds how many aggregates [Batch.Next] carries from one
// batch to the next, so that a follower of many aggregates keeps only the
// ones it used last in memory.
const carryLimit = 1024

// batchSave is what one notification added to a batch.
type batchSave struct {
	tracking persistence.Tracking
	commit   Commit
	events   []domain.Event
	saved    []domain.Root
}

// NewBatch returns an empty batch of the application (of its tenant, for
// a tenant's view), which must have been built [WithTracking].
func (a *Application) NewBatch() *Batch {
	return &Batch{app: a, copies: map[uuid.UUID]domain.Root{}}
}

// Next returns an empty batch, of the same application and tenant, whose
// loads start from the aggregates of b's working copy as b recorded them:
// a load of one of them reads only the events recorded at and after its
// version (usually the one event it was recorded at), checks that this
// event is still the aggregate's last known one, and applies the rest,
// instead of loading the latest snapshot and replaying the events after
// it. The first such load of the batch also brings up to date, in the
// same query on a store that can (persistence.SelectEventsAfter), the
// carried aggregates that recent batches used, for their own loads: those
// are as the store had them at the batch's first load of a carried
// aggregate, as if loaded then. Whatever changed an aggregate in the
// store until then (another process, a notification processed alone) is
// so seen as a fresh load would see it, and a change after it is as one
// made after a fresh load (a batch that records events of the aggregate
// then conflicts); an aggregate whose recorded event is gone (deleted,
// truncated) is loaded afresh. A batch whose Save failed, or did not run, carries
// nothing. Up to carryLimit aggregates are carried, the ones b used first.
func (b *Batch) Next() *Batch {
	next := b.app.NewBatch()
	if !b.whole {
		return next
	}
	next.recorded = make(map[uuid.UUID]carried, min(len(b.copies)+len(b.recorded), carryLimit))
	next.seq = b.seq + 1
	add := func(id uuid.UUID, c carried) bool {
		if len(next.recorded) >= carryLimit {
			return false
		}
		if _, ok := next.recorded[id]; !ok && len(c.agg.PendingEvents()) == 0 {
			next.recorded[id] = c
		}
		return true
	}
	for id, agg := range b.copies {
		if !add(id, carried{agg: agg, used: b.seq}) {
			return next
		}
	}
	for id, c := range b.recorded {
		if !add(id, c) {
			return next
		}
	}
	return next
}

// fastForward returns the aggregate id that an earlier batch recorded
// (see [Batch.Next]) brought up to date with the store, if b holds one of
// type want (any type if nil) that can be: its last known event must
// still be the one recorded at its version. It reports false, with no
// error, when the aggregate is to be loaded afresh.
func (b *Batch) fastForward(ctx context.Context, id uuid.UUID, want *domain.TypeInfo) (domain.Root, bool) {
	c, ok := b.recorded[id]
	if !ok {
		return nil, false
	}
	agg := c.agg
	// Taken out whatever happens: replaying into it below changes it, and
	// it is either returned, joining the working copy, or forgotten.
	delete(b.recorded, id)
	stored, ahead := b.ahead[id]
	delete(b.ahead, id)
	if want != nil && reflect.TypeOf(agg) != want.GoType() || len(agg.PendingEvents()) > 0 {
		return nil, false
	}
	info, err := b.app.types.Lookup(agg)
	if err != nil {
		return nil, false
	}
	v := agg.Version()
	if !ahead {
		if stored, err = b.bringUpToDate(ctx, id, v); err != nil {
			return nil, false // the fresh load says what the store has
		}
	}
	if len(stored) == 0 {
		return nil, false
	}
	mapper := b.app.events.Mapper()
	last, err := mapper.ToEvent(stored[0])
	if err != nil || last.OriginatorVersion != v || !last.Timestamp.Equal(agg.ModifiedOn()) {
		return nil, false
	}
	if len(stored) > 1 {
		events := make([]domain.Event, len(stored)-1)
		for i, se := range stored[1:] {
			if events[i], err = mapper.ToEvent(se); err != nil {
				return nil, false
			}
		}
		if err := info.Replay(agg, events...); err != nil {
			return nil, false
		}
	}
	return agg, true
}

// bringUpToDate returns the stored events of aggregate id from version v
// on. The first time it is called in a batch, it also reads, in the same
// query, those of the aggregates b carries that one of the last
// readAheadBatches batches used, and keeps them in b.ahead for their own
// loads: a follower that keeps up loads much the same aggregates from one
// batch to the next, and one query costs the store and the process less
// than one per aggregate. Reading ahead an aggregate the batch then does
// not load costs its events since it was recorded, usually one row. The
// read runs on the context of the load that asked for it; if it fails,
// that aggregate is loaded afresh and the others are brought up to date
// with a query each.
func (b *Batch) bringUpToDate(ctx context.Context, id uuid.UUID, v int64) ([]persistence.StoredEvent, error) {
	after := []persistence.After{{OriginatorID: id, Version: v - 1}}
	if !b.readAhead {
		b.readAhead = true
		for other, c := range b.recorded {
			if other != id && b.seq-c.used <= readAheadBatches {
				after = append(after, persistence.After{OriginatorID: other, Version: c.agg.Version() - 1})
			}
		}
	}
	got, err := persistence.SelectEventsAfter(ctx, b.app.events.Recorder(), after)
	if err != nil {
		return nil, err
	}
	if len(after) > 1 {
		b.ahead = make(map[uuid.UUID][]persistence.StoredEvent, len(after)-1)
		for i, a := range after[1:] {
			b.ahead[a.OriginatorID] = got[i+1]
		}
	}
	return got[0], nil
}

// readAheadBatches is how many batches back an aggregate a batch carries
// may have been last used and still be read ahead (see
// [Batch.bringUpToDate]): a follower whose batches each use some of the
// same few aggregates, in turn, uses again within a few batches what it
// did not use in the last one.
const readAheadBatches = 4

type batchKey struct{}

// Context returns ctx with the batch as working copy: loads made with it,
// by any repository of the batch's application and tenant, return the
// batch's copy of an aggregate the batch holds, and the aggregates they
// load from the store join the batch's working copy.
func (b *Batch) Context(ctx context.Context) context.Context {
	return context.WithValue(ctx, batchKey{}, b)
}

// batchFor returns the batch of ctx if it is a working copy of a.
func batchFor(ctx context.Context, a *Application) *Batch {
	b, _ := ctx.Value(batchKey{}).(*Batch)
	if b == nil || b.app.shared != a.shared || b.app.tenant != a.tenant {
		return nil
	}
	return b
}

// lookup returns the batch's copy of id if it is of type want (any type
// if nil).
func (b *Batch) lookup(id uuid.UUID, want *domain.TypeInfo) (domain.Root, bool) {
	agg, ok := b.copies[id]
	if !ok || want != nil && reflect.TypeOf(agg) != want.GoType() {
		return nil, false
	}
	return agg, true
}

// Len returns how many notifications' results the batch holds.
func (b *Batch) Len() int { return len(b.saves) }

// Add adds the results of processing one upstream notification: the
// pending events of aggregates (which may be none), to be recorded as
// commit c with tracking record t. The events are collected from the
// aggregates, which join the working copy. An aggregate of the working
// copy that has pending events but is not given is dropped from it: a
// policy changed it without saving it, and the next one must not see the
// change.
func (b *Batch) Add(t persistence.Tracking, c Commit, aggregates ...domain.Root) error {
	var saved []domain.Root
	var events []domain.Event
	for i, agg := range aggregates {
		if isNil(agg) {
			return fmt.Errorf("batch: %w: aggregate %d of %d is a nil %T", persistence.ErrProgramming, i+1, len(aggregates), agg)
		}
		if containsRoot(saved, agg) {
			continue
		}
		for _, other := range saved {
			if other.ID() == agg.ID() {
				return fmt.Errorf("batch: %w: two copies of aggregate %s (%T)", persistence.ErrProgramming, agg.ID(), agg)
			}
		}
		saved = append(saved, agg)
	}
	for _, agg := range saved {
		events = append(events, agg.PendingEvents()...)
		agg.CollectEvents()
		b.copies[agg.ID()] = agg
	}
	for id, agg := range b.copies {
		if len(agg.PendingEvents()) > 0 {
			delete(b.copies, id)
		}
	}
	b.saves = append(b.saves, batchSave{tracking: t, commit: c, events: events, saved: saved})
	return nil
}

// Save records what the batch holds and returns what each notification's
// commit recorded, in order. Listeners are called once per notification
// whose commit recorded events, as after a save each, and automatic
// snapshots are taken. On failure, the error wraps a
// *persistence.BatchError whose Recorded says how many notifications'
// results, from the first, were recorded (none, with a recorder that
// records batches in one transaction), and the recordings of those are
// returned.
func (b *Batch) Save(ctx context.Context) (recordings [][]Recording, err error) {
	a := b.app
	if len(b.saves) == 0 {
		return nil, nil
	}
	ctx, op := a.tel.Begin(ctx, observe.SpanSave, observe.OpSave, observe.MetricSaveDuration, a.attrs, a.spanAttrs...)
	defer func() {
		if err != nil {
			op.End(ctx, err)
			return
		}
		n := 0
		for _, r := range recordings {
			n += len(r)
		}
		op.End(ctx, nil, attribute.Int(observe.KeyEventCount, n))
	}()
	if a.unwritable != nil {
		return nil, fmt.Errorf("save batch: %w", a.unwritable)
	}
	rec, ok := a.recorder.(persistence.ProcessRecorder)
	if !ok {
		return nil, fmt.Errorf("save batch: %w: %s was not built WithTracking", persistence.ErrProgramming, a.name)
	}
	inserts := make([]persistence.TrackedInsert, len(b.saves))
	commits := make([]persistence.Commit, len(b.saves))
	mapper := a.events.Mapper()
	for i, s := range b.saves {
		c := persistence.Commit{ID: s.commit.ID, Headers: mergeHeaders(HeadersFrom(ctx), s.commit.Headers)}
		if c.ID == uuid.Nil {
			c.ID = uuid.New()
		}
		commits[i] = c
		stored := make([]persistence.StoredEvent, len(s.events))
		for j, e := range s.events {
			if stored[j], err = mapper.ToStored(e); err != nil {
				return nil, &persistence.BatchError{Index: i, Err: fmt.Errorf("save batch: %s: %w", describe(s.events), err)}
			}
			stored[j].CommitID, stored[j].Headers = c.ID, c.Headers
		}
		inserts[i] = persistence.TrackedInsert{Events: stored, Tracking: s.tracking}
	}
	ids, err := persistence.InsertTracked(ctx, rec, inserts)
	b.whole = err == nil
	recordings = make([][]Recording, len(ids))
	var saved []domain.Root
	var events []domain.Event
	for i := range ids {
		s := b.saves[i]
		recordings[i] = make([]Recording, len(s.events))
		for j, e := range s.events {
			recordings[i][j] = Recording{Event: e, Tenant: a.tenant, CommitID: commits[i].ID, Headers: commits[i].Headers}
			if j < len(ids[i]) {
				recordings[i][j].NotificationID = ids[i][j]
			}
		}
		for _, agg := range s.saved {
			// One with pending events was changed after its last Add (by
			// a policy that failed): its state is not what was recorded.
			if !containsRoot(saved, agg) && len(agg.PendingEvents()) == 0 {
				saved = append(saved, agg)
			}
		}
		events = append(events, s.events...)
	}
	if err == nil {
		// Only a whole batch: the aggregates hold every notification's
		// changes, recorded or not.
		a.autoSnapshot(ctx, saved, events)
	}
	if len(ids) > 0 {
		a.shared.mu.RLock()
		listeners := a.shared.listeners
		a.shared.mu.RUnlock()
		for _, r := range recordings {
			if len(r) == 0 {
				continue
			}
			for _, l := range listeners {
				l(ctx, r)
			}
		}
	}
	if err != nil {
		var be *persistence.BatchError
		if errors.As(err, &be) && be.Index >= 0 && be.Index < len(b.saves) {
			return recordings, fmt.Errorf("save batch: %s: %w", describe(b.saves[be.Index].events), err)
		}
		return recordings, fmt.Errorf("save batch of %d: %w", len(b.saves), err)
	}
	return recordings, nil
}

package domain

import (
	"fmt"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Event is one decision of an aggregate: the aggregate's ID, the version the
// aggregate has after the event, when the event happened, and the user's
// event value.
//
// Events are values: once created they do not change. Data holds the value
// of one of the aggregate's event types, for example
// SomethingHappened{What: "trucks"}; the type of Data decides the event's
// topic when it is stored.
type Event struct {
	OriginatorID      uuid.UUID
	OriginatorVersion int64
	Timestamp         time.Time
	Data              any
}

// Aggregate is the base that every event-sourced aggregate embeds. It keeps
// the aggregate's identity, version, creation and modification times, and
// the events that were triggered but not yet collected.
//
// The zero value is an aggregate that has not been created yet. Aggregates
// are not safe for concurrent use, like most Go values.
type Aggregate struct {
	// The tag tells JSON encoders that the base has nothing to encode on
	// purpose: a snapshot keeps these fields in its own metadata.
	id         uuid.UUID `json:"-"`
	version    int64
	createdOn  time.Time
	modifiedOn time.Time
	pending    []Event
}

// ID returns the aggregate's ID, or uuid.Nil before it is created.
func (a *Aggregate) ID() uuid.UUID { return a.id }

// Version returns the version of the aggregate's last event.
func (a *Aggregate) Version() int64 { return a.version }

// CreatedOn returns the timestamp of the aggregate's first event (UTC).
func (a *Aggregate) CreatedOn() time.Time { return a.createdOn }

// ModifiedOn returns the timestamp of the aggregate's last event (UTC).
func (a *Aggregate) ModifiedOn() time.Time { return a.modifiedOn }

// PendingEvents returns a copy of the events that were triggered and not yet
// collected, oldest first.
func (a *Aggregate) PendingEvents() []Event { return slices.Clone(a.pending) }

// CollectEvents returns the pending events, oldest first, and empties the
// list. Applications call it when they save the aggregate.
func (a *Aggregate) CollectEvents() []Event {
	events := a.pending
	a.pending = nil
	return events
}

func (a *Aggregate) aggregate() *Aggregate { return a }

// Root is implemented by every type that embeds [Aggregate]. It is the type
// of the aggregates that repositories load and applications save.
type Root interface {
	ID() uuid.UUID
	Version() int64
	CreatedOn() time.Time
	ModifiedOn() time.Time
	PendingEvents() []Event
	CollectEvents() []Event
	aggregate() *Aggregate
}

// Applier is implemented by event types that apply themselves to an
// aggregate of type A (the explicit style):
//
//	func (e SomethingHappened) ApplyTo(w *World) { w.History = append(w.History, e.What) }
type Applier[A any] interface {
	ApplyTo(A)
}

// Mutator is implemented by aggregates that apply all their events in one
// method (the declarative style), usually a type switch. Returning an error
// rejects the event: it is not recorded and the aggregate's version is left
// as it was, so Apply must check before it changes anything.
type Mutator interface {
	Apply(event any) error
}

// InitialVersioner is implemented by aggregate types whose first event has a
// version other than 1:
//
//	func (*Ledger) InitialVersion() int64 { return 0 }
type InitialVersioner interface {
	InitialVersion() int64
}

// InitialVersion returns the version of the first event of aggregates like
// agg: 1 unless the type implements [InitialVersioner].
func InitialVersion(agg any) int64 {
	if v, ok := agg.(InitialVersioner); ok {
		return v.InitialVersion()
	}
	return 1
}

// now is the clock of new events. Tests replace it to get fixed timestamps.
var now = func() time.Time { return time.Now().UTC() }

// New creates an aggregate of type T with the given ID by triggering its
// created event:
//
//	world, err := domain.New[World](domain.NewID(), WorldCreated{})
func New[T any, PT interface {
	*T
	Root
}](id uuid.UUID, created any) (PT, error) {
	agg := PT(new(T))
	if err := Create(agg, id, created); err != nil {
		return nil, err
	}
	return agg, nil
}

// Create starts the life of agg, which must not have been created yet, with
// its created event: the event gets the given ID and the aggregate's initial
// version, is applied, and stays pending. If the event cannot be applied,
// agg is left as it was.
func Create[A Root](agg A, id uuid.UUID, created any) error {
	if id == uuid.Nil {
		return fmt.Errorf("create %T: %w", agg, ErrNilID)
	}
	if created == nil {
		return fmt.Errorf("create %T %s: %w", agg, id, ErrNilEvent)
	}
	b := agg.aggregate()
	if b.id != uuid.Nil {
		return fmt.Errorf("create %T %s: %w (it has ID %s)", agg, id, ErrCreated, b.id)
	}
	e := Event{OriginatorID: id, OriginatorVersion: InitialVersion(agg), Timestamp: now(), Data: created}
	if err := apply(agg, b, e); err != nil {
		return err
	}
	b.pending = append(b.pending, e)
	return nil
}

// Trigger records a new decision of agg: the event gets the next version and
// the current time, is applied, and stays pending. If the event cannot be
// applied, agg is left as it was and no event is pending. An event that
// neither applies itself to agg (ApplyTo) nor is applied by agg's Apply
// method is refused with an error wrapping [ErrUnknownEvent]: it would move
// the version and change nothing. agg may be held as a [Root]: the event's
// ApplyTo for agg's concrete type runs all the same.
func Trigger[A Root](agg A, data any) error {
	b := agg.aggregate()
	if b.id == uuid.Nil {
		return fmt.Errorf("trigger %T on %T: %w", data, agg, ErrNotCreated)
	}
	if data == nil {
		return fmt.Errorf("trigger on %T %s: %w", agg, b.id, ErrNilEvent)
	}
	ts := now()
	// Timestamps follow versions: a clock that steps back must not make a
	// later event look older than the one before it.
	if !ts.After(b.modifiedOn) {
		ts = b.modifiedOn.Add(time.Nanosecond)
	}
	e := Event{OriginatorID: b.id, OriginatorVersion: b.version + 1, Timestamp: ts, Data: data}
	if err := apply(agg, b, e); err != nil {
		return err
	}
	b.pending = append(b.pending, e)
	return nil
}

// Replay applies recorded events to agg in order, without making them
// pending. It is how repositories rebuild aggregates: pass a new aggregate
// and all its events, or an aggregate restored from a snapshot and the
// events after it. Replay stops at the first event that does not belong to
// agg or is out of sequence.
func Replay[A Root](agg A, events ...Event) error {
	b := agg.aggregate()
	for _, e := range events {
		if err := apply(agg, b, e); err != nil {
			return err
		}
	}
	return nil
}

// apply checks that e is the next event of agg, moves the aggregate's
// identity and version forward, and runs the user's apply code. If that code
// fails, the identity and version are put back.
func apply[A Root](agg A, b *Aggregate, e Event) error {
	creating := b.id == uuid.Nil
	if !creating {
		if e.OriginatorID != b.id {
			return fmt.Errorf("apply %T of %s to %T %s: %w", e.Data, e.OriginatorID, agg, b.id, ErrOriginator)
		}
		if e.OriginatorVersion != b.version+1 {
			return fmt.Errorf("apply %T version %d to %T %s at version %d: %w",
				e.Data, e.OriginatorVersion, agg, b.id, b.version, ErrVersion)
		}
	} else if e.OriginatorID == uuid.Nil {
		return fmt.Errorf("apply %T to %T: %w", e.Data, agg, ErrNilID)
	}
	saved := *b
	b.id, b.version, b.modifiedOn = e.OriginatorID, e.OriginatorVersion, e.Timestamp
	if creating {
		b.createdOn = e.Timestamp
	}
	var err error
	switch {
	case e.Data == nil:
		err = ErrNilEvent
	default:
		if ap, ok := e.Data.(Applier[A]); ok {
			ap.ApplyTo(agg)
		} else if m, ok := any(agg).(Mutator); ok {
			err = m.Apply(e.Data)
		} else if !applyDynamic(e.Data, agg) {
			// Nothing would change the aggregate's state: accepting the
			// event would move its version and record a decision that no
			// replay can reproduce.
			err = fmt.Errorf("%w: %T has no ApplyTo(%T) and %T has no Apply method", ErrUnknownEvent, e.Data, agg, agg)
		}
	}
	if err != nil {
		*b = saved
		return fmt.Errorf("apply %T version %d to %T %s: %w", e.Data, e.OriginatorVersion, agg, e.OriginatorID, err)
	}
	return nil
}

// appliers caches, per pair of event and aggregate types, how an event
// applies itself when the aggregate's static type is an interface such as
// Root, where Applier[A] cannot name the concrete type.
var appliers sync.Map // appliersKey → func(event, agg reflect.Value) (nil if none)

type appliersKey struct{ event, agg reflect.Type }

// applyDynamic applies data to agg with data's ApplyTo method for agg's
// dynamic type, and reports whether it had one. Generic callers with a
// concrete aggregate type never get here for events that apply
// themselves; code that holds a Root (tools, the registry's callers) does.
func applyDynamic(data any, agg any) bool {
	key := appliersKey{reflect.TypeOf(data), reflect.TypeOf(agg)}
	f, ok := appliers.Load(key)
	if !ok {
		f, _ = appliers.LoadOrStore(key, applierFor(key))
	}
	call := f.(func(event, agg reflect.Value))
	if call == nil {
		return false
	}
	call(reflect.ValueOf(data), reflect.ValueOf(agg))
	return true
}

func applierFor(k appliersKey) func(event, agg reflect.Value) {
	m, ok := k.event.MethodByName("ApplyTo")
	if !ok || m.Type.NumIn() != 2 || m.Type.NumOut() != 0 || m.Type.In(1) != k.agg {
		return nil
	}
	return func(event, agg reflect.Value) { m.Func.Call([]reflect.Value{event, agg}) }
}

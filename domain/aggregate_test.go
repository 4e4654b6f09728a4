package domain_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-go/strata/domain"
)

// World is written in the explicit style: every event applies itself.
type World struct {
	domain.Aggregate
	History []string
}

type WorldCreated struct{}

func (WorldCreated) ApplyTo(*World) {}

type SomethingHappened struct{ What string }

func (SomethingHappened) isWorldEvent() {}

func (e SomethingHappened) ApplyTo(w *World) { w.History = append(w.History, e.What) }

func NewWorld() (*World, error) { return domain.New[World](domain.NewID(), WorldCreated{}) }

func (w *World) MakeItSo(what string) error {
	return domain.Trigger(w, SomethingHappened{What: what})
}

// Order is written in the declarative style: one Apply method.
type Order struct {
	domain.Aggregate
	Name        string
	ConfirmedAt time.Time
	PickedUpAt  time.Time
}

type OrderStarted struct{ Name string }
type OrderConfirmed struct{ At time.Time }
type OrderPickedUp struct{ At time.Time }

var errNotConfirmed = errors.New("order is not confirmed")

func (o *Order) Apply(event any) error {
	switch e := event.(type) {
	case OrderStarted:
		o.Name = e.Name
	case OrderConfirmed:
		o.ConfirmedAt = e.At
	case OrderPickedUp:
		// Validation in Apply rejects the event before anything changes.
		if o.ConfirmedAt.IsZero() {
			return errNotConfirmed
		}
		o.PickedUpAt = e.At
	default:
		return errors.New("unknown event")
	}
	return nil
}

func (o *Order) Confirm(at time.Time) error { return domain.Trigger(o, OrderConfirmed{At: at}) }
func (o *Order) PickUp(at time.Time) error  { return domain.Trigger(o, OrderPickedUp{At: at}) }

// Ledger starts at version 0.
type Ledger struct {
	domain.Aggregate
	Entries int
}

type LedgerOpened struct{}
type EntryAdded struct{}

func (*Ledger) InitialVersion() int64 { return 0 }

func (l *Ledger) Apply(event any) error {
	if _, ok := event.(EntryAdded); ok {
		l.Entries++
	}
	return nil
}

func TestExplicitStyleRecordsAndAppliesEvents(t *testing.T) {
	w, err := NewWorld()
	if err != nil {
		t.Fatal(err)
	}
	if w.Version() != 1 || w.ID() == uuid.Nil {
		t.Fatalf("new world: version %d id %s", w.Version(), w.ID())
	}
	if !w.CreatedOn().Equal(w.ModifiedOn()) || w.CreatedOn().Location() != time.UTC {
		t.Fatalf("created %v modified %v", w.CreatedOn(), w.ModifiedOn())
	}
	for _, what := range []string{"dinosaurs", "trucks", "internet"} {
		if err := w.MakeItSo(what); err != nil {
			t.Fatal(err)
		}
	}
	if got := strings.Join(w.History, ","); got != "dinosaurs,trucks,internet" {
		t.Fatalf("history %q", got)
	}
	if w.Version() != 4 || !w.ModifiedOn().After(w.CreatedOn()) {
		t.Fatalf("version %d modified %v created %v", w.Version(), w.ModifiedOn(), w.CreatedOn())
	}
	if n := len(w.PendingEvents()); n != 4 {
		t.Fatalf("pending %d", n)
	}
	events := w.CollectEvents()
	if len(events) != 4 || len(w.PendingEvents()) != 0 || len(w.CollectEvents()) != 0 {
		t.Fatalf("collect: %d events, then %d pending", len(events), len(w.PendingEvents()))
	}
	if _, ok := events[0].Data.(WorldCreated); !ok {
		t.Fatalf("first event %T", events[0].Data)
	}
	for i, e := range events {
		if e.OriginatorID != w.ID() || e.OriginatorVersion != int64(i+1) {
			t.Fatalf("event %d: %s v%d", i, e.OriginatorID, e.OriginatorVersion)
		}
		if i > 0 && !e.Timestamp.After(events[i-1].Timestamp) {
			t.Fatalf("event %d timestamp %v not after %v", i, e.Timestamp, events[i-1].Timestamp)
		}
	}
	if events[0].Timestamp != w.CreatedOn() || events[3].Timestamp != w.ModifiedOn() {
		t.Fatal("timestamps of first and last events are not created and modified times")
	}

	copy := new(World)
	if err := domain.Replay(copy, events...); err != nil {
		t.Fatal(err)
	}
	if copy.ID() != w.ID() || copy.Version() != w.Version() || copy.CreatedOn() != w.CreatedOn() ||
		copy.ModifiedOn() != w.ModifiedOn() || strings.Join(copy.History, ",") != strings.Join(w.History, ",") {
		t.Fatalf("replayed copy differs: %+v vs %+v", copy, w)
	}
	if len(copy.PendingEvents()) != 0 {
		t.Fatal("replay made events pending")
	}
}

func TestDeclarativeStyleRejectsEventBeforeChangingAnything(t *testing.T) {
	o, err := domain.New[Order](domain.NewID(), OrderStarted{Name: "my order"})
	if err != nil {
		t.Fatal(err)
	}
	err = o.PickUp(time.Now())
	if !errors.Is(err, errNotConfirmed) {
		t.Fatalf("pick up before confirm: %v", err)
	}
	if o.Version() != 1 || len(o.PendingEvents()) != 1 || !o.ModifiedOn().Equal(o.CreatedOn()) {
		t.Fatalf("failed command changed the order: version %d pending %d", o.Version(), len(o.PendingEvents()))
	}
	if err := o.Confirm(time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := o.PickUp(time.Now()); err != nil {
		t.Fatal(err)
	}
	if o.Version() != 3 || o.PickedUpAt.IsZero() || o.Name != "my order" {
		t.Fatalf("order %+v", o)
	}
	copy := new(Order)
	if err := domain.Replay(copy, o.CollectEvents()...); err != nil {
		t.Fatal(err)
	}
	if copy.PickedUpAt != o.PickedUpAt || copy.ConfirmedAt != o.ConfirmedAt || copy.Version() != 3 {
		t.Fatalf("copy %+v", copy)
	}
}

func TestApplyingEventsOutOfSequenceOrOfAnotherAggregateFails(t *testing.T) {
	w, _ := NewWorld()
	_ = w.MakeItSo("a")
	_ = w.MakeItSo("b")
	events := w.CollectEvents()

	tests := []struct {
		name   string
		events []domain.Event
		want   error
	}{
		{"a version is skipped", []domain.Event{events[0], events[2]}, domain.ErrVersion},
		{"a version is repeated", []domain.Event{events[0], events[1], events[1]}, domain.ErrVersion},
		{"an event of another aggregate follows", []domain.Event{events[0], {OriginatorID: domain.NewID(), OriginatorVersion: 2, Data: SomethingHappened{}}}, domain.ErrOriginator},
		{"the first event has the nil ID", []domain.Event{{OriginatorVersion: 1, Data: WorldCreated{}}}, domain.ErrNilID},
		{"an event has no data", []domain.Event{events[0], {OriginatorID: events[0].OriginatorID, OriginatorVersion: 2}}, domain.ErrNilEvent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			copy := new(World)
			err := domain.Replay(copy, tt.events...)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestCreateAndTriggerRefuseMisuse(t *testing.T) {
	w := new(World)
	if err := w.MakeItSo("x"); !errors.Is(err, domain.ErrNotCreated) {
		t.Fatalf("trigger before create: %v", err)
	}
	if err := domain.Create(w, uuid.Nil, WorldCreated{}); !errors.Is(err, domain.ErrNilID) {
		t.Fatalf("create with nil ID: %v", err)
	}
	if err := domain.Create(w, domain.NewID(), nil); !errors.Is(err, domain.ErrNilEvent) {
		t.Fatalf("create without event: %v", err)
	}
	if err := domain.Create(w, domain.NewID(), WorldCreated{}); err != nil {
		t.Fatal(err)
	}
	if err := domain.Create(w, domain.NewID(), WorldCreated{}); !errors.Is(err, domain.ErrCreated) {
		t.Fatalf("create twice: %v", err)
	}
	if err := domain.Trigger(w, nil); !errors.Is(err, domain.ErrNilEvent) {
		t.Fatalf("trigger nil: %v", err)
	}
	if len(w.PendingEvents()) != 1 {
		t.Fatalf("pending %d", len(w.PendingEvents()))
	}
}

func TestInitialVersionIsConfigurablePerType(t *testing.T) {
	l, err := domain.New[Ledger](domain.NewID(), LedgerOpened{})
	if err != nil {
		t.Fatal(err)
	}
	if l.Version() != 0 {
		t.Fatalf("version %d", l.Version())
	}
	_ = domain.Trigger(l, EntryAdded{})
	events := l.CollectEvents()
	if events[0].OriginatorVersion != 0 || events[1].OriginatorVersion != 1 {
		t.Fatalf("versions %d %d", events[0].OriginatorVersion, events[1].OriginatorVersion)
	}
	copy := new(Ledger)
	if err := domain.Replay(copy, events...); err != nil || copy.Entries != 1 || copy.Version() != 1 {
		t.Fatalf("replay: %v %+v", err, copy)
	}
}

func TestNameIDIsStableAndNewIDsDiffer(t *testing.T) {
	a := domain.NameID(domain.NamespaceURL, "/pages/Earth")
	b := domain.NameID(domain.NamespaceURL, "/pages/Earth")
	c := domain.NameID(domain.NamespaceURL, "/pages/Erth")
	if a != b || a == c || a.Version() != 5 {
		t.Fatalf("name IDs %s %s %s", a, b, c)
	}
	if x, y := domain.NewID(), domain.NewID(); x == y {
		t.Fatalf("new IDs %s %s", x, y)
	}
}

func TestSnapshotRebuildsTheAggregate(t *testing.T) {
	w, _ := NewWorld()
	_ = w.MakeItSo("dinosaurs")
	_ = w.MakeItSo("trucks")
	s, err := domain.TakeSnapshot(w)
	if err != nil {
		t.Fatal(err)
	}
	if s.OriginatorID != w.ID() || s.OriginatorVersion != 3 || s.Timestamp != w.ModifiedOn() || s.CreatedOn != w.CreatedOn() {
		t.Fatalf("snapshot %+v", s)
	}
	w.History = nil // later changes do not reach the snapshot
	agg, err := s.Aggregate()
	if err != nil {
		t.Fatal(err)
	}
	copy := agg.(*World)
	if copy == s.State || copy.ID() != s.OriginatorID || copy.Version() != 3 || len(copy.History) != 2 || len(copy.PendingEvents()) != 0 {
		t.Fatalf("restored %+v", copy)
	}
	if err := copy.MakeItSo("internet"); err != nil || copy.Version() != 4 {
		t.Fatalf("restored aggregate cannot go on: %v", err)
	}
	if _, err := domain.TakeSnapshot(new(World)); !errors.Is(err, domain.ErrNotCreated) {
		t.Fatalf("snapshot of uncreated: %v", err)
	}
}

// Unapplied is an event that neither World nor Order applies.
type Unapplied struct{ Note string }

func TestAnEventNothingAppliesIsRefused(t *testing.T) {
	t.Run("when it is triggered", func(t *testing.T) {
		w, _ := NewWorld()
		w.CollectEvents()
		err := domain.Trigger(w, Unapplied{Note: "lost"})
		if !errors.Is(err, domain.ErrUnknownEvent) {
			t.Fatalf("trigger an event nothing applies: %v, want ErrUnknownEvent", err)
		}
		if w.Version() != 1 || len(w.PendingEvents()) != 0 {
			t.Fatalf("after the refusal: version %d, %d pending", w.Version(), len(w.PendingEvents()))
		}
	})
	t.Run("when it creates the aggregate", func(t *testing.T) {
		if _, err := domain.New[World](domain.NewID(), Unapplied{}); !errors.Is(err, domain.ErrUnknownEvent) {
			t.Fatalf("create with an event nothing applies: %v", err)
		}
	})
	t.Run("when it is registered for the aggregate", func(t *testing.T) {
		for name, def := range map[string]domain.Def{
			"as a created event": domain.AggregateType[World](domain.CreatedBy(Unapplied{})),
			"as an event":        domain.AggregateType[World](domain.Events(SomethingHappened{}, Unapplied{})),
		} {
			_, err := domain.NewRegistry(def)
			if !errors.Is(err, domain.ErrRegistration) || !errors.Is(err, domain.ErrUnknownEvent) || !strings.Contains(err.Error(), "Unapplied") {
				t.Errorf("register Unapplied %s: %v", name, err)
			}
		}
		// An aggregate with an Apply method decides itself.
		if _, err := domain.NewRegistry(domain.AggregateType[Order](domain.Events(Unapplied{}))); err != nil {
			t.Errorf("register an event of an aggregate with Apply: %v", err)
		}
	})
}

func TestTriggerAndReplayThroughARootApplyTheConcreteType(t *testing.T) {
	w, _ := NewWorld()
	var root domain.Root = w
	if err := domain.Trigger(root, SomethingHappened{What: "via root"}); err != nil {
		t.Fatal(err)
	}
	if w.Version() != 2 || len(w.History) != 1 || w.History[0] != "via root" {
		t.Fatalf("after Trigger through a Root: version %d, history %v", w.Version(), w.History)
	}
	var copy domain.Root = new(World)
	if err := domain.Replay(copy, w.CollectEvents()...); err != nil {
		t.Fatal(err)
	}
	if got := copy.(*World); got.Version() != 2 || len(got.History) != 1 || got.History[0] != "via root" {
		t.Fatalf("after Replay through a Root: version %d, history %v", got.Version(), got.History)
	}
	if err := domain.Trigger(root, Unapplied{}); !errors.Is(err, domain.ErrUnknownEvent) {
		t.Fatalf("an event nothing applies, through a Root: %v", err)
	}
	o := new(Order)
	var orderRoot domain.Root = o
	if err := domain.Create(orderRoot, domain.NewID(), OrderStarted{Name: "declarative"}); err != nil || o.Name != "declarative" {
		t.Fatalf("create an Order through a Root: %v %+v", err, o)
	}
}

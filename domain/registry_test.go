package domain_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/strata-go/strata/domain"
)

type Renamed struct{ A, B string }

func (Renamed) ApplyTo(*World) {}

type hidden struct {
	domain.Aggregate
	secret string
}

type selfEncoding struct {
	domain.Aggregate
	secret string
}

func (s *selfEncoding) MarshalJSON() ([]byte, error) { return []byte(`{}`), nil }

func TestDefaultTopicsComeFromPackagePathAndName(t *testing.T) {
	r, err := domain.NewRegistry(domain.AggregateType[World](domain.CreatedBy(WorldCreated{}), domain.Events(SomethingHappened{})))
	if err != nil {
		t.Fatal(err)
	}
	for v, want := range map[any]string{
		&World{}:            "github.com/strata-go/strata/domain_test.World",
		WorldCreated{}:      "github.com/strata-go/strata/domain_test.WorldCreated",
		SomethingHappened{}: "github.com/strata-go/strata/domain_test.SomethingHappened",
	} {
		info, err := r.Lookup(v)
		if err != nil {
			t.Fatal(err)
		}
		if info.Topic() != want {
			t.Errorf("%T: topic %q, want %q", v, info.Topic(), want)
		}
		back, err := r.Resolve(want)
		if err != nil || back != info {
			t.Errorf("resolve %q: %v", want, err)
		}
	}
	agg, _ := r.Lookup(&World{})
	if !agg.IsAggregate() || agg.Name() != "World" {
		t.Fatalf("aggregate info %v %q", agg.IsAggregate(), agg.Name())
	}
	if got := r.CreatedTopics(agg); len(got) != 1 || !strings.HasSuffix(got[0], ".WorldCreated") {
		t.Fatalf("created topics %v", got)
	}
	if _, ok := agg.New().(*World); !ok {
		t.Fatalf("New gives %T", agg.New())
	}
	ev, _ := r.Lookup(SomethingHappened{})
	p := ev.New().(*SomethingHappened)
	p.What = "x"
	if v, ok := ev.Value(p).(SomethingHappened); !ok || v.What != "x" {
		t.Fatalf("Value gives %#v", ev.Value(p))
	}
}

func TestExplicitNamesAndAliasesResolveRenamedTypes(t *testing.T) {
	r, err := domain.NewRegistry(
		domain.EventType[Renamed](domain.Named("worlds.Renamed"), domain.Aliases("worlds.OldName", "legacy:Renamed")),
		// A reference by example does not override the explicit name.
		domain.AggregateType[World](domain.Events(Renamed{})),
	)
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{"worlds.Renamed", "worlds.OldName", "legacy:Renamed"} {
		info, err := r.Resolve(topic)
		if err != nil || info.GoType() != reflect.TypeFor[Renamed]() || info.Topic() != "worlds.Renamed" {
			t.Fatalf("resolve %q: %v %v", topic, info, err)
		}
	}
}

func TestUnknownTopicsAndUnregisteredTypesAreErrorsThatNameThem(t *testing.T) {
	r, _ := domain.NewRegistry()
	_, err := r.Resolve("no.such.Topic")
	if !errors.Is(err, domain.ErrUnknownTopic) || !strings.Contains(err.Error(), `"no.such.Topic"`) {
		t.Fatalf("resolve unknown: %v", err)
	}
	_, err = r.Lookup(Renamed{})
	if !errors.Is(err, domain.ErrUnregistered) || !strings.Contains(err.Error(), "Renamed") {
		t.Fatalf("lookup unregistered: %v", err)
	}
}

func TestRegistrationErrors(t *testing.T) {
	up := func(map[string]any) error { return nil }
	tests := []struct {
		name string
		defs []domain.Def
		want string
	}{
		{"a class version without an upcaster from each older version",
			[]domain.Def{domain.EventType[Renamed](domain.ClassVersion(3), domain.Upcast(1, up))},
			"class version 3 has no upcaster from version 2 to 3"},
		{"an upcaster from the current version",
			[]domain.Def{domain.EventType[Renamed](domain.ClassVersion(2), domain.Upcast(1, up), domain.Upcast(2, up))},
			"upcaster from version 2 but the class version is 2"},
		{"two upcasters from one version",
			[]domain.Def{domain.EventType[Renamed](domain.ClassVersion(2), domain.Upcast(1, up), domain.Upcast(1, up))},
			"two upcasters from class version 1"},
		{"a class version below 1", []domain.Def{domain.EventType[Renamed](domain.ClassVersion(0))}, "less than 1"},
		{"two types with one topic",
			[]domain.Def{domain.EventType[Renamed](domain.Named("x")), domain.EventType[SomethingHappened](domain.Named("x"))},
			`topic "x" of`},
		{"an alias that is another type's topic",
			[]domain.Def{domain.EventType[Renamed](domain.Named("x")), domain.EventType[SomethingHappened](domain.Aliases("x"))},
			`topic "x" of`},
		{"one type defined twice differently",
			[]domain.Def{domain.EventType[Renamed](domain.Named("x")), domain.EventType[Renamed](domain.Named("y"))},
			"defined twice differently"},
		{"an empty name", []domain.Def{domain.EventType[Renamed](domain.Named(" "))}, "empty topic"},
		{"CreatedBy on an event", []domain.Def{domain.EventType[Renamed](domain.CreatedBy(WorldCreated{}))}, "applies to aggregate types"},
		{"an aggregate listed as an event", []domain.Def{domain.AggregateType[World](domain.Events(&Order{}))}, "is an aggregate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := domain.NewRegistry()
			err := r.Register(tt.defs...)
			if !errors.Is(err, domain.ErrRegistration) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
			if len(r.Types()) != 0 {
				t.Fatalf("a failed registration registered %d types", len(r.Types()))
			}
		})
	}
}

func TestTheSameDefinitionMayBeRegisteredTwice(t *testing.T) {
	worlds := domain.Types(domain.AggregateType[World](domain.CreatedBy(WorldCreated{})), domain.EventType[SomethingHappened]())
	r, err := domain.NewRegistry(worlds, worlds)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Register(domain.EventType[SomethingHappened](domain.Aliases("old.SomethingHappened"))); err != nil {
		t.Fatal(err)
	}
	if info, err := r.Resolve("old.SomethingHappened"); err != nil || info.GoType() != reflect.TypeFor[SomethingHappened]() {
		t.Fatalf("alias added later: %v", err)
	}
	if n := len(r.Types()); n != 3 {
		t.Fatalf("%d types", n)
	}
}

func TestUpcastersRunInOrderFromTheStoredVersion(t *testing.T) {
	r, err := domain.NewRegistry(domain.EventType[Renamed](
		domain.ClassVersion(3),
		domain.Upcast(2, func(s map[string]any) error { s["B"] = s["A"].(string) + "+b"; return nil }),
		domain.Upcast(1, func(s map[string]any) error { s["A"] = "a"; return nil }),
	))
	if err != nil {
		t.Fatal(err)
	}
	info, _ := r.Lookup(Renamed{})
	state := map[string]any{}
	if err := info.Upcast(state, 1); err != nil || state["A"] != "a" || state["B"] != "a+b" {
		t.Fatalf("from 1: %v %v", state, err)
	}
	state = map[string]any{"A": "kept"}
	if err := info.Upcast(state, 2); err != nil || state["A"] != "kept" || state["B"] != "kept+b" {
		t.Fatalf("from 2: %v %v", state, err)
	}
	if err := info.Upcast(state, 4); !errors.Is(err, domain.ErrUpcast) {
		t.Fatalf("from a newer version: %v", err)
	}
	failing, _ := domain.NewRegistry(domain.EventType[SomethingHappened](domain.ClassVersion(2),
		domain.Upcast(1, func(map[string]any) error { return errors.New("boom") })))
	info, _ = failing.Lookup(SomethingHappened{})
	if err := info.Upcast(map[string]any{}, 1); !errors.Is(err, domain.ErrUpcast) || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("failing upcaster: %v", err)
	}
}

func TestAggregatesThatWouldLoseStateInSnapshotsAreFlagged(t *testing.T) {
	r, err := domain.NewRegistry(domain.AggregateType[hidden](), domain.AggregateType[selfEncoding](), domain.AggregateType[World]())
	if err != nil {
		t.Fatal(err)
	}
	for v, want := range map[domain.Root]bool{&hidden{}: false, &selfEncoding{}: true, &World{}: true} {
		info, _ := r.Lookup(v)
		ok, reason := info.Snapshottable()
		if ok != want || (!ok && !strings.Contains(reason, "secret")) {
			t.Errorf("%T: snapshottable %v (%s)", v, ok, reason)
		}
	}
}

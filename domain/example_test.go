package domain_test

import (
	"fmt"

	"github.com/strata-go/strata/domain"
)

// Dog is an aggregate in the declarative style: commands trigger events
// and one Apply method changes the state.
type Dog struct {
	domain.Aggregate
	Name   string
	Tricks []string
}

type DogRegistered struct{ Name string }
type TrickAdded struct{ Trick string }

func (d *Dog) Apply(event any) error {
	switch e := event.(type) {
	case DogRegistered:
		d.Name = e.Name
	case TrickAdded:
		d.Tricks = append(d.Tricks, e.Trick)
	}
	return nil
}

func (d *Dog) AddTrick(trick string) error { return domain.Trigger(d, TrickAdded{Trick: trick}) }

func Example() {
	dog, err := domain.New[Dog](domain.NewID(), DogRegistered{Name: "Fido"})
	if err != nil {
		panic(err)
	}
	_ = dog.AddTrick("roll over")
	_ = dog.AddTrick("play dead")

	events := dog.CollectEvents()
	fmt.Println(dog.Name, dog.Tricks, "version", dog.Version(), "events", len(events))

	// Replaying the events rebuilds the same aggregate.
	copy := new(Dog)
	if err := domain.Replay(copy, events...); err != nil {
		panic(err)
	}
	fmt.Println(copy.Name, copy.Tricks, "version", copy.Version())
	// Output:
	// Fido [roll over play dead] version 3 events 3
	// Fido [roll over play dead] version 3
}

func ExampleTrigger_explicit() {
	// World's events apply themselves (see SomethingHappened.ApplyTo).
	world, _ := domain.New[World](domain.NewID(), WorldCreated{})
	_ = domain.Trigger(world, SomethingHappened{What: "dinosaurs"})
	fmt.Println(world.History, world.Version())
	// Output: [dinosaurs] 2
}

func ExampleNameID() {
	// A page's index aggregate is found from the page's name alone.
	id := domain.NameID(domain.NamespaceURL, "/pages/Earth")
	fmt.Println(id, id == domain.NameID(domain.NamespaceURL, "/pages/Earth"))
	// Output: 29d224d6-64b5-5452-9198-9f475b03e36b true
}

func ExampleNewRegistry() {
	types, err := domain.NewRegistry(
		domain.AggregateType[Dog](domain.Named("Dog"), domain.CreatedBy(DogRegistered{})),
		domain.EventType[TrickAdded](domain.Named("Dog.TrickAdded"), domain.Aliases("Dog.TrickLearned")),
	)
	if err != nil {
		panic(err)
	}
	info, _ := types.Resolve("Dog.TrickLearned")
	fmt.Println(info.Topic(), info.GoType())
	_, err = types.Resolve("Cat")
	fmt.Println(err)
	// Output:
	// Dog.TrickAdded domain_test.TrickAdded
	// unknown topic "Cat": register its type with the application
}

func ExampleTakeSnapshot() {
	dog, _ := domain.New[Dog](domain.NewID(), DogRegistered{Name: "Rex"})
	_ = dog.AddTrick("sit")
	snapshot, _ := domain.TakeSnapshot(dog)
	restored, _ := snapshot.Aggregate()
	fmt.Println(restored.(*Dog).Name, restored.(*Dog).Tricks, restored.Version())
	// Output: Rex [sit] 2
}

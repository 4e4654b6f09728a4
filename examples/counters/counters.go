// Package counters is the reference design's system example: a Counters
// process application that follows the Worlds application and counts, for
// each thing that happens in any world, how many times it happened.
//
// Run it with a system runner:
//
//	sys, _ := counters.System()
//	runner := system.NewSingleThreadedRunner(sys)
//	_ = runner.Start(ctx)
//	worlds, _ := system.Get[*worlds.Worlds](runner, worlds.Name)
//	counts, _ := system.Get[*counters.Counters](runner, counters.Name)
package counters

import (
	"context"
	"errors"

	"github.com/google/uuid"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/domain"
	"github.com/strata-go/strata/examples/worlds"
	"github.com/strata-go/strata/system"
)

// Counter counts how many times one thing happened.
type Counter struct {
	domain.Aggregate
	Name  string `json:"name"`
	Count int    `json:"count"`
}

// Created creates a counter.
type Created struct {
	Name string `json:"name"`
}

// Incremented adds one to a counter.
type Incremented struct{}

// ApplyTo names the counter.
func (e Created) ApplyTo(c *Counter) { c.Name = e.Name }

// ApplyTo adds one.
func (Incremented) ApplyTo(c *Counter) { c.Count++ }

// CounterID returns the ID of the counter of name: counters are found by
// name, without an index.
func CounterID(name string) uuid.UUID {
	return domain.NameID(domain.NamespaceURL, "/counters/"+name+"/")
}

// Types are the persisted types of the counters.
var Types = domain.Types(
	domain.AggregateType[Counter](domain.Named("Counter"), domain.CreatedBy(Created{})),
	domain.EventType[Created](domain.Named("Counter.Created")),
	domain.EventType[Incremented](domain.Named("Counter.Incremented")),
)

// Name is the application's name.
const Name = "Counters"

// Counters is the process application of counters.
type Counters struct {
	*application.Application
	counters *application.Repository[*Counter]
}

// SnapshotEvery is how many increments apart a counter is snapshotted: a
// counter of a thing that keeps happening grows without end, and loading
// it for each event would replay its whole history.
const SnapshotEvery = 20

// New returns the Counters application, which snapshots its counters every
// SnapshotEvery versions (IS_SNAPSHOTTING_ENABLED=false turns it off). In a
// system, the runner adds the options that make it follow Worlds.
func New(ctx context.Context, opts ...application.Option) (*Counters, error) {
	base := []application.Option{application.WithTypes(Types), application.SnapshotInterval[Counter](SnapshotEvery)}
	app, err := application.New(ctx, Name, append(base, opts...)...)
	if err != nil {
		return nil, err
	}
	repo, err := application.NewRepository[Counter](app)
	if err != nil {
		app.Close()
		return nil, err
	}
	return &Counters{Application: app, counters: repo}, nil
}

// Policy counts each thing that happened in a world.
func (c *Counters) Policy(ctx context.Context, event domain.Event, p *system.Processing) error {
	happened, ok := event.Data.(worlds.SomethingHappened)
	if !ok {
		return nil // other events of Worlds do not count
	}
	counter, err := c.counters.Get(ctx, CounterID(happened.What))
	if errors.Is(err, application.ErrAggregateNotFound) {
		counter, err = domain.New[Counter](CounterID(happened.What), Created{Name: happened.What})
	}
	if err != nil {
		return err
	}
	if err := domain.Trigger(counter, Incremented{}); err != nil {
		return err
	}
	p.Save(counter)
	return nil
}

// Count returns how many times what happened.
func (c *Counters) Count(ctx context.Context, what string) (int, error) {
	counter, err := c.counters.Get(ctx, CounterID(what))
	if errors.Is(err, application.ErrAggregateNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return counter.Count, nil
}

// System returns the system of Worlds followed by Counters.
func System() (*system.System, error) {
	return system.New([]system.Def{
		system.Define(worlds.Name, worlds.Types, worlds.New),
		system.Define(Name, Types, New),
	}, []string{worlds.Name, Name})
}

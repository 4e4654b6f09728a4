// Package worlds is the reference design's tutorial example: a World
// aggregate whose history is made of things that happened, and the Worlds
// application that creates worlds, makes things happen in them and tells
// their history.
//
// The World aggregate is written in the explicit style: each event type
// applies itself to the world.
package worlds

import (
	"context"
	"fmt"
	"slices"

	"github.com/google/uuid"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/domain"
)

// World is an aggregate with a history.
type World struct {
	domain.Aggregate
	History []string `json:"history"`
}

// Created is the event that creates a world.
type Created struct{}

// ApplyTo does nothing: a new world has no history yet. Every event an
// aggregate lists must be applied by it, even one that changes nothing.
func (Created) ApplyTo(*World) {}

// SomethingHappened records that something happened in a world.
type SomethingHappened struct {
	What string `json:"what"`
}

// ApplyTo adds what happened to the world's history.
func (e SomethingHappened) ApplyTo(w *World) { w.History = append(w.History, e.What) }

// NewWorld creates a world.
func NewWorld() (*World, error) { return domain.New[World](domain.NewID(), Created{}) }

// MakeItSo records that what happened.
func (w *World) MakeItSo(what string) error {
	return domain.Trigger(w, SomethingHappened{What: what})
}

// Types are the persisted types of the worlds domain.
var Types = domain.Types(
	domain.AggregateType[World](domain.Named("World"), domain.CreatedBy(Created{})),
	domain.EventType[Created](domain.Named("World.Created")),
	domain.EventType[SomethingHappened](domain.Named("World.SomethingHappened")),
)

// Worlds is the application of worlds.
type Worlds struct {
	*application.Application
	worlds *application.Repository[*World]
}

// Name is the application's name, which prefixes its environment
// variables (WORLDS_...) and names its tables.
const Name = "Worlds"

// New returns the Worlds application, configured by the options and the
// environment.
func New(ctx context.Context, opts ...application.Option) (*Worlds, error) {
	app, err := application.New(ctx, Name, append([]application.Option{application.WithTypes(Types)}, opts...)...)
	if err != nil {
		return nil, err
	}
	repo, err := application.NewRepository[World](app)
	if err != nil {
		app.Close()
		return nil, err
	}
	return &Worlds{Application: app, worlds: repo}, nil
}

// CreateWorld creates and saves a new world and returns its ID.
func (a *Worlds) CreateWorld(ctx context.Context) (uuid.UUID, error) {
	w, err := NewWorld()
	if err != nil {
		return uuid.Nil, err
	}
	if _, err := a.Save(ctx, w); err != nil {
		return uuid.Nil, err
	}
	return w.ID(), nil
}

// MakeItSo records that what happened in the world.
func (a *Worlds) MakeItSo(ctx context.Context, id uuid.UUID, what string) error {
	w, err := a.worlds.Get(ctx, id)
	if err != nil {
		return err
	}
	if err := w.MakeItSo(what); err != nil {
		return err
	}
	_, err = a.Save(ctx, w)
	return err
}

// History returns what happened in the world, oldest first.
func (a *Worlds) History(ctx context.Context, id uuid.UUID) ([]string, error) {
	w, err := a.worlds.Get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("history of world %s: %w", id, err)
	}
	return slices.Clone(w.History), nil
}

// Worlds returns the repository of worlds.
func (a *Worlds) Worlds() *application.Repository[*World] { return a.worlds }

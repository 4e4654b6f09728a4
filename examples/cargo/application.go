package cargo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/strata-go/strata/application"
)

// Name is the application's name, which prefixes its environment
// variables (BOOKINGAPPLICATION_...) and names its tables.
const Name = "BookingApplication"

// BookingApplication is the application of cargo bookings: it books cargo,
// finds routes for it, and records how it is handled. It takes and returns
// domain types; [BookingService] presents it with simple types. It is safe
// for concurrent use.
type BookingApplication struct {
	*application.Application
	cargos *application.Repository[*Cargo]
}

// New returns the booking application, configured by the options and the
// environment.
func New(ctx context.Context, opts ...application.Option) (*BookingApplication, error) {
	app, err := application.New(ctx, Name, append([]application.Option{application.WithTypes(Types)}, opts...)...)
	if err != nil {
		return nil, err
	}
	repo, err := application.NewRepository[Cargo](app)
	if err != nil {
		app.Close()
		return nil, err
	}
	return &BookingApplication{Application: app, cargos: repo}, nil
}

// Cargos returns the repository of cargos, for reading a cargo as it was
// at an earlier version.
func (a *BookingApplication) Cargos() *application.Repository[*Cargo] { return a.cargos }

// BookNewCargo books a cargo from origin to destination, to arrive by the
// deadline, and returns its tracking ID.
func (a *BookingApplication) BookNewCargo(ctx context.Context, origin, destination Location, arrivalDeadline time.Time) (uuid.UUID, error) {
	cargo, err := NewBooking(origin, destination, arrivalDeadline)
	if err != nil {
		return uuid.Nil, err
	}
	if _, err := a.Save(ctx, cargo); err != nil {
		return uuid.Nil, fmt.Errorf("book cargo from %s to %s: %w", origin, destination, err)
	}
	return cargo.ID(), nil
}

// GetCargo loads the cargo with the tracking ID. An unknown ID is an error
// wrapping [ErrCargoNotFound].
func (a *BookingApplication) GetCargo(ctx context.Context, trackingID uuid.UUID) (*Cargo, error) {
	cargo, err := a.cargos.Get(ctx, trackingID)
	if errors.Is(err, application.ErrAggregateNotFound) {
		return nil, fmt.Errorf("cargo %s: %w", trackingID, ErrCargoNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("cargo %s: %w", trackingID, err)
	}
	return cargo, nil
}

// ChangeDestination sends the cargo elsewhere.
func (a *BookingApplication) ChangeDestination(ctx context.Context, trackingID uuid.UUID, destination Location) error {
	return a.update(ctx, trackingID, func(c *Cargo) error { return c.ChangeDestination(destination) })
}

// RequestPossibleRoutesForCargo returns the routes from where the cargo was
// last seen (its origin, before it is received) to its destination. If
// there are none, the error wraps [ErrNoRoutes].
func (a *BookingApplication) RequestPossibleRoutesForCargo(ctx context.Context, trackingID uuid.UUID) ([]Itinerary, error) {
	cargo, err := a.GetCargo(ctx, trackingID)
	if err != nil {
		return nil, err
	}
	from := cargo.LastKnownLocation
	if from == "" {
		from = cargo.Origin
	}
	routes := RegisteredRoutes(from, cargo.Destination)
	if len(routes) == 0 {
		return nil, fmt.Errorf("cargo %s: %w from %s to %s", trackingID, ErrNoRoutes, from, cargo.Destination)
	}
	return routes, nil
}

// AssignRoute routes the cargo along the itinerary.
func (a *BookingApplication) AssignRoute(ctx context.Context, trackingID uuid.UUID, itinerary Itinerary) error {
	return a.update(ctx, trackingID, func(c *Cargo) error { return c.AssignRoute(itinerary) })
}

// RegisterHandlingEvent records that the cargo was handled at a location,
// on a voyage for loading and unloading ("" otherwise).
func (a *BookingApplication) RegisterHandlingEvent(ctx context.Context, trackingID uuid.UUID, voyageNumber string, location Location, activity HandlingActivity) error {
	return a.update(ctx, trackingID, func(c *Cargo) error {
		return c.RegisterHandlingEvent(voyageNumber, location, activity)
	})
}

// update loads the cargo, runs the command on it and saves it, again with
// a fresh load if another writer saved the cargo first: a handling report
// and a rerouting may arrive at the same time.
func (a *BookingApplication) update(ctx context.Context, trackingID uuid.UUID, command func(*Cargo) error) error {
	return application.Retry(ctx, func(ctx context.Context) error {
		cargo, err := a.GetCargo(ctx, trackingID)
		if err != nil {
			return err
		}
		if err := command(cargo); err != nil {
			return err
		}
		_, err = a.Save(ctx, cargo)
		return err
	})
}

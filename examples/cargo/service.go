package cargo

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
)

// BookingService presents the booking application with simple types
// (strings, booleans, times), for an interface such as a web service that
// should not depend on the domain model. Names of locations and handling
// activities are parsed here; an unknown one is an error.
type BookingService struct {
	app *BookingApplication
}

// NewBookingService returns a service that presents app.
func NewBookingService(app *BookingApplication) *BookingService {
	return &BookingService{app: app}
}

// CargoDetails presents a cargo. Empty strings, a zero time and a nil
// NextExpectedActivity stand for the reference design's None.
type CargoDetails struct {
	ID              string    `json:"id"`
	Origin          string    `json:"origin"`
	Destination     string    `json:"destination"`
	ArrivalDeadline time.Time `json:"arrival_deadline"`
	TransportStatus string    `json:"transport_status"`
	RoutingStatus   string    `json:"routing_status"`
	IsMisdirected   bool      `json:"is_misdirected"`
	// EstimatedTimeOfArrival is zero until the cargo is routed.
	EstimatedTimeOfArrival time.Time `json:"estimated_time_of_arrival,omitzero"`
	// NextExpectedActivity is the reference design's tuple: the activity
	// and the location, and the voyage number for loading and unloading,
	// as in {"LOAD", "HONGKONG", "V1"}; nil when nothing is expected.
	NextExpectedActivity []string `json:"next_expected_activity"`
	LastKnownLocation    string   `json:"last_known_location,omitempty"`
	CurrentVoyageNumber  string   `json:"current_voyage_number,omitempty"`
}

// ItineraryDetails presents an itinerary.
type ItineraryDetails struct {
	Origin      string       `json:"origin"`
	Destination string       `json:"destination"`
	Legs        []LegDetails `json:"legs"`
}

// LegDetails presents a leg of an itinerary.
type LegDetails struct {
	Origin       string `json:"origin"`
	Destination  string `json:"destination"`
	VoyageNumber string `json:"voyage_number"`
}

// BookNewCargo books a cargo between two named locations and returns its
// tracking ID.
func (s *BookingService) BookNewCargo(ctx context.Context, origin, destination string, arrivalDeadline time.Time) (string, error) {
	from, err := ParseLocation(origin)
	if err != nil {
		return "", fmt.Errorf("book new cargo: origin: %w", err)
	}
	to, err := ParseLocation(destination)
	if err != nil {
		return "", fmt.Errorf("book new cargo: destination: %w", err)
	}
	id, err := s.app.BookNewCargo(ctx, from, to, arrivalDeadline)
	if err != nil {
		return "", err
	}
	return id.String(), nil
}

// GetCargoDetails presents the cargo with the tracking ID.
func (s *BookingService) GetCargoDetails(ctx context.Context, trackingID string) (CargoDetails, error) {
	id, err := parseTrackingID(trackingID)
	if err != nil {
		return CargoDetails{}, err
	}
	c, err := s.app.GetCargo(ctx, id)
	if err != nil {
		return CargoDetails{}, err
	}
	var next []string
	if e := c.NextExpectedActivity; e != nil {
		next = []string{string(e.Activity), string(e.Location)}
		if e.VoyageNumber != "" {
			next = append(next, e.VoyageNumber)
		}
	}
	return CargoDetails{
		ID:                     c.ID().String(),
		Origin:                 string(c.Origin),
		Destination:            string(c.Destination),
		ArrivalDeadline:        c.ArrivalDeadline,
		TransportStatus:        string(c.TransportStatus),
		RoutingStatus:          string(c.RoutingStatus),
		IsMisdirected:          c.IsMisdirected,
		EstimatedTimeOfArrival: c.EstimatedTimeOfArrival,
		NextExpectedActivity:   next,
		LastKnownLocation:      string(c.LastKnownLocation),
		CurrentVoyageNumber:    c.CurrentVoyageNumber,
	}, nil
}

// ChangeDestination sends the cargo to the named location.
func (s *BookingService) ChangeDestination(ctx context.Context, trackingID, destination string) error {
	id, err := parseTrackingID(trackingID)
	if err != nil {
		return err
	}
	to, err := ParseLocation(destination)
	if err != nil {
		return fmt.Errorf("change destination of cargo %s: %w", id, err)
	}
	return s.app.ChangeDestination(ctx, id, to)
}

// RequestPossibleRoutesForCargo presents the routes the cargo could take
// from where it is to its destination.
func (s *BookingService) RequestPossibleRoutesForCargo(ctx context.Context, trackingID string) ([]ItineraryDetails, error) {
	id, err := parseTrackingID(trackingID)
	if err != nil {
		return nil, err
	}
	routes, err := s.app.RequestPossibleRoutesForCargo(ctx, id)
	if err != nil {
		return nil, err
	}
	details := make([]ItineraryDetails, len(routes))
	for i, r := range routes {
		details[i] = itineraryDetails(r)
	}
	return details, nil
}

// AssignRoute routes the cargo along one of the routes that
// RequestPossibleRoutesForCargo presents. Details that match none of the
// cargo's possible routes are an error wrapping [ErrRouteNotOffered] (the
// reference design ignores them).
func (s *BookingService) AssignRoute(ctx context.Context, trackingID string, route ItineraryDetails) error {
	id, err := parseTrackingID(trackingID)
	if err != nil {
		return err
	}
	routes, err := s.app.RequestPossibleRoutesForCargo(ctx, id)
	if err != nil {
		return err
	}
	for _, r := range routes {
		if itineraryDetails(r).equal(route) {
			return s.app.AssignRoute(ctx, id, r)
		}
	}
	return fmt.Errorf("assign route from %s to %s to cargo %s: %w", route.Origin, route.Destination, id, ErrRouteNotOffered)
}

// RegisterHandlingEvent records that the cargo was handled: the named
// activity at the named location, on a voyage for loading and unloading
// ("" otherwise).
func (s *BookingService) RegisterHandlingEvent(ctx context.Context, trackingID, voyageNumber, location, handlingActivity string) error {
	id, err := parseTrackingID(trackingID)
	if err != nil {
		return err
	}
	where, err := ParseLocation(location)
	if err != nil {
		return fmt.Errorf("register handling event of cargo %s: %w", id, err)
	}
	activity, err := ParseHandlingActivity(handlingActivity)
	if err != nil {
		return fmt.Errorf("register handling event of cargo %s: %w", id, err)
	}
	return s.app.RegisterHandlingEvent(ctx, id, voyageNumber, where, activity)
}

func parseTrackingID(s string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, fmt.Errorf("tracking ID %q: %w", s, err)
	}
	return id, nil
}

func itineraryDetails(it Itinerary) ItineraryDetails {
	d := ItineraryDetails{Origin: string(it.Origin), Destination: string(it.Destination), Legs: make([]LegDetails, len(it.Legs))}
	for i, l := range it.Legs {
		d.Legs[i] = LegDetails{Origin: string(l.Origin), Destination: string(l.Destination), VoyageNumber: l.VoyageNumber}
	}
	return d
}

func (d ItineraryDetails) equal(o ItineraryDetails) bool {
	return d.Origin == o.Origin && d.Destination == o.Destination && slices.Equal(d.Legs, o.Legs)
}

package cargo

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/domain"
)

// kind is a sentinel error that belongs to a broader kind, so that
// errors.Is(err, application.ErrAggregateNotFound) holds for a cargo that
// is not found.
type kind struct {
	msg    string
	parent error
}

func (k *kind) Error() string { return k.msg }
func (k *kind) Unwrap() error { return k.parent }

// Errors of the cargo domain; test for them with errors.Is. The errors
// that wrap them name the cargo and what was asked.
var (
	// ErrCargoNotFound means no cargo has the tracking ID. It wraps
	// application.ErrAggregateNotFound.
	ErrCargoNotFound error = &kind{"cargo not found", application.ErrAggregateNotFound}
	// ErrUnknownLocation means a location that is not one of the
	// [Location] constants.
	ErrUnknownLocation = errors.New("unknown location")
	// ErrUnsupportedActivity means a handling activity that is not one of
	// the [HandlingActivity] constants.
	ErrUnsupportedActivity = errors.New("unsupported handling activity")
	// ErrNoRoutes means no route is known from where the cargo is to its
	// destination.
	ErrNoRoutes = errors.New("can't find routes")
	// ErrRouteNotOffered means a route to assign that is not one of the
	// cargo's possible routes.
	ErrRouteNotOffered = errors.New("route is not one of the possible routes")
	// ErrNotRouted means a handling event for a cargo that has no route
	// yet, which the cargo cannot relate to its journey.
	ErrNotRouted = errors.New("cargo has no route")
	// ErrUnknownLeg means a handling event that matches no leg of the
	// cargo's route: loading onto a voyage that does not leave from the
	// location, or unloading where the route has no next leg.
	ErrUnknownLeg = errors.New("can't find leg")
)

// week is how long the example's shipping takes, once routed.
const week = 7 * 24 * time.Hour

// Cargo is a booked cargo: where it goes, by which route, and what has
// happened to it so far. Its tracking ID is its aggregate ID.
//
// Its fields are exported so that snapshots can keep them; change them only
// through the commands, which record why they changed.
type Cargo struct {
	domain.Aggregate
	Origin          Location  `json:"origin"`
	Destination     Location  `json:"destination"`
	ArrivalDeadline time.Time `json:"arrival_deadline"`

	TransportStatus TransportStatus `json:"transport_status"`
	RoutingStatus   RoutingStatus   `json:"routing_status"`
	IsMisdirected   bool            `json:"is_misdirected"`
	// EstimatedTimeOfArrival is zero until the cargo is routed.
	EstimatedTimeOfArrival time.Time `json:"estimated_time_of_arrival"`
	// NextExpectedActivity is nil when nothing is expected: before the
	// cargo is routed, after it is misdirected, and after it is claimed.
	NextExpectedActivity *ExpectedActivity `json:"next_expected_activity"`
	// Route is nil until a route is assigned.
	Route *Itinerary `json:"route"`
	// LastKnownLocation is empty until the cargo is received.
	LastKnownLocation Location `json:"last_known_location"`
	// CurrentVoyageNumber is empty unless the cargo is on board a voyage.
	CurrentVoyageNumber string `json:"current_voyage_number"`
}

// BookingStarted is the event that creates a cargo.
type BookingStarted struct {
	Origin          Location  `json:"origin"`
	Destination     Location  `json:"destination"`
	ArrivalDeadline time.Time `json:"arrival_deadline"`
}

// DestinationChanged records that the cargo is to go elsewhere.
type DestinationChanged struct {
	Destination Location `json:"destination"`
}

// RouteAssigned records the route the cargo is to take.
type RouteAssigned struct {
	Route Itinerary `json:"route"`
}

// HandlingEventRegistered records that the cargo was handled somewhere:
// received, loaded onto a voyage, unloaded from it, or claimed.
// VoyageNumber is empty for handling off any voyage.
type HandlingEventRegistered struct {
	TrackingID       uuid.UUID        `json:"tracking_id"`
	VoyageNumber     string           `json:"voyage_number"`
	Location         Location         `json:"location"`
	HandlingActivity HandlingActivity `json:"handling_activity"`
}

// Types are the persisted types of the cargo domain. Their topics are
// explicit so that renaming a Go type or moving the package does not orphan
// recorded events.
var Types = domain.Types(
	domain.AggregateType[Cargo](domain.Named("Cargo"), domain.CreatedBy(BookingStarted{})),
	domain.EventType[BookingStarted](domain.Named("Cargo.BookingStarted")),
	domain.EventType[DestinationChanged](domain.Named("Cargo.DestinationChanged")),
	domain.EventType[RouteAssigned](domain.Named("Cargo.RouteAssigned")),
	domain.EventType[HandlingEventRegistered](domain.Named("Cargo.HandlingEventRegistered")),
)

// NewBooking books a new cargo from origin to destination, to arrive by
// the deadline. It is not routed yet.
func NewBooking(origin, destination Location, arrivalDeadline time.Time) (*Cargo, error) {
	for _, l := range []Location{origin, destination} {
		if _, err := ParseLocation(string(l)); err != nil {
			return nil, fmt.Errorf("book cargo from %s to %s: %w", origin, destination, err)
		}
	}
	// Round(0) drops the monotonic clock reading of a time.Now() deadline,
	// which means nothing outside this process and would make the event
	// differ from its stored copy.
	return domain.New[Cargo](domain.NewID(), BookingStarted{
		Origin: origin, Destination: destination, ArrivalDeadline: arrivalDeadline.Round(0),
	})
}

// ChangeDestination sends the cargo elsewhere. Its route stays as it was;
// request routes again for the new destination.
func (c *Cargo) ChangeDestination(destination Location) error {
	if _, err := ParseLocation(string(destination)); err != nil {
		return fmt.Errorf("change destination of cargo %s: %w", c.ID(), err)
	}
	return domain.Trigger(c, DestinationChanged{Destination: destination})
}

// AssignRoute routes the cargo along the itinerary, replacing any route it
// had: the cargo is expected to be received at its origin, and is no longer
// misdirected.
func (c *Cargo) AssignRoute(itinerary Itinerary) error {
	return domain.Trigger(c, RouteAssigned{Route: itinerary.clone()})
}

// RegisterHandlingEvent records that the cargo was handled at a location,
// on a voyage for loading and unloading ("" otherwise). Handling that the
// cargo cannot relate to its route is refused: before the cargo has a route
// ([ErrNotRouted]), loading onto a voyage that does not leave from the
// location ([ErrUnknownLeg]), or an unsupported activity
// ([ErrUnsupportedActivity]).
func (c *Cargo) RegisterHandlingEvent(voyageNumber string, location Location, activity HandlingActivity) error {
	if _, err := ParseLocation(string(location)); err != nil {
		return fmt.Errorf("register %s of cargo %s: %w", activity, c.ID(), err)
	}
	return domain.Trigger(c, HandlingEventRegistered{
		TrackingID: c.ID(), VoyageNumber: voyageNumber, Location: location, HandlingActivity: activity,
	})
}

// Apply changes the cargo's state by one of its events, as the reference
// design's singledispatch apply method does.
func (c *Cargo) Apply(event any) error {
	switch e := event.(type) {
	case BookingStarted:
		c.Origin, c.Destination, c.ArrivalDeadline = e.Origin, e.Destination, e.ArrivalDeadline
		c.TransportStatus, c.RoutingStatus = NotReceived, NotRouted
	case DestinationChanged:
		c.Destination = e.Destination
	case RouteAssigned:
		route := e.Route.clone()
		c.Route = &route
		c.RoutingStatus = Routed
		// The reference design uses datetime.now() here, so a cargo rebuilt
		// from its events next month would be estimated to arrive next
		// month too. The estimate is a decision made when the route was
		// assigned: inside Apply, ModifiedOn is already the timestamp of
		// the event being applied, so replaying the events always gives the
		// same estimate.
		c.EstimatedTimeOfArrival = c.ModifiedOn().Add(week)
		c.NextExpectedActivity = &ExpectedActivity{Activity: RECEIVE, Location: c.Origin}
		c.IsMisdirected = false
	case HandlingEventRegistered:
		return c.handled(e)
	default:
		return fmt.Errorf("%w: a cargo has no event %T", domain.ErrUnknownEvent, event)
	}
	return nil
}

// handled applies a handling event. It works out the new state before it
// changes anything, so that a refused event leaves the cargo as it was.
func (c *Cargo) handled(e HandlingEventRegistered) error {
	if c.Route == nil {
		return fmt.Errorf("%s at %s: %w", e.HandlingActivity, e.Location, ErrNotRouted)
	}
	legs := c.Route.Legs
	switch e.HandlingActivity {
	case RECEIVE:
		if len(legs) == 0 {
			return fmt.Errorf("%w: the route has no legs", ErrUnknownLeg)
		}
		c.TransportStatus = InPort
		c.LastKnownLocation = e.Location
		c.NextExpectedActivity = &ExpectedActivity{Activity: LOAD, Location: e.Location, VoyageNumber: legs[0].VoyageNumber}

	case LOAD:
		i := slices.IndexFunc(legs, func(l Leg) bool { return l.Origin == e.Location && l.VoyageNumber == e.VoyageNumber })
		if i < 0 {
			return fmt.Errorf("%w with origin %s and voyage number %q", ErrUnknownLeg, e.Location, e.VoyageNumber)
		}
		c.TransportStatus = OnboardCarrier
		c.CurrentVoyageNumber = e.VoyageNumber
		c.NextExpectedActivity = &ExpectedActivity{Activity: UNLOAD, Location: legs[i].Destination, VoyageNumber: e.VoyageNumber}

	case UNLOAD:
		next, misdirected := c.NextExpectedActivity, c.IsMisdirected
		switch {
		case e.Location == c.Destination:
			next = &ExpectedActivity{Activity: CLAIM, Location: e.Location}
		case slices.ContainsFunc(legs, func(l Leg) bool { return l.Destination == e.Location }):
			// Unloaded where a leg ends: the next leg leaves from here. As in
			// the reference design, a voyage that is on no leg leaves the
			// expectation as it was.
			if i := slices.IndexFunc(legs, func(l Leg) bool { return l.VoyageNumber == e.VoyageNumber }); i >= 0 {
				if i+1 == len(legs) || legs[i+1].Origin != e.Location {
					return fmt.Errorf("%w after voyage %q from %s", ErrUnknownLeg, e.VoyageNumber, e.Location)
				}
				next = &ExpectedActivity{Activity: LOAD, Location: e.Location, VoyageNumber: legs[i+1].VoyageNumber}
			}
		default:
			// Unloaded off the route: nothing on the route can be expected
			// until the cargo is routed again from here.
			next, misdirected = nil, true
		}
		c.CurrentVoyageNumber = ""
		c.LastKnownLocation = e.Location
		c.TransportStatus = InPort
		c.NextExpectedActivity, c.IsMisdirected = next, misdirected

	case CLAIM:
		c.NextExpectedActivity = nil
		c.TransportStatus = Claimed

	default:
		return fmt.Errorf("%w: %q", ErrUnsupportedActivity, e.HandlingActivity)
	}
	return nil
}

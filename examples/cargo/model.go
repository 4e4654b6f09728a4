package cargo

import (
	"fmt"
	"slices"
)

// Location is a place where cargo is handled, named by its code.
type Location string

// The locations of the example's world.
const (
	HAMBURG   Location = "HAMBURG"
	HONGKONG  Location = "HONGKONG"
	NEWYORK   Location = "NEWYORK"
	STOCKHOLM Location = "STOCKHOLM"
	TOKYO     Location = "TOKYO"

	NLRTM Location = "NLRTM"
	USDAL Location = "USDAL"
	AUMEL Location = "AUMEL"
)

var locations = []Location{HAMBURG, HONGKONG, NEWYORK, STOCKHOLM, TOKYO, NLRTM, USDAL, AUMEL}

// ParseLocation returns the location named name. An unknown name is an
// error wrapping [ErrUnknownLocation].
func ParseLocation(name string) (Location, error) {
	if l := Location(name); slices.Contains(locations, l) {
		return l, nil
	}
	return "", fmt.Errorf("%w: %q", ErrUnknownLocation, name)
}

// HandlingActivity is what was done to a cargo at a location.
type HandlingActivity string

// The handling activities, in the order a cargo goes through them on each
// leg: received at its origin, loaded onto and unloaded from voyages, and
// claimed at its destination.
const (
	RECEIVE HandlingActivity = "RECEIVE"
	LOAD    HandlingActivity = "LOAD"
	UNLOAD  HandlingActivity = "UNLOAD"
	CLAIM   HandlingActivity = "CLAIM"
)

var activities = []HandlingActivity{RECEIVE, LOAD, UNLOAD, CLAIM}

// ParseHandlingActivity returns the handling activity named name. An
// unknown name is an error wrapping [ErrUnsupportedActivity].
func ParseHandlingActivity(name string) (HandlingActivity, error) {
	if a := HandlingActivity(name); slices.Contains(activities, a) {
		return a, nil
	}
	return "", fmt.Errorf("%w: %q", ErrUnsupportedActivity, name)
}

// Leg is one voyage of an itinerary, from one location to the next.
type Leg struct {
	Origin       Location `json:"origin"`
	Destination  Location `json:"destination"`
	VoyageNumber string   `json:"voyage_number"`
}

// Itinerary is a route along which cargo is shipped: legs, each starting
// where the one before ends.
type Itinerary struct {
	Origin      Location `json:"origin"`
	Destination Location `json:"destination"`
	Legs        []Leg    `json:"legs"`
}

// clone copies the itinerary's legs, so that an event's route and the
// aggregate's route never share an array that one of them could change.
func (it Itinerary) clone() Itinerary {
	it.Legs = slices.Clone(it.Legs)
	return it
}

// route is a pair of locations that [RegisteredRoutes] has itineraries for.
type route struct{ from, to Location }

// registeredRoutes stands in for a routing service: the reference design's
// REGISTERED_ROUTES.
var registeredRoutes = map[route][]Itinerary{
	{HONGKONG, STOCKHOLM}: {{
		Origin: HONGKONG, Destination: STOCKHOLM,
		Legs: []Leg{
			{Origin: HONGKONG, Destination: NEWYORK, VoyageNumber: "V1"},
			{Origin: NEWYORK, Destination: STOCKHOLM, VoyageNumber: "V2"},
		},
	}},
	{TOKYO, STOCKHOLM}: {{
		Origin: TOKYO, Destination: STOCKHOLM,
		Legs: []Leg{
			{Origin: TOKYO, Destination: HAMBURG, VoyageNumber: "V3"},
			{Origin: HAMBURG, Destination: STOCKHOLM, VoyageNumber: "V4"},
		},
	}},
}

// RegisteredRoutes returns the itineraries known from one location to
// another, or none. The itineraries are copies: changing them changes no
// other caller's routes.
func RegisteredRoutes(from, to Location) []Itinerary {
	routes := registeredRoutes[route{from, to}]
	if routes == nil {
		return nil
	}
	out := make([]Itinerary, len(routes))
	for i, it := range routes {
		out[i] = it.clone()
	}
	return out
}

// TransportStatus tells where a cargo is in its journey.
type TransportStatus string

// The transport statuses of a cargo.
const (
	NotReceived    TransportStatus = "NOT_RECEIVED"
	InPort         TransportStatus = "IN_PORT"
	OnboardCarrier TransportStatus = "ONBOARD_CARRIER"
	Claimed        TransportStatus = "CLAIMED"
)

// RoutingStatus tells whether a cargo has a route.
type RoutingStatus string

// The routing statuses of a cargo.
const (
	NotRouted RoutingStatus = "NOT_ROUTED"
	Routed    RoutingStatus = "ROUTED"
)

// ExpectedActivity is the handling a cargo on its route should get next:
// the activity, where, and on which voyage (empty for RECEIVE and CLAIM,
// which happen off any voyage).
type ExpectedActivity struct {
	Activity     HandlingActivity `json:"activity"`
	Location     Location         `json:"location"`
	VoyageNumber string           `json:"voyage_number,omitempty"`
}

// Package cargo is the reference design's cargo shipping example, after
// the booking and tracking scenario of Eric Evans's Domain-Driven Design: a
// Cargo aggregate that is booked from an origin to a destination, assigned
// a route of voyage legs, and tracked through the handling events reported
// for it.
//
// The pieces are layered as in the reference design:
//
//   - The domain model: [Cargo], written in the declarative style (commands
//     trigger events and one Apply method, a type switch, changes the
//     state), with its value types [Location], [HandlingActivity],
//     [Itinerary] and [Leg], and the [RegisteredRoutes] between locations.
//   - The application, [BookingApplication], which books cargo, finds
//     routes for it, and records what happens to it.
//   - The interface, [BookingService], which takes and returns simple types
//     (strings, booleans, times) so that a web service or a command line can
//     use it without knowing the domain model.
//
// Unlike the reference design, which needs transcodings to store its
// enumerations and itineraries, the Go types here are plain strings and
// structs that the default JSON transcoder stores as they are.
//
// One departure is deliberate: the reference design sets a routed cargo's
// estimated time of arrival from the clock when the RouteAssigned event is
// applied, so that rebuilding the cargo later gives a later estimate. Here
// it is computed from the event's own timestamp, so that a cargo rebuilt
// from its events is the same cargo, whenever it is rebuilt.
package cargo

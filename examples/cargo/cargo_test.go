package cargo_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/domain"
	"github.com/strata-go/strata/examples/cargo"
	"github.com/strata-go/strata/internal/storetest"
	"github.com/strata-go/strata/persistence"
)

const week = 7 * 24 * time.Hour

func newBooking(t *testing.T, opts ...application.Option) (*cargo.BookingService, *cargo.BookingApplication) {
	t.Helper()
	app, err := cargo.New(context.Background(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	return cargo.NewBookingService(app), app
}

// selectPreferredItinerary mimics a customer's choice, as the reference
// design's select_preferred_itinerary does: the first route.
func selectPreferredItinerary(itineraries []cargo.ItineraryDetails) cargo.ItineraryDetails {
	return itineraries[0]
}

func details(t *testing.T, s *cargo.BookingService, trackingID string) cargo.CargoDetails {
	t.Helper()
	d, err := s.GetCargoDetails(context.Background(), trackingID)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// The reference design's test_admin_can_book_new_cargo.
func TestAdminCanBookNewCargo(t *testing.T) {
	storetest.Run(t, func(t *testing.T, env map[string]string) {
		ctx := context.Background()
		service, _ := newBooking(t, application.WithEnv(env))
		arrivalDeadline := time.Now().UTC().Add(3 * week)

		cargoID, err := service.BookNewCargo(ctx, "NLRTM", "USDAL", arrivalDeadline)
		if err != nil {
			t.Fatal(err)
		}

		d := details(t, service, cargoID)
		if d.ID == "" || d.ID != cargoID {
			t.Fatalf("id %q, want %q", d.ID, cargoID)
		}
		if d.Origin != "NLRTM" || d.Destination != "USDAL" {
			t.Fatalf("origin %q destination %q", d.Origin, d.Destination)
		}

		if err := service.ChangeDestination(ctx, cargoID, "AUMEL"); err != nil {
			t.Fatal(err)
		}
		d = details(t, service, cargoID)
		if d.Destination != "AUMEL" {
			t.Fatalf("destination %q after changing it to AUMEL", d.Destination)
		}
		if !d.ArrivalDeadline.Equal(arrivalDeadline) || d.ArrivalDeadline.Location() != time.UTC {
			t.Fatalf("arrival deadline %v, want %v", d.ArrivalDeadline, arrivalDeadline)
		}
	})
}

// status is what the scenario checks of a cargo's details after each step.
type status struct {
	transport   string
	routing     string
	misdirected bool
	hasETA      bool
	next        []string
	lastKnown   string
	voyage      string
}

func statusOf(d cargo.CargoDetails) status {
	return status{d.TransportStatus, d.RoutingStatus, d.IsMisdirected, !d.EstimatedTimeOfArrival.IsZero(),
		d.NextExpectedActivity, d.LastKnownLocation, d.CurrentVoyageNumber}
}

func (s status) equal(o status) bool {
	return s.transport == o.transport && s.routing == o.routing && s.misdirected == o.misdirected &&
		s.hasETA == o.hasETA && slices.Equal(s.next, o.next) && (s.next == nil) == (o.next == nil) &&
		s.lastKnown == o.lastKnown && s.voyage == o.voyage
}

// The reference design's test_scenario_cargo_from_hongkong_to_stockholm.
// Each step checks every field that the reference checks at that point,
// and the other fields too.
func TestScenarioCargoFromHongkongToStockholm(t *testing.T) {
	storetest.Run(t, func(t *testing.T, env map[string]string) {
		ctx := context.Background()
		service, _ := newBooking(t, application.WithEnv(env))

		// Test setup: A cargo should be shipped from Hongkong to
		// Stockholm, and it should arrive in no more than two weeks.
		origin, destination := "HONGKONG", "STOCKHOLM"
		arrivalDeadline := time.Now().UTC().Add(2 * week)

		// Use case 1: booking. A new cargo is booked, and the unique
		// tracking ID is assigned to the cargo.
		trackingID, err := service.BookNewCargo(ctx, origin, destination, arrivalDeadline)
		if err != nil {
			t.Fatal(err)
		}

		// reroute requests the possible routes and assigns the preferred
		// one, as the customer would.
		reroute := func(want cargo.ItineraryDetails) func() error {
			return func() error {
				routes, err := service.RequestPossibleRoutesForCargo(ctx, trackingID)
				if err != nil {
					return err
				}
				route := selectPreferredItinerary(routes)
				if len(routes) != 1 || !equalItineraries(route, want) {
					t.Fatalf("possible routes %+v, want [%+v]", routes, want)
				}
				return service.AssignRoute(ctx, trackingID, route)
			}
		}
		handle := func(voyage, location, activity string) func() error {
			return func() error { return service.RegisterHandlingEvent(ctx, trackingID, voyage, location, activity) }
		}
		viaNewYork := cargo.ItineraryDetails{Origin: "HONGKONG", Destination: "STOCKHOLM", Legs: []cargo.LegDetails{
			{Origin: "HONGKONG", Destination: "NEWYORK", VoyageNumber: "V1"},
			{Origin: "NEWYORK", Destination: "STOCKHOLM", VoyageNumber: "V2"},
		}}
		viaHamburg := cargo.ItineraryDetails{Origin: "TOKYO", Destination: "STOCKHOLM", Legs: []cargo.LegDetails{
			{Origin: "TOKYO", Destination: "HAMBURG", VoyageNumber: "V3"},
			{Origin: "HAMBURG", Destination: "STOCKHOLM", VoyageNumber: "V4"},
		}}

		steps := []struct {
			name string
			do   func() error
			want status
		}{
			// Tracking the cargo amounts to presenting information
			// extracted from the cargo aggregate.
			{"booked", nil, status{transport: "NOT_RECEIVED", routing: "NOT_ROUTED"}},
			// Use case 2: routing.
			{"routed", reroute(viaNewYork), status{transport: "NOT_RECEIVED", routing: "ROUTED", hasETA: true,
				next: []string{"RECEIVE", "HONGKONG"}}},
			// Use case 3: handling. Handling begins: cargo is received in
			// Hongkong.
			{"received in Hongkong", handle("", "HONGKONG", "RECEIVE"), status{transport: "IN_PORT", routing: "ROUTED", hasETA: true,
				next: []string{"LOAD", "HONGKONG", "V1"}, lastKnown: "HONGKONG"}},
			{"loaded onto V1", handle("V1", "HONGKONG", "LOAD"), status{transport: "ONBOARD_CARRIER", routing: "ROUTED", hasETA: true,
				next: []string{"UNLOAD", "NEWYORK", "V1"}, lastKnown: "HONGKONG", voyage: "V1"}},
			{"incorrectly unloaded in Tokyo", handle("V1", "TOKYO", "UNLOAD"), status{transport: "IN_PORT", routing: "ROUTED", hasETA: true,
				misdirected: true, lastKnown: "TOKYO"}},
			// As in the reference design, a new route expects the cargo to
			// be received at its origin; the scenario goes on by loading.
			{"rerouted from Tokyo", reroute(viaHamburg), status{transport: "IN_PORT", routing: "ROUTED", hasETA: true,
				next: []string{"RECEIVE", "HONGKONG"}, lastKnown: "TOKYO"}},
			{"loaded onto V3 in Tokyo", handle("V3", "TOKYO", "LOAD"), status{transport: "ONBOARD_CARRIER", routing: "ROUTED", hasETA: true,
				next: []string{"UNLOAD", "HAMBURG", "V3"}, lastKnown: "TOKYO", voyage: "V3"}},
			{"unloaded in Hamburg", handle("V3", "HAMBURG", "UNLOAD"), status{transport: "IN_PORT", routing: "ROUTED", hasETA: true,
				next: []string{"LOAD", "HAMBURG", "V4"}, lastKnown: "HAMBURG"}},
			{"loaded onto V4 in Hamburg", handle("V4", "HAMBURG", "LOAD"), status{transport: "ONBOARD_CARRIER", routing: "ROUTED", hasETA: true,
				next: []string{"UNLOAD", "STOCKHOLM", "V4"}, lastKnown: "HAMBURG", voyage: "V4"}},
			{"unloaded in Stockholm", handle("V4", "STOCKHOLM", "UNLOAD"), status{transport: "IN_PORT", routing: "ROUTED", hasETA: true,
				next: []string{"CLAIM", "STOCKHOLM"}, lastKnown: "STOCKHOLM"}},
			// Finally, cargo is claimed in Stockholm.
			{"claimed in Stockholm", handle("", "STOCKHOLM", "CLAIM"), status{transport: "CLAIMED", routing: "ROUTED", hasETA: true,
				lastKnown: "STOCKHOLM"}},
		}
		for _, step := range steps {
			if step.do != nil {
				if err := step.do(); err != nil {
					t.Fatalf("%s: %v", step.name, err)
				}
			}
			d := details(t, service, trackingID)
			if got := statusOf(d); !got.equal(step.want) {
				t.Fatalf("%s: details\n%+v, want\n%+v", step.name, got, step.want)
			}
			if d.ID != trackingID || d.Origin != origin || d.Destination != destination || !d.ArrivalDeadline.Equal(arrivalDeadline) {
				t.Fatalf("%s: booking details %+v", step.name, d)
			}
		}
	})
}

func equalItineraries(a, b cargo.ItineraryDetails) bool {
	return a.Origin == b.Origin && a.Destination == b.Destination && slices.Equal(a.Legs, b.Legs)
}

// A cargo rebuilt from its events, however much later, has the estimated
// time of arrival that was decided when its route was assigned: one week
// after the RouteAssigned event, not after the clock at rebuilding.
func TestEstimatedTimeOfArrivalIsReplayed(t *testing.T) {
	storetest.Run(t, func(t *testing.T, env map[string]string) {
		ctx := context.Background()
		_, app := newBooking(t, application.WithEnv(env))
		id, err := app.BookNewCargo(ctx, cargo.HONGKONG, cargo.STOCKHOLM, time.Now().Add(2*week))
		if err != nil {
			t.Fatal(err)
		}
		routes, err := app.RequestPossibleRoutesForCargo(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if err := app.AssignRoute(ctx, id, routes[0]); err != nil {
			t.Fatal(err)
		}
		if err := app.RegisterHandlingEvent(ctx, id, "", cargo.HONGKONG, cargo.RECEIVE); err != nil {
			t.Fatal(err)
		}

		events, err := app.Events().Get(ctx, id, persistence.EventQuery{})
		if err != nil || len(events) != 3 {
			t.Fatalf("events %+v %v", events, err)
		}
		if _, ok := events[1].Data.(cargo.RouteAssigned); !ok {
			t.Fatalf("second event is %T, want RouteAssigned", events[1].Data)
		}
		want := events[1].Timestamp.Add(week)

		// Rebuilt by the repository, at the latest version and at the
		// version of the route, and by replaying the events by hand, all
		// after the clock has moved on since the route was assigned.
		latest, err := app.GetCargo(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		atRouting, err := app.Cargos().Get(ctx, id, application.AtVersion(2))
		if err != nil {
			t.Fatal(err)
		}
		replayed := new(cargo.Cargo)
		if err := domain.Replay(replayed, events...); err != nil {
			t.Fatal(err)
		}
		for name, c := range map[string]*cargo.Cargo{"latest": latest, "at version 2": atRouting, "replayed": replayed} {
			if !c.EstimatedTimeOfArrival.Equal(want) {
				t.Errorf("%s: estimated time of arrival %v, want %v (the RouteAssigned event's time plus a week)",
					name, c.EstimatedTimeOfArrival, want)
			}
		}
		if !time.Now().After(events[1].Timestamp) {
			t.Fatal("the clock has not moved since the route was assigned; the test proves nothing")
		}
	})
}

// A cargo loaded from a snapshot is the cargo rebuilt from its events:
// routes, expectations and times survive the snapshot.
func TestSnapshotsKeepTheCargo(t *testing.T) {
	storetest.Run(t, func(t *testing.T, env map[string]string) {
		ctx := context.Background()
		_, app := newBooking(t, application.WithEnv(env), application.SnapshotInterval[cargo.Cargo](3))
		id, err := app.BookNewCargo(ctx, cargo.HONGKONG, cargo.STOCKHOLM, time.Now().Add(2*week))
		if err != nil {
			t.Fatal(err)
		}
		if err := app.AssignRoute(ctx, id, cargo.RegisteredRoutes(cargo.HONGKONG, cargo.STOCKHOLM)[0]); err != nil {
			t.Fatal(err)
		}
		for _, h := range []struct {
			voyage   string
			location cargo.Location
			activity cargo.HandlingActivity
		}{{"", cargo.HONGKONG, cargo.RECEIVE}, {"V1", cargo.HONGKONG, cargo.LOAD}} {
			if err := app.RegisterHandlingEvent(ctx, id, h.voyage, h.location, h.activity); err != nil {
				t.Fatal(err)
			}
		}
		snaps, err := app.Snapshots().Get(ctx, id, persistence.EventQuery{})
		if err != nil || len(snaps) != 1 || snaps[0].OriginatorVersion != 3 {
			t.Fatalf("snapshots %+v %v", snaps, err)
		}
		fromSnapshot, err := app.GetCargo(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		fromEvents, err := app.Cargos().Get(ctx, id, application.FromEvents())
		if err != nil {
			t.Fatal(err)
		}
		a, _ := json.Marshal(fromSnapshot)
		b, _ := json.Marshal(fromEvents)
		if string(a) != string(b) || fromSnapshot.Version() != fromEvents.Version() || !fromSnapshot.ModifiedOn().Equal(fromEvents.ModifiedOn()) {
			t.Fatalf("from the snapshot:\n%s version %d\nfrom events:\n%s version %d", a, fromSnapshot.Version(), b, fromEvents.Version())
		}
		if fromSnapshot.NextExpectedActivity == nil || *fromSnapshot.NextExpectedActivity != (cargo.ExpectedActivity{Activity: cargo.UNLOAD, Location: cargo.NEWYORK, VoyageNumber: "V1"}) {
			t.Fatalf("next expected activity %+v", fromSnapshot.NextExpectedActivity)
		}
	})
}

// Requests that the cargo cannot relate to its journey, or that name
// unknown things, are errors, and record nothing.
func TestRefusedRequests(t *testing.T) {
	storetest.Run(t, func(t *testing.T, env map[string]string) {
		ctx := context.Background()
		service, app := newBooking(t, application.WithEnv(env))
		book := func(origin, destination string) string {
			t.Helper()
			id, err := service.BookNewCargo(ctx, origin, destination, time.Now().Add(week))
			if err != nil {
				t.Fatal(err)
			}
			return id
		}
		unrouted := book("HONGKONG", "STOCKHOLM")
		routed := book("HONGKONG", "STOCKHOLM")
		routes, err := service.RequestPossibleRoutesForCargo(ctx, routed)
		if err != nil {
			t.Fatal(err)
		}
		if err := service.AssignRoute(ctx, routed, routes[0]); err != nil {
			t.Fatal(err)
		}
		// Sent on to Melbourne, it is still routed to Stockholm, where the
		// route has no leg after V2.
		diverted := book("HONGKONG", "STOCKHOLM")
		if err := service.AssignRoute(ctx, diverted, routes[0]); err != nil {
			t.Fatal(err)
		}
		if err := service.ChangeDestination(ctx, diverted, "AUMEL"); err != nil {
			t.Fatal(err)
		}
		unroutable := book("NLRTM", "USDAL")
		otherRoute := selectPreferredItinerary(routes)
		otherRoute.Legs = otherRoute.Legs[:1]

		for _, tc := range []struct {
			name    string
			cargo   string
			do      func(id string) error
			want    error
			message string
		}{
			{"book from an unknown origin", "", func(string) error {
				_, err := service.BookNewCargo(ctx, "ATLANTIS", "STOCKHOLM", time.Now())
				return err
			}, cargo.ErrUnknownLocation, `"ATLANTIS"`},
			{"book to an unknown destination", "", func(string) error {
				_, err := service.BookNewCargo(ctx, "HONGKONG", "hongkong", time.Now())
				return err
			}, cargo.ErrUnknownLocation, `"hongkong"`},
			{"change to an unknown destination", routed, func(id string) error {
				return service.ChangeDestination(ctx, id, "ATLANTIS")
			}, cargo.ErrUnknownLocation, `"ATLANTIS"`},
			{"handle at an unknown location", routed, func(id string) error {
				return service.RegisterHandlingEvent(ctx, id, "", "ATLANTIS", "RECEIVE")
			}, cargo.ErrUnknownLocation, `"ATLANTIS"`},
			{"an unknown handling activity", routed, func(id string) error {
				return service.RegisterHandlingEvent(ctx, id, "", "HONGKONG", "LOSE")
			}, cargo.ErrUnsupportedActivity, `"LOSE"`},
			{"an unsupported handling activity in the domain", routed, func(id string) error {
				return app.RegisterHandlingEvent(ctx, uuid.MustParse(id), "", cargo.HONGKONG, "LOSE")
			}, cargo.ErrUnsupportedActivity, `"LOSE"`},
			{"handle a cargo without a route", unrouted, func(id string) error {
				return service.RegisterHandlingEvent(ctx, id, "", "HONGKONG", "RECEIVE")
			}, cargo.ErrNotRouted, "RECEIVE at HONGKONG"},
			{"load onto a voyage that does not leave from there", routed, func(id string) error {
				return service.RegisterHandlingEvent(ctx, id, "V2", "HONGKONG", "LOAD")
			}, cargo.ErrUnknownLeg, "origin HONGKONG and voyage number \"V2\""},
			{"unload where the route has no next leg", diverted, func(id string) error {
				return service.RegisterHandlingEvent(ctx, id, "V2", "STOCKHOLM", "UNLOAD")
			}, cargo.ErrUnknownLeg, "after voyage \"V2\" from STOCKHOLM"},
			{"request routes where there are none", unroutable, func(id string) error {
				_, err := service.RequestPossibleRoutesForCargo(ctx, id)
				return err
			}, cargo.ErrNoRoutes, "can't find routes from NLRTM to USDAL"},
			{"assign a route that was not offered", routed, func(id string) error {
				return service.AssignRoute(ctx, id, otherRoute)
			}, cargo.ErrRouteNotOffered, routed},
			{"an unknown tracking ID", "", func(string) error {
				_, err := service.GetCargoDetails(ctx, uuid.NewString())
				return err
			}, cargo.ErrCargoNotFound, "cargo not found"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var before cargo.CargoDetails
				var version int64
				if tc.cargo != "" {
					before = details(t, service, tc.cargo)
					c, _ := app.GetCargo(ctx, uuid.MustParse(tc.cargo))
					version = c.Version()
				}
				err := tc.do(tc.cargo)
				if !errors.Is(err, tc.want) {
					t.Fatalf("error %v, want one wrapping %v", err, tc.want)
				}
				if !strings.Contains(err.Error(), tc.message) {
					t.Fatalf("error %q does not say %q", err, tc.message)
				}
				if tc.cargo == "" {
					return
				}
				c, err := app.GetCargo(ctx, uuid.MustParse(tc.cargo))
				if err != nil {
					t.Fatal(err)
				}
				if after := details(t, service, tc.cargo); c.Version() != version || !statusOf(after).equal(statusOf(before)) {
					t.Fatalf("the cargo changed from version %d %+v to version %d %+v", version, before, c.Version(), after)
				}
			})
		}
	})
}

func TestCargoNotFound(t *testing.T) {
	ctx := context.Background()
	service, _ := newBooking(t, application.WithoutProcessEnv())
	id := uuid.NewString()
	err := service.RegisterHandlingEvent(ctx, id, "", "HONGKONG", "RECEIVE")
	if !errors.Is(err, cargo.ErrCargoNotFound) || !errors.Is(err, application.ErrAggregateNotFound) || !strings.Contains(err.Error(), id) {
		t.Fatalf("handling an unknown cargo: %v", err)
	}
	if _, err := service.GetCargoDetails(ctx, "not-a-uuid"); err == nil || !strings.Contains(err.Error(), `"not-a-uuid"`) {
		t.Fatalf("a malformed tracking ID: %v", err)
	}
}

func TestParse(t *testing.T) {
	for _, name := range []string{"HAMBURG", "HONGKONG", "NEWYORK", "STOCKHOLM", "TOKYO", "NLRTM", "USDAL", "AUMEL"} {
		if l, err := cargo.ParseLocation(name); err != nil || string(l) != name {
			t.Errorf("ParseLocation(%q) = %q, %v", name, l, err)
		}
	}
	for _, name := range []string{"RECEIVE", "LOAD", "UNLOAD", "CLAIM"} {
		if a, err := cargo.ParseHandlingActivity(name); err != nil || string(a) != name {
			t.Errorf("ParseHandlingActivity(%q) = %q, %v", name, a, err)
		}
	}
	for _, name := range []string{"", "hamburg", "Hamburg", " HAMBURG"} {
		if _, err := cargo.ParseLocation(name); !errors.Is(err, cargo.ErrUnknownLocation) {
			t.Errorf("ParseLocation(%q): %v", name, err)
		}
	}
	for _, name := range []string{"", "load", "LOSE"} {
		if _, err := cargo.ParseHandlingActivity(name); !errors.Is(err, cargo.ErrUnsupportedActivity) {
			t.Errorf("ParseHandlingActivity(%q): %v", name, err)
		}
	}
}

// RegisteredRoutes hands out copies: a caller that changes its routes
// does not change anyone else's.
func TestRegisteredRoutesAreCopies(t *testing.T) {
	routes := cargo.RegisteredRoutes(cargo.HONGKONG, cargo.STOCKHOLM)
	routes[0].Legs[0].VoyageNumber = "V99"
	if again := cargo.RegisteredRoutes(cargo.HONGKONG, cargo.STOCKHOLM); again[0].Legs[0].VoyageNumber != "V1" {
		t.Fatalf("routes changed by a caller: %+v", again)
	}
	if r := cargo.RegisteredRoutes(cargo.STOCKHOLM, cargo.HONGKONG); r != nil {
		t.Fatalf("routes back from Stockholm: %+v", r)
	}
}

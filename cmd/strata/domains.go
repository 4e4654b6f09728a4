package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/strata-go/strata/cli"
	"github.com/strata-go/strata/examples/bankaccounts"
	"github.com/strata-go/strata/examples/cargo"
	"github.com/strata-go/strata/examples/counters"
	"github.com/strata-go/strata/examples/wiki"
	"github.com/strata-go/strata/examples/worlds"
	"github.com/strata-go/strata/system"
)

// domains returns the example domains; worlds, the first, is the default.
func domains() []cli.Domain {
	return []cli.Domain{
		{
			Name:        "worlds",
			Description: "worlds where things happen; Counters follows Worlds and counts them",
			Applications: []system.Def{
				system.Define(worlds.Name, worlds.Types, worlds.New),
				system.Define(counters.Name, counters.Types, counters.New),
			},
			Pipes: [][]string{{worlds.Name, counters.Name}},
			Demo:  worldsDemo,
		},
		{
			Name:         "wiki",
			Description:  "wiki pages, found by slug through index aggregates",
			Applications: []system.Def{system.Define(wiki.Name, wiki.Types, wiki.New)},
			Demo:         wikiDemo,
		},
		{
			Name:        "bank",
			Description: "bank accounts: deposits, withdrawals, transfers, overdrafts; Ledger follows them with statements",
			Applications: []system.Def{
				system.Define(bankaccounts.Name, bankaccounts.Types, bankaccounts.New),
				system.Define(bankaccounts.LedgerName, bankaccounts.LedgerTypes, bankaccounts.NewLedger),
			},
			Pipes: [][]string{{bankaccounts.Name, bankaccounts.LedgerName}},
			Demo:  bankDemo,
		},
		{
			Name:         "cargo",
			Description:  "cargo shipping: bookings, routes and handling events",
			Applications: []system.Def{system.Define(cargo.Name, cargo.Types, cargo.New)},
			// The booking service's read model and the domain's value
			// types are not event-sourced aggregates.
			PlainTypes: []cli.PlainType{cli.Plain[cargo.CargoDetails](), cli.Plain[cargo.Itinerary](), cli.Plain[cargo.Leg]()},
			Demo:       cargoDemo,
		},
	}
}

// What happens in the demo's worlds.
var things = []string{"dinosaurs", "trucks", "internet", "volcanoes", "ice ages", "humans"}

const (
	demoWorlds = 3  // worlds the demo creates
	demoEvents = 20 // things that happen in each
)

// worldsDemo creates worlds in which many things happen, one save per
// world, and shows what Counters, following Worlds, counted.
func worldsDemo(ctx context.Context, apps system.Runner, w io.Writer) error {
	ws, err := system.Get[*worlds.Worlds](apps, worlds.Name)
	if err != nil {
		return err
	}
	cs, err := system.Get[*counters.Counters](apps, counters.Name)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Creating %d worlds in which %d things happen each; Counters counts them as Worlds saves them.\n", demoWorlds, demoEvents)
	for i := range demoWorlds {
		world, err := worlds.NewWorld()
		if err != nil {
			return err
		}
		for j := range demoEvents {
			if err := world.MakeItSo(things[(i+j)%len(things)]); err != nil {
				return err
			}
		}
		recs, err := ws.Save(ctx, world)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "World %s: %d events, notifications %d to %d.\n", world.ID(), len(recs), recs[0].NotificationID, recs[len(recs)-1].NotificationID)
	}
	fmt.Fprintln(w, "Counters has counted, in all the worlds so far:")
	for _, what := range things {
		n, err := cs.Count(ctx, what)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "  %-10s %d (counter %s)\n", what, n, counters.CounterID(what))
	}
	last, err := ws.Recorder().MaxNotificationID(ctx)
	if err != nil {
		return err
	}
	lastCounted, err := cs.Recorder().MaxNotificationID(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Last notification IDs: Worlds %d, Counters %d.\n", last, lastCounted)
	return nil
}

// wikiDemo creates pages, edits them and renames a slug. Slugs get a
// suffix of their own each run, so that running the demo again adds pages.
func wikiDemo(ctx context.Context, apps system.Runner, w io.Writer) error {
	app, err := system.Get[*wiki.Wiki](apps, wiki.Name)
	if err != nil {
		return err
	}
	run := uuid.NewString()[:8]
	for _, title := range []string{"Earth", "Mars", "Venus"} {
		slug := title + "-" + run
		id, err := app.CreatePage(ctx, title, slug, "A planet.")
		if err != nil {
			return err
		}
		for i := range 3 {
			if err := app.UpdateBody(ctx, slug, fmt.Sprintf("A planet, edition %d.", i+2)); err != nil {
				return err
			}
		}
		fmt.Fprintf(w, "Page %s: %q at slug %s, edited 3 times.\n", id, title, slug)
	}
	renamed := "Earth-" + run
	if err := app.RenameSlug(ctx, renamed, "Terra-"+run); err != nil {
		return err
	}
	page, err := app.GetPage(ctx, "Terra-"+run)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Renamed slug %s to %s; the page now says %q.\n", renamed, page.Slug, page.Body)
	return nil
}

// bankDemo opens two accounts and moves money between them.
func bankDemo(ctx context.Context, apps system.Runner, w io.Writer) error {
	app, err := system.Get[*bankaccounts.BankAccounts](apps, bankaccounts.Name)
	if err != nil {
		return err
	}
	alice, err := app.OpenAccount(ctx, "Alice", "alice@example.com")
	if err != nil {
		return err
	}
	bob, err := app.OpenAccount(ctx, "Bob", "bob@example.com")
	if err != nil {
		return err
	}
	amount := decimal.RequireFromString
	steps := []error{
		app.DepositFunds(ctx, alice, amount("200.00")),
		app.DepositFunds(ctx, bob, amount("50.00")),
		app.TransferFunds(ctx, alice, bob, amount("75.50")),
		app.SetOverdraftLimit(ctx, bob, amount("100.00")),
		app.WithdrawFunds(ctx, bob, amount("200.00")),
	}
	for _, err := range steps {
		if err != nil {
			return err
		}
	}
	for _, a := range []struct {
		name string
		id   uuid.UUID
	}{{"Alice", alice}, {"Bob", bob}} {
		balance, err := app.GetBalance(ctx, a.id)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "Account %s (%s): balance %s.\n", a.id, a.name, balance.StringFixed(2))
	}
	ledger, err := system.Get[*bankaccounts.Ledger](apps, bankaccounts.LedgerName)
	if err != nil {
		return err
	}
	for _, a := range []struct {
		name string
		id   uuid.UUID
	}{{"Alice", alice}, {"Bob", bob}} {
		st, err := ledger.Statement(ctx, a.id)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "Ledger statement of %s: %d lines, in %s, out %s.\n", a.name, len(st.Lines), st.TotalIn.StringFixed(2), st.TotalOut.StringFixed(2))
	}
	return nil
}

// cargoDemo books a cargo, routes it and handles it to its destination.
func cargoDemo(ctx context.Context, apps system.Runner, w io.Writer) error {
	app, err := system.Get[*cargo.BookingApplication](apps, cargo.Name)
	if err != nil {
		return err
	}
	service := cargo.NewBookingService(app)
	id, err := service.BookNewCargo(ctx, "HONGKONG", "STOCKHOLM", time.Now().Add(14*24*time.Hour))
	if err != nil {
		return err
	}
	routes, err := service.RequestPossibleRoutesForCargo(ctx, id)
	if err != nil {
		return err
	}
	if err := service.AssignRoute(ctx, id, routes[0]); err != nil {
		return err
	}
	for _, h := range [][3]string{
		{"", "HONGKONG", "RECEIVE"}, {"V1", "HONGKONG", "LOAD"}, {"V1", "NEWYORK", "UNLOAD"},
		{"V2", "NEWYORK", "LOAD"}, {"V2", "STOCKHOLM", "UNLOAD"}, {"", "STOCKHOLM", "CLAIM"},
	} {
		if err := service.RegisterHandlingEvent(ctx, id, h[0], h[1], h[2]); err != nil {
			return err
		}
	}
	details, err := service.GetCargoDetails(ctx, id)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Cargo %s: booked from %s to %s, routed, handled 6 times: %s.\n", id, details.Origin, details.Destination, details.TransportStatus)
	return nil
}

package cargo_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/examples/cargo"
)

func Example() {
	ctx := context.Background()
	app, err := cargo.New(ctx, application.WithoutProcessEnv())
	if err != nil {
		panic(err)
	}
	defer app.Close()
	service := cargo.NewBookingService(app)

	id, _ := service.BookNewCargo(ctx, "HONGKONG", "STOCKHOLM", time.Now().Add(14*24*time.Hour))
	routes, _ := service.RequestPossibleRoutesForCargo(ctx, id)
	for _, leg := range routes[0].Legs {
		fmt.Println(leg.VoyageNumber, leg.Origin, "->", leg.Destination)
	}
	_ = service.AssignRoute(ctx, id, routes[0])
	_ = service.RegisterHandlingEvent(ctx, id, "", "HONGKONG", "RECEIVE")
	_ = service.RegisterHandlingEvent(ctx, id, "V1", "HONGKONG", "LOAD")

	details, _ := service.GetCargoDetails(ctx, id)
	fmt.Println(details.TransportStatus, details.CurrentVoyageNumber, details.NextExpectedActivity)

	err = service.RegisterHandlingEvent(ctx, id, "V1", "ATLANTIS", "UNLOAD")
	fmt.Println(errors.Is(err, cargo.ErrUnknownLocation))
	// Output:
	// V1 HONGKONG -> NEWYORK
	// V2 NEWYORK -> STOCKHOLM
	// ONBOARD_CARRIER V1 [UNLOAD NEWYORK V1]
	// true
}

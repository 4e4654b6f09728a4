package system_test

import (
	"context"
	"fmt"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/examples/counters"
	"github.com/strata-go/strata/examples/worlds"
	"github.com/strata-go/strata/system"
)

// A system of the Worlds application and the Counters process
// application, which counts what happens in the worlds: each application
// is defined by its name, its types and its constructor, and the pipe says
// that Counters follows Worlds. The single-threaded runner processes each
// event before the save that recorded it returns.
func Example() {
	ctx := context.Background()
	sys, err := system.New([]system.Def{
		system.Define(worlds.Name, worlds.Types, worlds.New),
		system.Define(counters.Name, counters.Types, counters.New),
	}, []string{worlds.Name, counters.Name})
	if err != nil {
		panic(err)
	}

	runner := system.NewSingleThreadedRunner(sys, system.WithEnv(map[string]string{"PERSISTENCE_MODULE": "memory"}))
	if err := runner.Start(ctx); err != nil {
		panic(err)
	}
	defer runner.Stop(ctx)
	w, _ := system.Get[*worlds.Worlds](runner, worlds.Name)
	c, _ := system.Get[*counters.Counters](runner, counters.Name)

	id1, _ := w.CreateWorld(ctx)
	id2, _ := w.CreateWorld(ctx)
	_ = w.MakeItSo(ctx, id1, "dinosaurs")
	_ = w.MakeItSo(ctx, id2, "dinosaurs")
	_ = w.MakeItSo(ctx, id1, "trucks")

	for _, what := range []string{"dinosaurs", "trucks", "internet"} {
		n, _ := c.Count(ctx, what)
		fmt.Println(what, n)
	}
	fmt.Println("errors:", runner.Err())
	// Output:
	// dinosaurs 2
	// trucks 1
	// internet 0
	// errors: <nil>
}

// A reader reads any notification log from a position, a page at a time;
// breaking out of the loop reads no more.
func ExampleNotificationLogReader() {
	ctx := context.Background()
	app, _ := worlds.New(ctx, application.WithoutProcessEnv())
	defer app.Close()
	id, _ := app.CreateWorld(ctx)
	for _, what := range []string{"dinosaurs", "trucks", "internet", "satellites"} {
		_ = app.MakeItSo(ctx, id, what)
	}

	reader := system.NewNotificationLogReader(app.Log(), system.PageSize(2), system.FilterTopics("World.SomethingHappened"))
	for n, err := range reader.Select(ctx, 3) {
		if err != nil {
			panic(err)
		}
		e, _ := app.Mapper().ToEvent(n.StoredEvent)
		fmt.Println(n.ID, e.Data.(worlds.SomethingHappened).What)
		if n.ID == 4 {
			break
		}
	}
	// Output:
	// 3 trucks
	// 4 internet
}

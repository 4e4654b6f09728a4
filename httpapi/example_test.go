package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/examples/worlds"
	"github.com/strata-go/strata/httpapi"
)

// An application serves its notification log; another process reads it
// with a Client, as it would read the log of an application of its own,
// and decodes the notifications with a mapper of the same types.
func Example() {
	ctx := context.Background()
	app, err := worlds.New(ctx, application.WithoutProcessEnv())
	if err != nil {
		panic(err)
	}
	defer app.Close()
	id, _ := app.CreateWorld(ctx)
	for _, what := range []string{"dinosaurs", "trucks", "internet"} {
		_ = app.MakeItSo(ctx, id, what)
	}

	srv := httptest.NewServer(httpapi.NewHandler(app.Log(), httpapi.WithBearerToken("secret")))
	defer srv.Close()

	var log application.NotificationLog
	log, err = httpapi.NewClient(srv.URL, httpapi.WithClientBearerToken("secret"))
	if err != nil {
		panic(err)
	}
	section, err := log.Section(ctx, "1,10")
	if err != nil {
		panic(err)
	}
	fmt.Printf("section %s, next %q\n", section.ID, section.NextID)
	for _, n := range section.Items {
		e, err := app.Mapper().ToEvent(n.StoredEvent)
		if err != nil {
			panic(err)
		}
		fmt.Println(n.ID, n.Topic, n.OriginatorID == id, e.OriginatorVersion, e.Data)
	}
	// Output:
	// section 1,4, next ""
	// 1 World.Created true 1 {}
	// 2 World.SomethingHappened true 2 {dinosaurs}
	// 3 World.SomethingHappened true 3 {trucks}
	// 4 World.SomethingHappened true 4 {internet}
}

// The handler serves paths relative to where it is mounted: strip the
// prefix it is mounted under, and give the client the prefix in its base
// URL.
func ExampleNewHandler() {
	ctx := context.Background()
	app, _ := worlds.New(ctx, application.WithoutProcessEnv())
	defer app.Close()
	_, _ = app.CreateWorld(ctx)

	mux := http.NewServeMux()
	mux.Handle("/worlds/", http.StripPrefix("/worlds", httpapi.NewHandler(app.Log())))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	resp, _ := http.Get(srv.URL + "/worlds/notifications?start=1&limit=10&topics=World.Created")
	fmt.Println(resp.Status, resp.Header.Get("Content-Type"))
	resp.Body.Close()

	client, _ := httpapi.NewClient(srv.URL + "/worlds")
	items, _ := client.Select(ctx, 1, 10, application.Topics("World.Created"))
	fmt.Println(len(items), items[0].Topic)

	_, err := client.Select(ctx, 1, 5000)
	fmt.Println(err)
	// Output:
	// 200 OK application/json
	// 1 World.Created
	// invalid notification query: limit 5000 is not between 1 and 1000
}

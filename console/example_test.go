package console_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/console"
	"github.com/strata-go/strata/examples/worlds"
	_ "github.com/strata-go/strata/persistence/memory"
)

// A console mounted in a program's own server, under /console/, behind a
// bearer token.
func Example() {
	ctx := context.Background()
	app, err := worlds.New(ctx, application.WithoutProcessEnv())
	if err != nil {
		panic(err)
	}
	defer app.Close()
	id, _ := app.CreateWorld(ctx)
	_ = app.MakeItSo(ctx, id, "dinosaurs")

	c, err := console.New([]*application.Application{app.Application},
		console.WithBearerToken("correct-horse-battery-staple"), console.WithBasePath("/console"))
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/console/", c)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	get := func(token string) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/console/log/Worlds", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		fmt.Println(resp.StatusCode)
	}
	get("")                             // the login page
	get("correct-horse-battery-staple") // the log
	// Output:
	// 401
	// 200
}

package promexport_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/examples/worlds"
	"github.com/strata-go/strata/observe"
	"github.com/strata-go/strata/observe/promexport"
	_ "github.com/strata-go/strata/persistence/memory"
)

// Saves measured with the exporter's meter provider appear at /metrics.
func Example() {
	ctx := context.Background()
	exp, _ := promexport.New()
	defer exp.Shutdown(ctx)
	tel := observe.New(observe.WithMeterProvider(exp.MeterProvider()))
	app, _ := worlds.New(ctx, application.WithoutProcessEnv(), application.WithTelemetry(tel))
	defer app.Close()
	_, _ = app.CreateWorld(ctx)

	rec := httptest.NewRecorder()
	exp.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for line := range strings.Lines(rec.Body.String()) {
		if strings.HasPrefix(line, "strata_saves_total{") {
			fmt.Print(line[:strings.Index(line, "{")], " ", strings.Fields(line)[1], "\n")
		}
	}
	// Output:
	// strata_saves_total 1
}

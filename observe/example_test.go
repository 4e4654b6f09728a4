package observe_test

import (
	"context"
	"fmt"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/examples/worlds"
	"github.com/strata-go/strata/observe"
	"github.com/strata-go/strata/persistence"
)

// An application traces its saves and gets to the tracer provider of its
// telemetry.
func ExampleNew() {
	ctx := context.Background()
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	defer tp.Shutdown(ctx)

	app, _ := worlds.New(ctx, application.WithoutProcessEnv(), application.WithTelemetry(observe.New(observe.WithTracerProvider(tp))))
	defer app.Close()
	id, _ := app.CreateWorld(ctx)
	_ = app.MakeItSo(ctx, id, "dinosaurs")
	for _, s := range spans.GetSpans() {
		fmt.Println(s.Name)
	}
	// Output:
	// strata.save
	// strata.get
	// strata.save
}

// Errors are counted and marked on spans by kind, the most specific
// persistence sentinel they wrap.
func ExampleErrorKind() {
	err := fmt.Errorf("save World 3f2c version 7: %w", persistence.ErrIntegrity)
	fmt.Println(observe.ErrorKind(err))
	fmt.Println(observe.ErrorKind(context.DeadlineExceeded))
	// Output:
	// integrity
	// timeout
}

package projection_test

import (
	"context"
	"fmt"
	"maps"

	"github.com/google/uuid"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/domain"
	"github.com/strata-go/strata/projection"
	"github.com/strata-go/strata/projection/projectiontest"
)

// totals is a read model: each tally's total, by tally ID.
type totals map[uuid.UUID]int

// totalsProjection keeps totals from the Tallies application's events.
type totalsProjection struct{}

func (totalsProjection) Name() string     { return "totals" }
func (totalsProjection) Version() int     { return 1 }
func (totalsProjection) Tables() []string { return []string{"totals"} }
func (totalsProjection) Setup(context.Context, *projection.MemoryTx[totals], projection.Model) error {
	return nil
}

func (totalsProjection) Process(_ context.Context, tx *projection.MemoryTx[totals], m projection.Model, e projection.Event) error {
	if added, ok := e.Data.(projectiontest.Added); ok {
		(*tx.Model(m))[e.OriginatorID] += added.N
	}
	return nil
}

func Example() {
	ctx := context.Background()
	app, err := application.New(ctx, "Tallies", application.WithoutProcessEnv(),
		application.WithEnv(map[string]string{"PERSISTENCE_MODULE": "memory"}), application.WithTypes(projectiontest.Types))
	if err != nil {
		panic(err)
	}
	defer app.Close()

	store := projection.NewMemoryStore(func() totals { return totals{} }, maps.Clone[totals])
	runner, err := projection.NewRunner(store, totalsProjection{}, []projection.Source{projection.FromApplication(ctx, app)})
	if err != nil {
		panic(err)
	}
	if err := runner.Start(ctx); err != nil {
		panic(err)
	}
	defer runner.Stop(ctx)

	tally, _ := domain.New[projectiontest.Tally](uuid.New(), projectiontest.Started{})
	_ = domain.Trigger(tally, projectiontest.Added{N: 3})
	_ = domain.Trigger(tally, projectiontest.Added{N: 4})
	recordings, err := app.Save(ctx, tally)
	if err != nil {
		panic(err)
	}
	// Wait until the model has the save.
	last := recordings[len(recordings)-1].NotificationID
	if err := runner.WaitFor(ctx, map[string]int64{app.Name(): last}); err != nil {
		panic(err)
	}
	store.Read("totals", func(v totals, version int) {
		fmt.Printf("version %d: total %d\n", version, v[tally.ID()])
	})
	// Output:
	// version 1: total 7
}

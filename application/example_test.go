package application_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/domain"
	"github.com/strata-go/strata/persistence"
	_ "github.com/strata-go/strata/persistence/memory" // the default store, in memory
)

func Example() {
	ctx := context.Background()
	app, err := application.New(ctx, "Counters", application.WithTypes(counterTypes), application.WithoutProcessEnv())
	if err != nil {
		panic(err)
	}
	defer app.Close()
	repo, _ := application.NewRepository[Counter](app)

	c, _ := domain.New[Counter](domain.NewID(), CounterStarted{Name: "visits"})
	_ = c.Increment(2)
	recorded, _ := app.Save(ctx, c)
	fmt.Println("recorded", len(recorded), "events")

	loaded, _ := repo.Get(ctx, c.ID())
	fmt.Println(loaded.Name, loaded.Count, "at version", loaded.Version())

	section, _ := app.Log().Section(ctx, "1,10")
	fmt.Println("section", section.ID, "next", fmt.Sprintf("%q", section.NextID))
	// Output:
	// recorded 2 events
	// visits 2 at version 2
	// section 1,2 next ""
}

func ExampleRepository_Get() {
	ctx := context.Background()
	app, _ := application.New(ctx, "Counters", application.WithTypes(counterTypes), application.WithoutProcessEnv())
	repo, _ := application.NewRepository[Counter](app)
	c, _ := domain.New[Counter](domain.NewID(), CounterStarted{Name: "c"})
	for i := 1; i <= 3; i++ {
		_ = c.Increment(i)
	}
	_, _ = app.Save(ctx, c)

	then, _ := repo.Get(ctx, c.ID(), application.AtVersion(2))
	fmt.Println("at version 2:", then.Count)
	_, err := repo.Get(ctx, domain.NewID())
	fmt.Println(errors.Is(err, application.ErrAggregateNotFound))
	// Output:
	// at version 2: 1
	// true
}

func ExampleApplication_TakeSnapshot() {
	ctx := context.Background()
	app, _ := application.New(ctx, "Counters", application.WithTypes(counterTypes), application.WithoutProcessEnv(),
		application.WithEnv(map[string]string{"IS_SNAPSHOTTING_ENABLED": "yes"}))
	c, _ := domain.New[Counter](domain.NewID(), CounterStarted{Name: "c"})
	_ = c.Increment(5)
	_, _ = app.Save(ctx, c)

	snap, _ := app.TakeSnapshot(ctx, c.ID())
	fmt.Println("snapshot at version", snap.OriginatorVersion, "count", snap.State.(*Counter).Count)
	// Output: snapshot at version 2 count 5
}

func ExampleRetry() {
	ctx := context.Background()
	app, _ := application.New(ctx, "Counters", application.WithTypes(counterTypes), application.WithoutProcessEnv())
	repo, _ := application.NewRepository[Counter](app)
	c, _ := domain.New[Counter](domain.NewID(), CounterStarted{Name: "c"})
	_, _ = app.Save(ctx, c)

	err := application.Retry(ctx, func(ctx context.Context) error {
		c, err := repo.Get(ctx, c.ID()) // load afresh on every attempt
		if err != nil {
			return err
		}
		if err := c.Increment(1); err != nil {
			return err
		}
		_, err = app.Save(ctx, c)
		return err
	})
	fmt.Println(err)
	// Output: <nil>
}

func ExampleLocalNotificationLog_Select() {
	ctx := context.Background()
	app, _ := application.New(ctx, "Counters", application.WithTypes(counterTypes), application.WithoutProcessEnv())
	c, _ := domain.New[Counter](domain.NewID(), CounterStarted{Name: "c"})
	_ = c.Increment(1)
	_ = c.Increment(1)
	_, _ = app.Save(ctx, c)

	incremented, _ := app.Types().Lookup(Incremented{})
	ns, _ := app.Log().Select(ctx, 1, 10, application.Topics(incremented.Topic()))
	for _, n := range ns {
		e, _ := app.Mapper().ToEvent(n.StoredEvent)
		fmt.Println(n.ID, e.Data)
	}
	// Output:
	// 2 {1}
	// 3 {1}
}

func ExampleApplication_AddListener() {
	ctx := context.Background()
	app, _ := application.New(ctx, "Counters", application.WithTypes(counterTypes), application.WithoutProcessEnv())
	app.AddListener(func(_ context.Context, recorded []application.Recording) {
		for _, r := range recorded {
			fmt.Printf("recorded %T as notification %d\n", r.Event.Data, r.NotificationID)
		}
	})
	c, _ := domain.New[Counter](domain.NewID(), CounterStarted{Name: "c"})
	_ = c.Increment(1)
	_, _ = app.Save(ctx, c)
	// Output:
	// recorded application_test.CounterStarted as notification 1
	// recorded application_test.Incremented as notification 2
}

func ExampleWithSnapshotThreshold() {
	ctx := context.Background()
	// Snapshot an aggregate when it has 3 events since its last snapshot.
	app, _ := application.New(ctx, "Counters", application.WithTypes(counterTypes), application.WithoutProcessEnv(),
		application.WithSnapshotThreshold(3))
	c, _ := domain.New[Counter](domain.NewID(), CounterStarted{Name: "c"})
	for range 4 {
		_ = c.Increment(1)
		_, _ = app.Save(ctx, c)
	}
	snap, ok, _ := app.Snapshots().Latest(ctx, c.ID(), nil)
	fmt.Println(ok, snap.OriginatorVersion)
	// Output: true 3
}

func ExampleSnapshotInterval() {
	ctx := context.Background()
	// Snapshot counters every 2 versions.
	app, _ := application.New(ctx, "Counters", application.WithTypes(counterTypes), application.WithoutProcessEnv(),
		application.SnapshotInterval[Counter](2))
	c, _ := domain.New[Counter](domain.NewID(), CounterStarted{Name: "c"})
	for range 4 {
		_ = c.Increment(1)
		_, _ = app.Save(ctx, c)
	}
	snaps, _ := app.Snapshots().Get(ctx, c.ID(), persistence.EventQuery{})
	for _, s := range snaps {
		fmt.Print(s.OriginatorVersion, " ")
	}
	fmt.Println()
	// Output: 2 4
}

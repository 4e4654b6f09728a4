package cli_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/cli"
	"github.com/strata-go/strata/domain"
	"github.com/strata-go/strata/examples/worlds"
	_ "github.com/strata-go/strata/persistence/memory"
)

// memoryWorlds returns an Admin of the worlds domain in memory with a
// world of three events in the default tenant and one of two in tenant
// acme, and the worlds.
func memoryWorlds(t *testing.T) (*cli.Admin, *worlds.World, *worlds.World) {
	t.Helper()
	ctx := context.Background()
	a := open(t, worldsDomain, map[string]string{"PERSISTENCE_MODULE": "memory"})
	app, err := a.Application(ctx, worlds.Name)
	if err != nil {
		t.Fatal(err)
	}
	w1, _ := worlds.NewWorld()
	_ = w1.MakeItSo("trucks")
	_ = w1.MakeItSo("dinosaurs")
	w2, _ := worlds.NewWorld()
	_ = w2.MakeItSo("comets")
	acme, err := app.ForTenant("acme")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := app.Save(ctx, w1); err != nil {
		t.Fatal(err)
	}
	if _, err := acme.Save(ctx, w2); err != nil {
		t.Fatal(err)
	}
	return a, w1, w2
}

func TestVerifyFindsNothingInAHealthyStoreOfEveryTenant(t *testing.T) {
	ctx := context.Background()
	a, w1, _ := memoryWorlds(t)
	if _, err := a.CreateSnapshot(ctx, "World", w1.ID()); err != nil {
		t.Fatal(err)
	}
	var seen []cli.VerifyProgress
	rep, err := a.Verify(ctx, cli.VerifyProgressFunc(func(p cli.VerifyProgress) { seen = append(seen, p) }))
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Notifications != 5 || rep.Aggregates != 2 || rep.Snapshots != 1 || rep.Tracking != 1 ||
		strings.Join(rep.Applications, ",") != "Worlds,Counters" {
		t.Fatalf("report %+v", rep)
	}
	var steps []string
	for _, p := range seen {
		if p.Done > p.Total {
			t.Fatalf("progress %+v beyond its total", p)
		}
		steps = append(steps, fmt.Sprintf("%s %s %d/%d", p.Application, p.Step, p.Done, p.Total))
	}
	want := "Worlds notifications 0/3,Worlds notifications 5/5,Worlds aggregates 0/2,Worlds aggregates 1/2,Worlds aggregates 2/2," +
		"Counters notifications 0/0,Counters notifications 0/0,Counters aggregates 0/0"
	if got := strings.Join(steps, ","); got != want {
		t.Fatalf("progress\n%s\nwant\n%s", got, want)
	}
}

func TestVerifyComparesSnapshotsWithARebuild(t *testing.T) {
	ctx := context.Background()
	a, w1, w2 := memoryWorlds(t)
	app, err := a.Application(ctx, worlds.Name)
	if err != nil {
		t.Fatal(err)
	}
	// A snapshot that claims a version its state is not at: taken at
	// version 3 and stored as version 2, in tenant acme a snapshot of
	// another world's state.
	snap, err := domain.TakeSnapshot(w1)
	if err != nil {
		t.Fatal(err)
	}
	snap.OriginatorVersion = 2
	if err := app.Snapshots().Put(ctx, snap); err != nil {
		t.Fatal(err)
	}
	acme, _ := app.ForTenant("acme")
	other, _ := domain.TakeSnapshot(w1)
	other.OriginatorID, other.OriginatorVersion = w2.ID(), 2
	if err := acme.Snapshots().Put(ctx, other); err != nil {
		t.Fatal(err)
	}
	rep, err := a.Verify(ctx, cli.VerifyApplications(worlds.Name))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 2 {
		t.Fatalf("problems %+v", rep.Problems)
	}
	for i, want := range []struct {
		tenant string
		id     uuid.UUID
	}{{"", w1.ID()}, {"acme", w2.ID()}} {
		p := rep.Problems[i]
		if p.Kind != cli.ProblemSnapshot || p.Application != worlds.Name || p.Tenant != want.tenant || *p.AggregateID != want.id ||
			*p.Version != 2 || !strings.Contains(p.Message, "snapshot of "+want.id.String()+" at version 2: it differs from the aggregate rebuilt from its events: state {") {
			t.Fatalf("problem %d: %+v", i, p)
		}
	}
	if !strings.HasPrefix(rep.Problems[1].String(), `snapshot Worlds tenant="acme": snapshot of `) {
		t.Fatalf("as text: %s", rep.Problems[1])
	}
}

func TestVerifyOfAnUnknownApplicationFails(t *testing.T) {
	a, _, _ := memoryWorlds(t)
	if _, err := a.Verify(context.Background(), cli.VerifyApplications("Nope")); err == nil || !strings.Contains(err.Error(), `"Nope"`) {
		t.Fatalf("error %v", err)
	}
}

// Verify reads every application of a domain and reports what is wrong;
// a store written only through its applications has nothing wrong.
func ExampleAdmin_Verify() {
	ctx := context.Background()
	admin, err := cli.Open(worldsDomain, application.WithEnv(map[string]string{"PERSISTENCE_MODULE": "memory"}))
	if err != nil {
		panic(err)
	}
	defer admin.Close()
	app, err := admin.Application(ctx, worlds.Name)
	if err != nil {
		panic(err)
	}
	w, _ := worlds.NewWorld()
	_ = w.MakeItSo("trucks")
	if _, err := app.Save(ctx, w); err != nil {
		panic(err)
	}
	rep, err := admin.Verify(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println(rep.OK(), rep.Notifications, "notification(s),", rep.Aggregates, "aggregate(s)")
	for _, p := range rep.Problems {
		fmt.Println(p)
	}
	// Output:
	// true 2 notification(s), 1 aggregate(s)
}

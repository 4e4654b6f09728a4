package console_test

import (
	"context"
	"maps"
	"path/filepath"
	"testing"

	"github.com/google/uuid"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/cli"
	"github.com/strata-go/strata/console"
	"github.com/strata-go/strata/domain"
	"github.com/strata-go/strata/examples/counters"
	"github.com/strata-go/strata/examples/worlds"
	"github.com/strata-go/strata/persistence"
	_ "github.com/strata-go/strata/persistence/sqlite"
	"github.com/strata-go/strata/projection"
	"github.com/strata-go/strata/system"
)

// hostile is what happens in one world: a string a page must show as text.
const hostile = `<script>document.title="pwned";window.pwned=true</script><img src=x onerror="window.pwned=true">`

// fixture is a SQLite store with worlds (one of them hostile, one in a
// tenant), a Counters follower that has processed nothing, and a
// projection of the Worlds log that has read everything.
type fixture struct {
	admin    *cli.Admin
	worlds   *application.Application
	world    uuid.UUID // a world with a few events and headers
	hostile  uuid.UUID // a world in which the hostile string happened
	tenanted uuid.UUID // a world of tenant acme
	runner   *projection.Runner[*projection.MemoryTx[map[uuid.UUID]int]]
}

// domainOf is the worlds domain as the strata command defines it.
var domainOf = cli.Domain{
	Name: "worlds",
	Applications: []system.Def{
		system.Define(worlds.Name, worlds.Types, worlds.New),
		system.Define(counters.Name, counters.Types, counters.New),
	},
	Pipes: [][]string{{worlds.Name, counters.Name}},
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	env := map[string]string{"PERSISTENCE_MODULE": "sqlite", "SQLITE_DBNAME": filepath.Join(t.TempDir(), "console.db")}
	admin, err := cli.Open(domainOf, application.WithoutProcessEnv(), application.WithEnv(env))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	f := &fixture{admin: admin}
	if f.worlds, err = admin.Application(ctx, worlds.Name); err != nil {
		t.Fatal(err)
	}
	// Counters must exist for the applications page.
	if _, err := admin.Application(ctx, counters.Name); err != nil {
		t.Fatal(err)
	}
	f.world = f.save(t, ctx, f.worlds, persistence.Headers{"user": "ada", "correlation_id": "order-7"}, "dinosaurs", "trucks", "internet")
	for range 3 {
		f.save(t, ctx, f.worlds, nil, "volcanoes", "ice ages")
	}
	f.hostile = f.save(t, ctx, f.worlds, nil, hostile)
	acme, err := f.worlds.ForTenant("acme")
	if err != nil {
		t.Fatal(err)
	}
	f.tenanted = f.save(t, ctx, acme, nil, "humans")

	store := projection.NewMemoryStore(func() map[uuid.UUID]int { return map[uuid.UUID]int{} }, maps.Clone[map[uuid.UUID]int])
	f.runner, err = projection.NewRunner(store, happenings{}, []projection.Source{projection.FromApplication(ctx, f.worlds)})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.runner.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.runner.Stop(context.Background()) })
	all, err := f.worlds.AllTenants().Select(ctx, 1, application.MaxLimit)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.runner.WaitFor(ctx, map[string]int64{worlds.Name: all[len(all)-1].ID}); err != nil {
		t.Fatal(err)
	}
	return f
}

// save saves a new world in which the things happened, in one commit with
// the headers, and returns its ID.
func (f *fixture) save(t *testing.T, ctx context.Context, app *application.Application, headers persistence.Headers, things ...string) uuid.UUID {
	t.Helper()
	w, err := worlds.NewWorld()
	if err != nil {
		t.Fatal(err)
	}
	for _, what := range things {
		if err := w.MakeItSo(what); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := app.SaveCommit(ctx, application.Commit{Headers: headers}, w); err != nil {
		t.Fatal(err)
	}
	return w.ID()
}

// happen saves one more thing happening in world id.
func (f *fixture) happen(t *testing.T, ctx context.Context, id uuid.UUID, what string) {
	t.Helper()
	repo, err := application.NewRepository[worlds.World](f.worlds)
	if err != nil {
		t.Fatal(err)
	}
	w, err := repo.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := domain.Trigger(w, worlds.SomethingHappened{What: what}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.worlds.Save(ctx, w); err != nil {
		t.Fatal(err)
	}
}

// console returns the fixture's console with the options.
func (f *fixture) console(t *testing.T, opts ...console.Option) *console.Console {
	t.Helper()
	c, err := f.admin.Console(context.Background(), cli.DefaultThresholds, append([]console.Option{console.WithLags(f.runner)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// happenings counts the events of each world.
type happenings struct{}

func (happenings) Name() string     { return "happenings" }
func (happenings) Version() int     { return 1 }
func (happenings) Tables() []string { return []string{"counts"} }
func (happenings) Setup(context.Context, *projection.MemoryTx[map[uuid.UUID]int], projection.Model) error {
	return nil
}
func (happenings) Process(_ context.Context, tx *projection.MemoryTx[map[uuid.UUID]int], m projection.Model, e projection.Event) error {
	(*tx.Model(m))[e.OriginatorID]++
	return nil
}

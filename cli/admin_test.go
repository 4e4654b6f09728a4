package cli_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/cli"
	"github.com/strata-go/strata/domain"
	"github.com/strata-go/strata/examples/counters"
	"github.com/strata-go/strata/examples/wiki"
	"github.com/strata-go/strata/examples/worlds"
	"github.com/strata-go/strata/system"
)

// worldsDomain is worlds followed by counters, as the strata binary has it.
var worldsDomain = cli.Domain{
	Name: "worlds",
	Applications: []system.Def{
		system.Define(worlds.Name, worlds.Types, worlds.New),
		system.Define(counters.Name, counters.Types, counters.New),
	},
	Pipes:      [][]string{{worlds.Name, counters.Name}},
	PlainTypes: []cli.PlainType{"Summary"},
}

// sqliteEnv returns the environment of a new SQLite file.
func sqliteEnv(t *testing.T) map[string]string {
	t.Helper()
	return map[string]string{"PERSISTENCE_MODULE": "sqlite", "SQLITE_DBNAME": filepath.Join(t.TempDir(), "test.db")}
}

// fill runs the worlds system on env: n worlds, each with events things
// that happen (counted by Counters), and returns the worlds' IDs.
func fill(t *testing.T, env map[string]string, n, events int) []uuid.UUID {
	t.Helper()
	ctx := context.Background()
	sys, err := counters.System()
	if err != nil {
		t.Fatal(err)
	}
	r := system.NewSingleThreadedRunner(sys, system.WithEnv(env))
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer r.Stop(ctx)
	ws, err := system.Get[*worlds.Worlds](r, worlds.Name)
	if err != nil {
		t.Fatal(err)
	}
	var ids []uuid.UUID
	for i := range n {
		w, err := worlds.NewWorld()
		if err != nil {
			t.Fatal(err)
		}
		for j := range events {
			_ = w.MakeItSo([]string{"trucks", "dinosaurs"}[(i+j)%2])
		}
		if _, err := ws.Save(ctx, w); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, w.ID())
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

func open(t *testing.T, d cli.Domain, env map[string]string) *cli.Admin {
	t.Helper()
	a, err := cli.Open(d, application.WithEnv(env))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// latest returns the latest snapshot of a world, read by an application
// of the test's own.
func latest(t *testing.T, env map[string]string, id uuid.UUID) (domain.Snapshot, bool) {
	t.Helper()
	ctx := context.Background()
	app, err := worlds.New(ctx, application.WithEnv(env), application.WithSnapshotting(true))
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	snap, ok, err := app.Snapshots().Latest(ctx, id, nil)
	if err != nil {
		t.Fatal(err)
	}
	return snap, ok
}

func TestCreateSnapshotRebuildsFromAllEventsAndReplaces(t *testing.T) {
	ctx := context.Background()
	env := sqliteEnv(t)
	id := fill(t, env, 1, 4)[0]
	a := open(t, worldsDomain, env)

	snap, err := a.CreateSnapshot(ctx, "World", id)
	if err != nil {
		t.Fatal(err)
	}
	if snap.OriginatorVersion != 5 || len(snap.State.(*worlds.World).History) != 4 {
		t.Fatalf("snapshot at version %d of %+v", snap.OriginatorVersion, snap.State)
	}
	// Another writer records more events: a new snapshot has them all.
	app, err := worlds.New(ctx, application.WithEnv(env))
	if err != nil {
		t.Fatal(err)
	}
	if err := app.MakeItSo(ctx, id, "volcanoes"); err != nil {
		t.Fatal(err)
	}
	app.Close()
	if _, err := a.CreateSnapshot(ctx, "World", id); err != nil {
		t.Fatal(err)
	}
	stored, ok := latest(t, env, id)
	if !ok || stored.OriginatorVersion != 6 || stored.State.(*worlds.World).History[4] != "volcanoes" {
		t.Fatalf("latest snapshot: %v at version %d: %+v", ok, stored.OriginatorVersion, stored.State)
	}
	// Again at the same version: the snapshot is replaced, and loads.
	if _, err := a.CreateSnapshot(ctx, "World", id); err != nil {
		t.Fatal(err)
	}
	if again, ok := latest(t, env, id); !ok || again.OriginatorVersion != 6 {
		t.Fatalf("after a second snapshot at version 6: %v at version %d", ok, again.OriginatorVersion)
	}
}

func TestCreateSnapshotsSnapshotsEachInstanceOnce(t *testing.T) {
	ctx := context.Background()
	env := sqliteEnv(t)
	ids := fill(t, env, 5, 3)
	a := open(t, worldsDomain, env)

	var progress []cli.Progress
	n, err := a.CreateSnapshots(ctx, "World", cli.WithProgress(func(p cli.Progress) { progress = append(progress, p) }))
	if err != nil || n != 5 {
		t.Fatalf("created %d snapshots, %v", n, err)
	}
	want := []cli.Progress{{"World", 0, 5}, {"World", 1, 5}, {"World", 2, 5}, {"World", 3, 5}, {"World", 4, 5}, {"World", 5, 5}}
	if !reflect.DeepEqual(progress, want) {
		t.Fatalf("progress %v, want %v", progress, want)
	}
	for _, id := range ids {
		if snap, ok := latest(t, env, id); !ok || snap.OriginatorVersion != 4 {
			t.Fatalf("world %s: snapshot %v at version %d", id, ok, snap.OriginatorVersion)
		}
	}
	counts, err := a.CreateAllSnapshots(ctx)
	if err != nil || !reflect.DeepEqual(counts, map[string]int{"World": 5, "Counter": 2}) {
		t.Fatalf("all snapshots: %v, %v", counts, err)
	}
	if got := a.Aggregates(); !reflect.DeepEqual(got, []string{"World", "Counter"}) {
		t.Fatalf("aggregates %v", got)
	}
}

func TestCreateSnapshotsStopsBetweenSnapshotsWhenCancelled(t *testing.T) {
	env := sqliteEnv(t)
	ids := fill(t, env, 6, 1)
	a := open(t, worldsDomain, env)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n, err := a.CreateSnapshots(ctx, "World", cli.WithProgress(func(p cli.Progress) {
		if p.Done == 3 {
			cancel()
		}
	}))
	if n != 3 || !errors.Is(err, context.Canceled) {
		t.Fatalf("created %d snapshots, %v", n, err)
	}
	snapshotted := 0
	for _, id := range ids {
		if _, ok := latest(t, env, id); ok {
			snapshotted++
		}
	}
	if snapshotted != 3 {
		t.Fatalf("%d worlds have a snapshot, want 3", snapshotted)
	}
	counts, err := a.CreateAllSnapshots(ctx)
	if !errors.Is(err, context.Canceled) || counts["World"] != 0 {
		t.Fatalf("all snapshots with a cancelled context: %v, %v", counts, err)
	}
}

func TestAdminErrorsCanBeTested(t *testing.T) {
	ctx := context.Background()
	env := sqliteEnv(t)
	ids := fill(t, env, 1, 1)
	a := open(t, worldsDomain, env)
	wikiEnv := sqliteEnv(t)
	w, err := wiki.New(ctx, application.WithEnv(wikiEnv))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.CreatePage(ctx, "Earth", "earth", "A planet."); err != nil {
		t.Fatal(err)
	}
	w.Close()
	wikiAdmin := open(t, cli.Domain{Name: "wiki", Applications: []system.Def{system.Define(wiki.Name, wiki.Types, wiki.New)}}, wikiEnv)
	tests := []struct {
		name string
		err  func() error
		want error
		msg  string
	}{
		{"an unknown type", func() error { _, err := a.CreateSnapshots(ctx, "User"); return err },
			cli.ErrAggregateNotFound, "aggregate User not found in domain worlds (event-sourced aggregates: World, Counter)"},
		{"an event type", func() error { _, err := a.CreateSnapshot(ctx, "SomethingHappened", ids[0]); return err },
			cli.ErrNotEventSourced, "SomethingHappened is not an event-sourced aggregate (it is an event type of application Worlds)"},
		{"a plain type", func() error { _, err := a.CreateSnapshots(ctx, "Summary"); return err },
			cli.ErrNotEventSourced, "Summary is not an event-sourced aggregate (it is a plain type of domain worlds)"},
		{"an identifier without events", func() error { _, err := a.CreateSnapshot(ctx, "World", uuid.Nil); return err },
			cli.ErrInstanceNotFound, "World with identifier 00000000-0000-0000-0000-000000000000 does not exist"},
		{"an identifier of another type", func() error { _, err := a.CreateSnapshot(ctx, "Counter", ids[0]); return err },
			cli.ErrInstanceNotFound, "Counter with identifier " + ids[0].String() + " does not exist"},
		{"an identifier of another type in the same application", func() error {
			_, err := wikiAdmin.CreateSnapshot(ctx, "Page", wiki.IndexID("earth"))
			return err
		}, cli.ErrInstanceNotFound, "Page with identifier " + wiki.IndexID("earth").String() + " does not exist (it is of type Index)"},
		{"an unknown domain", func() error { _, err := cli.Lookup([]cli.Domain{worldsDomain}, "shop"); return err },
			cli.ErrUnknownDomain, `unknown domain "shop" (registered: worlds)`},
		{"an unknown application", func() error { _, err := a.Application(ctx, "Nope"); return err },
			system.ErrUnknownApplication, `unknown application "Nope" in domain worlds (applications: Worlds, Counters)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.err()
			if !errors.Is(err, tt.want) || err.Error() != tt.msg {
				t.Fatalf("got %v\nwant %q, wrapping %v", err, tt.msg, tt.want)
			}
		})
	}
}

// Ledger is an aggregate type that declares no created events.
type Ledger struct{ domain.Aggregate }

type Posted struct{}

func TestDomainDefinitionsAreChecked(t *testing.T) {
	ledgerTypes := domain.Types(domain.AggregateType[Ledger](), domain.EventType[Posted]())
	newLedgers := func(ctx context.Context, opts ...application.Option) (*worlds.Worlds, error) {
		app, err := application.New(ctx, "Ledgers", append([]application.Option{application.WithTypes(ledgerTypes)}, opts...)...)
		if err != nil {
			return nil, err
		}
		return &worlds.Worlds{Application: app}, nil
	}
	tests := []struct {
		name string
		d    cli.Domain
		msg  string
	}{
		{"two applications with aggregates of one name", cli.Domain{Name: "twice", Applications: []system.Def{
			system.Define(worlds.Name, worlds.Types, worlds.New), system.Define("Other", worlds.Types, worlds.New)}},
			"applications Worlds and Other both have an aggregate type named World"},
		{"a plain type named as an aggregate", cli.Domain{Name: "clash", PlainTypes: []cli.PlainType{"World"},
			Applications: []system.Def{system.Define(worlds.Name, worlds.Types, worlds.New)}},
			"World is a plain type and an aggregate type of application Worlds"},
		{"a follower that follows nothing", cli.Domain{Name: "alone", Applications: []system.Def{system.Define(counters.Name, counters.Types, counters.New)}},
			"Counters is a process application that follows no application"},
		{"no name", cli.Domain{}, "a domain has no name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := cli.Open(tt.d)
			if !errors.Is(err, cli.ErrInvalidDomain) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("got %v, want an error wrapping ErrInvalidDomain about %q", err, tt.msg)
			}
		})
	}

	t.Run("an aggregate type without created events cannot be discovered", func(t *testing.T) {
		a := open(t, cli.Domain{Name: "ledgers", Applications: []system.Def{system.Define("Ledgers", ledgerTypes, newLedgers)}}, sqliteEnv(t))
		_, err := a.CreateSnapshots(context.Background(), "Ledger")
		if err == nil || !strings.Contains(err.Error(), "declares no created events") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestADomainWithoutEventSourcedAggregates(t *testing.T) {
	catalog := cli.Domain{Name: "catalog", PlainTypes: []cli.PlainType{"Product"}}
	a := open(t, catalog, nil)
	counts, err := a.CreateAllSnapshots(context.Background())
	if err != nil || counts == nil || len(counts) != 0 {
		t.Fatalf("got %v, %v", counts, err)
	}

	tests := []struct {
		args           []string
		code           int
		stdout, stderr string
	}{
		{[]string{"snapshot", "create"}, cli.ExitOK, "No event-sourced aggregates found in domain.\n", ""},
		{[]string{"snapshot", "create", "--domain", "empty"}, cli.ExitOK, "No event-sourced aggregates found in domain.\n", ""},
		{[]string{"snapshot", "create", "--aggregate", "Product"}, cli.ExitError, "",
			"Error: Product is not an event-sourced aggregate (it is a plain type of domain catalog)\n"},
		{[]string{"snapshot", "create", "--aggregate", "Order"}, cli.ExitError, "",
			"Error: aggregate Order not found in domain catalog (it has none)\n"},
		{[]string{"log"}, cli.ExitError, "", "Error: domain catalog has no applications\n"},
		{[]string{"demo"}, cli.ExitError, "", "Error: domain catalog has no demo\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			cmd := cli.New(catalog, cli.Domain{Name: "empty"})
			cmd.SetOut(&stdout)
			cmd.SetErr(&stderr)
			code := cli.Run(context.Background(), cmd, append(tt.args, "--db", filepath.Join(t.TempDir(), "catalog.db")))
			if code != tt.code || stdout.String() != tt.stdout || stderr.String() != tt.stderr {
				t.Fatalf("exit %d, stdout %q, stderr %q\nwant exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String(), tt.code, tt.stdout, tt.stderr)
			}
		})
	}
}

func TestTwoDomainsWithOneName(t *testing.T) {
	var stderr bytes.Buffer
	cmd := cli.New(worldsDomain, worldsDomain)
	cmd.SetErr(&stderr)
	code := cli.Run(context.Background(), cmd, []string{"snapshot", "create", "--db", filepath.Join(t.TempDir(), "x.db")})
	if want := "Error loading domain: invalid domain definition: two domains are named worlds\n"; code != cli.ExitError || stderr.String() != want {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
}

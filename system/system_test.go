package system_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/domain"
	"github.com/strata-go/strata/examples/counters"
	"github.com/strata-go/strata/examples/worlds"
	"github.com/strata-go/strata/system"
)

func TestNewRefusesSystemsThatCannotRun(t *testing.T) {
	tests := []struct {
		name  string
		defs  []system.Def
		pipes [][]string
		// culprits must all appear in the error message.
		culprits []string
	}{
		{
			name:     "an unknown application in a pipe is named",
			defs:     []system.Def{worldsDef, countersDef},
			pipes:    [][]string{{worlds.Name, counters.Name}, {worlds.Name, "Reports"}},
			culprits: []string{`unknown application "Reports"`},
		},
		{
			name:     "an unknown leader is named",
			defs:     []system.Def{worldsDef, countersDef},
			pipes:    [][]string{{"World", counters.Name}},
			culprits: []string{`unknown application "World"`},
		},
		{
			name:     "a pipe of one application is refused",
			defs:     []system.Def{worldsDef, countersDef},
			pipes:    [][]string{{worlds.Name, counters.Name}, {worlds.Name}},
			culprits: []string{"pipe [Worlds]", "a leader and a follower"},
		},
		{
			name:     "an empty pipe is refused",
			defs:     []system.Def{worldsDef, countersDef},
			pipes:    [][]string{{worlds.Name, counters.Name}, {}},
			culprits: []string{"pipe []"},
		},
		{
			name:     "two applications of one name are refused",
			defs:     []system.Def{worldsDef, countersDef, worldsDef},
			pipes:    [][]string{{worlds.Name, counters.Name}},
			culprits: []string{"application Worlds is defined twice"},
		},
		{
			name:     "a follower that is not a Processor is named",
			defs:     []system.Def{worldsDef, plain("Reports")},
			pipes:    [][]string{{worlds.Name, "Reports"}},
			culprits: []string{"Reports follows Worlds", "system.Processor"},
		},
		{
			name:     "a Processor in no pipe is named",
			defs:     []system.Def{worldsDef, countersDef, journal("Scribe", nil)},
			pipes:    [][]string{{worlds.Name, counters.Name}},
			culprits: []string{"Scribe is a process application that follows no application"},
		},
		{
			name:     "a Processor in no pipe is named when there are no pipes",
			defs:     []system.Def{worldsDef, countersDef},
			culprits: []string{"Counters is a process application that follows no application"},
		},
		{
			name:     "an application that follows itself is named",
			defs:     []system.Def{worldsDef, countersDef},
			pipes:    [][]string{{worlds.Name, counters.Name, counters.Name}},
			culprits: []string{"Counters cannot follow itself"},
		},
		{
			name:     "an application without a name is refused",
			defs:     []system.Def{worldsDef, {New: countersDef.New}},
			culprits: []string{"an application has no name"},
		},
		{
			name:     "an application without a constructor is named",
			defs:     []system.Def{worldsDef, {Name: "Reports"}},
			culprits: []string{"application Reports has no constructor"},
		},
		{
			name:     "every problem is reported at once",
			defs:     []system.Def{worldsDef, countersDef, plain("Reports"), worldsDef},
			pipes:    [][]string{{worlds.Name, "Reports"}, {"Nowhere", counters.Name}},
			culprits: []string{"Worlds is defined twice", "Reports follows Worlds", `unknown application "Nowhere"`, "Counters is a process application that follows no application"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sys, err := system.New(tt.defs, tt.pipes...)
			if !errors.Is(err, system.ErrSystem) {
				t.Fatalf("New: %v, want an error wrapping ErrSystem", err)
			}
			if sys != nil {
				t.Errorf("New returned a system with its error")
			}
			for _, c := range tt.culprits {
				if !strings.Contains(err.Error(), c) {
					t.Errorf("error %q does not say %q", err, c)
				}
			}
		})
	}
}

func TestSystemTellsWhoFollowsWhom(t *testing.T) {
	sys := mustSystem(t, []system.Def{worldsDef, countersDef, journal("Scribe", nil), journal("Archive", nil), plain("Reports")},
		[]string{worlds.Name, counters.Name},
		[]string{worlds.Name, "Scribe", "Archive"},
		[]string{counters.Name, "Archive"},
		[]string{worlds.Name, counters.Name}, // a repeated pipe changes nothing
	)
	if got, want := sys.Names(), []string{worlds.Name, counters.Name, "Scribe", "Archive", "Reports"}; !slices.Equal(got, want) {
		t.Errorf("Names() = %v, want %v", got, want)
	}
	for _, c := range []struct {
		name               string
		leaders, followers []string
	}{
		{worlds.Name, nil, []string{counters.Name, "Scribe"}},
		{counters.Name, []string{worlds.Name}, []string{"Archive"}},
		{"Scribe", []string{worlds.Name}, []string{"Archive"}},
		{"Archive", []string{"Scribe", counters.Name}, nil},
		{"Reports", nil, nil},
	} {
		if got := sys.Leaders(c.name); !slices.Equal(got, c.leaders) {
			t.Errorf("Leaders(%s) = %v, want %v", c.name, got, c.leaders)
		}
		if got := sys.Followers(c.name); !slices.Equal(got, c.followers) {
			t.Errorf("Followers(%s) = %v, want %v", c.name, got, c.followers)
		}
		if got := sys.IsFollower(c.name); got != (len(c.leaders) > 0) {
			t.Errorf("IsFollower(%s) = %v", c.name, got)
		}
	}
	// The slices are copies.
	sys.Names()[0] = "Changed"
	sys.Followers(worlds.Name)[0] = "Changed"
	if sys.Names()[0] != worlds.Name || sys.Followers(worlds.Name)[0] != counters.Name {
		t.Error("changing a returned slice changed the system")
	}
}

// Two process applications may follow each other: Ping notes what happens
// in Worlds and what Pong notes; Pong notes what Ping noted of Worlds (and
// not what Ping noted of Pong, which would never end).
func TestCyclesBetweenProcessorsAreAllowedAndRun(t *testing.T) {
	ponged := func(_ context.Context, e domain.Event, _ *system.Processing) (bool, error) {
		return e.Data.(Noted).Upstream != worlds.Name, nil
	}
	sys := mustSystem(t, []system.Def{worldsDef, journal("Ping", nil), journal("Pong", ponged)},
		[]string{worlds.Name, "Ping", "Pong", "Ping"})
	if got := sys.Leaders("Ping"); !slices.Equal(got, []string{worlds.Name, "Pong"}) {
		t.Fatalf("Ping follows %v", got)
	}
	if got := sys.Leaders("Pong"); !slices.Equal(got, []string{"Ping"}) {
		t.Fatalf("Pong follows %v", got)
	}
	r := system.NewSingleThreadedRunner(sys, system.WithEnv(map[string]string{"PERSISTENCE_MODULE": "memory"}))
	startRunner(t, r)
	w := get[*worlds.Worlds](t, r, worlds.Name)
	ping, pong := get[*Journal](t, r, "Ping"), get[*Journal](t, r, "Pong")
	id := createWorld(t, w)
	happen(t, w, id, "dinosaurs", "trucks")
	// Ping's log: W1, P1, W2, P2, W3, P3; Pong's: 1, 3, 5 of Ping's.
	if got, want := ids(entries(t, ping.App()), worlds.Name), []int64{1, 2, 3}; !slices.Equal(got, want) {
		t.Errorf("Ping noted %v of Worlds, want %v", got, want)
	}
	if got, want := ids(entries(t, ping.App()), "Pong"), []int64{1, 2, 3}; !slices.Equal(got, want) {
		t.Errorf("Ping noted %v of Pong, want %v", got, want)
	}
	if got, want := ids(entries(t, pong.App()), "Ping"), []int64{1, 3, 5}; !slices.Equal(got, want) {
		t.Errorf("Pong noted %v of Ping, want %v", got, want)
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
}

// A runner refuses to start a follower whose constructor drops the options
// the runner gives it, since it could not record tracking records.
func TestStartRefusesAFollowerBuiltWithoutTheRunnersOptions(t *testing.T) {
	persistent(t, func(t *testing.T, env map[string]string) {
		careless := system.Define("Careless", journalTypes, func(ctx context.Context, _ ...application.Option) (*Journal, error) {
			return newJournal(ctx, "Careless", nil, application.WithEnv(env), application.WithTypes(worlds.Types))
		})
		checkStartFails(t, env, careless, "start Careless: invalid system: it follows other applications but was not built with the runner's options", true)
	})
	nothing := system.Define("Nothing", journalTypes, func(context.Context, ...application.Option) (*Journal, error) {
		return &Journal{}, nil
	})
	checkStartFails(t, nil, nothing, "start Nothing: invalid system: the constructor returned no application", true)
	failing := system.Define("Failing", journalTypes, func(context.Context, ...application.Option) (*Journal, error) {
		return nil, errors.New("no database today")
	})
	checkStartFails(t, nil, failing, "start Failing: no database today", false)
}

func checkStartFails(t *testing.T, env map[string]string, def system.Def, want string, invalid bool) {
	t.Helper()
	if env == nil {
		env = map[string]string{"PERSISTENCE_MODULE": "memory"}
	}
	sys := mustSystem(t, []system.Def{worldsDef, def}, []string{worlds.Name, def.Name})
	for _, r := range []system.Runner{system.NewSingleThreadedRunner(sys, system.WithEnv(env)), system.NewConcurrentRunner(sys, system.WithEnv(env))} {
		err := r.Start(context.Background())
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%T Start: %v, want %q", r, err, want)
		}
		if invalid && !errors.Is(err, system.ErrSystem) {
			t.Errorf("%T Start: %v, want an error wrapping ErrSystem", r, err)
		}
		if _, err := r.Get(worlds.Name); !errors.Is(err, system.ErrNotStarted) {
			t.Errorf("%T Get after a failed Start: %v, want ErrNotStarted", r, err)
		}
		if err := r.Stop(context.Background()); !errors.Is(err, system.ErrNotStarted) {
			t.Errorf("%T Stop after a failed Start: %v, want ErrNotStarted", r, err)
		}
	}
}

// runners returns a runner of each kind for sys, in memory.
func runners(sys *system.System, opts ...system.Option) []system.Runner {
	opts = append([]system.Option{system.WithEnv(map[string]string{"PERSISTENCE_MODULE": "memory"})}, opts...)
	return []system.Runner{system.NewSingleThreadedRunner(sys, opts...), system.NewConcurrentRunner(sys, opts...)}
}

package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"github.com/strata-go/strata/persistence/sqlite"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"github.com/strata-go/strata/application"

	"github.com/strata-go/strata/domain"
	"github.com/strata-go/strata/examples/counters"
	"github.com/strata-go/strata/examples/worlds"
	"github.com/strata-go/strata/internal/benchsuite"
	"github.com/strata-go/strata/internal/mdbtest"
	"github.com/strata-go/strata/internal/mongotest"
	"github.com/strata-go/strata/internal/mytest"
	"github.com/strata-go/strata/internal/natstest"
	"github.com/strata-go/strata/internal/pgtest"
	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/system"
)

// binary is the strata command, built once for the package's tests,
// which run it as a user would.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "strata-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "strata")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build strata: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	natstest.StopShared()
	os.RemoveAll(dir)
	os.Exit(code)
}

// store is where a test's commands keep their events.
type store struct {
	name string
	env  map[string]string // for the command and the test's own applications
	desc string            // as the command describes it
	dir  string            // the command's working directory
}

func sqliteStore(t *testing.T) store {
	dir := t.TempDir()
	db := filepath.Join(dir, "events.db")
	return store{name: "sqlite", env: map[string]string{"PERSISTENCE_MODULE": "sqlite", "SQLITE_DBNAME": db}, desc: "SQLite database " + db, dir: dir}
}

func postgresStore(t *testing.T) store {
	env := pgtest.Env(t)
	u, err := url.Parse(env["POSTGRES_URL"])
	if err != nil {
		t.Fatal(err)
	}
	desc := "PostgreSQL database " + strings.TrimPrefix(u.Path, "/") + " on " + u.Host + ", schema " + env["POSTGRES_SCHEMA"]
	return store{name: "postgres", env: env, desc: desc, dir: t.TempDir()}
}

func messagedbStore(t *testing.T) store {
	env := mdbtest.Env(t)
	u, err := url.Parse(env["MESSAGEDB_URL"])
	if err != nil {
		t.Fatal(err)
	}
	desc := "Message DB in database " + strings.TrimPrefix(u.Path, "/") + " on " + u.Host
	return store{name: "messagedb", env: env, desc: desc, dir: t.TempDir()}
}

// forEachStore runs f against SQLite, PostgreSQL and Message DB (the
// last two skipped if they are not available, unless CI=true).
func forEachStore(t *testing.T, f func(t *testing.T, s store)) {
	t.Run("sqlite", func(t *testing.T) { f(t, sqliteStore(t)) })
	t.Run("postgres", func(t *testing.T) { f(t, postgresStore(t)) })
	t.Run("messagedb", func(t *testing.T) { f(t, messagedbStore(t)) })
}

// environ returns the process environment without the variables that
// choose stores or domains, with vars added.
func environ(vars map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "STRATA_") || strings.Contains(k, "PERSISTENCE_MODULE") || strings.Contains(k, "INFRASTRUCTURE_FACTORY") ||
			strings.Contains(k, "SQLITE_") || strings.Contains(k, "POSTGRES_") || strings.Contains(k, "MESSAGEDB_") || strings.Contains(k, "CIPHER_") || strings.Contains(k, "SNAPSHOT") {
			continue
		}
		env = append(env, kv)
	}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return env
}

type result struct {
	code           int
	stdout, stderr string
}

// command returns the command with args, in s's working directory and
// environment plus extra.
func (s store) command(ctx context.Context, extra map[string]string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, binary, args...)
	vars := map[string]string{}
	for k, v := range s.env {
		vars[k] = v
	}
	for k, v := range extra {
		vars[k] = v
	}
	cmd.Env, cmd.Dir = environ(vars), s.dir
	return cmd
}

// run runs the command to its end.
func (s store) run(t *testing.T, args ...string) result {
	t.Helper()
	return s.runWith(t, nil, args...)
}

func (s store) runWith(t *testing.T, extra map[string]string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := s.command(ctx, extra, args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("strata %s: %v", strings.Join(args, " "), err)
		}
		code = ee.ExitCode()
	}
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// ok runs a command that must succeed silently on stderr and returns its
// lines.
func (s store) ok(t *testing.T, args ...string) []string {
	t.Helper()
	r := s.run(t, args...)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("strata %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return lines(r.stdout)
}

func lines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// expect checks a run's exit code and exact output.
func expect(t *testing.T, r result, code int, stdout, stderr string) {
	t.Helper()
	if r.code != code || r.stdout != stdout || r.stderr != stderr {
		t.Fatalf("exit %d\nstdout: %q\nstderr: %q\nwant exit %d\nstdout: %q\nstderr: %q", r.code, r.stdout, r.stderr, code, stdout, stderr)
	}
}

var worldLine = regexp.MustCompile(`^World ([0-9a-f-]{36}): 21 events, notifications (\d+) to (\d+)\.$`)

// demo runs the worlds demo and checks its output, given how many times it
// ran before; it returns the worlds' IDs.
func demo(t *testing.T, s store, before int) []uuid.UUID {
	t.Helper()
	out := s.ok(t, "demo")
	if len(out) != 14 {
		t.Fatalf("demo printed %d lines:\n%s", len(out), strings.Join(out, "\n"))
	}
	if want := "Creating 3 worlds in which 20 things happen each; Counters counts them as Worlds saves them."; out[0] != want {
		t.Fatalf("line 1: %q", out[0])
	}
	var ids []uuid.UUID
	for _, line := range out[1:4] {
		m := worldLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("not a world's line: %q", line)
		}
		ids = append(ids, uuid.MustParse(m[1]))
		first, _ := strconv.ParseInt(m[2], 10, 64)
		last, _ := strconv.ParseInt(m[3], 10, 64)
		if last <= first {
			t.Fatalf("notifications %d to %d", first, last)
		}
	}
	counts := []int{10, 11, 11, 10, 9, 9} // each run, with 3 worlds of 20 things
	want := []string{"Counters has counted, in all the worlds so far:"}
	for i, what := range things {
		want = append(want, fmt.Sprintf("  %-10s %d (counter %s)", what, counts[i]*(before+1), counters.CounterID(what)))
	}
	if !slices.Equal(out[4:11], want) {
		t.Fatalf("counts:\n%s\nwant:\n%s", strings.Join(out[4:11], "\n"), strings.Join(want, "\n"))
	}
	if !regexp.MustCompile(`^Last notification IDs: Worlds \d+, Counters \d+\.$`).MatchString(out[11]) {
		t.Fatalf("line 12: %q", out[11])
	}
	if s.name == "sqlite" {
		if want := fmt.Sprintf("Last notification IDs: Worlds %d, Counters %d.", 63*(before+1), 6+60*(before+1)); out[11] != want {
			t.Fatalf("line 12: %q, want %q", out[11], want)
		}
	}
	if want := "Stored in " + s.desc + "."; out[12] != want {
		t.Fatalf("line 13: %q, want %q", out[12], want)
	}
	if want := "Next: strata log, strata events --aggregate World --identifier ID, strata snapshot create"; out[13] != want {
		t.Fatalf("line 14: %q, want %q", out[13], want)
	}
	return ids
}

// worldsApp opens the test's own Worlds application on the store.
func worldsApp(t *testing.T, s store) *worlds.Worlds {
	t.Helper()
	app, err := worlds.New(context.Background(), application.WithEnv(s.env), application.WithSnapshotting(true))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	return app
}

func TestDemoAndSnapshotCreate(t *testing.T) {
	forEachStore(t, func(t *testing.T, s store) {
		demo(t, s, 0)
		ids := demo(t, s, 1) // running it again adds more
		world := ids[0].String()
		// The demo saves through the default tenant's applications.
		expect(t, s.run(t, "demo", "--tenant", "acme"), 2, "",
			"Error: --tenant \"acme\": the demo runs in the default tenant only\nRun 'strata demo --help' for usage.\n")

		t.Run("all event-sourced aggregates", func(t *testing.T) {
			expect(t, s.run(t, "snapshot", "create"), 0,
				"World: 6 snapshot(s)\nCounter: 6 snapshot(s)\nCreated 12 snapshot(s) across 2 aggregate(s).\n", "")
		})
		t.Run("all instances of one aggregate", func(t *testing.T) {
			expect(t, s.run(t, "snapshot", "create", "--aggregate", "World"), 0, "Created 6 snapshot(s) for World.\n", "")
			expect(t, s.run(t, "snapshot", "create", "--aggregate=Counter"), 0, "Created 6 snapshot(s) for Counter.\n", "")
		})
		t.Run("one instance", func(t *testing.T) {
			expect(t, s.run(t, "snapshot", "create", "--aggregate", "World", "--identifier", world), 0,
				"Snapshot created for World with identifier "+world+".\n", "")
			counter := counters.CounterID("trucks").String()
			expect(t, s.run(t, "snapshot", "create", "--aggregate", "Counter", "--identifier", counter), 0,
				"Snapshot created for Counter with identifier "+counter+".\n", "")
		})
		t.Run("a forced refresh replaces the snapshot", func(t *testing.T) {
			ctx := context.Background()
			app := worldsApp(t, s)
			if snap, ok, err := app.Snapshots().Latest(ctx, ids[0], nil); err != nil || !ok || snap.OriginatorVersion != 21 {
				t.Fatalf("snapshot before: %v %v at version %d", ok, err, snap.OriginatorVersion)
			}
			if err := app.MakeItSo(ctx, ids[0], "comets"); err != nil {
				t.Fatal(err)
			}
			for range 2 { // the second at the same version replaces the first
				expect(t, s.run(t, "snapshot", "create", "--aggregate", "World", "--identifier", world), 0,
					"Snapshot created for World with identifier "+world+".\n", "")
			}
			snap, ok, err := app.Snapshots().Latest(ctx, ids[0], nil)
			if err != nil || !ok || snap.OriginatorVersion != 22 {
				t.Fatalf("snapshot after: %v %v at version %d", ok, err, snap.OriginatorVersion)
			}
			fromSnapshot, err := app.Worlds().Get(ctx, ids[0])
			if err != nil {
				t.Fatal(err)
			}
			fromEvents, err := app.Worlds().Get(ctx, ids[0], application.FromEvents())
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(fromSnapshot.History, fromEvents.History) || fromSnapshot.History[20] != "comets" || fromSnapshot.Version() != 22 {
				t.Fatalf("from the snapshot %v at %d, from events %v", fromSnapshot.History, fromSnapshot.Version(), fromEvents.History)
			}
		})
		t.Run("errors", func(t *testing.T) {
			unknown := uuid.NewString()
			tests := []struct {
				name   string
				env    map[string]string
				args   []string
				code   int
				stdout string
				stderr string
			}{
				{"an identifier without an aggregate", nil, []string{"--identifier", world}, 2, "",
					"Error: --identifier requires --aggregate\nRun 'strata snapshot create --help' for usage.\n"},
				{"an unknown domain", nil, []string{"--domain", "shop"}, 1, "",
					"Error loading domain: unknown domain \"shop\" (registered: worlds, wiki, bank, cargo)\n"},
				{"an unknown domain from the environment", map[string]string{"STRATA_DOMAIN": "shop"}, nil, 1, "",
					"Error loading domain: unknown domain \"shop\" (registered: worlds, wiki, bank, cargo)\n"},
				{"an aggregate not in the domain", nil, []string{"--aggregate", "User"}, 1, "",
					"Error: aggregate User not found in domain worlds (event-sourced aggregates: World, Counter)\n"},
				{"an aggregate of another domain", nil, []string{"--aggregate", "Page", "--identifier", world}, 1, "",
					"Error: aggregate Page not found in domain worlds (event-sourced aggregates: World, Counter)\n"},
				{"an event type", nil, []string{"--aggregate", "SomethingHappened"}, 1, "",
					"Error: SomethingHappened is not an event-sourced aggregate (it is an event type of application Worlds)\n"},
				{"a read model", nil, []string{"--domain", "cargo", "--aggregate", "CargoDetails"}, 1, "",
					"Error: CargoDetails is not an event-sourced aggregate (it is a plain type of domain cargo)\n"},
				{"an identifier without events", nil, []string{"--aggregate", "World", "--identifier", unknown}, 1, "",
					"Error: World with identifier " + unknown + " does not exist\n"},
				{"an identifier of another aggregate type", nil, []string{"--aggregate", "Counter", "--identifier", world}, 1, "",
					"Error: Counter with identifier " + world + " does not exist\n"},
				{"an identifier that is not a UUID", nil, []string{"--aggregate", "World", "--identifier", "abc-123"}, 1, "",
					"Error: World with identifier abc-123 does not exist (identifiers are UUIDs)\n"},
				{"an unknown flag", nil, []string{"--aggregates", "World"}, 2, "",
					"Error: unknown flag: --aggregates\nRun 'strata snapshot create --help' for usage.\n"},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					expect(t, s.runWith(t, tt.env, append([]string{"snapshot", "create"}, tt.args...)...), tt.code, tt.stdout, tt.stderr)
				})
			}
		})
		t.Run("events", func(t *testing.T) {
			text := s.ok(t, "events", "--aggregate", "World", "--identifier", world)
			if len(text) != 22 {
				t.Fatalf("%d events:\n%s", len(text), strings.Join(text, "\n"))
			}
			line := regexp.MustCompile(`^v(\d+) (\S+) (\S+) (.*)$`)
			var prev time.Time
			for i, l := range text {
				m := line.FindStringSubmatch(l)
				if m == nil {
					t.Fatalf("event line %q", l)
				}
				ts, err := time.Parse(time.RFC3339Nano, m[2])
				if err != nil || !ts.After(prev) || ts.Location() != time.UTC {
					t.Fatalf("event line %q: time %v after %v", l, ts, prev)
				}
				prev = ts
				topic, data := "World.SomethingHappened", `{"what":"comets"}`
				switch {
				case i == 0:
					topic, data = "World.Created", "{}"
				case i < 21:
					data = fmt.Sprintf(`{"what":%q}`, things[(i-1)%len(things)])
				}
				if m[1] != strconv.Itoa(i+1) || m[3] != topic || m[4] != data {
					t.Fatalf("event %d: %q, want version %d, %s %s", i, l, i+1, topic, data)
				}
			}
			jsonLines := s.ok(t, "events", "--aggregate", "World", "--identifier", world, "--format", "json")
			if len(jsonLines) != 22 {
				t.Fatalf("%d JSON events", len(jsonLines))
			}
			for i, l := range jsonLines {
				var e struct {
					OriginatorID      uuid.UUID       `json:"originator_id"`
					OriginatorVersion int64           `json:"originator_version"`
					Timestamp         time.Time       `json:"timestamp"`
					Topic             string          `json:"topic"`
					Data              json.RawMessage `json:"data"`
				}
				if err := json.Unmarshal([]byte(l), &e); err != nil {
					t.Fatal(err)
				}
				want := fmt.Sprintf("v%d %s %s %s", e.OriginatorVersion, e.Timestamp.Format(time.RFC3339Nano), e.Topic, e.Data)
				if e.OriginatorID != ids[0] || want != text[i] || strings.Contains(l, `"id"`) {
					t.Fatalf("JSON event %q is not text event %q", l, text[i])
				}
			}
			expect(t, s.run(t, "events", "--aggregate", "World", "--identifier", counters.CounterID("trucks").String()), 1, "",
				"Error: World with identifier "+counters.CounterID("trucks").String()+" does not exist\n")
			expect(t, s.run(t, "events", "--aggregate", "World"), 2, "",
				"Error: required flag(s) \"identifier\" not set\nRun 'strata events --help' for usage.\n")
		})
		t.Run("log", func(t *testing.T) {
			all := s.ok(t, "log")
			if len(all) != 127 { // 2 demos of 3 worlds of 21 events, and the comets
				t.Fatalf("%d notifications", len(all))
			}
			line := regexp.MustCompile(`^(\d+) (\S+) ([0-9a-f-]{36}) v(\d+) (\S+) (.*)$`)
			var logIDs []string
			for _, l := range all {
				m := line.FindStringSubmatch(l)
				if m == nil {
					t.Fatalf("log line %q", l)
				}
				logIDs = append(logIDs, m[1])
			}
			if m := line.FindStringSubmatch(all[0]); m[3] != demoWorld(t, s, 0) || m[4] != "1" || m[5] != "World.Created" || m[6] != "{}" {
				t.Fatalf("first notification %q", all[0])
			}
			if got := s.ok(t, "log", "--limit", "3"); !slices.Equal(got, all[:3]) {
				t.Fatalf("--limit 3: %q", got)
			}
			if got := s.ok(t, "log", "--start", logIDs[5], "--limit", "2"); !slices.Equal(got, all[5:7]) {
				t.Fatalf("--start %s --limit 2: %q", logIDs[5], got)
			}
			var created []string
			for _, l := range all {
				if strings.Contains(l, " World.Created ") {
					created = append(created, l)
				}
			}
			if got := s.ok(t, "log", "--topics", "World.Created"); len(created) != 6 || !slices.Equal(got, created) {
				t.Fatalf("--topics World.Created: %q", got)
			}
			if got := s.ok(t, "log", "--topics", "World.Created,World.SomethingHappened", "--start", logIDs[100]); !slices.Equal(got, all[100:]) {
				t.Fatalf("two topics from %s: %q", logIDs[100], got)
			}
			counted := s.ok(t, "log", "--application", "Counters", "--format", "json", "--limit", "2")
			var first struct {
				ID                int64  `json:"id"`
				OriginatorID      string `json:"originator_id"`
				OriginatorVersion int64  `json:"originator_version"`
				Topic             string `json:"topic"`
				Data              struct {
					Name string `json:"name"`
				} `json:"data"`
			}
			if len(counted) != 2 || json.Unmarshal([]byte(counted[0]), &first) != nil || first.ID < 1 ||
				first.OriginatorID != counters.CounterID("dinosaurs").String() || first.Topic != "Counter.Created" || first.Data.Name != "dinosaurs" {
				t.Fatalf("Counters' log: %q", counted)
			}
			expect(t, s.run(t, "log", "--topics", "Nope"), 1, "",
				"Error: log of Worlds: invalid notification query: unknown topic \"Nope\": register its type with the application\n")
			expect(t, s.run(t, "log", "--application", "Nope"), 1, "",
				"Error: unknown application \"Nope\" in domain worlds (applications: Worlds, Counters)\n")
			expect(t, s.run(t, "log", "--format", "xml"), 2, "",
				"Error: --format \"xml\": want text or json\nRun 'strata log --help' for usage.\n")
		})
	})
}

// demoWorld returns the ID of the i-th world of the store.
func demoWorld(t *testing.T, s store, i int) string {
	t.Helper()
	created := s.ok(t, "log", "--topics", "World.Created", "--format", "json")
	var n struct {
		OriginatorID string `json:"originator_id"`
	}
	if err := json.Unmarshal([]byte(created[i]), &n); err != nil {
		t.Fatal(err)
	}
	return n.OriginatorID
}

func TestTheOtherDomains(t *testing.T) {
	s := sqliteStore(t)
	for _, d := range []string{"wiki", "bank", "cargo"} {
		out := s.ok(t, "demo", "--domain", d)
		if len(out) < 3 || out[len(out)-2] != "Stored in "+s.desc+"." || !strings.HasPrefix(out[len(out)-1], "Next: strata log --domain "+d+", ") {
			t.Fatalf("demo of %s:\n%s", d, strings.Join(out, "\n"))
		}
	}
	s.ok(t, "demo", "--domain", "wiki") // again: new slugs
	expect(t, s.runWith(t, map[string]string{"STRATA_DOMAIN": "wiki"}, "snapshot", "create"), 0,
		"Index: 8 snapshot(s)\nPage: 6 snapshot(s)\nCreated 14 snapshot(s) across 2 aggregate(s).\n", "")
	expect(t, s.run(t, "snapshot", "create", "--domain", "bank"), 0,
		"BankAccount: 2 snapshot(s)\nStatement: 2 snapshot(s)\nCreated 4 snapshot(s) across 2 aggregate(s).\n", "")
	expect(t, s.run(t, "snapshot", "create", "--domain", "cargo", "--aggregate", "Cargo"), 0, "Created 1 snapshot(s) for Cargo.\n", "")
	expect(t, s.run(t, "snapshot", "create", "--domain", "worlds"), 0,
		"World: 0 snapshot(s)\nCounter: 0 snapshot(s)\nCreated 0 snapshot(s) across 2 aggregate(s).\n", "")

	// A page's identifier is not an index's.
	page := regexp.MustCompile(`^Page ([0-9a-f-]{36}): `).FindStringSubmatch(s.ok(t, "demo", "--domain", "wiki")[0])[1]
	expect(t, s.run(t, "snapshot", "create", "--domain", "wiki", "--aggregate", "Index", "--identifier", page), 1, "",
		"Error: Index with identifier "+page+" does not exist (it is of type Page)\n")
}

func TestTheDefaultStoreIsASQLiteFileInTheWorkingDirectory(t *testing.T) {
	s := store{name: "default", dir: t.TempDir()}
	out := s.ok(t, "demo")
	if got := out[len(out)-2]; got != "Stored in SQLite database strata.db." {
		t.Fatalf("store line %q", got)
	}
	if _, err := os.Stat(filepath.Join(s.dir, "strata.db")); err != nil {
		t.Fatal(err)
	}
	out = s.ok(t, "demo", "--db", "other.db")
	if got := out[len(out)-2]; got != "Stored in SQLite database other.db." {
		t.Fatalf("store line %q", got)
	}
	// SQLITE_DBNAME alone chooses the file; the module stays SQLite.
	out = s.ok(t, "log", "--limit", "1", "--format", "json")
	other := store{name: "default", dir: s.dir, env: map[string]string{"SQLITE_DBNAME": "other.db"}}
	if got := other.ok(t, "log", "--limit", "1", "--format", "json"); len(got) != 1 || got[0] == out[0] {
		t.Fatalf("SQLITE_DBNAME=other.db reads %q; strata.db has %q", got, out)
	}
	expect(t, s.run(t, "snapshot", "create", "--aggregate", "World"), 0, "Created 3 snapshot(s) for World.\n", "")
}

func TestSnapshotCreateCanBeInterrupted(t *testing.T) {
	s := sqliteStore(t)
	ctx := context.Background()
	app := worldsApp(t, s)
	for range 10 {
		var batch []domain.Root
		for range 500 {
			w, err := worlds.NewWorld()
			if err != nil {
				t.Fatal(err)
			}
			_ = w.MakeItSo("trucks")
			batch = append(batch, w)
		}
		if _, err := app.Save(ctx, batch...); err != nil {
			t.Fatal(err)
		}
	}
	db, err := sql.Open(sqlite.DriverName, s.env["SQLITE_DBNAME"])
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	count := func() int {
		var n int
		if err := db.QueryRow("SELECT COUNT(*) FROM worlds_snapshots").Scan(&n); err != nil {
			return 0 // no table yet
		}
		return n
	}

	cmd := s.command(ctx, nil, "snapshot", "create", "--aggregate", "World")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); count() == 0; time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("no snapshot after 30s")
		}
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	if cmd.ProcessState.ExitCode() != 130 {
		t.Fatalf("exit %v (%v), stdout %q, stderr %q", cmd.ProcessState.ExitCode(), err, stdout.String(), stderr.String())
	}
	n := count()
	if n == 0 || n >= 5000 {
		t.Fatalf("%d snapshots", n)
	}
	if want := fmt.Sprintf("Interrupted: created %d snapshot(s) before the interruption.\n", n); stdout.String() != "" || stderr.String() != want {
		t.Fatalf("stdout %q, stderr %q, want %q", stdout.String(), stderr.String(), want)
	}
	// Every snapshot written loads.
	rows, err := db.Query("SELECT originator_id FROM worlds_snapshots")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var raw any
		if err := rows.Scan(&raw); err != nil {
			t.Fatal(err)
		}
		id, err := snapshotID(raw)
		if err != nil {
			t.Fatal(err)
		}
		snap, ok, err := app.Snapshots().Latest(ctx, id, nil)
		if err != nil || !ok || snap.OriginatorVersion != 2 || snap.State.(*worlds.World).History[0] != "trucks" {
			t.Fatalf("snapshot of %s: %v %v %+v", id, ok, err, snap)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

// snapshotID reads an originator ID column, stored as text or bytes.
func snapshotID(raw any) (uuid.UUID, error) {
	switch v := raw.(type) {
	case string:
		return uuid.Parse(v)
	case []byte:
		if len(v) == 16 {
			return uuid.FromBytes(v)
		}
		return uuid.ParseBytes(v)
	}
	return uuid.Nil, fmt.Errorf("originator ID %T", raw)
}

func TestProgressIsShownOnlyOnATerminal(t *testing.T) {
	s := sqliteStore(t)
	demo(t, s, 0)
	// Piped: nothing on stderr (checked by ok).
	s.ok(t, "snapshot", "create", "--aggregate", "World")

	script, err := exec.LookPath("script")
	if err != nil {
		t.Skip("script (util-linux) is not installed: no terminal to test on")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, script, "-qec", binary+" snapshot create", "/dev/null")
	cmd.Env, cmd.Dir = environ(s.env), s.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %q", err, out)
	}
	got := strings.ReplaceAll(string(out), "\r\n", "\n")
	for _, want := range []string{
		"\r\033[K[                              ] 0/3 World",
		"\r\033[K[==============================] 3/3 World",
		"\r\033[K[==============================] 6/6 Counter",
		"\r\033[KWorld: 3 snapshot(s)\nCounter: 6 snapshot(s)\nCreated 9 snapshot(s) across 2 aggregate(s).\n",
	} {
		if !strings.Contains(got, want) {
			t.Fatalf("terminal output %q lacks %q", got, want)
		}
	}
}

func TestLogFollow(t *testing.T) {
	forEachStore(t, func(t *testing.T, s store) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		app := worldsApp(t, s)
		first, err := app.CreateWorld(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cmd := s.command(ctx, nil, "log", "--follow", "--poll", "50ms", "--topics", "World.Created")
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		seen := make(chan string)
		go func() {
			defer close(seen)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				seen <- sc.Text()
			}
		}()
		next := func() string {
			select {
			case l, ok := <-seen:
				if !ok {
					t.Fatalf("the log ended; stderr %q", stderr.String())
				}
				return l
			case <-ctx.Done():
				t.Fatal("no line in time")
			}
			return ""
		}
		if l := next(); !strings.Contains(l, " "+first.String()+" v1 World.Created {}") {
			t.Fatalf("first line %q", l)
		}
		second, err := app.CreateWorld(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := app.MakeItSo(ctx, second, "trucks"); err != nil { // not of the topic
			t.Fatal(err)
		}
		third, err := app.CreateWorld(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []uuid.UUID{second, third} {
			if l := next(); !strings.Contains(l, " "+id.String()+" v1 World.Created {}") {
				t.Fatalf("line %q, want world %s created", l, id)
			}
		}
		if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		for range seen {
		}
		if err := cmd.Wait(); err != nil || stderr.String() != "" {
			t.Fatalf("after Ctrl-C: %v, stderr %q", err, stderr.String())
		}
	})
}

func TestServe(t *testing.T) {
	forEachStore(t, func(t *testing.T, s store) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		app := worldsApp(t, s)
		for range 4 {
			id, err := app.CreateWorld(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, what := range things {
				if err := app.MakeItSo(ctx, id, what); err != nil {
					t.Fatal(err)
				}
			}
		}
		want, err := app.Log().Select(ctx, 1, 100)
		if err != nil || len(want) != 28 {
			t.Fatal(len(want), err)
		}

		for _, token := range []string{"", "secret"} {
			args := []string{"serve", "--addr", "127.0.0.1:0"}
			if token == "" {
				args = append(args, "--no-auth")
			}
			cmd := s.command(ctx, map[string]string{"STRATA_TOKEN": token}, args...)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			out := bufio.NewReader(stdout)
			first, err := out.ReadString('\n')
			if err != nil {
				cmd.Process.Kill()
				t.Fatalf("%v; stderr %q", err, stderr.String())
			}
			m := regexp.MustCompile(`^Serving the notification log of Worlds at (http://127\.0\.0\.1:\d+) \((.*)\)\.\n$`).FindStringSubmatch(first)
			if m == nil || m[2] != s.desc {
				cmd.Process.Kill()
				t.Fatalf("first line %q", first)
			}
			get := func(path, bearer string) (int, []byte) {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m[1]+path, nil)
				if bearer != "" {
					req.Header.Set("Authorization", "Bearer "+bearer)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, body
			}
			if token != "" {
				if code, _ := get("/sections/1,10", ""); code != http.StatusUnauthorized {
					t.Fatalf("without the token: %d", code)
				}
			}
			// A section of ten IDs has ten notifications, whatever the
			// gaps between IDs (large with PostgreSQL).
			sectionID := fmt.Sprintf("%d,%d", want[0].ID, want[0].ID+9)
			if s.name == "sqlite" && sectionID != "1,10" {
				t.Fatalf("SQLite's first notification is %d", want[0].ID)
			}
			code, body := get("/sections/"+sectionID, token)
			var section struct {
				ID    *string           `json:"id"`
				Items []json.RawMessage `json:"items"`
			}
			if err := json.Unmarshal(body, &section); code != http.StatusOK || err != nil || section.ID == nil ||
				*section.ID != fmt.Sprintf("%d,%d", want[0].ID, want[9].ID) || len(section.Items) != 10 {
				t.Fatalf("GET /sections/%s: %d %s", sectionID, code, body)
			}
			code, body = get("/notifications?start=1&limit=5&topics=World.Created", token)
			var selected struct {
				Items []struct {
					ID                int64  `json:"id"`
					OriginatorVersion int64  `json:"originator_version"`
					Topic             string `json:"topic"`
				} `json:"items"`
			}
			if err := json.Unmarshal(body, &selected); code != http.StatusOK || err != nil || len(selected.Items) != 4 || selected.Items[1].ID != want[7].ID {
				t.Fatalf("GET /notifications: %d %s", code, body)
			}
			if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			rest, _ := io.ReadAll(out)
			if err := cmd.Wait(); err != nil || string(rest) != "Stopped.\n" || stderr.String() != "" {
				t.Fatalf("after Ctrl-C: %v, stdout %q, stderr %q", err, rest, stderr.String())
			}
		}
		expect(t, s.run(t, "serve", "--tls-cert", "cert.pem"), 2, "",
			"Error: --tls-cert and --tls-key go together\nRun 'strata serve --help' for usage.\n")
		// An empty token does not open the log to anyone.
		for _, env := range []map[string]string{nil, {"STRATA_TOKEN": ""}} {
			expect(t, s.runWith(t, env, "serve"), 2, "",
				"Error: no bearer token: set --token or STRATA_TOKEN, or give --no-auth to let anyone who can reach the address read the log\nRun 'strata serve --help' for usage.\n")
		}
		expect(t, s.run(t, "serve", "--token", "", "--addr", "127.0.0.1:0"), 2, "",
			"Error: no bearer token: set --token or STRATA_TOKEN, or give --no-auth to let anyone who can reach the address read the log\nRun 'strata serve --help' for usage.\n")
		expect(t, s.run(t, "serve", "--token", "x", "--no-auth"), 2, "",
			"Error: --no-auth and a bearer token (--token or STRATA_TOKEN) contradict each other\nRun 'strata serve --help' for usage.\n")
	})
}

func TestBench(t *testing.T) {
	s := store{name: "bench", dir: t.TempDir()}
	// jetstream+url measures the cluster STRATA_BENCH_NATS_URL names;
	// jetstream, one that bench starts and stops itself.
	for _, name := range []string{"sqlite", "postgres", "mysql", "messagedb", "mongodb", "jetstream", "jetstream+url"} {
		t.Run(name, func(t *testing.T) {
			st, _, _ := strings.Cut(name, "+")
			natsURL := ""
			baseline := "raw INSERT"
			switch name {
			case "jetstream":
				natstest.Shared(t) // skips without a nats-server, as bench would fail
				baseline = "raw js.PublishAsync"
			case "jetstream+url":
				natsURL = natstest.Shared(t).URL()
				baseline = "raw js.PublishAsync"
			case "postgres":
				pgtest.Require(t)
			case "mysql":
				mytest.Require(t)
			case "messagedb":
				mdbtest.Require(t)
				baseline = "raw write_message"
			case "mongodb":
				mongotest.Client(t)
			}
			r := s.runWith(t, map[string]string{"STRATA_BENCH_POSTGRES_URL": pgtest.URL(), "STRATA_BENCH_MESSAGEDB_URL": mdbtest.URLFor("postgres"),
				"STRATA_BENCH_MONGODB_URI": mongotest.URI(), "STRATA_BENCH_MYSQL_DSN": mytest.DSN(), "STRATA_BENCH_NATS_URL": natsURL},
				"bench", "--store", st, "--filter", "save 100", "--rounds", "1", "--round-time", "20ms")
			out := lines(r.stdout)
			if r.code != 0 || len(out) != 3 {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
			}
			if !regexp.MustCompile(`^store\s+case\s+writers\s+Strata/op \(median\)\s+baseline/op \(median\)\s+ratio \(median of rounds\)\s+round ratios \(min–max\)\s+target \(rounds under it\)\s+baseline$`).MatchString(out[0]) ||
				!regexp.MustCompile(`^`+st+`\s+save 100 events\s+1\s+\S+\s+\S+\s+[\d.]+x\s+[\d.]+x–[\d.]+x\s+<= [\d.]+ (ok|MISSED) \([01]/1\)\s+`+baseline+`$`).MatchString(out[1]) ||
				!regexp.MustCompile(`^machine: .+, \d+ cores, go\S+ \w+/\w+$`).MatchString(out[2]) {
				t.Fatalf("bench output:\n%s", r.stdout)
			}
			if !regexp.MustCompile(`^` + st + ` save 100 events: [\d.]+x \(rounds [\d.]+x–[\d.]+x\) ` + baseline + `\n$`).MatchString(r.stderr) {
				t.Fatalf("progress %q", r.stderr)
			}
		})
	}
	t.Run("catch-up memory", func(t *testing.T) {
		r := s.run(t, "bench", "--filter", "none", "--catch-up-memory", "3000")
		out := lines(r.stdout)
		if r.code != 0 || len(out) != 3 ||
			!regexp.MustCompile(`^store\s+notifications\s+RSS before\s+RSS peak\s+growth\s+catch-up time\s+target$`).MatchString(out[0]) ||
			!regexp.MustCompile(`^sqlite\s+3000\s+[\d.]+ MiB\s+[\d.]+ MiB\s+-?[\d.]+ MiB\s+\S+\s+< 64 MiB (ok|MISSED)$`).MatchString(out[1]) {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
	})
	expect(t, s.run(t, "bench", "--store", "oracle"), 2, "",
		"Error: --store \"oracle\": want sqlite, postgres, mysql, messagedb, mongodb, dynamodb, jetstream, s3 or all\nRun 'strata bench --help' for usage.\n")
	expect(t, s.run(t, "bench", "--filter", "nothing like it", "--rounds", "1"), 1, "",
		"Error: no case of sqlite matches --filter \"nothing like it\"\n")
	// A system alone, without the recorder cases: a row for followers
	// recording one notification per transaction, and one for batches.
	r := s.run(t, "bench", "--filter", "none", "--system", "20")
	if out := lines(r.stdout); r.code != 0 || len(out) != 4 || !strings.HasPrefix(out[0], "store") ||
		!regexp.MustCompile(`^sqlite\s+1\s+20\s`).MatchString(out[1]) || !regexp.MustCompile(`^sqlite\s+100\s+20\s`).MatchString(out[2]) ||
		!strings.HasPrefix(out[3], "machine: ") {
		t.Fatalf("bench --filter none --system 20: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
}

func TestTheBinaryDoesNotLinkPackageTesting(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(strings.Fields(string(out)), "testing") {
		t.Fatal("strata links package testing; a test helper crept into its imports (go list -deps ./cmd/strata)")
	}
}

func TestBenchMeasuresTheTestDatabaseByDefault(t *testing.T) {
	if benchsuite.DefaultPostgresURL != pgtest.DefaultURL {
		t.Fatalf("bench's default database %q is not the tests' %q", benchsuite.DefaultPostgresURL, pgtest.DefaultURL)
	}
}

func TestHelpAndREADMEDocumentEverything(t *testing.T) {
	s := store{name: "help", dir: t.TempDir()}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	tree := newCommand()
	root := s.ok(t, "--help")
	rootHelp := strings.Join(root, "\n")
	if noArgs := s.ok(t); !slices.Equal(noArgs, root) {
		t.Fatal("strata without arguments does not print the help")
	}

	var variables []string
	for _, name := range persistence.Modules() {
		m, _ := persistence.LookupModule(name)
		variables = append(variables, m.Variables...)
	}
	variables = append(variables, "STRATA_DOMAIN", "PERSISTENCE_MODULE", "INFRASTRUCTURE_FACTORY", "CIPHER_TOPIC", "CIPHER_KEY",
		"COMPRESSOR_TOPIC", "COMPRESSOR_MAX_SIZE", "IS_SNAPSHOTTING_ENABLED", "SNAPSHOT_THRESHOLD", "STRATA_TOKEN", "STRATA_CONSOLE_TOKEN", "STRATA_CONSOLE_USER", "STRATA_CONSOLE_PASSWORD", "STRATA_BENCH_POSTGRES_URL", "STRATA_BENCH_MESSAGEDB_URL", "STRATA_BENCH_MONGODB_URI", "STRATA_BENCH_MYSQL_DSN")
	for _, v := range variables {
		if !strings.Contains(rootHelp, v) || !strings.Contains(string(readme), "`"+v+"`") {
			t.Errorf("variable %s is not in strata --help or README.md", v)
		}
	}
	for _, d := range domains() {
		if !strings.Contains(rootHelp, "  "+d.Name+" ") || !strings.Contains(string(readme), "`"+d.Name+"`") {
			t.Errorf("domain %s is not in strata --help or README.md", d.Name)
		}
	}

	var visit func(c *cobra.Command)
	visit = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" {
			return
		}
		path := strings.Fields(c.CommandPath())[1:]
		if len(path) > 0 {
			if !strings.Contains(rootHelp, "  "+path[0]+" ") {
				t.Errorf("strata --help does not list %s", path[0])
			}
			if !strings.Contains(string(readme), "strata "+strings.Join(path, " ")) {
				t.Errorf("README.md does not document strata %s", strings.Join(path, " "))
			}
		}
		help := strings.Join(s.ok(t, append(path, "--help")...), "\n")
		usages := c.LocalFlags().FlagUsages() + c.InheritedFlags().FlagUsages()
		for _, m := range regexp.MustCompile(`(?m)^\s+(?:-\w, )?--([\w-]+)`).FindAllStringSubmatch(usages, -1) {
			if !strings.Contains(help, "--"+m[1]+" ") || !strings.Contains(string(readme), "`--"+m[1]) {
				t.Errorf("flag --%s of %q is not in its --help or README.md", m[1], c.CommandPath())
			}
		}
		for _, sub := range c.Commands() {
			visit(sub)
		}
	}
	visit(tree)
}

// The commands that read create nothing: on an empty directory they say
// there is no store, and they read a store on a read-only mount.
func TestReadingCommandsDoNotWrite(t *testing.T) {
	empty := store{name: "empty", dir: t.TempDir()}
	r := empty.run(t, "log")
	if r.code != 1 || !strings.Contains(r.stderr, "no database file") || !strings.Contains(r.stderr, "strata.db") {
		t.Fatalf("strata log in an empty directory: exit %d, stderr %q", r.code, r.stderr)
	}
	if entries, _ := os.ReadDir(empty.dir); len(entries) != 0 {
		t.Fatalf("strata log created %d files", len(entries))
	}

	// A store with the worlds but not the counters' tables.
	s := store{name: "worlds", dir: t.TempDir()}
	s.ok(t, "demo")
	r = s.run(t, "log", "--domain", "wiki")
	if r.code != 1 || !strings.Contains(r.stderr, "does not exist") || !strings.Contains(r.stderr, "_events") {
		t.Fatalf("strata log of a domain with no tables: exit %d, stderr %q", r.code, r.stderr)
	}

	mnt := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "--bind", "-o", "ro", s.dir, mnt).CombinedOutput(); err != nil {
		msg := fmt.Sprintf("cannot make a read-only bind mount (%v: %s); run the tests as root to test a read-only mount", err, out)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	ro := store{name: "read-only", dir: mnt}
	want := s.ok(t, "log")
	if got := ro.ok(t, "log"); !slices.Equal(got, want) {
		t.Fatalf("strata log on a read-only mount printed %d lines, want %d", len(got), len(want))
	}
	id := strings.Fields(want[0])[2]
	ro.ok(t, "events", "--aggregate", "World", "--identifier", id)
	r = ro.run(t, "demo")
	if r.code != 1 {
		t.Fatalf("strata demo on a read-only mount: exit %d", r.code)
	}
}

// Every command checks the variables it reads, including those whose value
// it then overrides.
func TestEveryCommandChecksTheConfiguration(t *testing.T) {
	s := store{name: "checked", dir: t.TempDir()}
	s.ok(t, "demo")
	for _, args := range [][]string{{"log"}, {"snapshot", "create"}, {"events", "--aggregate", "World", "--identifier", sampleUUID}, {"demo"}} {
		r := s.runWith(t, map[string]string{"IS_SNAPSHOTTING_ENABLED": "maybe"}, args...)
		if r.code != 1 || !strings.Contains(r.stderr, `IS_SNAPSHOTTING_ENABLED="maybe"`) {
			t.Errorf("strata %s with IS_SNAPSHOTTING_ENABLED=maybe: exit %d, stderr %q", strings.Join(args, " "), r.code, r.stderr)
		}
	}
}

const sampleUUID = "0b9ab1a2-3c4d-4e5f-8a6b-7c8d9e0f1a2b"

// A notification Counters cannot decode, parked by a runner that parks,
// is listed, cannot be retried while it still fails, and can be skipped.
func TestParked(t *testing.T) {
	ctx := context.Background()
	s := sqliteStore(t)
	s.ok(t, "demo")
	app, err := worlds.New(ctx, application.WithEnv(s.env), application.WithoutProcessEnv())
	if err != nil {
		t.Fatal(err)
	}
	ids, err := app.Recorder().InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: uuid.New(), OriginatorVersion: 1, Topic: "World.Unknown", State: []byte("{}")}})
	app.Close()
	if err != nil {
		t.Fatal(err)
	}
	bad := ids[0]
	sys, err := system.New(domains()[0].Applications, domains()[0].Pipes...)
	if err != nil {
		t.Fatal(err)
	}
	r := system.NewSingleThreadedRunner(sys, system.WithEnv(s.env), system.WithPoisonPolicy(system.ParkPoison), system.WithLogger(slog.New(slog.DiscardHandler)))
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	r.Stop(ctx)

	out := s.ok(t, "parked")
	if len(out) != 1 || !strings.HasPrefix(out[0], fmt.Sprintf("Counters: notification %d of Worlds (World.Unknown): decode: ", bad)) {
		t.Fatalf("strata parked: %q", out)
	}
	r2 := s.run(t, "parked", "retry", "--application", "Counters", "--upstream", "Worlds", "--notification", strconv.FormatInt(bad, 10))
	if r2.code != 1 || !strings.Contains(r2.stderr, fmt.Sprintf("Counters cannot process notification %d of Worlds", bad)) {
		t.Fatalf("retry a notification that still fails: exit %d, stderr %q", r2.code, r2.stderr)
	}
	expect(t, s.run(t, "parked", "skip", "--application", "Counters", "--upstream", "Worlds", "--notification", strconv.FormatInt(bad, 10), "--reason", "not ours"),
		0, fmt.Sprintf("Counters skipped notification %d of Worlds.\n", bad), "")
	expect(t, s.run(t, "parked"), 0, "No parked notifications.\n", "")
	r2 = s.run(t, "parked", "skip", "--application", "Worlds", "--upstream", "Worlds", "--notification", "1")
	if r2.code != 2 || !strings.Contains(r2.stderr, `unknown application "Worlds": not a follower of domain worlds`) {
		t.Fatalf("skip for a leader: exit %d, stderr %q", r2.code, r2.stderr)
	}
}

// Tenants, commits and headers reach the command's output; delete and
// purge erase one tenant's data, and wait for followers unless forced.
func TestTenantsHeadersDeleteAndPurge(t *testing.T) {
	ctx := context.Background()
	s := sqliteStore(t)
	s.ok(t, "demo")
	w, err := worlds.New(ctx, application.WithEnv(s.env), application.WithoutProcessEnv())
	if err != nil {
		t.Fatal(err)
	}
	acme, err := w.App().ForTenant("acme")
	if err != nil {
		t.Fatal(err)
	}
	world, _ := worlds.NewWorld()
	_ = world.MakeItSo("acme's")
	commit := application.Commit{ID: uuid.New(), Headers: persistence.Headers{"user": "ada"}}
	if _, err := acme.SaveCommit(ctx, commit, world); err != nil {
		t.Fatal(err)
	}
	w.Close()

	lines := s.ok(t, "log", "--format", "json")
	var last struct {
		Tenant   string            `json:"tenant"`
		CommitID uuid.UUID         `json:"commit_id"`
		Headers  map[string]string `json:"headers"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil || last.Tenant != "acme" || last.CommitID != commit.ID || last.Headers["user"] != "ada" {
		t.Fatalf("the last notification as JSON: %s (%v)", lines[len(lines)-1], err)
	}
	text := s.ok(t, "log", "--tenant", "acme")
	if len(text) != 2 || !strings.HasSuffix(text[1], `{"what":"acme's"} tenant="acme" headers={"user":"ada"}`) {
		t.Fatalf("strata log --tenant acme: %q", text)
	}
	id := world.ID().String()
	events := s.ok(t, "events", "--tenant", "acme", "--aggregate", "World", "--identifier", id)
	if len(events) != 2 || !strings.HasSuffix(events[1], `tenant="acme" headers={"user":"ada"}`) {
		t.Fatalf("strata events --tenant acme: %q", events)
	}
	expect(t, s.run(t, "events", "--aggregate", "World", "--identifier", id), 1, "", "Error: World with identifier "+id+" does not exist\n")

	r := s.run(t, "delete", "--tenant", "acme", "--aggregate", "World", "--identifier", id)
	if r.code != 1 || !strings.Contains(r.stderr, "Counters has processed Worlds up to notification") {
		t.Fatalf("delete while Counters lags: exit %d, stderr %q", r.code, r.stderr)
	}
	expect(t, s.run(t, "delete", "--tenant", "acme", "--aggregate", "World", "--identifier", id, "--force"), 0, "Deleted World "+id+".\n", "")
	expect(t, s.run(t, "events", "--tenant", "acme", "--aggregate", "World", "--identifier", id), 1, "", "Error: World with identifier "+id+" does not exist\n")
	expect(t, s.run(t, "purge"), 2, "", "Error: purge needs --tenant\nRun 'strata purge --help' for usage.\n")
	expect(t, s.run(t, "purge", "--tenant", "acme"), 0, "Purged tenant \"acme\".\n", "")
	if got := s.ok(t, "log"); len(got) != len(lines)-2 {
		t.Fatalf("the log after the deletion has %d lines, want %d", len(got), len(lines)-2)
	}
}

// With data keys, erasing a tenant's key leaves its events in the log,
// printed as erased; rotating the master key keeps every other event
// readable with the new key alone.
func TestEraseAndRotateKeys(t *testing.T) {
	k1, _ := persistence.CreateKey(32)
	k2, _ := persistence.CreateKey(32)
	s := sqliteStore(t)
	s.env["CIPHER_KEY"], s.env["CIPHER_DATA_KEYS"] = k1, "tenant"
	s.ok(t, "demo")
	before := s.ok(t, "log")
	ctx := context.Background()
	w, err := worlds.New(ctx, application.WithEnv(s.env), application.WithoutProcessEnv())
	if err != nil {
		t.Fatal(err)
	}
	acme, _ := w.App().ForTenant("acme")
	world, _ := worlds.NewWorld()
	_ = world.MakeItSo("acme's")
	if _, err := acme.Save(ctx, world); err != nil {
		t.Fatal(err)
	}
	w.Close()
	expect(t, s.run(t, "erase", "--tenant", "acme"), 0, "Erased the data key of tenant \"acme\".\n", "")
	lines := s.ok(t, "log")
	if len(lines) != len(before)+2 || !strings.Contains(lines[len(lines)-1], " - "+world.ID().String()+" v2 World.SomethingHappened <erased> tenant=\"acme\"") {
		t.Fatalf("the log after erasing acme's key ends with %q", lines[len(lines)-2:])
	}
	if !slices.Equal(lines[:len(before)], before) {
		t.Fatal("erasing acme's key changed the other tenants' lines")
	}
	s.env["CIPHER_KEY"], s.env["CIPHER_PREVIOUS_KEYS"] = k2, k1
	expect(t, s.run(t, "rotate-keys"), 0, "Wrapped 2 data key(s) with the current CIPHER_KEY.\n", "")
	delete(s.env, "CIPHER_PREVIOUS_KEYS")
	if got := s.ok(t, "log"); !slices.Equal(got, lines) {
		t.Fatal("after the rotation, the new key alone does not read the log as before")
	}
	r := s.run(t, "erase", "--tenant", "acme", "--aggregate", "World")
	if r.code != 2 {
		t.Fatalf("erase with --aggregate and no --identifier: exit %d", r.code)
	}
}

// strata health prints the report and exits 0 when healthy, 1 when not;
// serve --metrics serves /metrics, /readyz and /livez, and health --url
// asks it.
func TestHealthAndMetrics(t *testing.T) {
	s := postgresStore(t)
	demo(t, s, 0)
	r := s.run(t, "health", "--max-horizon-age", "1h") // other programs may hold transactions
	if r.code != 0 || !strings.Contains(r.stdout, `"status": "ok"`) || !strings.Contains(r.stdout, `"check": "horizon"`) {
		t.Fatalf("health: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	// A transaction held open past --max-horizon-age is unhealthy.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	r = s.run(t, "health", "--max-horizon-age", "1ns")
	if r.code != 1 || !strings.Contains(r.stdout, `"status": "unhealthy"`) || !strings.Contains(r.stderr, "Error: unhealthy: ") ||
		!strings.Contains(r.stderr, "held the visibility horizon back") {
		t.Fatalf("health with a held transaction: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := s.command(ctx, nil, "serve", "--no-auth", "--addr", "127.0.0.1:0", "--metrics", "--max-horizon-age", "1ns")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()
	first, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`at (http://\S+) `).FindStringSubmatch(first)
	if m == nil {
		t.Fatalf("first line: %q", first)
	}
	base := m[1]
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"strata_follower_lag{", "strata_postgres_horizon_age_seconds{", "go_goroutines"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics has no %s:\n%s", want, body)
		}
	}
	r = s.run(t, "health", "--url", base+"/readyz")
	if r.code != 1 || !strings.Contains(r.stdout, `"healthy": false`) {
		t.Fatalf("health --url while unhealthy: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	// Another test's transaction may still be open: liveness does not care.
	resp, err = http.Get(base + "/livez")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/livez: %v %v", resp, err)
	}
	resp.Body.Close()
}

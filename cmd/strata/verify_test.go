package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"github.com/strata-go/strata/persistence/sqlite"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/examples/worlds"
	"github.com/strata-go/strata/internal/pgtest"
	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/system"
)

// damage writes to s's database directly, as a failing disk or a careless
// operator would: {t} in the statements is the tables' prefix (the schema
// for PostgreSQL).
func damage(t *testing.T, s store, stmts ...string) {
	t.Helper()
	prefix := ""
	if s.name == "postgres" {
		prefix = s.env["POSTGRES_SCHEMA"] + "."
	}
	for i, st := range stmts {
		stmts[i] = strings.ReplaceAll(st, "{t}", prefix)
	}
	if s.name != "sqlite" && s.name != "postgres" {
		t.Fatalf("no SQL to damage a %s store with", s.name)
	}
	if s.name == "postgres" {
		for i, st := range stmts {
			stmts[i] = hexLiteral.ReplaceAllString(st, `'\x$1'::bytea`)
		}
		pgtest.Exec(t, stmts...)
		return
	}
	db, err := sql.Open(sqlite.DriverName, s.env["SQLITE_DBNAME"])
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, st := range stmts {
		if _, err := db.Exec(st); err != nil {
			t.Fatalf("%s: %v", st, err)
		}
	}
}

// forSQLStores runs f against SQLite and PostgreSQL (skipped if it is not
// available, unless CI=true): the stores whose tables damage writes to.
func forSQLStores(t *testing.T, f func(t *testing.T, s store)) {
	t.Run("sqlite", func(t *testing.T) { f(t, sqliteStore(t)) })
	t.Run("postgres", func(t *testing.T) { f(t, postgresStore(t)) })
}

// verifyReport is the JSON report of strata verify.
type verifyReport struct {
	Applications  []string `json:"applications"`
	Notifications int64    `json:"notifications"`
	Aggregates    int64    `json:"aggregates"`
	Snapshots     int64    `json:"snapshots"`
	Tracking      int64    `json:"tracking"`
	Problems      []struct {
		Kind           string  `json:"kind"`
		Application    string  `json:"application"`
		Tenant         string  `json:"tenant"`
		AggregateID    *string `json:"aggregate_id"`
		Version        *int64  `json:"version"`
		NotificationID int64   `json:"notification_id"`
		Message        string  `json:"message"`
	} `json:"problems"`
}

// verifyJSON runs strata verify --json and checks its exit code, unless
// code is negative.
func verifyJSON(t *testing.T, s store, extra map[string]string, code int) verifyReport {
	t.Helper()
	r := s.runWith(t, extra, "verify", "--json")
	if code >= 0 && r.code != code {
		t.Fatalf("strata verify --json: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	var rep verifyReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("%v in %q", err, r.stdout)
	}
	return rep
}

// verifyStore returns a store filled by the worlds demo, encrypted, with
// snapshots of every aggregate.
func verifyStore(t *testing.T, s store, key string) store {
	t.Helper()
	s.env["CIPHER_KEY"] = key
	s.ok(t, "demo")
	s.ok(t, "snapshot", "create")
	return s
}

// nth is the notification ID of the n-th event (from 1) of Worlds: the
// n-th version of the first world.
func nth(n int) string {
	return "(SELECT notification_id FROM {t}worlds_events ORDER BY notification_id LIMIT 1 OFFSET " + itoa(n-1) + ")"
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestVerify(t *testing.T) {
	key, _ := persistence.CreateKey(32)
	forEachStore(t, func(t *testing.T, s store) {
		s = verifyStore(t, s, key)

		t.Run("a healthy store has no problems", func(t *testing.T) {
			want := "Verified Worlds, Counters: 129 notification(s), 9 aggregate(s), 9 snapshot(s), 1 tracking position(s): no problems.\n"
			expect(t, settled(t, s, want, "verify"), 0, want, "")
			rep := verifyJSON(t, s, nil, 0)
			if rep.Notifications != 129 || rep.Aggregates != 9 || rep.Snapshots != 9 || rep.Tracking != 1 || len(rep.Problems) != 0 ||
				strings.Join(rep.Applications, ",") != "Worlds,Counters" {
				t.Fatalf("report %+v", rep)
			}
			expect(t, s.run(t, "verify", "--application", "Counters"), 0,
				"Verified Counters: 66 notification(s), 6 aggregate(s), 6 snapshot(s), 1 tracking position(s): no problems.\n", "")
		})

		t.Run("a wrong key makes every event undecodable", func(t *testing.T) {
			other, _ := persistence.CreateKey(32)
			rep := verifyJSON(t, s, map[string]string{"CIPHER_KEY": other}, 1)
			decode := 0
			for _, p := range rep.Problems {
				if p.Kind == "decode" {
					decode++
					if !strings.Contains(p.Message, "encrypted with another cipher key") || !strings.Contains(p.Message, *p.AggregateID) {
						t.Fatalf("message %q", p.Message)
					}
				}
			}
			if decode != 129 {
				t.Fatalf("%d decode problems, want 129: %+v", decode, rep.Problems)
			}
		})

		t.Run("the usage is checked", func(t *testing.T) {
			r := s.run(t, "verify", "--tenant", "t1")
			expect(t, r, 2, "", "Error: --tenant: verify reads every tenant's data; it takes no --tenant\nRun 'strata verify --help' for usage.\n")
			r = s.run(t, "verify", "--application", "Nope")
			if r.code != 1 || !strings.Contains(r.stderr, `"Nope"`) {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
		})
	})
}

// settled runs the command until it prints want or 30 s have passed:
// PostgreSQL shows readers the notifications below the oldest transaction
// in flight in the cluster, and other tests' transactions may hold back the
// last ones for a moment.
func settled(t *testing.T, s store, want string, args ...string) result {
	t.Helper()
	r := s.run(t, args...)
	for deadline := time.Now().Add(30 * time.Second); s.name == "postgres" && r.stdout != want && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		r = s.run(t, args...)
	}
	return r
}

func TestVerifyFindsEachKindOfDamage(t *testing.T) {
	key, _ := persistence.CreateKey(32)
	type want struct {
		kind, app string
		world     bool  // the aggregate is the first world
		version   int64 // 0: none
		message   string
	}
	for _, c := range []struct {
		name   string
		damage []string
		want   []want
	}{{
		name:   "a version deleted is a gap",
		damage: []string{"DELETE FROM {t}worlds_events WHERE notification_id = " + nth(4)},
		want:   []want{{"versions", "Worlds", true, 4, "version 4 is missing (it has versions up to 21)"}},
	}, {
		name:   "an event's created event deleted is a gap at the start",
		damage: []string{"DELETE FROM {t}worlds_events WHERE notification_id = " + nth(1)},
		want:   []want{{"versions", "Worlds", true, 1, "version 1 is missing (it has versions up to 21)"}},
	}, {
		name:   "an unknown topic does not decode",
		damage: []string{"UPDATE {t}worlds_events SET topic = 'World.Vanished' WHERE notification_id = " + nth(5)},
		want:   []want{{"decode", "Worlds", true, 5, "unknown topic \"World.Vanished\""}},
	}, {
		name:   "corrupt bytes do not decode",
		damage: []string{"UPDATE {t}worlds_events SET state = " + hexBytes("0102030405") + " WHERE notification_id = " + nth(6)},
		want:   []want{{"decode", "Worlds", true, 6, "corrupt"}},
	}, {
		name: "swapped notification IDs are out of order",
		damage: []string{
			// Both negative, then each given the other's ID.
			"UPDATE {t}worlds_events SET notification_id = -notification_id WHERE notification_id IN (" + nth(8) + ", " + nth(9) + ")",
			"UPDATE {t}worlds_events SET notification_id = notification_id + (SELECT -min(notification_id) FROM {t}worlds_events WHERE notification_id < 0)" +
				" + (SELECT -max(notification_id) FROM {t}worlds_events WHERE notification_id < 0) WHERE notification_id < 0",
		},
		want: []want{{"order", "Worlds", true, 8, "version 8 has notification "}},
	}, {
		name:   "a tracking record beyond the upstream's log is ahead",
		damage: []string{"INSERT INTO {t}counters_tracking (tenant, application_name, notification_id) VALUES ('', 'Worlds', 9000000000000000)"},
		want:   []want{{"tracking", "Counters", false, 0, "Counters tracks notification 9000000000000000 of Worlds, whose log ends at "}},
	}, {
		name:   "a snapshot moved to another version is unlike a rebuild",
		damage: []string{"UPDATE {t}worlds_snapshots SET originator_version = 20 WHERE originator_id = (SELECT originator_id FROM {t}worlds_events WHERE notification_id = " + nth(1) + ")"},
		want:   []want{{"snapshot", "Worlds", true, 20, "it differs from the aggregate rebuilt from its events: state {"}},
	}, {
		name:   "a snapshot with corrupt bytes does not decode",
		damage: []string{"UPDATE {t}worlds_snapshots SET state = " + hexBytes("0102030405") + " WHERE originator_id = (SELECT originator_id FROM {t}worlds_events WHERE notification_id = " + nth(1) + ")"},
		want:   []want{{"snapshot", "Worlds", true, 21, "corrupt"}},
	}} {
		t.Run(c.name, func(t *testing.T) {
			forSQLStores(t, func(t *testing.T, s store) {
				s = verifyStore(t, s, key)
				world := demoWorld(t, s, 0)
				damage(t, s, slicesClone(c.damage)...)
				rep := verifyJSON(t, s, nil, 1)
				if len(rep.Problems) != len(c.want) {
					t.Fatalf("problems %+v, want %+v", rep.Problems, c.want)
				}
				for i, w := range c.want {
					p := rep.Problems[i]
					if p.Kind != w.kind || p.Application != w.app || !strings.Contains(p.Message, w.message) {
						t.Fatalf("problem %+v, want %+v", p, w)
					}
					if w.world && (p.AggregateID == nil || *p.AggregateID != world || !strings.Contains(p.Message, world)) {
						t.Fatalf("problem %+v does not name world %s", p, world)
					}
					if (w.version == 0) != (p.Version == nil) || (p.Version != nil && *p.Version != w.version) {
						t.Fatalf("problem %+v, want version %d", p, w.version)
					}
				}
				r := s.run(t, "verify")
				if r.code != 1 || r.stderr != "Error: the store has problems: found 1 problem(s)\n" ||
					!strings.HasPrefix(r.stdout, c.want[0].kind+" "+c.want[0].app+": ") || !strings.HasSuffix(r.stdout, ": 1 problem(s).\n") {
					t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
				}
			})
		})
	}
}

var hexLiteral = regexp.MustCompile(`X'([0-9a-f]*)'`)

func slicesClone(s []string) []string { return append([]string(nil), s...) }

// hexBytes is a bytes literal that SQLite and PostgreSQL both read.
func hexBytes(h string) string { return "X'" + h + "'" }

// On a terminal, verify draws its progress on stderr; piped, it does not
// (checked by TestVerify's exact stderr).
func TestVerifyProgressOnATerminal(t *testing.T) {
	s := sqliteStore(t)
	s.ok(t, "demo")
	s.ok(t, "snapshot", "create")
	script, err := exec.LookPath("script")
	if err != nil {
		t.Skip("script (util-linux) is not installed: no terminal to test on")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, script, "-qec", binary+" verify", "/dev/null")
	cmd.Env, cmd.Dir = environ(s.env), s.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %q", err, out)
	}
	got := strings.ReplaceAll(string(out), "\r\n", "\n")
	for _, want := range []string{
		"\r\033[K[                              ] 0/63 Worlds notifications",
		"\r\033[K[==============================] 63/63 Worlds notifications",
		"\r\033[K[==============================] 6/6 Counters aggregates",
		"\r\033[KVerified Worlds, Counters: 129 notification(s), 9 aggregate(s), 9 snapshot(s), 1 tracking position(s): no problems.\n",
	} {
		if !strings.Contains(got, want) {
			t.Fatalf("terminal output %q lacks %q", got, want)
		}
	}
}

func TestVerifyReadsEveryTenant(t *testing.T) {
	key, _ := persistence.CreateKey(32)
	forSQLStores(t, func(t *testing.T, s store) {
		s = verifyStore(t, s, key)
		ctx := context.Background()
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
		_ = world.MakeItSo("more")
		if _, err := acme.Save(ctx, world); err != nil {
			t.Fatal(err)
		}
		w.Close()
		damage(t, s, "DELETE FROM {t}worlds_events WHERE tenant = 'acme' AND originator_version = 2")
		rep := verifyJSON(t, s, nil, -1)
		// PostgreSQL shows readers the notifications below the oldest
		// transaction in flight in the cluster: other tests' may hold back
		// acme's for a moment.
		for deadline := time.Now().Add(30 * time.Second); rep.Notifications < 131 && time.Now().Before(deadline); {
			time.Sleep(200 * time.Millisecond)
			rep = verifyJSON(t, s, nil, -1)
		}
		if rep.Notifications != 131 {
			t.Fatalf("report %+v", rep)
		}
		if len(rep.Problems) != 1 {
			t.Fatalf("problems %+v", rep.Problems)
		}
		p := rep.Problems[0]
		if p.Kind != "versions" || p.Tenant != "acme" || *p.AggregateID != world.ID().String() || *p.Version != 2 ||
			p.Message != "aggregate "+world.ID().String()+": version 2 is missing (it has versions up to 3)" {
			t.Fatalf("problem %+v", p)
		}
		if r := s.run(t, "verify"); !strings.HasPrefix(r.stdout, `versions Worlds tenant="acme": aggregate `) {
			t.Fatalf("stdout:\n%s", r.stdout)
		}
	})
}

// A SQLite row whose originator ID is not a UUID is a notification with
// the nil ID: it is named by its notification ID, and its aggregate lacks
// the version.
func TestVerifyNamesARowWithADamagedOriginatorID(t *testing.T) {
	key, _ := persistence.CreateKey(32)
	s := verifyStore(t, sqliteStore(t), key)
	world := demoWorld(t, s, 0)
	damage(t, s, "UPDATE {t}worlds_events SET originator_id = X'00' WHERE notification_id = "+nth(3))
	rep := verifyJSON(t, s, nil, 1)
	if len(rep.Problems) != 2 {
		t.Fatalf("problems %+v", rep.Problems)
	}
	if p := rep.Problems[0]; p.Kind != "decode" || p.AggregateID != nil || *p.Version != 3 || p.NotificationID != 3 ||
		p.Message != "notification 3 (version 3, World.SomethingHappened): the stored originator ID is missing or damaged" {
		t.Fatalf("problem %+v", p)
	}
	if p := rep.Problems[1]; p.Kind != "versions" || *p.AggregateID != world || *p.Version != 3 {
		t.Fatalf("problem %+v", p)
	}
}

// Verify opens stores read-only: in an empty directory it creates no
// database, and it verifies a store on a read-only mount.
func TestVerifyWritesNothing(t *testing.T) {
	empty := store{name: "empty", dir: t.TempDir()}
	r := empty.run(t, "verify")
	if r.code != 1 || !strings.Contains(r.stderr, "no database file") {
		t.Fatalf("strata verify in an empty directory: exit %d, stderr %q", r.code, r.stderr)
	}
	if entries, _ := os.ReadDir(empty.dir); len(entries) != 0 {
		t.Fatalf("strata verify created %d files", len(entries))
	}

	s := store{name: "worlds", dir: t.TempDir()}
	s.ok(t, "demo")
	s.ok(t, "snapshot", "create")
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
	want := s.ok(t, "verify")
	if got := ro.ok(t, "verify"); !slices.Equal(got, want) {
		t.Fatalf("strata verify on a read-only mount printed %q, want %q", got, want)
	}
}

// A follower's parked records are sound events of its own store: only the
// notification it parked is a problem, in its upstream.
func TestVerifyUnderstandsParkedRecords(t *testing.T) {
	ctx := context.Background()
	s := sqliteStore(t)
	s.ok(t, "demo")
	app, err := worlds.New(ctx, application.WithEnv(s.env), application.WithoutProcessEnv())
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.New()
	ids, err := app.Recorder().InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: id, OriginatorVersion: 1, Topic: "World.Unknown", State: []byte("{}")}})
	app.Close()
	if err != nil {
		t.Fatal(err)
	}
	sys, err := system.New(domains()[0].Applications, domains()[0].Pipes...)
	if err != nil {
		t.Fatal(err)
	}
	r := system.NewSingleThreadedRunner(sys, system.WithEnv(s.env), system.WithPoisonPolicy(system.ParkPoison), system.WithLogger(slog.New(slog.DiscardHandler)))
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	r.Stop(ctx)
	if out := s.ok(t, "parked"); len(out) != 1 {
		t.Fatalf("strata parked: %q", out)
	}
	rep := verifyJSON(t, s, nil, 1)
	if len(rep.Problems) != 1 || rep.Notifications != 131 {
		t.Fatalf("report %+v", rep)
	}
	p := rep.Problems[0]
	if p.Kind != "decode" || p.Application != "Worlds" || *p.AggregateID != id.String() || p.NotificationID != ids[0] ||
		!strings.Contains(p.Message, `unknown topic "World.Unknown"`) {
		t.Fatalf("problem %+v", p)
	}
}

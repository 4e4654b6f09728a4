package main

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/strata-go/strata/examples/counters"
	"github.com/strata-go/strata/examples/worlds"
)

func TestTruncate(t *testing.T) {
	forSQLStores(t, func(t *testing.T, s store) {
		demo(t, s, 0)
		s.ok(t, "snapshot", "create")
		// Each counter's increments are commits of their own; a world's
		// events are one commit, which truncation keeps whole.
		expect(t, s.run(t, "truncate", "--aggregate", "Counter"), 0, "Truncated 6 of 6 Counter stream(s) with a snapshot: 60 event(s) deleted.\n", "")
		expect(t, s.run(t, "truncate", "--aggregate", "World"), 0, "Truncated 0 of 3 World stream(s) with a snapshot: 0 event(s) deleted.\n", "")
		expect(t, s.run(t, "truncate", "--aggregate", "Counter"), 0, "Truncated 0 of 6 Counter stream(s) with a snapshot: 0 event(s) deleted.\n", "")

		r := s.run(t, "verify")
		if r.code != 0 || !strings.HasSuffix(r.stdout, "9 aggregate(s) (6 truncated), 9 snapshot(s), 1 tracking position(s): no problems.\n") {
			t.Fatalf("verify a truncated store: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		// The counters load from their snapshots and go on counting.
		demo(t, s, 1)
		if r := s.run(t, "verify"); r.code != 0 {
			t.Fatalf("verify after counting on: %s%s", r.stdout, r.stderr)
		}
		id := counters.CounterID("trucks").String()
		out := s.ok(t, "events", "--aggregate", "Counter", "--identifier", id)
		if len(out) == 0 || !strings.HasPrefix(out[0], "v12 ") {
			t.Fatalf("events of a truncated counter start with\n%s", strings.Join(out, "\n"))
		}
		expect(t, s.run(t, "snapshot", "create", "--aggregate", "Counter", "--identifier", id), 0,
			"Snapshot created for Counter with identifier "+id+".\n", "")
		// Truncated counters have no created event in the log any more:
		// their snapshots find them.
		expect(t, s.run(t, "snapshot", "create", "--aggregate", "Counter"), 0, "Created 6 snapshot(s) for Counter.\n", "")

		t.Run("verify finds a truncated stream without a snapshot", func(t *testing.T) {
			damage(t, s, "DELETE FROM {t}counters_snapshots")
			rep := verifyJSON(t, s, nil, 1)
			n := 0
			for _, p := range rep.Problems {
				if p.Kind == "versions" && strings.Contains(p.Message, ": truncated before version ") && strings.HasSuffix(p.Message, "it cannot be loaded") {
					n++
				}
			}
			if n != 6 {
				t.Fatalf("%d problems of truncated streams without snapshots, want 6: %+v", n, rep.Problems)
			}
		})
	})
}

func TestTruncateArchives(t *testing.T) {
	s := sqliteStore(t)
	demo(t, s, 0)
	s.ok(t, "snapshot", "create")
	archive := sqliteStore(t)
	expect(t, s.run(t, "truncate", "--aggregate", "Counter", "--archive", archive.env["SQLITE_DBNAME"]), 0,
		"Truncated 6 of 6 Counter stream(s) with a snapshot: 60 event(s) archived to "+archive.desc+", then deleted.\n", "")
	// The archive holds each counter's first versions, and is sound.
	if r := archive.run(t, "verify"); r.code != 0 || !strings.HasSuffix(r.stdout, "6 aggregate(s), 0 snapshot(s), 1 tracking position(s): no problems.\n") {
		t.Fatalf("verify the archive: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	id := counters.CounterID("trucks").String()
	out := archive.ok(t, "events", "--aggregate", "Counter", "--identifier", id)
	if len(out) != 11 || !strings.HasPrefix(out[0], "v1 ") || !strings.HasPrefix(out[10], "v11 ") {
		t.Fatalf("archived events of a counter:\n%s", strings.Join(out, "\n"))
	}
	if r := s.run(t, "verify"); r.code != 0 {
		t.Fatalf("verify the truncated store: %s%s", r.stdout, r.stderr)
	}
}

func TestTruncateWaitsForFollowers(t *testing.T) {
	s := sqliteStore(t)
	demo(t, s, 0)
	ctx := context.Background()
	app := worldsApp(t, s)
	w, err := worlds.NewWorld()
	if err != nil {
		t.Fatal(err)
	}
	for _, what := range []string{"dinosaurs", "trucks", "internet"} {
		_ = w.MakeItSo(what)
		if _, err := app.App().Save(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := app.App().TakeSnapshot(ctx, w.ID()); err != nil {
		t.Fatal(err)
	}
	app.Close()
	r := s.run(t, "truncate", "--aggregate", "World")
	if r.code != 1 || !regexp.MustCompile(`^Error: truncate World after 0 stream\(s\): followers have not processed everything: Counters has processed Worlds up to notification 63, not 67; run it first, or force\n$`).MatchString(r.stderr) {
		t.Fatalf("truncate while Counters lags: exit %d, stderr %q", r.code, r.stderr)
	}
	expect(t, s.run(t, "truncate", "--aggregate", "World", "--force"), 0, "Truncated 1 of 1 World stream(s) with a snapshot: 3 event(s) deleted.\n", "")
	// Counters goes past the truncated positions and counts the rest.
	s.ok(t, "demo")
	if r := s.run(t, "verify"); r.code != 0 {
		t.Fatalf("verify: %s%s", r.stdout, r.stderr)
	}
}

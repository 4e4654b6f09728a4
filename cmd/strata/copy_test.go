package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/domain"
	"github.com/strata-go/strata/examples/worlds"
	"github.com/strata-go/strata/internal/mytest"
	"github.com/strata-go/strata/internal/pgtest"
	"github.com/strata-go/strata/persistence"
)

// storeArg is s as an argument of --from, --to or --archive.
func storeArg(s store) string {
	keys := slices.Sorted(maps.Keys(s.env))
	var kv []string
	for _, k := range keys {
		if strings.HasPrefix(k, "CIPHER_") {
			continue // the command's own environment, not the store's
		}
		kv = append(kv, k+"="+s.env[k])
	}
	return strings.Join(kv, ",")
}

// rawLog returns the log of the application in s as the copy must keep
// it: every tenant's notifications in order, without their IDs (which
// are each store's own).
func rawLog(t *testing.T, s store, name string) []string {
	t.Helper()
	env := maps.Clone(s.env)
	env["READ_ONLY"] = "y"
	app, err := application.New(context.Background(), name, application.WithEnv(env), application.WithoutProcessEnv())
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	var out []string
	for n, err := range persistence.ReadNotifications(context.Background(), app.Recorder(), persistence.NotificationQuery{Start: 1, AllTenants: true}, 500) {
		if err != nil {
			t.Fatal(err)
		}
		h := slices.Sorted(maps.Keys(n.Headers))
		var hs []string
		for _, k := range h {
			hs = append(hs, k+"="+n.Headers[k])
		}
		out = append(out, fmt.Sprintf("%q %s v%d %s %s %s [%s]", n.Tenant, n.OriginatorID, n.OriginatorVersion, n.Topic, hex.EncodeToString(n.State), n.CommitID, strings.Join(hs, " ")))
	}
	return out
}

var copiedLine = regexp.MustCompile(`^Copied (\d+) notification\(s\) in (\d+) commit\(s\), (\d+) snapshot\(s\) and key\(s\), (\d+) tracking record\(s\)$`)

func TestCopyTheDemoStoresFromSQLiteToPostgreSQL(t *testing.T) {
	key, _ := persistence.CreateKey(32)
	src, dst := sqliteStore(t), postgresStore(t)
	src.env["CIPHER_KEY"], dst.env["CIPHER_KEY"] = key, key
	apps := map[string][]string{"worlds": {"Worlds", "Counters"}, "wiki": {"Wiki"}, "bank": {"BankAccounts", "Ledger"}, "cargo": {"BookingApplication"}}
	for _, d := range []string{"worlds", "wiki", "bank", "cargo"} {
		src.ok(t, "demo", "--domain", d)
		src.ok(t, "snapshot", "create", "--domain", d)
	}
	src.ok(t, "demo") // more worlds after the snapshots
	op := store{name: "operator", dir: t.TempDir(), env: map[string]string{"CIPHER_KEY": key}}
	for _, d := range []string{"worlds", "wiki", "bank", "cargo"} {
		t.Run(d, func(t *testing.T) {
			out := op.ok(t, "copy", "--domain", d, "--from", src.env["SQLITE_DBNAME"], "--to", storeArg(dst))
			if len(out) != 3 || !copiedLine.MatchString(out[0]) || out[1] != "from "+src.desc+" to "+dst.desc+"." ||
				!strings.HasSuffix(out[2], ": no problems.") {
				t.Fatalf("copy of %s:\n%s", d, strings.Join(out, "\n"))
			}
			for _, app := range apps[d] {
				if got, want := rawLog(t, dst, app), rawLog(t, src, app); !slices.Equal(got, want) || len(want) == 0 {
					t.Fatalf("%s: the target's log (%d notifications) is not the source's (%d)", app, len(got), len(want))
				}
			}
			if r := dst.run(t, "verify", "--domain", d); r.code != 0 || !strings.HasSuffix(r.stdout, ": no problems.\n") {
				t.Fatalf("verify the target: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
		})
	}
	t.Run("a second run copies nothing more", func(t *testing.T) {
		out := op.ok(t, "copy", "--from", src.env["SQLITE_DBNAME"], "--to", storeArg(dst))
		if len(out) != 5 || !strings.HasPrefix(out[0], "Resumed the copy of Worlds after notification ") ||
			!strings.HasPrefix(out[2], "Copied 0 notification(s) in 0 commit(s), ") {
			t.Fatalf("second copy:\n%s", strings.Join(out, "\n"))
		}
	})

	// The followers go on in the target where they were: Counters counts
	// the target's new worlds only.
	dst.ok(t, "demo")
	if r := dst.run(t, "verify"); r.code != 0 {
		t.Fatalf("verify after the demo ran on the copy: %s%s", r.stdout, r.stderr)
	}
	counters := func(s store) []string {
		var out []string
		for _, l := range s.ok(t, "demo")[3:] {
			if strings.HasPrefix(l, "  ") {
				out = append(out, l)
			}
		}
		return out
	}
	src.ok(t, "demo") // the source has as many demo runs as the target now
	if a, b := counters(src), counters(dst); !slices.Equal(a, b) {
		t.Fatalf("the counters of the copy went their own way:\nsource:\n%s\ntarget:\n%s", strings.Join(a, "\n"), strings.Join(b, "\n"))
	}

	t.Run("then from PostgreSQL to MySQL", func(t *testing.T) {
		my := store{name: "mysql", env: mytest.Env(t), dir: t.TempDir()}
		my.env["CIPHER_KEY"] = key
		for _, d := range []string{"worlds", "bank"} {
			out := op.ok(t, "copy", "--domain", d, "--from", storeArg(dst), "--to", storeArg(my))
			if !strings.HasSuffix(out[len(out)-1], ": no problems.") {
				t.Fatalf("copy of %s:\n%s", d, strings.Join(out, "\n"))
			}
			for _, app := range apps[d] {
				if got, want := rawLog(t, my, app), rawLog(t, dst, app); !slices.Equal(got, want) {
					t.Fatalf("%s: the MySQL log (%d notifications) is not PostgreSQL's (%d)", app, len(got), len(want))
				}
			}
		}
	})
	t.Run("a target written to after a copy is refused", func(t *testing.T) {
		src.ok(t, "demo")
		r := op.run(t, "copy", "--from", src.env["SQLITE_DBNAME"], "--to", storeArg(dst))
		if r.code != 1 || !strings.Contains(r.stderr, "the target store is not empty: its log of Worlds does not end where the copy stopped") {
			t.Fatalf("copy to a store written to since: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("a target with other events is refused", func(t *testing.T) {
		other := sqliteStore(t)
		other.ok(t, "demo")
		r := op.run(t, "copy", "--from", src.env["SQLITE_DBNAME"], "--to", other.env["SQLITE_DBNAME"])
		if r.code != 1 || !strings.Contains(r.stderr, "the target store is not empty: it has events of Worlds (notification 1) and no checkpoint of a copy") {
			t.Fatalf("copy to a store with events: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("wrong command lines", func(t *testing.T) {
		for args, msg := range map[string]string{
			"copy --to x.db":                           `required flag(s) "from" not set`,
			"copy --from a.db --to a.db":               "--from and --to are the same store",
			"copy --from a.db --to X=1,=2":             `--to: store "X=1,=2": "=2" is not VAR=VALUE`,
			"copy --from a.db --to b.db --tenant acme": "copy copies every tenant's data",
		} {
			r := op.run(t, strings.Fields(args)...)
			if r.code != 2 || !strings.Contains(r.stderr, msg) {
				t.Errorf("strata %s: exit %d, stderr %q, want 2 and %q", args, r.code, r.stderr, msg)
			}
		}
	})
}

// bigStore fills s with many small commits of worlds, some of them in a
// tenant and with headers, for copies that take long enough to interrupt.
func bigStore(t *testing.T, s store) {
	t.Helper()
	ctx := context.Background()
	app := worldsApp(t, s)
	acme, err := app.App().ForTenant("acme")
	if err != nil {
		t.Fatal(err)
	}
	var ws []*worlds.World
	for i := range 600 {
		w, err := worlds.NewWorld()
		if err != nil {
			t.Fatal(err)
		}
		_ = w.MakeItSo(fmt.Sprint("thing ", i))
		target := app.App()
		if i%5 == 0 {
			target = acme
		}
		if _, err := target.SaveCommit(ctx, application.Commit{Headers: persistence.Headers{"user": fmt.Sprint("u", i%7)}}, w); err != nil {
			t.Fatal(err)
		}
		ws = append(ws, w)
	}
	// Saves of several aggregates: one commit of many notifications.
	var batch []domain.Root
	for i, w := range ws[:40] {
		if i%5 != 0 { // the default tenant's
			_ = w.MakeItSo("again")
			batch = append(batch, w)
		}
	}
	if _, err := app.App().Save(ctx, batch...); err != nil {
		t.Fatal(err)
	}
	if _, err := app.App().TakeSnapshot(ctx, ws[1].ID()); err != nil {
		t.Fatal(err)
	}
}

// checkpoints counts the commits a copy recorded in the PostgreSQL store
// s, or returns 0 if it has not created its tables yet.
func checkpoints(t *testing.T, s store) int64 {
	t.Helper()
	n, err := pgtest.QueryInt("SELECT count(*) FROM " + s.env["POSTGRES_SCHEMA"] + ".worlds_tracking WHERE application_name = 'strata copy'")
	if err != nil {
		return 0
	}
	return n
}

func TestAnInterruptedCopyResumesWithTheSameResult(t *testing.T) {
	src := sqliteStore(t)
	bigStore(t, src)
	op := store{name: "operator", dir: t.TempDir()}
	whole := postgresStore(t)
	op.ok(t, "copy", "--from", src.env["SQLITE_DBNAME"], "--to", storeArg(whole))
	want := rawLog(t, src, "Worlds")
	if got := rawLog(t, whole, "Worlds"); !slices.Equal(got, want) {
		t.Fatalf("an uninterrupted copy has %d notifications, the source %d", len(got), len(want))
	}

	for name, sig := range map[string]os.Signal{"killed": syscall.SIGKILL, "interrupted": os.Interrupt} {
		t.Run(name, func(t *testing.T) {
			dst := postgresStore(t)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := op.command(ctx, nil, "copy", "--from", src.env["SQLITE_DBNAME"], "--to", storeArg(dst))
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			for deadline := time.Now().Add(30 * time.Second); checkpoints(t, dst) < 100; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					t.Fatal("not 100 commits copied after 30s")
				}
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			copied := checkpoints(t, dst)
			if copied >= 601 {
				t.Fatalf("the copy had ended (%d commits) before it was %s", copied, name)
			}
			t.Logf("%s after %d of 601 commits", name, copied)
			if sig == os.Interrupt {
				msg := regexp.MustCompile(`^Interrupted after copying \d+ notification\(s\) in \d+ commit\(s\); run the same command again to go on\.\n$`)
				if code := cmd.ProcessState.ExitCode(); code != 130 || !msg.MatchString(stderr.String()) {
					t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
				}
			}
			out := op.ok(t, "copy", "--from", src.env["SQLITE_DBNAME"], "--to", storeArg(dst))
			if !strings.HasPrefix(out[0], "Resumed the copy of Worlds after notification ") || !strings.HasSuffix(out[len(out)-1], ": no problems.") {
				t.Fatalf("the copy again:\n%s", strings.Join(out, "\n"))
			}
			if got := rawLog(t, dst, "Worlds"); !slices.Equal(got, want) {
				t.Fatalf("after the copy was %s and run again the target has %d notifications, an uninterrupted copy %d", name, len(got), len(want))
			}
			if a, b := checkpoints(t, dst), checkpoints(t, whole); a != b {
				t.Fatalf("%d commits in the resumed copy, %d in the uninterrupted one", a, b)
			}
		})
	}
}

// Encrypted with a data key per tenant, a copy decodes in the target with
// the same master key: the keys are copied.
func TestCopyKeepsTenantsAndDataKeys(t *testing.T) {
	key, _ := persistence.CreateKey(32)
	keys := map[string]string{"CIPHER_KEY": key, "CIPHER_DATA_KEYS": "tenant"}
	src, dst := sqliteStore(t), sqliteStore(t)
	maps.Copy(src.env, keys)
	maps.Copy(dst.env, keys)
	src.ok(t, "demo")
	app := worldsApp(t, src)
	view, err := app.App().ForTenant("acme")
	if err != nil {
		t.Fatal(err)
	}
	w, _ := worlds.NewWorld()
	_ = w.MakeItSo("tenants")
	if _, err := view.Save(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	app.Close()
	acme := w.ID().String()
	op := store{name: "operator", dir: t.TempDir(), env: keys}
	out := op.ok(t, "copy", "--from", src.env["SQLITE_DBNAME"], "--to", dst.env["SQLITE_DBNAME"])
	if want := "Copied 131 notification(s) in 64 commit(s), 3 snapshot(s) and key(s), 63 tracking record(s)"; out[0] != want {
		t.Fatalf("copy:\n%s\nwant first %q", strings.Join(out, "\n"), want)
	}
	// verify decoded every event of every tenant with the copied keys.
	if last := out[len(out)-1]; !strings.HasSuffix(last, "131 notification(s), 10 aggregate(s), 0 snapshot(s), 1 tracking position(s): no problems.") {
		t.Fatalf("verify of the copy: %q", last)
	}
	events := []string{"events", "--tenant", "acme", "--aggregate", "World", "--identifier", acme}
	if a, b := src.ok(t, events...), dst.ok(t, events...); !slices.Equal(a, b) || len(a) != 2 {
		t.Fatalf("the events of a world of tenant acme in the target (%d lines) are not the source's (%d)", len(b), len(a))
	}
	for _, app := range []string{"Worlds", "Counters"} {
		if a, b := rawLog(t, src, app), rawLog(t, dst, app); !slices.Equal(a, b) {
			t.Fatalf("%s: the target's log (%d notifications) is not the source's (%d)", app, len(b), len(a))
		}
	}
}

// On PostgreSQL a commit shows in the log only once the transactions that
// began before it have ended, in any database of the cluster. A copy
// reads the target's log back after writing it: it waits for an older
// transaction to end instead of taking its own commits for missing, and
// past --visible-within it fails naming the backend that holds it back.
func TestACopyWaitsForAnOlderTransactionOfTheTarget(t *testing.T) {
	ctx := context.Background()
	src := sqliteStore(t)
	src.ok(t, "demo")
	op := store{name: "operator", dir: t.TempDir(), env: map[string]string{}}
	hold := func(t *testing.T) (pid int, release func()) {
		conn, err := pgx.Connect(ctx, pgtest.URL())
		if err != nil {
			t.Fatal(err)
		}
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// A transaction ID makes it one that later commits wait for.
		var xid string
		if err := tx.QueryRow(ctx, "SELECT pg_backend_pid(), pg_current_xact_id()::text").Scan(&pid, &xid); err != nil {
			t.Fatal(err)
		}
		var once sync.Once
		release = func() {
			once.Do(func() {
				tx.Rollback(ctx)
				conn.Close(ctx)
			})
		}
		t.Cleanup(release)
		return pid, release
	}

	t.Run("it waits", func(t *testing.T) {
		dst := postgresStore(t)
		_, release := hold(t)
		time.AfterFunc(2*time.Second, release)
		out := op.ok(t, "copy", "--from", src.env["SQLITE_DBNAME"], "--to", storeArg(dst))
		if !copiedLine.MatchString(out[0]) || !strings.HasSuffix(out[len(out)-1], ": no problems.") {
			t.Fatalf("copy while an older transaction ran:\n%s", strings.Join(out, "\n"))
		}
		for _, app := range []string{"Worlds", "Counters"} {
			if got, want := rawLog(t, dst, app), rawLog(t, src, app); !slices.Equal(got, want) {
				t.Fatalf("%s: the target's log (%d notifications) is not the source's (%d)", app, len(got), len(want))
			}
		}
	})
	t.Run("past --visible-within it names the holder", func(t *testing.T) {
		dst := postgresStore(t)
		pid, _ := hold(t)
		r := op.run(t, "copy", "--visible-within", "300ms", "--from", src.env["SQLITE_DBNAME"], "--to", storeArg(dst))
		// The holder named is this test's, or an even older transaction of
		// another program on the same server.
		if r.code != 1 || !strings.Contains(r.stderr, "which the copy wrote, does not show in the target's log after 300ms") ||
			!strings.Contains(r.stderr, "a transaction of backend ") {
			t.Fatalf("copy held back by backend %d past --visible-within: exit %d\n%s%s", pid, r.code, r.stdout, r.stderr)
		}
	})
}

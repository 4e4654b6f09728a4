package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/strata-go/strata/persistence"
)

// These tests hold whichever driver the package is built with (see
// driver.go): run them with and without -tags strata_sqlite_cgo.

func openConfig(t *testing.T, c Config) *Factory {
	t.Helper()
	if c.AppName == "" {
		c.AppName = "Driver"
	}
	f, err := Open(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// pragmas returns the values of the pragmas on each of n connections of
// db at once, so that every connection of a pool is seen, not one reused.
func pragmas(t *testing.T, db *sql.DB, n int, names ...string) []map[string]string {
	t.Helper()
	ctx := context.Background()
	var out []map[string]string
	for range n {
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		got := map[string]string{}
		for _, name := range names {
			var v string
			if err := conn.QueryRowContext(ctx, "PRAGMA "+name).Scan(&v); err != nil {
				t.Fatalf("PRAGMA %s: %v", name, err)
			}
			got[name] = v
		}
		out = append(out, got)
	}
	return out
}

func checkPragmas(t *testing.T, pool string, db *sql.DB, n int, want map[string]string) {
	t.Helper()
	names := make([]string, 0, len(want))
	for name := range want {
		names = append(names, name)
	}
	for i, got := range pragmas(t, db, n, names...) {
		for name, w := range want {
			if got[name] != w {
				t.Errorf("%s connection %d: PRAGMA %s = %s, want %s", pool, i, name, got[name], w)
			}
		}
	}
}

func TestConnectionsHaveTheAdaptersSettings(t *testing.T) {
	t.Run("a file, by default", func(t *testing.T) {
		f := openConfig(t, Config{DBName: filepath.Join(t.TempDir(), "s.db")})
		w, r := f.DB()
		// synchronous: 2 is FULL, 1 NORMAL; temp_store: 2 is MEMORY, 0
		// the default (a file).
		checkPragmas(t, "writer", w, 1, map[string]string{"journal_mode": "wal", "synchronous": "2", "busy_timeout": "5000", "foreign_keys": "1", "query_only": "0", "temp_store": "2"})
		checkPragmas(t, "reader", r, 4, map[string]string{"journal_mode": "wal", "busy_timeout": "5000", "foreign_keys": "1", "query_only": "1", "cache_size": "-8192", "temp_store": "0"})
	})
	t.Run("a file, NORMAL and a lock timeout of 2 seconds", func(t *testing.T) {
		f := openConfig(t, Config{DBName: filepath.Join(t.TempDir(), "s.db"), Synchronous: "NORMAL", LockTimeout: 2e9})
		w, r := f.DB()
		checkPragmas(t, "writer", w, 1, map[string]string{"synchronous": "1", "busy_timeout": "2000"})
		checkPragmas(t, "reader", r, 4, map[string]string{"busy_timeout": "2000", "query_only": "1"})
	})
	t.Run("a file read-only", func(t *testing.T) {
		name := filepath.Join(t.TempDir(), "s.db")
		openConfig(t, Config{DBName: name, CreateTables: true}).Close()
		f := openConfig(t, Config{DBName: name, ReadOnly: true})
		w, r := f.DB()
		if w != nil {
			t.Fatal("a read-only factory has a write pool")
		}
		checkPragmas(t, "reader", r, 4, map[string]string{"busy_timeout": "5000", "query_only": "1"})
		if _, err := r.Exec("CREATE TABLE x (y)"); err == nil || !errors.Is(classify(err), persistence.ErrOperational) {
			t.Fatalf("create a table read-only: %v (%v)", err, classify(err))
		}
	})
	t.Run("memory: one database for the pools of a factory, another for the next factory", func(t *testing.T) {
		f := openConfig(t, Config{DBName: ":memory:"})
		w, r := f.DB()
		checkPragmas(t, "writer", w, 1, map[string]string{"busy_timeout": "5000", "foreign_keys": "1"})
		checkPragmas(t, "reader", r, 3, map[string]string{"busy_timeout": "5000", "foreign_keys": "1"})
		if _, err := w.Exec("CREATE TABLE shared (x); INSERT INTO shared VALUES (42)"); err != nil {
			t.Fatal(err)
		}
		var x int
		if err := r.QueryRow("SELECT x FROM shared").Scan(&x); err != nil || x != 42 {
			t.Fatalf("the reader of the writer's memory database: %d, %v", x, err)
		}
		_, other := openConfig(t, Config{DBName: ":memory:"}).DB()
		if err := other.QueryRow("SELECT x FROM shared").Scan(&x); err == nil {
			t.Fatal("a second in-memory factory sees the first one's table")
		}
	})
}

// A write transaction takes the write lock when it begins (BEGIN
// IMMEDIATE), so that it cannot fail later on a lock another took; a
// writer that finds the lock taken gets SQLITE_BUSY, an operational error.
func TestWriteTransactionsTakeTheLockWhenTheyBegin(t *testing.T) {
	name := filepath.Join(t.TempDir(), "s.db")
	w, _ := openConfig(t, Config{DBName: name}).DB()
	tx, err := w.Begin()
	if err != nil {
		t.Fatal(err)
	}
	// Another process's writer, which does not wait.
	other, err := openDB(dsn(name, connOptions{immediate: true, wal: true}))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	_, err = other.Begin()
	if code, _ := resultCode(err); code&0xff != codeBusy || !errors.Is(classify(err), persistence.ErrOperational) {
		t.Fatalf("begin while a transaction that wrote nothing yet is open: %v (code %d, %v), want SQLITE_BUSY", err, code, classify(err))
	}
	tx.Rollback()
	tx2, err := other.Begin()
	if err != nil {
		t.Fatalf("begin once the lock is free: %v", err)
	}
	tx2.Rollback()
}

func TestDriverErrorsAreClassified(t *testing.T) {
	ctx := context.Background()
	w, _ := openConfig(t, Config{DBName: filepath.Join(t.TempDir(), "s.db")}).DB()
	if _, err := w.Exec("CREATE TABLE t (x UNIQUE); INSERT INTO t VALUES (1), (2)"); err != nil {
		t.Fatal(err)
	}
	t.Run("a unique constraint is an integrity error", func(t *testing.T) {
		_, err := w.Exec("INSERT INTO t VALUES (1)")
		if code, _ := resultCode(err); code != 2067 || !errors.Is(classify(err), persistence.ErrIntegrity) {
			t.Fatalf("insert a duplicate: %v (code %d, %v), want SQLITE_CONSTRAINT_UNIQUE, an integrity error", err, code, classify(err))
		}
	})
	t.Run("a table in use is locked, an operational error", func(t *testing.T) {
		conn, err := w.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		rows, err := conn.QueryContext(ctx, "SELECT x FROM t")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		if !rows.Next() {
			t.Fatal(rows.Err())
		}
		_, err = conn.ExecContext(ctx, "DROP TABLE t")
		if code, _ := resultCode(err); code&0xff != codeLocked || !errors.Is(classify(err), persistence.ErrOperational) {
			t.Fatalf("drop a table being read: %v (code %d, %v), want SQLITE_LOCKED, an operational error", err, code, classify(err))
		}
	})
	t.Run("a syntax error is a programming error", func(t *testing.T) {
		_, err := w.Exec("SELEKT 1")
		if !errors.Is(classify(err), persistence.ErrProgramming) {
			t.Fatalf("a syntax error: %v (%v)", err, classify(err))
		}
	})
	t.Run("an error of another package is not the driver's", func(t *testing.T) {
		if kind := classify(errors.New("sqlite: nothing")); kind != nil {
			t.Fatalf("classified as %v", kind)
		}
	})
}

// A statement running when its context ends is interrupted, and what the
// driver returns then is an operational error to the recorders.
func TestAStatementIsInterruptedWhenItsContextEnds(t *testing.T) {
	f := openConfig(t, Config{DBName: filepath.Join(t.TempDir(), "s.db")})
	_, r := f.DB()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rows, err := r.QueryContext(ctx, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		if n++; n == 10 {
			cancel()
		}
	}
	err = rows.Err()
	rows.Close()
	if err == nil {
		t.Fatalf("an endless query ended without error after %d rows", n)
	}
	if got := f.db.Errorf("count", err); !errors.Is(got, persistence.ErrOperational) {
		t.Fatalf("an interrupted query: %v", got)
	}
	var one int
	if err := r.QueryRow("SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("a query after the interrupted one: %d, %v", one, err)
	}
}

// States and IDs come back as they went in: an empty state, bytes that
// are not text, and a state larger than a page of the database.
func TestBlobsRoundTrip(t *testing.T) {
	ctx := context.Background()
	for _, dbname := range []string{filepath.Join(t.TempDir(), "s.db"), ":memory:"} {
		r, err := openConfig(t, Config{DBName: dbname, CreateTables: true}).ApplicationRecorder(ctx)
		if err != nil {
			t.Fatal(err)
		}
		id := uuid.New()
		big := bytes.Repeat([]byte{0, 0xff, 'x', 0x80}, 1<<18)
		states := [][]byte{{}, {0, 0xfe, 0xff, 0}, big}
		var events []persistence.StoredEvent
		for i, s := range states {
			events = append(events, persistence.StoredEvent{OriginatorID: id, OriginatorVersion: int64(i + 1), Topic: "t", State: s})
		}
		if _, err := r.InsertEvents(ctx, events); err != nil {
			t.Fatal(err)
		}
		got, err := r.SelectEvents(ctx, id, persistence.EventQuery{})
		if err != nil || len(got) != len(states) {
			t.Fatalf("%s: %d events, %v", dbname, len(got), err)
		}
		notes, err := r.SelectNotifications(ctx, persistence.NotificationQuery{Start: 1, Limit: 10})
		if err != nil || len(notes) != len(states) {
			t.Fatalf("%s: %d notifications, %v", dbname, len(notes), err)
		}
		for i, want := range states {
			for what, e := range map[string]persistence.StoredEvent{"event": got[i], "notification": notes[i].StoredEvent} {
				if !bytes.Equal(e.State, want) || e.OriginatorID != id {
					t.Errorf("%s: %s %d: %d bytes of %s, want %d bytes of %s", dbname, what, i+1, len(e.State), e.OriginatorID, len(want), id)
				}
			}
		}
	}
}

// The default build links modernc.org/sqlite and no cgo driver; the
// tagged build links the C SQLite and not modernc.
func TestEachBuildLinksOneDriver(t *testing.T) {
	for tags, want := range map[string]struct{ has, hasNot string }{
		"":                  {"modernc.org/sqlite", "github.com/mattn/go-sqlite3"},
		"strata_sqlite_cgo": {"github.com/mattn/go-sqlite3", "modernc.org/sqlite"},
	} {
		cmd := exec.Command("go", "list", "-tags", tags, "-deps", ".")
		cmd.Env = append(cmd.Environ(), "CGO_ENABLED=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go list -tags %q: %v\n%s", tags, err, out)
		}
		deps := strings.Fields(string(out))
		has := func(p string) bool {
			for _, d := range deps {
				if d == p || strings.HasPrefix(d, p+"/") {
					return true
				}
			}
			return false
		}
		if !has(want.has) || has(want.hasNot) {
			t.Errorf("tags %q: links %s: %v, %s: %v", tags, want.has, has(want.has), want.hasNot, has(want.hasNot))
		}
	}
}

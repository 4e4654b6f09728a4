package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/persistence/recordertest"
	"github.com/strata-go/strata/persistence/sqlite"
)

var apps atomic.Int64

// open returns a factory of a new application in the database.
func open(t testing.TB, dbname string) *sqlite.Factory {
	t.Helper()
	f, err := sqlite.OpenEnv(context.Background(), persistence.NewEnv(fmt.Sprintf("App%d", apps.Add(1)), map[string]string{"SQLITE_DBNAME": dbname}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func dbnames(t *testing.T) map[string]func(t testing.TB) string {
	return map[string]func(t testing.TB) string{
		"file":   func(t testing.TB) string { return filepath.Join(t.TempDir(), "events.db") },
		"memory": func(testing.TB) string { return ":memory:" },
	}
}

// features are what the SQLite module offers beyond the contract.
var features = recordertest.Features{Replace: true, Erase: true, List: true, Truncate: true, Batch: true, After: true}

func TestFactoryConforms(t *testing.T) {
	for name, dbname := range dbnames(t) {
		t.Run(name, func(t *testing.T) {
			recordertest.TestFactory(t, features, func(t *testing.T) persistence.Factory {
				f, err := sqlite.OpenEnv(context.Background(), persistence.NewEnv(fmt.Sprintf("App%d", apps.Add(1)), map[string]string{"SQLITE_DBNAME": dbname(t)}))
				if err != nil {
					t.Fatal(err)
				}
				return f
			})
		})
	}
}

func TestStress(t *testing.T) {
	for name, dbname := range dbnames(t) {
		t.Run(name, func(t *testing.T) {
			r, err := open(t, dbname(t)).ApplicationRecorder(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			res := recordertest.Stress(t, r, recordertest.StressConfig{Writers: 16, SavesPerWriter: 60})
			t.Logf("%d saves, %d events, %d conflicts in %v", res.Saves, res.Events, res.Conflicts, res.Elapsed)
		})
	}
}

func TestApplicationsShareAFileWithTablesOfTheirOwn(t *testing.T) {
	ctx := context.Background()
	dbname := filepath.Join(t.TempDir(), "shared.db")
	a, b := open(t, dbname), open(t, dbname)
	if a.Tables().Events == b.Tables().Events {
		t.Fatalf("both applications use %s", a.Tables().Events)
	}
	ra, _ := a.ApplicationRecorder(ctx)
	rb, _ := b.ApplicationRecorder(ctx)
	id := uuid.New()
	for _, r := range []persistence.ApplicationRecorder{ra, rb} {
		if _, err := r.InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: id, OriginatorVersion: 1, Topic: "t", State: []byte("x")}}); err != nil {
			t.Fatal(err)
		}
	}
	// The data is on disk: a new factory of the same application reads it.
	again, err := sqlite.OpenEnv(ctx, persistence.NewEnv("App1Again", map[string]string{"SQLITE_DBNAME": dbname}))
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	a.Close()
	b.Close()
	reopened, _ := sqlite.Open(ctx, sqlite.Config{DBName: dbname, AppName: strings.TrimSuffix(a.Tables().Events, "_events"), CreateTables: true})
	defer reopened.Close()
	r, _ := reopened.ApplicationRecorder(ctx)
	if n, err := r.MaxNotificationID(ctx); err != nil || n != 1 {
		t.Fatalf("reopened: %d %v", n, err)
	}
}

func TestConfiguration(t *testing.T) {
	ctx := context.Background()
	for vars, want := range map[string]string{
		"": "SQLITE_DBNAME is not set",
		"SQLITE_DBNAME=x.db SQLITE_LOCK_TIMEOUT=soon":       `SQLITE_LOCK_TIMEOUT="soon"`,
		"SQLITE_DBNAME=x.db SQLITE_SYNCHRONOUS=OFF":         `SQLITE_SYNCHRONOUS="OFF"`,
		"SQLITE_DBNAME=x.db CREATE_TABLE=maybe":             `CREATE_TABLE="maybe"`,
		"SQLITE_DBNAME=x.db?mode=ro":                        "may not contain",
		"APP_SQLITE_DBNAME=x.db APP_SQLITE_LOCK_TIMEOUT=-1": `APP_SQLITE_LOCK_TIMEOUT="-1"`,
	} {
		env := map[string]string{}
		for _, kv := range strings.Fields(vars) {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		_, err := persistence.OpenFactory(ctx, persistence.NewEnv("App", env, map[string]string{"PERSISTENCE_MODULE": "sqlite"}))
		if !errors.Is(err, persistence.ErrConfig) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", vars, err, want)
		}
	}
}

func TestMissingTablesAreRefusedWhenRecordersOpen(t *testing.T) {
	ctx := context.Background()
	f, err := sqlite.Open(ctx, sqlite.Config{DBName: filepath.Join(t.TempDir(), "empty.db"), AppName: "Nothing", CreateTables: false})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for name, open := range map[string]func() error{
		"application": func() error { _, err := f.ApplicationRecorder(ctx); return err },
		"process":     func() error { _, err := f.ProcessRecorder(ctx); return err },
		"snapshots":   func() error { _, err := f.AggregateRecorder(ctx, "snapshots"); return err },
	} {
		err := open()
		if !errors.Is(err, persistence.ErrNoTable) || !errors.Is(err, persistence.ErrProgramming) || !strings.Contains(err.Error(), "nothing_") || !strings.Contains(err.Error(), "does not exist") {
			t.Errorf("open the %s recorder without tables: %v", name, err)
		}
	}
}

func TestCancelledContextsAreOperationalErrors(t *testing.T) {
	r, _ := open(t, ":memory:").ApplicationRecorder(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := r.InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: uuid.New(), OriginatorVersion: 1, Topic: "t"}})
	if !errors.Is(err, persistence.ErrOperational) || !errors.Is(err, context.Canceled) {
		t.Fatalf("insert with a cancelled context: %v", err)
	}
	if n, err := r.MaxNotificationID(context.Background()); err != nil || n != 0 {
		t.Fatalf("after the cancelled insert: %d %v", n, err)
	}
}

func TestTablesOfAnotherShapeAreRefused(t *testing.T) {
	ctx := context.Background()
	for name, ddl := range map[string]struct{ sql, says string }{
		"an ID stored as text": {`CREATE TABLE shaped_events (notification_id INTEGER PRIMARY KEY, tenant TEXT NOT NULL, originator_id TEXT NOT NULL,
  originator_version INTEGER NOT NULL, topic TEXT NOT NULL, state BLOB NOT NULL, commit_id BLOB NOT NULL, headers BLOB NOT NULL,
  UNIQUE (tenant, originator_id, originator_version))`,
			"column originator_id is of type text, want blob"},
		"no unique version": {`CREATE TABLE shaped_events (notification_id INTEGER PRIMARY KEY, tenant TEXT NOT NULL, originator_id BLOB NOT NULL,
  originator_version INTEGER NOT NULL, topic TEXT NOT NULL, state BLOB NOT NULL, commit_id BLOB NOT NULL, headers BLOB NOT NULL)`,
			"no primary key or unique index on (tenant, originator_id, originator_version)"},
		"an older layout": {`CREATE TABLE shaped_events (notification_id INTEGER PRIMARY KEY, originator_id BLOB NOT NULL,
  originator_version INTEGER NOT NULL, topic TEXT NOT NULL, state BLOB NOT NULL, UNIQUE (originator_id, originator_version))`,
			"has no column tenant"},
	} {
		t.Run(name, func(t *testing.T) {
			dbname := filepath.Join(t.TempDir(), "foreign.db")
			db, err := sql.Open(sqlite.DriverName, dbname)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(ddl.sql); err != nil {
				t.Fatal(err)
			}
			db.Close()
			f, err := sqlite.OpenEnv(ctx, persistence.NewEnv("Shaped", map[string]string{"SQLITE_DBNAME": dbname}))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			_, err = f.ApplicationRecorder(ctx)
			if !errors.Is(err, persistence.ErrProgramming) || !strings.Contains(err.Error(), "shaped_events") || !strings.Contains(err.Error(), ddl.says) {
				t.Fatalf("open a recorder of a table with %s: %v, want an error that says %q", name, err, ddl.says)
			}
		})
	}
}

func TestASecondFactoryOfAFileMustAskForTheSameSettings(t *testing.T) {
	ctx := context.Background()
	dbname := filepath.Join(t.TempDir(), "shared.db")
	first := open(t, dbname)
	_ = first
	for vars, want := range map[string]string{
		"SQLITE_SYNCHRONOUS=NORMAL": "SQLITE_SYNCHRONOUS=NORMAL",
		"SQLITE_LOCK_TIMEOUT=9":     "SQLITE_LOCK_TIMEOUT=9",
	} {
		k, v, _ := strings.Cut(vars, "=")
		_, err := sqlite.OpenEnv(ctx, persistence.NewEnv("Other", map[string]string{"SQLITE_DBNAME": dbname, k: v}))
		if !errors.Is(err, persistence.ErrConfig) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "already open") {
			t.Errorf("%s on a file open with other settings: %v", vars, err)
		}
	}
	same, err := sqlite.OpenEnv(ctx, persistence.NewEnv("Other", map[string]string{"SQLITE_DBNAME": dbname, "SQLITE_SYNCHRONOUS": "full"}))
	if err != nil {
		t.Fatalf("the same settings: %v", err)
	}
	same.Close()
}

func TestAReadOnlyStoreCreatesNothingAndRefusesWrites(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	dbname := filepath.Join(dir, "store.db")
	readOnly := func(dbname string) (*sqlite.Factory, error) {
		return sqlite.OpenEnv(ctx, persistence.NewEnv("Reading", map[string]string{"SQLITE_DBNAME": dbname, "READ_ONLY": "y"}))
	}
	if _, err := readOnly(dbname); !errors.Is(err, persistence.ErrNoTable) || !strings.Contains(err.Error(), dbname) {
		t.Fatalf("open a missing file read-only: %v", err)
	}
	if _, err := os.Stat(dbname); !os.IsNotExist(err) {
		t.Fatalf("opening a missing file read-only created it: %v", err)
	}
	rw, err := sqlite.OpenEnv(ctx, persistence.NewEnv("Reading", map[string]string{"SQLITE_DBNAME": dbname}))
	if err != nil {
		t.Fatal(err)
	}
	w, err := rw.ApplicationRecorder(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.New()
	if _, err := w.InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: id, OriginatorVersion: 1, Topic: "t", State: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	rw.Close()

	check := func(t *testing.T, dbname string) {
		f, err := readOnly(dbname)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		r, err := f.ApplicationRecorder(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := r.SelectEvents(ctx, id, persistence.EventQuery{}); err != nil || len(got) != 1 {
			t.Fatalf("read a read-only store: %d events, %v", len(got), err)
		}
		if _, err := r.InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: uuid.New(), OriginatorVersion: 1, Topic: "t"}}); !errors.Is(err, persistence.ErrReadOnly) {
			t.Fatalf("write to a read-only store: %v", err)
		}
		if _, err := f.AggregateRecorder(ctx, "snapshots"); !errors.Is(err, persistence.ErrNoTable) {
			t.Fatalf("a read-only store opened a snapshots table that does not exist: %v", err)
		}
	}
	t.Run("on a writable folder", func(t *testing.T) { check(t, dbname) })
	t.Run("on a read-only mount", func(t *testing.T) {
		mnt := filepath.Join(t.TempDir(), "ro")
		if err := os.Mkdir(mnt, 0o755); err != nil {
			t.Fatal(err)
		}
		// The -shm and -wal files are gone once the last writer closed:
		// SQLite cannot make them on a read-only mount.
		if out, err := exec.Command("mount", "--bind", "-o", "ro", dir, mnt).CombinedOutput(); err != nil {
			msg := fmt.Sprintf("cannot make a read-only bind mount (%v: %s); run the tests as root to test a read-only mount", err, out)
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
		t.Cleanup(func() { exec.Command("umount", mnt).Run() })
		if err := os.WriteFile(filepath.Join(mnt, "probe"), nil, 0o644); err == nil {
			t.Fatal("the mount is writable")
		}
		check(t, filepath.Join(mnt, "store.db"))
	})
}

// Notifications are read through the driver's own rows: a row whose ID or
// headers are damaged is still read (the nil UUID, no headers), values
// stored with other types than Strata writes are read as Strata's (text
// as bytes, bytes as text), and the rows after them are read whole.
func TestNotificationsOfRowsWrittenByOthers(t *testing.T) {
	ctx := context.Background()
	f := open(t, filepath.Join(t.TempDir(), "others.db"))
	r, err := f.ApplicationRecorder(ctx)
	if err != nil {
		t.Fatal(err)
	}
	good := uuid.New()
	if _, err := r.InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: good, OriginatorVersion: 1, Topic: "t", State: []byte("first")}}); err != nil {
		t.Fatal(err)
	}
	writer, _ := f.DB()
	table := f.Tables().Events
	for _, stmt := range []string{
		// A damaged originator ID, and headers that do not decode.
		`INSERT INTO ` + table + ` (tenant, originator_id, originator_version, topic, state, commit_id, headers) VALUES ('', x'0102', 1, 't', x'aa', x'', x'ff00')`,
		// A topic and state stored as a blob and as text.
		`INSERT INTO ` + table + ` (tenant, originator_id, originator_version, topic, state, commit_id, headers) VALUES ('', x'` + fmt.Sprintf("%x", good[:]) + `', 2, CAST('blob.Topic' AS BLOB), 'text state', x'', x'')`,
	} {
		if _, err := writer.ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	got, err := r.SelectNotifications(ctx, persistence.NotificationQuery{Start: 1, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%d notifications, want 3", len(got))
	}
	if got[0].OriginatorID != good || string(got[0].State) != "first" || got[0].Topic != "t" {
		t.Errorf("the first notification: %+v", got[0])
	}
	if got[1].OriginatorID != uuid.Nil || got[1].Headers != nil || string(got[1].State) != "\xaa" {
		t.Errorf("the damaged row: ID %s, headers %v, state %q, want the nil UUID, no headers, the state", got[1].OriginatorID, got[1].Headers, got[1].State)
	}
	if got[2].OriginatorID != good || got[2].OriginatorVersion != 2 || got[2].Topic != "blob.Topic" || string(got[2].State) != "text state" {
		t.Errorf("the row of other types: %+v", got[2])
	}
	for i, n := range got {
		if n.ID <= 0 || i > 0 && n.ID <= got[i-1].ID {
			t.Errorf("notification %d has ID %d", i, n.ID)
		}
	}
}

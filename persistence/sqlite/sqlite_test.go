package sqlite_test

import (
	"context"
	"errors"
	"fmt"
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

func TestProcessRecorderConforms(t *testing.T) {
	for name, dbname := range dbnames(t) {
		t.Run(name, func(t *testing.T) {
			recordertest.TestProcessRecorder(t, func(t *testing.T) persistence.ProcessRecorder {
				r, err := open(t, dbname(t)).ProcessRecorder(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				return r
			})
		})
	}
}

func TestAggregateRecorderConforms(t *testing.T) {
	for name, dbname := range dbnames(t) {
		t.Run(name, func(t *testing.T) {
			recordertest.TestAggregateRecorder(t, func(t *testing.T) persistence.AggregateRecorder {
				r, err := open(t, dbname(t)).AggregateRecorder(context.Background(), "snapshots")
				if err != nil {
					t.Fatal(err)
				}
				return r
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

func TestMissingTablesAreAProgrammingError(t *testing.T) {
	ctx := context.Background()
	f, err := sqlite.Open(ctx, sqlite.Config{DBName: filepath.Join(t.TempDir(), "empty.db"), AppName: "Nothing", CreateTables: false})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := f.ApplicationRecorder(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: uuid.New(), OriginatorVersion: 1, Topic: "t"}})
	if !errors.Is(err, persistence.ErrProgramming) || !strings.Contains(err.Error(), "nothing_events") {
		t.Fatalf("insert without tables: %v", err)
	}
	_, err = r.SelectNotifications(ctx, persistence.NotificationQuery{Start: 1, Limit: 1})
	if !errors.Is(err, persistence.ErrProgramming) {
		t.Fatalf("select without tables: %v", err)
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

package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-go/strata/internal/pgtest"
	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/persistence/postgres"
	"github.com/strata-go/strata/persistence/recordertest"
)

var apps atomic.Int64

// open returns the factory of a new application in a fresh schema.
func open(t testing.TB, vars ...string) *postgres.Factory {
	t.Helper()
	env := pgtest.Env(t)
	for _, kv := range vars {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	f, err := postgres.OpenEnv(context.Background(), persistence.NewEnv(fmt.Sprintf("App%d", apps.Add(1)), env))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestProcessRecorderConforms(t *testing.T) {
	recordertest.TestProcessRecorder(t, func(t *testing.T) persistence.ProcessRecorder {
		r, err := open(t).ProcessRecorder(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return r
	})
}

func TestAggregateRecorderConforms(t *testing.T) {
	recordertest.TestAggregateRecorder(t, func(t *testing.T) persistence.AggregateRecorder {
		r, err := open(t).AggregateRecorder(context.Background(), "snapshots")
		if err != nil {
			t.Fatal(err)
		}
		return r
	})
}

func TestStress(t *testing.T) {
	r, err := open(t, "POSTGRES_POOL_SIZE=16").ApplicationRecorder(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	res := recordertest.Stress(t, r, recordertest.StressConfig{Writers: 16, SavesPerWriter: 60})
	t.Logf("%d saves, %d events, %d conflicts in %v", res.Saves, res.Events, res.Conflicts, res.Elapsed)
}

func TestConfiguration(t *testing.T) {
	ctx := context.Background()
	for vars, want := range map[string]string{
		"":                                                                 "POSTGRES_DBNAME is not set",
		"POSTGRES_DBNAME=x POSTGRES_PORT=http":                             `POSTGRES_PORT="http"`,
		"POSTGRES_DBNAME=x POSTGRES_PORT=70000":                            "POSTGRES_PORT=70000",
		"POSTGRES_DBNAME=x POSTGRES_POOL_SIZE=0":                           `POSTGRES_POOL_SIZE="0"`,
		"POSTGRES_DBNAME=x POSTGRES_PRE_PING=why":                          `POSTGRES_PRE_PING="why"`,
		"POSTGRES_DBNAME=x POSTGRES_CONN_MAX_AGE=old":                      `POSTGRES_CONN_MAX_AGE="old"`,
		"POSTGRES_DBNAME=x POSTGRES_LOCK_TIMEOUT=-5":                       `POSTGRES_LOCK_TIMEOUT="-5"`,
		"POSTGRES_DBNAME=x POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT=x": `POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT="x"`,
		"POSTGRES_DBNAME=x POSTGRES_SCHEMA=Drop;Table":                     `POSTGRES_SCHEMA "Drop;Table"`,
		"POSTGRES_URL=postgres://%zz":                                      "cannot parse",
		"APP_POSTGRES_DBNAME=x APP_POSTGRES_NOTIFY=sure":                   `APP_POSTGRES_NOTIFY="sure"`,
	} {
		env := map[string]string{"PERSISTENCE_MODULE": "postgres"}
		for _, kv := range strings.Fields(vars) {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		_, err := persistence.OpenFactory(ctx, persistence.NewEnv("App", env))
		if !errors.Is(err, persistence.ErrConfig) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", vars, err, want)
		}
	}
}

func TestReferenceVariablesConnect(t *testing.T) {
	pgtest.Require(t)
	schema := pgtest.Schema(t)
	f, err := postgres.OpenEnv(context.Background(), persistence.NewEnv("Worlds", map[string]string{
		"POSTGRES_DBNAME": "test", "POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": "5432", "POSTGRES_USER": "postgres",
		"POSTGRES_PASSWORD": "", "POSTGRES_CONN_MAX_AGE": "0", "POSTGRES_PRE_PING": "y", "POSTGRES_LOCK_TIMEOUT": "5",
		"POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "5", "POSTGRES_SCHEMA": schema,
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := f.ProcessRecorder(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 { // connections are used once each (POSTGRES_CONN_MAX_AGE=0)
		if _, err := r.InsertEvents(context.Background(), []persistence.StoredEvent{{OriginatorID: uuid.New(), OriginatorVersion: 1, Topic: "t", State: []byte{byte(i)}}}); err != nil {
			t.Fatal(err)
		}
	}
	var lockTimeout string
	if err := f.Pool().QueryRow(context.Background(), "SHOW lock_timeout").Scan(&lockTimeout); err != nil || lockTimeout != "5s" {
		t.Fatalf("lock_timeout %q %v", lockTimeout, err)
	}
}

func TestNotificationsWakeListeners(t *testing.T) {
	f := open(t)
	r, _ := f.ApplicationRecorder(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	prompts, err := f.Listen(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: uuid.New(), OriginatorVersion: 1, Topic: "t"}}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-prompts:
	case <-time.After(10 * time.Second):
		t.Fatal("no notification within 10s of a save")
	}
	cancel()
	for range prompts { // closed when the context ends
	}
}

// A session that holds a transaction ID holds back what readers see, and
// what it writes appears when it commits, after the notification IDs that
// readers have already read.
func TestReadersDoNotPassAnUncommittedSave(t *testing.T) {
	ctx := context.Background()
	f := open(t)
	r, _ := f.ApplicationRecorder(ctx)
	tx, err := f.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	var early int64
	// The open transaction takes its transaction ID before the next save.
	if err := tx.QueryRow(ctx, "SELECT pg_current_xact_id()::text::bigint").Scan(&early); err != nil {
		t.Fatal(err)
	}
	later := uuid.New()
	ids, err := r.InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: later, OriginatorVersion: 1, Topic: "t"}})
	if err != nil {
		t.Fatal(err)
	}
	if ns, _ := r.SelectNotifications(ctx, persistence.NotificationQuery{Start: 1, Limit: 10}); len(ns) != 0 {
		t.Fatalf("a reader sees %d notifications while an older transaction runs", len(ns))
	}
	if n, _ := r.MaxNotificationID(ctx); n != 0 {
		t.Fatalf("max notification ID %d while an older transaction runs", n)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	// Other programs' transactions may hold readers back a little longer.
	var ns []persistence.Notification
	deadline := time.Now().Add(time.Minute)
	for len(ns) == 0 && err == nil && time.Now().Before(deadline) {
		ns, err = r.SelectNotifications(ctx, persistence.NotificationQuery{Start: 1, Limit: 10})
	}
	if err != nil || len(ns) != 1 || ns[0].ID != ids[0] || ns[0].ID>>16 <= early {
		t.Fatalf("after the old transaction ended: %+v %v (its ID %d)", ns, err, early)
	}
}

func TestTooLargeASaveIsRefused(t *testing.T) {
	r, _ := open(t).ApplicationRecorder(context.Background())
	events := make([]persistence.StoredEvent, postgres.MaxSave+1)
	id := uuid.New()
	for i := range events {
		events[i] = persistence.StoredEvent{OriginatorID: id, OriginatorVersion: int64(i + 1), Topic: "t"}
	}
	if _, err := r.InsertEvents(context.Background(), events); !errors.Is(err, persistence.ErrProgramming) {
		t.Fatalf("insert %d events: %v", len(events), err)
	}
}

// Connections the server ends (a restart, an administrator) cost reads a
// retry and writes at most an operational error, never a half-written save.
func TestTerminatedConnections(t *testing.T) {
	ctx := context.Background()
	app := "strata_kill_" + uuid.NewString()[:8]
	sep := "?"
	if strings.Contains(pgtest.URL(), "?") {
		sep = "&"
	}
	url := pgtest.URL() + sep + "application_name=" + app
	f := open(t, "POSTGRES_URL="+url, "POSTGRES_POOL_SIZE=4")
	r, err := f.ProcessRecorder(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kill := func() {
		pgtest.Exec(t, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '"+app+"'")
	}
	id := uuid.New()
	save := func(v int64) error {
		_, err := r.InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: id, OriginatorVersion: v, Topic: "t", State: []byte{byte(v)}}},
			persistence.WithTracking(persistence.Tracking{ApplicationName: "up", NotificationID: v}))
		return err
	}
	if err := save(1); err != nil {
		t.Fatal(err)
	}
	for v := int64(2); v <= 6; v++ {
		kill()
		if _, err := r.SelectNotifications(ctx, persistence.NotificationQuery{Start: 1, Limit: 10}); err != nil {
			t.Fatalf("read after the server ended the connections: %v", err)
		}
		kill()
		err := save(v)
		if err != nil {
			if !errors.Is(err, persistence.ErrOperational) {
				t.Fatalf("write after the server ended the connections: %v, want an operational error", err)
			}
			if err := save(v); err != nil && !errors.Is(err, persistence.ErrIntegrity) {
				t.Fatalf("retried write: %v", err)
			}
		}
	}
	events, err := r.SelectEvents(ctx, id, persistence.EventQuery{})
	if err != nil || len(events) != 6 {
		t.Fatalf("%d events after the interruptions: %v", len(events), err)
	}
	for i, e := range events {
		if e.OriginatorVersion != int64(i+1) || e.State[0] != byte(i+1) {
			t.Fatalf("event %d: %+v", i, e)
		}
	}
	if n, _ := r.MaxTrackingID(ctx, "up"); n != 6 {
		t.Fatalf("max tracking ID %d", n)
	}
}

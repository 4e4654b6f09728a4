package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/examples/worlds"
	"github.com/strata-go/strata/internal/faultproxy"
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

// features are what the PostgreSQL module offers beyond the contract.
var features = recordertest.Features{Replace: true, Stream: true, Erase: true, List: true, Truncate: true, Batch: true, After: true}

func TestFactoryConforms(t *testing.T) {
	recordertest.TestFactory(t, features, func(t *testing.T) persistence.Factory {
		f, err := postgres.OpenEnv(context.Background(), persistence.NewEnv(fmt.Sprintf("App%d", apps.Add(1)), pgtest.Env(t)))
		if err != nil {
			t.Fatal(err)
		}
		return f
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

// viaProxy returns the test database's URL with its host and port replaced
// by the proxy's.
func viaProxy(t *testing.T, p *faultproxy.Proxy) string {
	t.Helper()
	u, err := url.Parse(pgtest.URL())
	if err != nil {
		t.Fatal(err)
	}
	u.Host = p.Addr()
	return u.String()
}

func newProxy(t *testing.T) *faultproxy.Proxy {
	t.Helper()
	pgtest.Require(t)
	u, err := url.Parse(pgtest.URL())
	if err != nil {
		t.Fatal(err)
	}
	host := u.Host
	if u.Port() == "" {
		host += ":5432"
	}
	p, err := faultproxy.New(host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// A server that is unreachable for a few seconds (a restart) delays reads;
// it does not fail them.
func TestReadsSurviveAnOutageOfAFewSeconds(t *testing.T) {
	ctx := context.Background()
	p := newProxy(t)
	f := open(t, "POSTGRES_URL="+viaProxy(t, p), "POSTGRES_POOL_SIZE=2", "POSTGRES_NOTIFY=n")
	r, err := f.ProcessRecorder(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.New()
	ids, err := r.InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: id, OriginatorVersion: 1, Topic: "t", State: []byte("x")}})
	if err != nil {
		t.Fatal(err)
	}
	recordertestWaitVisible(t, r, ids[0])
	reads := map[string]func() error{
		"select events": func() error { _, err := r.SelectEvents(ctx, id, persistence.EventQuery{}); return err },
		"select notifications": func() error {
			_, err := r.SelectNotifications(ctx, persistence.NotificationQuery{Start: 1, Limit: 10})
			return err
		},
		"max notification ID": func() error { _, err := r.MaxNotificationID(ctx); return err },
		"max tracking ID":     func() error { _, err := r.MaxTrackingID(ctx, "up"); return err },
		"stream": func() error {
			for _, err := range persistence.ReadNotifications(ctx, r, persistence.NotificationQuery{Start: 1}, 10) {
				if err != nil {
					return err
				}
			}
			return nil
		},
	}
	for name, read := range reads {
		t.Run(name, func(t *testing.T) {
			p.SetDown(true)
			up := time.AfterFunc(2*time.Second, func() { p.SetDown(false) })
			defer up.Stop()
			start := time.Now()
			if err := read(); err != nil {
				t.Fatalf("%s during an outage of 2 s: %v", name, err)
			}
			if waited := time.Since(start); waited < time.Second {
				t.Fatalf("%s returned after %v, before the outage ended", name, waited)
			}
		})
	}
	t.Run("a read gives up when its context ends", func(t *testing.T) {
		p.SetDown(true)
		defer p.SetDown(false)
		ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		if _, err := r.MaxNotificationID(ctx); !errors.Is(err, persistence.ErrOperational) {
			t.Fatalf("read during an outage longer than its context: %v", err)
		}
	})
}

// A save whose statement reached the server, which recorded it, but whose
// answer was lost with the connection, is reported as having an unknown
// outcome; saving the same events again is refused as a conflict, since
// they are recorded.
func TestASaveWhoseAnswerIsLostHasAnUnknownOutcome(t *testing.T) {
	ctx := context.Background()
	p := newProxy(t)
	schema := pgtest.Schema(t)
	env := map[string]string{"POSTGRES_URL": viaProxy(t, p), "POSTGRES_SCHEMA": schema, "POSTGRES_NOTIFY": "n"}
	f, err := postgres.OpenEnv(ctx, persistence.NewEnv("Lost", env))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := f.ProcessRecorder(ctx)
	if err != nil {
		t.Fatal(err)
	}
	marker := []byte("cut-" + uuid.NewString())
	events := []persistence.StoredEvent{{OriginatorID: uuid.New(), OriginatorVersion: 1, Topic: "t", State: marker}}
	p.CutAnswerTo(marker)
	_, err = r.InsertEvents(ctx, events, persistence.WithTracking(persistence.Tracking{ApplicationName: "up", NotificationID: 1}))
	if !errors.Is(err, persistence.ErrUnknownOutcome) || !errors.Is(err, persistence.ErrOperational) {
		t.Fatalf("a save whose answer was lost: %v, want an error wrapping ErrUnknownOutcome", err)
	}
	select {
	case <-p.Cuts():
	case <-time.After(10 * time.Second):
		t.Fatal("the proxy did not cut the save's answer")
	}
	direct, err := postgres.OpenEnv(ctx, persistence.NewEnv("Lost", map[string]string{"POSTGRES_URL": pgtest.URL(), "POSTGRES_SCHEMA": schema}))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	check, err := direct.ProcessRecorder(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The proxy cut the client only once the server had answered, so the
	// save is committed; the loop only rides out a slow reader.
	var got []persistence.StoredEvent
	for deadline := time.Now().Add(30 * time.Second); len(got) == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if got, err = check.SelectEvents(ctx, events[0].OriginatorID, persistence.EventQuery{}); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 1 || string(got[0].State) != string(marker) {
		t.Fatalf("the save with an unknown outcome was recorded: %d events", len(got))
	}
	_, err = r.InsertEvents(ctx, events, persistence.WithTracking(persistence.Tracking{ApplicationName: "up", NotificationID: 1}))
	if !errors.Is(err, persistence.ErrIntegrity) {
		t.Fatalf("saving the same events again: %v, want an integrity error", err)
	}
}

func TestTablesOfAnotherShapeAreRefused(t *testing.T) {
	ctx := context.Background()
	for name, ddl := range map[string]struct{ sql, says string }{
		"an ID stored as text": {`CREATE TABLE %s.shaped_events (notification_id bigint NOT NULL UNIQUE, tenant text NOT NULL, originator_id text NOT NULL,
  originator_version bigint NOT NULL, topic text NOT NULL, state bytea NOT NULL, commit_id uuid NOT NULL, headers bytea NOT NULL,
  PRIMARY KEY (tenant, originator_id, originator_version))`,
			"column originator_id is of type text, want uuid"},
		"no unique version": {`CREATE TABLE %s.shaped_events (notification_id bigint NOT NULL UNIQUE, tenant text NOT NULL, originator_id uuid NOT NULL,
  originator_version bigint NOT NULL, topic text NOT NULL, state bytea NOT NULL, commit_id uuid NOT NULL, headers bytea NOT NULL)`,
			"no primary key or unique index on (tenant, originator_id, originator_version)"},
		"no state": {`CREATE TABLE %s.shaped_events (notification_id bigint NOT NULL UNIQUE, tenant text NOT NULL, originator_id uuid NOT NULL,
  originator_version bigint NOT NULL, topic text NOT NULL, commit_id uuid NOT NULL, headers bytea NOT NULL,
  PRIMARY KEY (tenant, originator_id, originator_version))`,
			"has no column state"},
	} {
		t.Run(name, func(t *testing.T) {
			schema := pgtest.Schema(t)
			pgtest.Exec(t, "CREATE SCHEMA "+schema, fmt.Sprintf(ddl.sql, schema))
			f, err := postgres.OpenEnv(ctx, persistence.NewEnv("Shaped", map[string]string{"POSTGRES_URL": pgtest.URL(), "POSTGRES_SCHEMA": schema}))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			_, err = f.ApplicationRecorder(ctx)
			if !errors.Is(err, persistence.ErrProgramming) || !strings.Contains(err.Error(), schema+".shaped_events") || !strings.Contains(err.Error(), ddl.says) {
				t.Fatalf("open a recorder of a table with %s: %v, want an error that says %q", name, err, ddl.says)
			}
		})
	}
	t.Run("a missing table when tables are not created", func(t *testing.T) {
		f := open(t, "CREATE_TABLE=false")
		if _, err := f.ApplicationRecorder(ctx); !errors.Is(err, persistence.ErrNoTable) || !strings.Contains(err.Error(), "does not exist") {
			t.Fatalf("open a recorder of a missing table: %v", err)
		}
	})
}

func TestAReadOnlyStoreCreatesNothingAndRefusesWrites(t *testing.T) {
	ctx := context.Background()
	schema := pgtest.Schema(t)
	rw, err := postgres.OpenEnv(ctx, persistence.NewEnv("Reading", map[string]string{"POSTGRES_URL": pgtest.URL(), "POSTGRES_SCHEMA": schema}))
	if err != nil {
		t.Fatal(err)
	}
	defer rw.Close()
	ro, err := postgres.OpenEnv(ctx, persistence.NewEnv("Reading", map[string]string{"POSTGRES_URL": pgtest.URL(), "POSTGRES_SCHEMA": schema, "READ_ONLY": "y"}))
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, err := ro.ApplicationRecorder(ctx); !errors.Is(err, persistence.ErrNoTable) {
		t.Fatalf("a read-only store opened a table that does not exist: %v", err)
	}
	w, err := rw.ProcessRecorder(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := w.InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: uuid.New(), OriginatorVersion: 1, Topic: "t", State: []byte("x")}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := ro.ProcessRecorder(ctx)
	if err != nil {
		t.Fatal(err)
	}
	recordertestWaitVisible(t, r, ids[0])
	if _, err := r.InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: uuid.New(), OriginatorVersion: 1, Topic: "t"}}); !errors.Is(err, persistence.ErrReadOnly) {
		t.Fatalf("a write to a read-only store: %v", err)
	}
	if _, err := ro.AggregateRecorder(ctx, "snapshots"); !errors.Is(err, persistence.ErrNoTable) {
		t.Fatalf("a read-only store created the snapshots table: %v", err)
	}
}

func recordertestWaitVisible(t *testing.T, r persistence.ApplicationRecorder, id int64) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		n, err := r.MaxNotificationID(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n >= id {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("notification %d is not visible after a minute", id)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A save whose answer was lost with its connection has an unknown outcome;
// saving it again with the same commit ID, whether with the same aggregate
// or with the command run again on the reloaded aggregate, records nothing
// more and says the commit is recorded.
func TestRetryingAnUnknownOutcomeWithTheCommitIDIsSafe(t *testing.T) {
	ctx := context.Background()
	p := newProxy(t)
	env := map[string]string{"PERSISTENCE_MODULE": "postgres", "POSTGRES_URL": viaProxy(t, p), "POSTGRES_SCHEMA": pgtest.Schema(t), "POSTGRES_NOTIFY": "n"}
	w, err := worlds.New(ctx, application.WithEnv(env), application.WithoutProcessEnv())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	repo, err := application.NewRepository[worlds.World](w.App())
	if err != nil {
		t.Fatal(err)
	}
	world, _ := worlds.NewWorld()
	if _, err := w.Save(ctx, world); err != nil {
		t.Fatal(err)
	}
	marker := "cut-" + uuid.NewString()
	commit := application.Commit{ID: uuid.New()}
	if err := world.MakeItSo(marker); err != nil {
		t.Fatal(err)
	}
	p.CutAnswerTo([]byte(marker))
	_, err = w.SaveCommit(ctx, commit, world)
	if !errors.Is(err, persistence.ErrUnknownOutcome) {
		t.Fatalf("a save whose answer was lost: %v, want ErrUnknownOutcome", err)
	}
	<-p.Cuts()
	if _, err := w.SaveCommit(ctx, commit, world); !errors.Is(err, application.ErrAlreadyCommitted) {
		t.Fatalf("the same save again: %v, want ErrAlreadyCommitted", err)
	}
	again, err := repo.Get(ctx, world.ID())
	if err != nil {
		t.Fatal(err)
	}
	if err := again.MakeItSo(marker); err != nil {
		t.Fatal(err)
	}
	if _, err := w.SaveCommit(ctx, commit, again); !errors.Is(err, application.ErrAlreadyCommitted) {
		t.Fatalf("the command run again with the same commit ID: %v, want ErrAlreadyCommitted", err)
	}
	stored, err := repo.Get(ctx, world.ID())
	if err != nil || len(stored.History) != 1 || stored.History[0] != marker {
		t.Fatalf("the world's history after the retries: %v (%v)", stored.History, err)
	}
}

package mysql_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-go/strata/internal/mytest"
	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/persistence/mysql"
	"github.com/strata-go/strata/persistence/recordertest"
)

var apps atomic.Int64

// open returns the factory of a new application in a fresh database, with
// the variables vars ("KEY=value") on top.
func open(t testing.TB, vars ...string) *mysql.Factory {
	t.Helper()
	env := mytest.Env(t)
	for _, kv := range vars {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	f, err := mysql.OpenEnv(context.Background(), persistence.NewEnv(fmt.Sprintf("App%d", apps.Add(1)), env))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// features are what the MySQL module offers beyond the contract.
var features = recordertest.Features{Replace: true, Erase: true, List: true, After: true}

func TestFactoryConforms(t *testing.T) {
	recordertest.TestFactory(t, features, func(t *testing.T) persistence.Factory {
		f, err := mysql.OpenEnv(context.Background(), persistence.NewEnv(fmt.Sprintf("App%d", apps.Add(1)), mytest.Env(t)))
		if err != nil {
			t.Fatal(err)
		}
		return f
	})
}

func TestStress(t *testing.T) {
	r, err := open(t, "MYSQL_POOL_SIZE=16").ApplicationRecorder(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	res := recordertest.Stress(t, r, recordertest.StressConfig{Writers: 16, SavesPerWriter: 60})
	t.Logf("%d saves, %d events, %d conflicts in %v", res.Saves, res.Events, res.Conflicts, res.Elapsed)
}

func TestConfiguration(t *testing.T) {
	ctx := context.Background()
	for vars, want := range map[string]string{
		"":                                 "MYSQL_DBNAME is not set",
		"MYSQL_DBNAME=x MYSQL_PORT=70000":  "MYSQL_PORT=70000",
		"MYSQL_DBNAME=x MYSQL_POOL_SIZE=0": `MYSQL_POOL_SIZE="0"`,
		"MYSQL_DBNAME=x MYSQL_LOCK_WAIT_TIMEOUT=0.5": `MYSQL_LOCK_WAIT_TIMEOUT="0.5"`,
		"MYSQL_DBNAME=x MYSQL_POLL_INTERVAL=0":       `MYSQL_POLL_INTERVAL="0"`,
		"MYSQL_DSN=nonsense@@":                       "cannot parse MYSQL_DSN",
		"MYSQL_DSN=root@tcp(127.0.0.1:3306)/":        "names no database",
		"APP_MYSQL_DBNAME=x APP_CREATE_TABLE=sure":   `APP_CREATE_TABLE="sure"`,
	} {
		env := map[string]string{"PERSISTENCE_MODULE": "mysql"}
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

func TestFollowersInOtherProcessesArePrompted(t *testing.T) {
	f := open(t, "MYSQL_POLL_INTERVAL=0.01")
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
		t.Fatal("no prompt within 10s of a save")
	}
	cancel()
	for range prompts { // closed when the context ends
	}
}

func TestTablesOfAnotherShapeAreRefused(t *testing.T) {
	ctx := context.Background()
	for name, ddl := range map[string]struct{ sql, says string }{
		"an ID stored as text": {`CREATE TABLE shaped_events (notification_id BIGINT NOT NULL UNIQUE, tenant VARBINARY(128) NOT NULL, originator_id VARCHAR(36) NOT NULL,
  originator_version BIGINT NOT NULL, topic TEXT NOT NULL, state LONGBLOB NOT NULL, commit_id BINARY(16) NOT NULL, headers LONGBLOB NOT NULL,
  PRIMARY KEY (tenant, originator_id, originator_version))`, "column originator_id is of type varchar, want binary"},
		"no unique version": {`CREATE TABLE shaped_events (notification_id BIGINT NOT NULL PRIMARY KEY, tenant VARBINARY(128) NOT NULL, originator_id BINARY(16) NOT NULL,
  originator_version BIGINT NOT NULL, topic TEXT NOT NULL, state LONGBLOB NOT NULL, commit_id BINARY(16) NOT NULL, headers LONGBLOB NOT NULL)`,
			"no primary key or unique index on (tenant, originator_id, originator_version)"},
	} {
		t.Run(name, func(t *testing.T) {
			db := mytest.Database(t)
			mytest.Exec(t, db, ddl.sql)
			f, err := mysql.OpenEnv(ctx, persistence.NewEnv("Shaped", map[string]string{"MYSQL_DSN": mytest.DSNFor(db, "")}))
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
	t.Run("a missing table when tables are not created", func(t *testing.T) {
		f := open(t, "CREATE_TABLE=false")
		if _, err := f.ApplicationRecorder(ctx); !errors.Is(err, persistence.ErrNoTable) {
			t.Fatalf("open a recorder of a missing table: %v", err)
		}
	})
}

// Saves of several insert statements, and saves too large for one request
// (sent a statement at a time), number their events in order like any
// other.
func TestLargeSavesAreNumberedInOrder(t *testing.T) {
	ctx := context.Background()
	r, err := open(t).ApplicationRecorder(ctx)
	if err != nil {
		t.Fatal(err)
	}
	big := []persistence.StoredEvent{{OriginatorID: uuid.New(), OriginatorVersion: 1, Topic: "big", State: make([]byte, 2<<20)}}
	id := uuid.New()
	var many []persistence.StoredEvent
	for v := range int64(1200) {
		many = append(many, persistence.StoredEvent{OriginatorID: id, OriginatorVersion: v + 1, Topic: "many", State: []byte(fmt.Sprint(v + 1))})
	}
	var want []int64
	for _, save := range [][]persistence.StoredEvent{big, many} {
		ids, err := r.InsertEvents(ctx, save)
		if err != nil {
			t.Fatalf("save of %d events: %v", len(save), err)
		}
		want = append(want, ids...)
	}
	var got []int64
	for n, err := range persistence.ReadNotifications(ctx, r, persistence.NotificationQuery{Start: 1}, 500) {
		if err != nil {
			t.Fatal(err)
		}
		if n.Topic == "many" && string(n.State) != fmt.Sprint(n.OriginatorVersion) {
			t.Fatalf("notification %d: version %d holds %q", n.ID, n.OriginatorVersion, n.State)
		}
		got = append(got, n.ID)
	}
	if len(got) != 1201 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("read %d notifications, the saves returned %d IDs (first %v, last %v)", len(got), len(want), want[:2], want[len(want)-2:])
	}
	for i := 1; i < len(got); i++ {
		if got[i] != got[i-1]+1 {
			t.Fatalf("notification IDs %d then %d", got[i-1], got[i])
		}
	}
}

func TestPurposesCannotNameTheApplicationsOwnTables(t *testing.T) {
	f := open(t)
	for _, purpose := range []string{"notification_ids", "events", "commits", "tracking"} {
		if _, err := f.AggregateRecorder(context.Background(), purpose); !errors.Is(err, persistence.ErrProgramming) {
			t.Errorf("purpose %q: %v, want a programming error", purpose, err)
		}
	}
}

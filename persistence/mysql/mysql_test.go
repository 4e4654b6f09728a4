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
var features = recordertest.Features{Replace: true, Erase: true, List: true}

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

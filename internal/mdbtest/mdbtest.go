// Package mdbtest gives tests a fresh Message DB: a new PostgreSQL database
// cloned from a template where scripts/messagedb-install installed Message
// DB from its npm package, dropped when the test ends.
//
// The server is STRATA_TEST_MESSAGEDB_URL's, by default
// postgres://postgres@127.0.0.1:5432 (the URL's database is ignored), and
// the template is strata_messagedb_template. If either is missing, tests
// that need them are skipped with a message, or fail when CI=true.
package mdbtest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Template is the database that holds an installed Message DB.
const Template = "strata_messagedb_template"

// DefaultURL is the server unless STRATA_TEST_MESSAGEDB_URL is set.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

func serverURL() string {
	if u := os.Getenv("STRATA_TEST_MESSAGEDB_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// URLFor returns the URL of database db on the test server.
func URLFor(db string) string {
	u, err := url.Parse(serverURL())
	if err != nil {
		return serverURL()
	}
	u.Path = "/" + db
	return u.String()
}

var (
	once        sync.Once
	unavailable error
)

// Require skips the test, or fails it under CI=true, if the server or
// the template cannot be reached.
func Require(t testing.TB) {
	t.Helper()
	once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, URLFor("postgres"))
		if err != nil {
			unavailable = err
			return
		}
		defer conn.Close(ctx)
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", Template).Scan(&n); err != nil {
			unavailable = err
		} else if n == 0 {
			unavailable = fmt.Errorf("database %s does not exist", Template)
		}
	})
	if unavailable == nil {
		return
	}
	msg := fmt.Sprintf("Message DB is not available on %s (%v): run scripts/messagedb-install (it installs the npm package @eventide/message-db into %s) or set STRATA_TEST_MESSAGEDB_URL", URLFor(""), unavailable, Template)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// exec runs statements on the server's postgres database.
func exec(t testing.TB, sql ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, URLFor("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, s := range sql {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// Database returns the URL of a new database with Message DB installed and
// no messages, dropped when the test ends (connections to it are ended).
func Database(t testing.TB) string {
	t.Helper()
	Require(t)
	name := "strata_messagedb_t_" + strings.ReplaceAll(uuid.NewString()[:13], "-", "")
	exec(t, "CREATE DATABASE "+name+" TEMPLATE "+Template)
	t.Cleanup(func() { exec(t, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") })
	return URLFor(name)
}

// Env returns the environment of a fresh Message DB store for one test.
func Env(t testing.TB) map[string]string {
	t.Helper()
	return map[string]string{"PERSISTENCE_MODULE": "messagedb", "MESSAGEDB_URL": Database(t)}
}

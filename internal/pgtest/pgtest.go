// Package pgtest gives tests a fresh PostgreSQL store: a new schema in the
// test database, dropped when the test ends.
//
// The database is STRATA_TEST_POSTGRES_URL, by default
// postgres://postgres@127.0.0.1:5432/test. If it cannot be reached, tests
// that need it are skipped with a message, or fail when CI=true.
package pgtest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// DefaultURL is the test database unless STRATA_TEST_POSTGRES_URL is set.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// URL returns the URL of the test database.
func URL() string {
	if u := os.Getenv("STRATA_TEST_POSTGRES_URL"); u != "" {
		return u
	}
	return DefaultURL
}

var (
	once        sync.Once
	unavailable error
)

// Require skips the test, or fails it under CI=true, if the test
// database cannot be reached.
func Require(t testing.TB) {
	t.Helper()
	once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, URL())
		if err != nil {
			unavailable = err
			return
		}
		conn.Close(ctx)
	})
	if unavailable == nil {
		return
	}
	msg := fmt.Sprintf("PostgreSQL is not available at %s (%v): start it (see the README) or set STRATA_TEST_POSTGRES_URL", URL(), unavailable)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// Exec runs SQL statements on the test database.
func Exec(t testing.TB, sql ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, URL())
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

// Schema returns a new schema name, and drops the schema when the test
// ends (the store creates it).
func Schema(t testing.TB) string {
	t.Helper()
	Require(t)
	name := "t_" + uuid.NewString()[:8]
	t.Cleanup(func() { Exec(t, "DROP SCHEMA IF EXISTS "+name+" CASCADE") })
	return name
}

// Env returns the environment of a fresh PostgreSQL store for one test.
func Env(t testing.TB) map[string]string {
	t.Helper()
	return map[string]string{"PERSISTENCE_MODULE": "postgres", "POSTGRES_URL": URL(), "POSTGRES_SCHEMA": Schema(t)}
}

// QueryInt runs a query of one integer on the test database. It returns
// the error rather than failing the test, for tests that poll a table
// another process has yet to create.
func QueryInt(sql string) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, URL())
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var n int64
	err = conn.QueryRow(ctx, sql).Scan(&n)
	return n, err
}

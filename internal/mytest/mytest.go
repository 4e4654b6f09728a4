// Package mytest gives tests a fresh MySQL or MariaDB store: a new
// database named strata_mysql_*, dropped when the test ends.
//
// The server is STRATA_TEST_MYSQL_DSN, by default root with no password
// at 127.0.0.1:3306. If it cannot be reached, tests that need it are
// skipped with a message, or fail when CI=true.
package mytest

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/google/uuid"
)

// DefaultDSN is the server unless STRATA_TEST_MYSQL_DSN is set. It names
// the database test, which tests do not write: each makes its own.
const DefaultDSN = "root@tcp(127.0.0.1:3306)/test"

// Prefix begins the names of the databases tests make, and of nothing
// else on the server.
const Prefix = "strata_mysql_"

// DSN returns the data source name of the test server.
func DSN() string {
	if d := os.Getenv("STRATA_TEST_MYSQL_DSN"); d != "" {
		return d
	}
	return DefaultDSN
}

var (
	once        sync.Once
	unavailable error
	admin       *sql.DB
)

// Require skips the test, or fails it under CI=true, if the test server
// cannot be reached.
func Require(t testing.TB) {
	t.Helper()
	once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		db, err := sql.Open("mysql", DSN())
		if err == nil {
			err = db.PingContext(ctx)
		}
		if err != nil {
			unavailable = err
			return
		}
		db.SetMaxOpenConns(4)
		admin = db
	})
	if unavailable == nil {
		return
	}
	msg := fmt.Sprintf("MySQL/MariaDB is not available at %s (%v): start it (see the README) or set STRATA_TEST_MYSQL_DSN", DSN(), unavailable)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// Exec runs SQL statements on the test server, in database db if it is
// not empty.
func Exec(t testing.TB, db string, stmts ...string) {
	t.Helper()
	Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := admin.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if db != "" {
		if _, err := conn.ExecContext(ctx, "USE "+db); err != nil {
			t.Fatal(err)
		}
		// The connection goes back to the pool: leave it where it was.
		defer conn.ExecContext(context.Background(), "USE "+config().DBName)
	}
	for _, s := range stmts {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func config() *mysql.Config {
	c, err := mysql.ParseDSN(DSN())
	if err != nil {
		panic(fmt.Sprintf("STRATA_TEST_MYSQL_DSN: %v", err))
	}
	return c
}

// Database returns the name of a new, empty database, dropped when the
// test ends.
func Database(t testing.TB) string {
	t.Helper()
	Require(t)
	name := Prefix + uuid.NewString()[:8]
	Exec(t, "", "CREATE DATABASE "+name)
	t.Cleanup(func() { Exec(t, "", "DROP DATABASE IF EXISTS "+name) })
	return name
}

// DSNFor returns the test server's data source name for database db,
// reached at addr ("host:port") if it is not empty.
func DSNFor(db, addr string) string {
	c := config()
	c.DBName = db
	if addr != "" {
		c.Addr = addr
	}
	return c.FormatDSN()
}

// Addr returns the test server's address, host:port.
func Addr() string { return config().Addr }

// Env returns the environment of a fresh MySQL store for one test.
func Env(t testing.TB) map[string]string {
	t.Helper()
	return map[string]string{"PERSISTENCE_MODULE": "mysql", "MYSQL_DSN": DSNFor(Database(t), "")}
}

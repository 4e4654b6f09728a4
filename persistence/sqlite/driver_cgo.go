//go:build strata_sqlite_cgo && cgo

package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"strings"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// DriverName is the database/sql driver of the adapter's connections:
// "sqlite3", github.com/mattn/go-sqlite3, in this build (the tag
// strata_sqlite_cgo). Code that opens its own connections to a Strata
// database file (tools, tests) can use it to get the same SQLite as the
// adapter.
const DriverName = "sqlite3"

// Driver names the Go package of the SQLite driver Strata was built with.
const Driver = "github.com/mattn/go-sqlite3"

// The adapter's pools use the driver value, not its registered name,
// which a build may change (-X github.com/mattn/go-sqlite3.driverName).
var cDriver = &sqlite3.SQLiteDriver{}

type connector struct{ dsn string }

// Connect opens a connection and sets on it the pragmas of the DSN that
// mattn does not set itself (connectPragmas).
func (c connector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := cDriver.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	// mattn has parsed the same query in Open.
	_, query, _ := strings.Cut(c.dsn, "?")
	params, _ := url.ParseQuery(query)
	for _, name := range connectPragmas {
		if v := params.Get("_" + name); v != "" {
			if _, err := conn.(*sqlite3.SQLiteConn).ExecContext(ctx, "PRAGMA "+name+" = "+v, nil); err != nil {
				conn.Close()
				return nil, fmt.Errorf("set pragma %s=%s: %w", name, v, err)
			}
		}
	}
	return conn, nil
}

// connectPragmas are the pragmas the adapter sets that mattn has no DSN
// parameter for; SQLite ignores the parameters, and Connect sets them.
var connectPragmas = []string{"temp_store"}

func (c connector) Driver() driver.Driver { return cDriver }

func openDB(dsn string) (*sql.DB, error) { return sql.OpenDB(connector{dsn}), nil }

// pragma writes a pragma as mattn's underscore parameter. mattn removes
// none of the URI, so SQLite sees (and ignores) them too, and reads vfs,
// mode and immutable itself. mattn sets busy_timeout before any other
// pragma, and synchronous=NORMAL when none is given, which is the default
// of a WAL connection anyway (a reader never syncs).
func pragma(name, value string) string { return "_" + name + "=" + value }

// resultCode returns the extended result code of an error of SQLite.
func resultCode(err error) (int, bool) {
	var se sqlite3.Error
	if errors.As(err, &se) {
		return int(se.ExtendedCode), true
	}
	var pe *sqlite3.Error
	if errors.As(err, &pe) && pe != nil {
		return int(pe.ExtendedCode), true
	}
	return 0, false
}

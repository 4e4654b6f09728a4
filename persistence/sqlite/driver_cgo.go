//go:build strata_sqlite_cgo && cgo

package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"

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

func (c connector) Connect(context.Context) (driver.Conn, error) { return cDriver.Open(c.dsn) }
func (c connector) Driver() driver.Driver                        { return cDriver }

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

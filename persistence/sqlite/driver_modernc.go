//go:build !strata_sqlite_cgo

package sqlite

import (
	"database/sql"
	"errors"

	"modernc.org/sqlite"
)

// DriverName is the database/sql driver of the adapter's connections:
// "sqlite", modernc.org/sqlite, in this build. Code that opens its own
// connections to a Strata database file (tools, tests) can use it to get
// the same SQLite as the adapter.
const DriverName = "sqlite"

// Driver names the Go package of the SQLite driver Strata was built with.
const Driver = "modernc.org/sqlite"

func openDB(dsn string) (*sql.DB, error) { return sql.Open(DriverName, dsn) }

// pragma writes a pragma as modernc's _pragma parameter, which it applies
// in order to every new connection.
func pragma(name, value string) string { return "_pragma=" + name + "(" + value + ")" }

// resultCode returns the extended result code of an error of SQLite.
func resultCode(err error) (int, bool) {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return 0, false
	}
	return se.Code(), true
}

//go:build !strata_sqlite_cgo

package sqlite

import (
	"database/sql"
	"errors"
	"strconv"
	"strings"

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

// dsn writes the options as modernc's _pragma parameters, which it
// applies in order to every new connection: busy_timeout first, so that
// setting the journal mode waits for a lock instead of failing.
func dsn(name string, o connOptions) string {
	var b strings.Builder
	b.WriteString("file:" + name + "?")
	if o.memdb {
		b.WriteString("vfs=memdb&")
	}
	if o.readOnly {
		b.WriteString("mode=ro&")
	}
	if o.immutable {
		b.WriteString("immutable=1&")
	}
	b.WriteString("_pragma=busy_timeout(" + strconv.FormatInt(o.lockTimeout.Milliseconds(), 10) + ")&_pragma=foreign_keys(1)")
	if o.wal {
		b.WriteString("&_pragma=journal_mode(WAL)")
	}
	if o.synchronous != "" {
		b.WriteString("&_pragma=synchronous(" + o.synchronous + ")")
	}
	if o.queryOnly {
		b.WriteString("&_pragma=query_only(1)")
	}
	if o.cacheKiB != 0 {
		b.WriteString("&_pragma=cache_size(-" + strconv.Itoa(o.cacheKiB) + ")")
	}
	if o.immediate {
		b.WriteString("&_txlock=immediate")
	}
	return b.String()
}

// resultCode returns the extended result code of an error of SQLite.
func resultCode(err error) (int, bool) {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return 0, false
	}
	return se.Code(), true
}

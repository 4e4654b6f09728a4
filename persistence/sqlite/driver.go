package sqlite

import (
	"strconv"
	"strings"
	"time"
)

// The SQLite driver is chosen when Strata is built: modernc.org/sqlite
// (SQLite translated to Go) by default, github.com/mattn/go-sqlite3 (the C
// SQLite, through cgo) with the build tag strata_sqlite_cgo. The files
// driver_modernc.go and driver_cgo.go are the only ones that import a
// driver; each provides the same things to the rest of the package:
//
//	DriverName        the database/sql name of the driver
//	Driver            the driver's Go package
//	openDB(dsn)       a pool of the driver's connections
//	pragma(name, v)   a DSN parameter setting the pragma name to v on every
//	                  new connection, in the driver's syntax (a pragma the
//	                  driver has no parameter for is set by the build's
//	                  connector: connectPragmas in driver_cgo.go)
//	resultCode(err)   the extended SQLite result code of a driver error
//
// so that pragmas, the memdb database and error classification are
// written once, here and in sqlite.go, and cannot drift between builds.

// dsn returns the data source name of name opened with o. The URI
// parameters (vfs, mode, immutable) are SQLite's own; the pragmas are in
// the driver's syntax, busy_timeout first, so that setting the journal
// mode waits for a lock instead of failing; _txlock is spelled alike by
// both drivers.
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
	b.WriteString(pragma("busy_timeout", strconv.FormatInt(o.lockTimeout.Milliseconds(), 10)) + "&" + pragma("foreign_keys", "1"))
	if o.wal {
		b.WriteString("&" + pragma("journal_mode", "WAL"))
	}
	if o.synchronous != "" {
		b.WriteString("&" + pragma("synchronous", o.synchronous))
	}
	if o.queryOnly {
		b.WriteString("&" + pragma("query_only", "1"))
	}
	if o.tempInMemory {
		b.WriteString("&" + pragma("temp_store", "MEMORY"))
	}
	if o.cacheKiB != 0 {
		b.WriteString("&" + pragma("cache_size", "-"+strconv.Itoa(o.cacheKiB)))
	}
	if o.immediate {
		b.WriteString("&_txlock=immediate")
	}
	return b.String()
}

// connOptions are the settings of one pool's connections.
type connOptions struct {
	lockTimeout time.Duration // busy_timeout
	memdb       bool          // name is a memdb database shared by the process
	readOnly    bool          // mode=ro
	immutable   bool          // immutable=1: no other process can write the file
	wal         bool          // journal_mode=WAL
	synchronous string        // FULL or NORMAL; "" leaves the connection's default
	immediate   bool          // BEGIN IMMEDIATE: a transaction takes the write lock at once
	queryOnly   bool          // query_only=1
	cacheKiB    int           // page cache in KiB (cache_size=-N); 0 leaves SQLite's default
	// tempInMemory is temp_store=MEMORY: the journal of a statement or
	// savepoint (a save of several statements in a group has one), the
	// originals of the pages it changes, stays in memory. SQLite writes
	// it to a temporary file once it passes 64 KiB, as a follower's batch
	// does: in a profile of batches of 60 notifications, that file took
	// 45% of the time spent writing (docs/benchmarks.md). The memory it
	// takes is bounded by the pages one write changes, and by any sort
	// the writer does (an index built over a large table by a migration
	// sorts in memory too). Readers keep the default: a large sort of
	// theirs may still spill to a file.
	tempInMemory bool
}

// Primary SQLite result codes (the low byte of an extended code), as
// fixed by SQLite's C interface; the tests of each build check them
// against its driver's constants.
const (
	codeError      = 1
	codePerm       = 3
	codeBusy       = 5
	codeLocked     = 6
	codeNoMem      = 7
	codeReadOnly   = 8
	codeInterrupt  = 9
	codeIOErr      = 10
	codeCorrupt    = 11
	codeFull       = 13
	codeCantOpen   = 14
	codeProtocol   = 15
	codeSchema     = 17
	codeTooBig     = 18
	codeConstraint = 19
	codeMismatch   = 20
	codeMisuse     = 21
	codeRange      = 25
	codeNotADB     = 26
)

// Extended result codes of constraint failures.
const (
	codeConstraintPrimaryKey = 1555 // SQLITE_CONSTRAINT_PRIMARYKEY
	codeConstraintUnique     = 2067 // SQLITE_CONSTRAINT_UNIQUE
)

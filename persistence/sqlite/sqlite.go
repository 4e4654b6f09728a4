// Package sqlite is Strata's SQLite persistence module, the embedded
// default of the strata command and the examples: events in a file (or in
// memory), no server to run.
//
// It uses modernc.org/sqlite, a SQLite compiled to Go, so that Strata builds
// without cgo; docs/sqlite-driver.md has the measurements behind the choice.
//
// Select it with PERSISTENCE_MODULE=sqlite and configure it with:
//
//	SQLITE_DBNAME        path of the database file, or ":memory:" (required)
//	SQLITE_LOCK_TIMEOUT  seconds a writer waits for the write lock (default 5)
//	SQLITE_SYNCHRONOUS   FULL (default: a commit survives power loss) or NORMAL
//	                     (faster; in WAL mode the last commits may be lost on
//	                     power loss, never corrupted)
//	CREATE_TABLE         create the tables if they do not exist (default true)
//
// Each application has its own tables, named after it (worlds_events,
// worlds_snapshots, worlds_tracking for the application Worlds). Files use
// write-ahead logging, so readers never wait for writers. Writes go through
// one connection per database file in the process, which is how SQLite
// orders them anyway: notification IDs therefore increase in commit order.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/strata-go/strata/internal/sqlstore"
	"github.com/strata-go/strata/persistence"
)

func init() {
	persistence.RegisterModule(persistence.Module{
		Name:      "sqlite",
		Aliases:   []string{"eventsourcing.sqlite:Factory"},
		Open:      func(ctx context.Context, env persistence.Env) (persistence.Factory, error) { return OpenEnv(ctx, env) },
		Variables: []string{"SQLITE_DBNAME", "SQLITE_LOCK_TIMEOUT", "SQLITE_SYNCHRONOUS", "CREATE_TABLE"},
	})
}

// Config configures the SQLite module.
type Config struct {
	// DBName is the path of the database file, or ":memory:" for a
	// database that lives as long as the factory.
	DBName string
	// AppName names the application, whose tables are named after it.
	AppName string
	// LockTimeout is how long a writer waits for the write lock.
	LockTimeout time.Duration
	// Synchronous is "FULL" or "NORMAL".
	Synchronous string
	// CreateTables creates the tables if they do not exist.
	CreateTables bool
}

// ConfigFromEnv reads the module's variables.
func ConfigFromEnv(env persistence.Env) (Config, error) {
	c := Config{AppName: env.Name(), DBName: strings.TrimSpace(env.Get("SQLITE_DBNAME"))}
	var err error
	if c.DBName == "" {
		_, name, _ := env.Lookup("SQLITE_DBNAME")
		return c, fmt.Errorf("%w: %s is not set: give the path of a database file, or :memory:", persistence.ErrConfig, name)
	}
	if c.LockTimeout, err = env.Seconds("SQLITE_LOCK_TIMEOUT", 5*time.Second); err != nil {
		return c, err
	}
	c.Synchronous = strings.ToUpper(env.String("SQLITE_SYNCHRONOUS", "FULL"))
	if c.Synchronous != "FULL" && c.Synchronous != "NORMAL" {
		_, name, _ := env.Lookup("SQLITE_SYNCHRONOUS")
		return c, fmt.Errorf("%w: %s=%q: want FULL or NORMAL", persistence.ErrConfig, name, env.Get("SQLITE_SYNCHRONOUS"))
	}
	if c.CreateTables, err = env.Bool("CREATE_TABLE", true); err != nil {
		return c, err
	}
	return c, nil
}

// OpenEnv opens a factory configured by the environment.
func OpenEnv(ctx context.Context, env persistence.Env) (*Factory, error) {
	c, err := ConfigFromEnv(env)
	if err != nil {
		return nil, err
	}
	return Open(ctx, c)
}

// Factory makes the SQLite recorders of one application.
type Factory struct {
	cfg    Config
	h      *handle
	db     *sqlstore.DB
	tables sqlstore.Tables

	creator sqlstore.Creator
}

// Open opens the database and returns the application's factory.
func Open(ctx context.Context, c Config) (*Factory, error) {
	tables, err := sqlstore.TablesFor(c.AppName, 0)
	if err != nil {
		return nil, err
	}
	if c.LockTimeout <= 0 {
		c.LockTimeout = 5 * time.Second
	}
	if c.Synchronous == "" {
		c.Synchronous = "FULL"
	}
	h, err := acquire(ctx, c)
	if err != nil {
		return nil, err
	}
	f := &Factory{cfg: c, h: h, db: &sqlstore.DB{Writer: h.writer, Reader: h.reader, Dialect: dialect}, tables: tables}
	f.creator = sqlstore.Creator{Enabled: c.CreateTables, Exec: func(ctx context.Context, table, stmt string) error {
		if _, err := h.writer.ExecContext(ctx, stmt); err != nil {
			return f.db.Errorf("create table "+table, err)
		}
		return nil
	}}
	return f, nil
}

var dialect = sqlstore.Dialect{
	Name:      "sqlite",
	IDArg:     func(id uuid.UUID) any { return id[:] },
	Returning: "RETURNING notification_id, originator_id, originator_version",
	Upsert:    "ON CONFLICT (originator_id, originator_version) DO UPDATE SET topic = excluded.topic, state = excluded.state",
	Classify:  classify,
}

// classify maps SQLite result codes to persistence kinds.
func classify(err error) error {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return nil
	}
	switch code := se.Code(); code & 0xff {
	case sqlite3.SQLITE_CONSTRAINT:
		return persistence.ErrIntegrity
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL,
		sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_INTERRUPT,
		sqlite3.SQLITE_PROTOCOL, sqlite3.SQLITE_PERM:
		return persistence.ErrOperational
	case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_TOOBIG, sqlite3.SQLITE_MISMATCH, sqlite3.SQLITE_RANGE:
		return persistence.ErrData
	case sqlite3.SQLITE_ERROR, sqlite3.SQLITE_MISUSE, sqlite3.SQLITE_SCHEMA:
		return persistence.ErrProgramming
	}
	return persistence.ErrDatabase
}

func (f *Factory) ensure(ctx context.Context, table string, ddl ...string) error {
	return f.creator.Ensure(ctx, table, ddl...)
}

func eventsDDL(table string) []string {
	return []string{
		// AUTOINCREMENT: a notification ID is never used twice, even if the
		// newest rows were deleted, so that no reader can skip an event.
		"CREATE TABLE IF NOT EXISTS " + table + ` (
  notification_id INTEGER PRIMARY KEY AUTOINCREMENT,
  originator_id BLOB NOT NULL,
  originator_version INTEGER NOT NULL,
  topic TEXT NOT NULL,
  state BLOB NOT NULL)`,
		"CREATE UNIQUE INDEX IF NOT EXISTS " + table + "_aggregate ON " + table + " (originator_id, originator_version)",
	}
}

func aggregateDDL(table string) []string {
	return []string{"CREATE TABLE IF NOT EXISTS " + table + ` (
  originator_id BLOB NOT NULL,
  originator_version INTEGER NOT NULL,
  topic TEXT NOT NULL,
  state BLOB NOT NULL,
  PRIMARY KEY (originator_id, originator_version)) WITHOUT ROWID`}
}

func trackingDDL(table string) []string {
	return []string{"CREATE TABLE IF NOT EXISTS " + table + ` (
  application_name TEXT NOT NULL,
  notification_id INTEGER NOT NULL,
  PRIMARY KEY (application_name, notification_id)) WITHOUT ROWID`}
}

// AggregateRecorder returns the recorder of the purpose's table
// ("snapshots": worlds_snapshots).
func (f *Factory) AggregateRecorder(ctx context.Context, purpose string) (persistence.AggregateRecorder, error) {
	table := f.tables.Purpose(purpose)
	if err := sqlstore.CheckIdentifier("table", table); err != nil {
		return nil, err
	}
	if err := f.ensure(ctx, table, aggregateDDL(table)...); err != nil {
		return nil, err
	}
	return sqlstore.NewAggregateRecorder(f.db, table), nil
}

// ApplicationRecorder returns the recorder of the application's events.
func (f *Factory) ApplicationRecorder(ctx context.Context) (persistence.ApplicationRecorder, error) {
	if err := f.ensure(ctx, f.tables.Events, eventsDDL(f.tables.Events)...); err != nil {
		return nil, err
	}
	return sqlstore.NewApplicationRecorder(f.db, f.tables.Events), nil
}

// ProcessRecorder returns the recorder of the application's events and
// tracking records.
func (f *Factory) ProcessRecorder(ctx context.Context) (persistence.ProcessRecorder, error) {
	if err := f.ensure(ctx, f.tables.Events, eventsDDL(f.tables.Events)...); err != nil {
		return nil, err
	}
	if err := f.ensure(ctx, f.tables.Tracking, trackingDDL(f.tables.Tracking)...); err != nil {
		return nil, err
	}
	return sqlstore.NewProcessRecorder(f.db, f.tables.Events, f.tables.Tracking), nil
}

// Tables returns the names of the application's tables.
func (f *Factory) Tables() sqlstore.Tables { return f.tables }

// DB returns the pools of the factory's database: one connection for
// writes, several for reads.
func (f *Factory) DB() (writer, reader *sql.DB) { return f.h.writer, f.h.reader }

// Close releases the database; the last factory of a file closes it.
func (f *Factory) Close() error {
	if !f.creator.Close() {
		return nil
	}
	return release(f.h)
}

// handle is an open database shared by the factories of one file.
type handle struct {
	key    string
	refs   int
	writer *sql.DB
	reader *sql.DB
	pin    *sql.Conn // keeps an in-memory database alive
}

var handles = struct {
	sync.Mutex
	byKey map[string]*handle
}{byKey: map[string]*handle{}}

// acquire opens the database of c or shares the handle already open on
// its file, so that all writers in the process queue on one connection
// instead of spinning on SQLite's lock.
func acquire(ctx context.Context, c Config) (*handle, error) {
	memory := c.DBName == ":memory:"
	key := c.DBName
	if memory {
		key = "memdb:" + uuid.NewString()
	} else {
		if strings.ContainsAny(c.DBName, "?#") {
			return nil, fmt.Errorf("%w: SQLITE_DBNAME=%q: a file path may not contain ? or #", persistence.ErrConfig, c.DBName)
		}
		abs, err := filepath.Abs(c.DBName)
		if err != nil {
			return nil, fmt.Errorf("%w: SQLITE_DBNAME=%q: %v", persistence.ErrConfig, c.DBName, err)
		}
		key = abs
	}
	handles.Lock()
	defer handles.Unlock()
	if h, ok := handles.byKey[key]; ok {
		h.refs++
		return h, nil
	}
	h, err := openHandle(ctx, key, memory, c)
	if err != nil {
		return nil, err
	}
	handles.byKey[key] = h
	return h, nil
}

func openHandle(ctx context.Context, key string, memory bool, c Config) (*handle, error) {
	common := fmt.Sprintf("_pragma=busy_timeout(%d)&_pragma=foreign_keys(1)", c.LockTimeout.Milliseconds())
	var writerDSN, readerDSN string
	if memory {
		// vfs=memdb with a name starting with / is one database shared by
		// every connection of the process.
		name := "file:/strata-" + strings.TrimPrefix(key, "memdb:") + "?vfs=memdb&"
		writerDSN = name + common + "&_txlock=immediate"
		readerDSN = name + common
	} else {
		writerDSN = "file:" + key + "?" + common + "&_pragma=journal_mode(WAL)&_pragma=synchronous(" + c.Synchronous + ")&_txlock=immediate"
		readerDSN = "file:" + key + "?" + common + "&_pragma=query_only(1)&_pragma=cache_size(-32768)"
	}
	op := "open sqlite database " + key
	writer, err := sql.Open("sqlite", writerDSN)
	if err != nil {
		return nil, &persistence.Error{Op: op, Kind: persistence.ErrOperational, Err: err}
	}
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxLifetime(0)
	writer.SetConnMaxIdleTime(0)
	h := &handle{key: key, refs: 1, writer: writer}
	fail := func(err error) (*handle, error) {
		if h.pin != nil {
			h.pin.Close()
		}
		writer.Close()
		if h.reader != nil {
			h.reader.Close()
		}
		return nil, persistence.Errorf(persistence.ErrOperational, op, err)
	}
	if err := writer.PingContext(ctx); err != nil {
		return fail(err)
	}
	if memory {
		// The writer's only connection is taken by the pin, so the pin is a
		// reader connection: any open connection keeps the database alive.
		if h.reader, err = sql.Open("sqlite", readerDSN); err != nil {
			return fail(err)
		}
		if h.pin, err = h.reader.Conn(ctx); err != nil {
			return fail(err)
		}
	} else if h.reader, err = sql.Open("sqlite", readerDSN); err != nil {
		return fail(err)
	}
	h.reader.SetMaxOpenConns(4)
	h.reader.SetMaxIdleConns(4)
	if err := h.reader.PingContext(ctx); err != nil {
		return fail(err)
	}
	return h, nil
}

func release(h *handle) error {
	handles.Lock()
	defer handles.Unlock()
	h.refs--
	if h.refs > 0 {
		return nil
	}
	delete(handles.byKey, h.key)
	var errs []error
	if h.pin != nil {
		errs = append(errs, h.pin.Close())
	}
	errs = append(errs, h.reader.Close(), h.writer.Close())
	return errors.Join(errs...)
}

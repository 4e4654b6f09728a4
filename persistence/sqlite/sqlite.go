// Package sqlite is Strata's SQLite persistence module, the embedded
// default of the strata command and the examples: events in a file (or in
// memory), no server to run.
//
// It uses modernc.org/sqlite, a SQLite compiled to Go, so that Strata builds
// without cgo. Built with the tag strata_sqlite_cgo (and cgo), it uses
// github.com/mattn/go-sqlite3, the C SQLite, instead, with the same
// settings and errors: saves about 1.3-1.5x as fast, catching up about
// as fast. docs/sqlite-driver.md has the measurements behind both.
//
// Select it with PERSISTENCE_MODULE=sqlite and configure it with:
//
//	SQLITE_DBNAME        path of the database file, or ":memory:" (required)
//	SQLITE_LOCK_TIMEOUT  seconds a writer waits for the write lock (default 5)
//	SQLITE_SYNCHRONOUS   FULL (default: a commit survives power loss) or NORMAL
//	                     (faster; in WAL mode the last commits may be lost on
//	                     power loss, never corrupted)
//	CREATE_TABLE         create the tables if they do not exist (default true)
//	READ_ONLY            open the file read-only: create nothing, refuse
//	                     writes (default false); the file's folder or mount
//	                     may be read-only
//
// Existing tables are checked when a recorder opens them: a table with
// another layout (a column of another type, no unique key on the aggregate
// and version) is refused with an error that names the table and the
// column, and a missing table, when tables are not created, is an error
// wrapping persistence.ErrNoTable.
//
// Each application has its own tables, named after it (worlds_events,
// worlds_snapshots, worlds_tracking for the application Worlds). Files use
// write-ahead logging, so readers never wait for writers. Writes go through
// one connection per database file in the process, which is how SQLite
// orders them anyway: notification IDs therefore increase in commit order.
// Saves that wait for that connection while it commits are committed
// together, in one transaction with one flush, each save in a savepoint of
// its own, so that a conflicting save fails alone (group commit: many
// concurrent writers save several times as fast as one).
//
// Reads go through up to four reader connections per file, each with a
// page cache of up to 8 MiB: a catch-up reads the log once, in order, and
// the operating system's page cache holds the file anyway, so a bigger
// cache would cost memory without making reads faster.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/strata-go/strata/internal/sqlstore"
	"github.com/strata-go/strata/persistence"
)

func init() {
	persistence.RegisterModule(persistence.Module{
		Name:      "sqlite",
		Aliases:   []string{"eventsourcing.sqlite:Factory"},
		Open:      func(ctx context.Context, env persistence.Env) (persistence.Factory, error) { return OpenEnv(ctx, env) },
		Variables: []string{"SQLITE_DBNAME", "SQLITE_LOCK_TIMEOUT", "SQLITE_SYNCHRONOUS", "CREATE_TABLE", "READ_ONLY"},
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
	// ReadOnly opens the file read-only: nothing is created, writes are
	// refused with an error wrapping persistence.ErrReadOnly, and the file
	// may be on a read-only folder or mount.
	ReadOnly bool
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
	if c.ReadOnly, err = env.Bool("READ_ONLY", false); err != nil {
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

	creator *sqlstore.Creator // shared by the factories of its tenants
	tenant  string
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
	f := &Factory{cfg: c, h: h, db: &sqlstore.DB{Writer: h.writer, Reader: h.reader, Dialect: dialect, ReadOnly: c.ReadOnly}, tables: tables}
	f.creator = &sqlstore.Creator{
		Enabled: c.CreateTables && !c.ReadOnly,
		Exec: func(ctx context.Context, table, stmt string) error {
			if _, err := h.writer.ExecContext(ctx, stmt); err != nil {
				return f.db.Errorf("create table "+table, err)
			}
			return nil
		},
		Inspect: func(ctx context.Context, table string) (sqlstore.Shape, error) {
			shape, err := inspect(ctx, h.reader, table)
			if err != nil {
				return shape, f.db.Errorf("inspect table "+table, err)
			}
			return shape, nil
		},
	}
	return f, nil
}

// inspect reads the columns and unique keys of table.
func inspect(ctx context.Context, db *sql.DB, table string) (sqlstore.Shape, error) {
	shape := sqlstore.Shape{Columns: map[string]string{}}
	rows, err := db.QueryContext(ctx, "SELECT name, lower(type) FROM pragma_table_info(?)", table)
	if err != nil {
		return shape, err
	}
	defer rows.Close()
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			return shape, err
		}
		shape.Columns[name] = typ
	}
	if err := rows.Err(); err != nil {
		return shape, err
	}
	// The columns of each unique index, in order; a WITHOUT ROWID table's
	// primary key is one of them.
	keys, err := db.QueryContext(ctx, `SELECT il.name, ii.name FROM pragma_index_list(?) AS il, pragma_index_info(il.name) AS ii
WHERE il."unique" = 1 ORDER BY il.name, ii.seqno`, table)
	if err != nil {
		return shape, err
	}
	defer keys.Close()
	byIndex := map[string][]string{}
	var order []string
	for keys.Next() {
		var index, column string
		if err := keys.Scan(&index, &column); err != nil {
			return shape, err
		}
		if _, ok := byIndex[index]; !ok {
			order = append(order, index)
		}
		byIndex[index] = append(byIndex[index], column)
	}
	for _, index := range order {
		shape.Unique = append(shape.Unique, byIndex[index])
	}
	return shape, keys.Err()
}

var dialect = sqlstore.Dialect{
	Name:      "sqlite",
	IDArg:     func(id uuid.UUID) any { return id[:] },
	Returning: "RETURNING notification_id, originator_id, originator_version",
	Upsert:    "ON CONFLICT (tenant, originator_id, originator_version) DO UPDATE SET topic = excluded.topic, state = excluded.state",
	Classify:  classify,
	// Writes go through one connection, so without grouping every save
	// waits for the flush of every save before it.
	GroupCommit: maxGroup,
	// A unique key's conflict (ON CONFLICT ABORT, the default) undoes the
	// statement alone; a trigger's RAISE may end the transaction or keep
	// part of the statement, and a save it fails is taken out of its
	// group.
	StatementUndone: func(err error) bool {
		code, ok := resultCode(err)
		return ok && (code == codeConstraintUnique || code == codeConstraintPrimaryKey)
	},
	Prepare:      true,
	LastInsertID: true,
	DriverRows:   true,
	// A unary + makes the column an expression that no index answers,
	// so that a tenant alone in its file reads its log in rowid order.
	SoleTenant:  "+tenant = ?",
	SelectAfter: selectAfter,
}

// selectAfter is the dialect's SelectAfter: the versions' JSON array is
// the outer loop (CROSS JOIN keeps it so), and each of its elements, with
// the ID at its index in the blob of IDs, is looked up in the aggregate
// index.
func selectAfter(table string, commits bool) string {
	cols := "e.originator_version, e.topic, e.state"
	if commits {
		cols += ", e.commit_id, e.headers"
	}
	return "SELECT a.key AS i, " + cols + " FROM json_each(?) AS a CROSS JOIN " + table + " AS e" +
		" WHERE e.tenant = ? AND e.originator_id = substr(?, a.key * 16 + 1, 16) AND e.originator_version > a.value" +
		" ORDER BY a.key, e.originator_version"
}

// maxGroup is the most saves committed together in one transaction.
const maxGroup = 64

// Classify returns the persistence kind (ErrOperational, ErrIntegrity,
// ...) of an error of the SQLite driver, or nil if err is not one. Code
// that runs its own SQL on the database (read models) uses it to tell
// failures worth trying again from others.
func Classify(err error) error { return classify(err) }

// classify maps SQLite result codes to persistence kinds.
func classify(err error) error {
	code, ok := resultCode(err)
	if !ok {
		return nil
	}
	switch code & 0xff {
	case codeConstraint:
		return persistence.ErrIntegrity
	case codeBusy, codeLocked, codeIOErr, codeFull, codeCantOpen, codeReadOnly, codeNoMem, codeInterrupt, codeProtocol, codePerm:
		return persistence.ErrOperational
	case codeCorrupt, codeNotADB, codeTooBig, codeMismatch, codeRange:
		return persistence.ErrData
	case codeError, codeMisuse, codeSchema:
		return persistence.ErrProgramming
	}
	return persistence.ErrDatabase
}

func eventsTable(name string) sqlstore.Table {
	return sqlstore.Table{
		Name: name,
		DDL: []string{
			// AUTOINCREMENT: a notification ID is never used twice, even if
			// the newest rows were deleted, so that no reader can skip an
			// event.
			"CREATE TABLE IF NOT EXISTS " + name + ` (
  notification_id INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant TEXT NOT NULL,
  originator_id BLOB NOT NULL,
  originator_version INTEGER NOT NULL,
  topic TEXT NOT NULL,
  state BLOB NOT NULL,
  commit_id BLOB NOT NULL,
  headers BLOB NOT NULL)`,
			"CREATE UNIQUE INDEX IF NOT EXISTS " + name + "_aggregate ON " + name + " (tenant, originator_id, originator_version)",
			"CREATE INDEX IF NOT EXISTS " + name + "_tenant ON " + name + " (tenant, notification_id)",
		},
		Columns: []sqlstore.Column{
			{Name: "notification_id", Types: []string{"integer"}},
			{Name: "tenant", Types: []string{"text"}},
			{Name: "originator_id", Types: []string{"blob"}},
			{Name: "originator_version", Types: []string{"integer"}},
			{Name: "topic", Types: []string{"text"}},
			{Name: "state", Types: []string{"blob"}},
			{Name: "commit_id", Types: []string{"blob"}},
			{Name: "headers", Types: []string{"blob"}},
		},
		Unique: [][]string{{"tenant", "originator_id", "originator_version"}},
	}
}

func commitsTable(name string) sqlstore.Table {
	return sqlstore.Table{
		Name: name,
		DDL: []string{"CREATE TABLE IF NOT EXISTS " + name + ` (
  tenant TEXT NOT NULL,
  originator_id BLOB NOT NULL,
  commit_id BLOB NOT NULL,
  PRIMARY KEY (tenant, originator_id, commit_id)) WITHOUT ROWID`},
		Columns: []sqlstore.Column{
			{Name: "tenant", Types: []string{"text"}},
			{Name: "originator_id", Types: []string{"blob"}},
			{Name: "commit_id", Types: []string{"blob"}},
		},
		Unique: [][]string{{"tenant", "originator_id", "commit_id"}},
	}
}

func aggregateTable(name string) sqlstore.Table {
	return sqlstore.Table{
		Name: name,
		DDL: []string{"CREATE TABLE IF NOT EXISTS " + name + ` (
  tenant TEXT NOT NULL,
  originator_id BLOB NOT NULL,
  originator_version INTEGER NOT NULL,
  topic TEXT NOT NULL,
  state BLOB NOT NULL,
  PRIMARY KEY (tenant, originator_id, originator_version)) WITHOUT ROWID`},
		Columns: []sqlstore.Column{
			{Name: "tenant", Types: []string{"text"}},
			{Name: "originator_id", Types: []string{"blob"}},
			{Name: "originator_version", Types: []string{"integer"}},
			{Name: "topic", Types: []string{"text"}},
			{Name: "state", Types: []string{"blob"}},
		},
		Unique: [][]string{{"tenant", "originator_id", "originator_version"}},
	}
}

func trackingTable(name string) sqlstore.Table {
	return sqlstore.Table{
		Name: name,
		DDL: []string{"CREATE TABLE IF NOT EXISTS " + name + ` (
  tenant TEXT NOT NULL,
  application_name TEXT NOT NULL,
  notification_id INTEGER NOT NULL,
  PRIMARY KEY (application_name, notification_id)) WITHOUT ROWID`},
		Columns: []sqlstore.Column{
			{Name: "tenant", Types: []string{"text"}},
			{Name: "application_name", Types: []string{"text"}},
			{Name: "notification_id", Types: []string{"integer"}},
		},
		Unique: [][]string{{"application_name", "notification_id"}},
	}
}

// AggregateRecorder returns the recorder of the purpose's table
// ("snapshots": worlds_snapshots).
func (f *Factory) AggregateRecorder(ctx context.Context, purpose string) (persistence.AggregateRecorder, error) {
	table := f.tables.Purpose(purpose)
	if err := sqlstore.CheckIdentifier("table", table); err != nil {
		return nil, err
	}
	if err := f.creator.Ensure(ctx, aggregateTable(table)); err != nil {
		return nil, err
	}
	return sqlstore.NewAggregateRecorder(f.db, table, f.tenant), nil
}

// ApplicationRecorder returns the recorder of the application's events.
func (f *Factory) ApplicationRecorder(ctx context.Context) (persistence.ApplicationRecorder, error) {
	if err := f.ensureEvents(ctx); err != nil {
		return nil, err
	}
	return sqlstore.NewApplicationRecorder(f.db, f.tables.Events, f.tables.Commits, f.tenant), nil
}

// ProcessRecorder returns the recorder of the application's events and
// tracking records.
func (f *Factory) ProcessRecorder(ctx context.Context) (persistence.ProcessRecorder, error) {
	if err := f.ensureEvents(ctx); err != nil {
		return nil, err
	}
	if err := f.creator.Ensure(ctx, trackingTable(f.tables.Tracking)); err != nil {
		return nil, err
	}
	return sqlstore.NewBatchProcessRecorder(f.db, f.tables.Events, f.tables.Commits, f.tables.Tracking, f.tenant), nil
}

func (f *Factory) ensureEvents(ctx context.Context) error {
	if err := f.creator.Ensure(ctx, eventsTable(f.tables.Events)); err != nil {
		return err
	}
	return f.creator.Ensure(ctx, commitsTable(f.tables.Commits))
}

// Tenant returns the factory of tenant id, on the same database.
func (f *Factory) Tenant(id string) (persistence.Factory, error) {
	if err := persistence.CheckTenant(id); err != nil {
		return nil, err
	}
	t := *f
	t.tenant = id
	return &t, nil
}

// eraser deletes the factory's tenant's data.
func (f *Factory) eraser() sqlstore.Erase {
	return sqlstore.Erase{DB: f.db, Tables: f.tables, Tenant: f.tenant, ListTables: func(ctx context.Context) ([]string, error) {
		rows, err := f.h.reader.QueryContext(ctx, "SELECT name FROM sqlite_schema WHERE type = 'table'")
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var names []string
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				return nil, err
			}
			names = append(names, n)
		}
		return names, rows.Err()
	}}
}

// DeleteAggregate deletes the aggregate's events, commits and snapshots in
// the factory's tenant, in one transaction.
func (f *Factory) DeleteAggregate(ctx context.Context, id uuid.UUID) (bool, error) {
	return f.eraser().DeleteAggregate(ctx, id)
}

// TruncateAggregate deletes the aggregate's events below version before
// in the factory's tenant, with their notifications, in one transaction
// (see persistence.Truncater). The first truncation creates the table of
// truncation points and the trigger that keeps truncated versions taken.
func (f *Factory) TruncateAggregate(ctx context.Context, id uuid.UUID, before int64) (int, error) {
	return f.truncate().TruncateAggregate(ctx, id, before)
}

// TruncationPoint returns the version the aggregate was truncated before,
// or 0.
func (f *Factory) TruncationPoint(ctx context.Context, id uuid.UUID) (int64, error) {
	return f.truncate().TruncationPoint(ctx, id)
}

func (f *Factory) truncate() sqlstore.Truncate {
	ev, points := f.tables.Events, f.tables.Truncated
	return sqlstore.Truncate{DB: f.db, Tables: f.tables, Tenant: f.tenant,
		HasPoints: "SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = ?",
		Fence: []string{
			"CREATE TABLE IF NOT EXISTS " + points + ` (
  tenant TEXT NOT NULL,
  originator_id BLOB NOT NULL,
  before_version INTEGER NOT NULL,
  PRIMARY KEY (tenant, originator_id)) WITHOUT ROWID`,
			"CREATE TRIGGER IF NOT EXISTS " + points + "_fence BEFORE INSERT ON " + ev + ` WHEN EXISTS (SELECT 1 FROM ` + points + ` p
  WHERE p.tenant = NEW.tenant AND p.originator_id = NEW.originator_id AND NEW.originator_version < p.before_version)
BEGIN SELECT RAISE(ABORT, 'UNIQUE constraint failed: the version was truncated'); END`,
		},
		SetPoint: "INSERT INTO " + points + ` (tenant, originator_id, before_version) VALUES (?, ?, ?)
ON CONFLICT (tenant, originator_id) DO UPDATE SET before_version = max(before_version, excluded.before_version)`,
	}
}

// PurgeTenant deletes everything of the factory's tenant, in one
// transaction.
func (f *Factory) PurgeTenant(ctx context.Context) error { return f.eraser().PurgeTenant(ctx) }

// Tables returns the names of the application's tables.
func (f *Factory) Tables() sqlstore.Tables { return f.tables }

// DB returns the pools of the factory's database: one connection for
// writes, several for reads.
func (f *Factory) DB() (writer, reader *sql.DB) { return f.h.writer, f.h.reader }

// Close releases the database; the last factory of a file closes it. The
// factory of a tenant (see Tenant) closes nothing.
func (f *Factory) Close() error {
	if f.tenant != "" {
		return nil // the default tenant's factory owns the database
	}
	if !f.creator.Close() {
		return nil
	}
	f.db.MarkClosed()
	return release(f.h)
}

// handle is an open database shared by the factories of one file that
// open it the same way (read-write or read-only).
type handle struct {
	key    string
	cfg    Config // the settings it was opened with
	refs   int
	writer *sql.DB // nil if read-only
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
		if c.ReadOnly {
			// Read-only factories share a handle of their own: it has no
			// write connection, and never writes the file's journal mode.
			key = "ro:" + abs
		}
	}
	handles.Lock()
	defer handles.Unlock()
	if h, ok := handles.byKey[key]; ok {
		// Connections are shared, so their settings are: a factory that
		// asks for others would silently not get them.
		switch {
		case !c.ReadOnly && h.cfg.Synchronous != c.Synchronous:
			return nil, fmt.Errorf("%w: SQLITE_SYNCHRONOUS=%s, but %s is already open in this process with %s", persistence.ErrConfig, c.Synchronous, c.DBName, h.cfg.Synchronous)
		case h.cfg.LockTimeout != c.LockTimeout:
			return nil, fmt.Errorf("%w: SQLITE_LOCK_TIMEOUT=%v, but %s is already open in this process with %v", persistence.ErrConfig, c.LockTimeout.Seconds(), c.DBName, h.cfg.LockTimeout.Seconds())
		}
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

// readerCacheKiB is the page cache of each reader connection of a file,
// in KiB (cache_size=-8192). A catch-up reads the log once, in order, and
// gains nothing from a bigger cache, since the operating system's page
// cache holds the file anyway: reading 100,000 notifications took the
// same time with 2, 4, 8 or 32 MiB (fastest runs 192-209 ms), while a
// catch-up of a million grew the process by 68.9 MiB with 32 MiB and by
// 20.8 MiB with 8 MiB (docs/benchmarks.md). 8 MiB still keeps the hot
// pages of the aggregates being loaded.
const readerCacheKiB = 8192

func openHandle(ctx context.Context, key string, memory bool, c Config) (*handle, error) {
	common := connOptions{lockTimeout: c.LockTimeout}
	if c.ReadOnly && !memory {
		return openReadOnly(ctx, key, c, common)
	}
	var writerDSN, readerDSN string
	if memory {
		// vfs=memdb with a name starting with / is one database shared by
		// every connection of the process.
		name := "/strata-" + strings.TrimPrefix(key, "memdb:")
		common.memdb = true
		w := common
		w.immediate = true
		writerDSN, readerDSN = dsn(name, w), dsn(name, common)
	} else {
		w, r := common, common
		w.wal, w.synchronous, w.immediate, w.tempInMemory = true, c.Synchronous, true, true
		r.queryOnly, r.cacheKiB = true, readerCacheKiB
		writerDSN, readerDSN = dsn(key, w), dsn(key, r)
	}
	op := "open sqlite database " + key
	writer, err := openDB(writerDSN)
	if err != nil {
		return nil, &persistence.Error{Op: op, Kind: persistence.ErrOperational, Err: err}
	}
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxLifetime(0)
	writer.SetConnMaxIdleTime(0)
	h := &handle{key: key, cfg: c, refs: 1, writer: writer}
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
		if h.reader, err = openDB(readerDSN); err != nil {
			return fail(err)
		}
		if h.pin, err = h.reader.Conn(ctx); err != nil {
			return fail(err)
		}
	} else if h.reader, err = openDB(readerDSN); err != nil {
		return fail(err)
	}
	h.reader.SetMaxOpenConns(4)
	h.reader.SetMaxIdleConns(4)
	if err := h.reader.PingContext(ctx); err != nil {
		return fail(err)
	}
	return h, nil
}

// openReadOnly opens the file of key for reading only. A database in WAL
// mode needs its -shm file to be read; on a read-only folder or mount
// where it does not exist and cannot be made, the file is opened as
// immutable, which is right there: nothing can write it.
func openReadOnly(ctx context.Context, key string, c Config, common connOptions) (*handle, error) {
	path := strings.TrimPrefix(key, "ro:")
	op := "open sqlite database " + path + " read-only"
	if _, err := os.Stat(path); err != nil {
		return nil, &persistence.Error{Op: op, Kind: persistence.ErrNoTable, Err: fmt.Errorf("no database file %s (READ_ONLY creates nothing): %w", path, err)}
	}
	var lastErr error
	common.readOnly, common.queryOnly = true, true
	for _, immutable := range []bool{false, true} {
		o := common
		o.immutable = immutable
		reader, err := openDB(dsn(path, o))
		if err != nil {
			return nil, &persistence.Error{Op: op, Kind: persistence.ErrOperational, Err: err}
		}
		reader.SetMaxOpenConns(4)
		reader.SetMaxIdleConns(4)
		// A query, not a ping: the file is only read when a statement runs.
		var n int
		if err = reader.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&n); err == nil {
			return &handle{key: key, cfg: c, refs: 1, reader: reader}, nil
		}
		reader.Close()
		lastErr = err
	}
	return nil, persistence.Errorf(persistence.ErrOperational, op, lastErr)
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
	errs = append(errs, h.reader.Close())
	if h.writer != nil {
		errs = append(errs, h.writer.Close())
	}
	return errors.Join(errs...)
}

var (
	_ persistence.Eraser    = (*Factory)(nil)
	_ persistence.Truncater = (*Factory)(nil)
)

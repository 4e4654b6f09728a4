// Package postgres is Strata's PostgreSQL persistence module, built on pgx
// v5 and its pool.
//
// Select it with PERSISTENCE_MODULE=postgres and configure it with the
// reference design's variables:
//
//	POSTGRES_URL          a connection URL, instead of the next five
//	POSTGRES_DBNAME       database name (required without POSTGRES_URL)
//	POSTGRES_HOST         host (default 127.0.0.1)
//	POSTGRES_PORT         port (default 5432)
//	POSTGRES_USER         user (default postgres)
//	POSTGRES_PASSWORD     password
//	POSTGRES_SCHEMA       schema of the tables (default public)
//	POSTGRES_POOL_SIZE    most connections in the pool (default 10)
//	POSTGRES_CONN_MAX_AGE seconds after which idle connections are closed;
//	                      0 uses each connection once; empty keeps them
//	POSTGRES_PRE_PING     check connections before use (default false)
//	POSTGRES_LOCK_TIMEOUT seconds to wait for a lock (default 0: no limit)
//	POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT
//	                      seconds after which a session idle in a
//	                      transaction is ended (default 0: never)
//	POSTGRES_NOTIFY       notify listeners after saves (default true)
//	POSTGRES_READ_RETRY   seconds a read retries on broken connections, with
//	                      growing waits, before failing (default 10)
//	CREATE_TABLE          create the schema and tables (default true)
//	READ_ONLY             create nothing and refuse writes (default false)
//
// Existing tables are checked when a recorder opens them: a table with
// another layout is refused with an error naming the table and the column,
// and a missing table, when tables are not created, is an error wrapping
// persistence.ErrNoTable.
//
// # Failures
//
// A read that fails on a broken connection (the server restarted, the
// network dropped) is retried on a fresh connection, with growing waits,
// for up to POSTGRES_READ_RETRY. A write is retried only if nothing of it
// reached the server; if the connection broke after the statement was
// sent, the save may have been recorded, and the error wraps
// persistence.ErrUnknownOutcome.
//
// A stream of notifications reads a page of rows at a time into memory
// and releases its connection before yielding them, so that the code that
// processes them (a follower's policy, which loads and saves aggregates)
// never waits for a connection that the stream holds, even with
// POSTGRES_POOL_SIZE=1.
//
// # Notification order
//
// A notification ID is the saving transaction's 64-bit transaction ID
// times 65536 plus the event's index in the save, and readers see only IDs
// below the oldest transaction still running. Writers therefore never wait
// for each other, yet a reader that has read up to ID n never later finds a
// newly committed ID at or below n. docs/postgres.md explains the scheme,
// its proof, its measurements against a table lock, and its limits: a long
// transaction on the server delays what readers see, and a cluster
// restored from a dump must have its transaction counter moved past the
// store's IDs (the recorder refuses to write until it is).
//
// # Group commit
//
// Saves made while others are being committed wait and are then recorded
// together, one statement per events table: one round trip and one commit
// for the group. A group that fails on the server is sent again save by
// save, so that a conflicting save fails alone; docs/postgres.md has the
// details.
package postgres

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-go/strata/internal/sqlstore"
	"github.com/strata-go/strata/persistence"
)

func init() {
	persistence.RegisterModule(persistence.Module{
		Name:      "postgres",
		Aliases:   []string{"postgresql", "eventsourcing.postgres:Factory"},
		Open:      func(ctx context.Context, env persistence.Env) (persistence.Factory, error) { return OpenEnv(ctx, env) },
		Variables: Variables,
	})
}

// MaxSave is the most events one save may hold: the index of an event in
// its save is the low 16 bits of its notification ID.
const MaxSave = 1 << 16

// visible is the condition that shows readers only the rows of
// transactions older than every transaction still running. It is
// evaluated in the statement's own snapshot, which is what makes it safe.
const visible = "notification_id < pg_snapshot_xmin(pg_current_snapshot())::text::bigint * 65536"

// OpenEnv opens a factory configured by the environment.
func OpenEnv(ctx context.Context, env persistence.Env) (*Factory, error) {
	c, err := ConfigFromEnv(env)
	if err != nil {
		return nil, err
	}
	return Open(ctx, c)
}

// Factory makes the PostgreSQL recorders of one application.
type Factory struct {
	cfg    Config
	pool   *sharedPool
	tables sqlstore.Tables
	schema string

	creator  *sqlstore.Creator // shared by the factories of its tenants
	notifier *notifier
	closed   *atomic.Bool // shared with the recorders and the tenants' factories
	tenant   string
}

// Open connects to the database and returns the application's factory.
func Open(ctx context.Context, c Config) (*Factory, error) {
	tables, err := sqlstore.TablesFor(c.AppName, 63)
	if err != nil {
		return nil, err
	}
	if c.Schema == "" {
		c.Schema = "public"
	}
	if err := sqlstore.CheckIdentifier("schema", c.Schema); err != nil {
		return nil, err
	}
	if c.PoolSize <= 0 {
		c.PoolSize = 10
	}
	if c.ReadRetry == 0 {
		c.ReadRetry = DefaultReadRetry
	}
	pool, err := acquirePool(ctx, c)
	if err != nil {
		return nil, err
	}
	f := &Factory{cfg: c, pool: pool, tables: tables, schema: c.Schema, closed: new(atomic.Bool)}
	f.creator = &sqlstore.Creator{
		Enabled: c.CreateTables && !c.ReadOnly,
		Exec: func(ctx context.Context, table, stmt string) error {
			if _, err := pool.Exec(ctx, stmt); err != nil && !isDuplicateObject(err) {
				// Concurrent creators of one table race in the catalog; the
				// loser's error is harmless: the table exists afterwards.
				return errorf("create table "+table, err)
			}
			return nil
		},
		Inspect: func(ctx context.Context, table string) (sqlstore.Shape, error) {
			shape, err := inspect(ctx, pool.Pool, table)
			if err != nil {
				return shape, errorf("inspect table "+table, err)
			}
			return shape, nil
		},
	}
	if c.Notify && !c.ReadOnly {
		f.notifier = newNotifier(pool.Pool, f.qualified(tables.Events))
	}
	return f, nil
}

func (f *Factory) qualified(table string) string { return f.schema + "." + table }

// Schema returns the schema of the factory's tables.
func (f *Factory) Schema() string { return f.schema }

// Pool returns the factory's connection pool.
func (f *Factory) Pool() *pgxpool.Pool { return f.pool.Pool }

// Channel returns the channel on which saves of the application's events
// are announced (see [Factory.Listen]).
func (f *Factory) Channel() string { return f.qualified(f.tables.Events) }

func isDuplicateObject(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "42P07" || pe.Code == "42P06" || pe.Code == "23505" || pe.Code == "42710")
}

// table completes the definition of a table of the schema: the schema is
// created with it.
func (f *Factory) table(t sqlstore.Table) sqlstore.Table {
	t.DDL = append([]string{"CREATE SCHEMA IF NOT EXISTS " + f.schema}, t.DDL...)
	return t
}

// inspect reads the columns and unique keys of table, schema.name.
func inspect(ctx context.Context, pool *pgxpool.Pool, table string) (sqlstore.Shape, error) {
	schema, name, _ := strings.Cut(table, ".")
	shape := sqlstore.Shape{Columns: map[string]string{}}
	rows, err := pool.Query(ctx, `SELECT a.attname, format_type(a.atttypid, NULL)
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped`, schema, name)
	if err != nil {
		return shape, err
	}
	for rows.Next() {
		var col, typ string
		if err := rows.Scan(&col, &typ); err != nil {
			rows.Close()
			return shape, err
		}
		shape.Columns[col] = typ
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return shape, err
	}
	// Unique indexes (primary keys among them) that are not partial, with
	// their key columns in order.
	keys, err := pool.Query(ctx, `SELECT array_agg(a.attname ORDER BY k.ord)
FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
WHERE n.nspname = $1 AND c.relname = $2 AND i.indisunique AND i.indpred IS NULL
GROUP BY i.indexrelid`, schema, name)
	if err != nil {
		return shape, err
	}
	defer keys.Close()
	for keys.Next() {
		var cols []string
		if err := keys.Scan(&cols); err != nil {
			return shape, err
		}
		shape.Unique = append(shape.Unique, cols)
	}
	return shape, keys.Err()
}

func eventsTable(table string) sqlstore.Table {
	index := strings.ReplaceAll(table, ".", "_")
	return sqlstore.Table{
		Name: table,
		DDL: []string{
			"CREATE TABLE IF NOT EXISTS " + table + ` (
  notification_id bigint NOT NULL,
  tenant text NOT NULL,
  originator_id uuid NOT NULL,
  originator_version bigint NOT NULL,
  topic text NOT NULL,
  state bytea NOT NULL,
  commit_id uuid NOT NULL,
  headers bytea NOT NULL,
  PRIMARY KEY (tenant, originator_id, originator_version))`,
			"CREATE UNIQUE INDEX IF NOT EXISTS " + index + "_nid ON " + table + " (notification_id)",
			"CREATE INDEX IF NOT EXISTS " + index + "_tenant ON " + table + " (tenant, notification_id)",
		},
		Columns: []sqlstore.Column{
			{Name: "notification_id", Types: []string{"bigint"}},
			{Name: "tenant", Types: []string{"text"}},
			{Name: "originator_id", Types: []string{"uuid"}},
			{Name: "originator_version", Types: []string{"bigint"}},
			{Name: "topic", Types: []string{"text"}},
			{Name: "state", Types: []string{"bytea"}},
			{Name: "commit_id", Types: []string{"uuid"}},
			{Name: "headers", Types: []string{"bytea"}},
		},
		Unique: [][]string{{"tenant", "originator_id", "originator_version"}, {"notification_id"}},
	}
}

func commitsTable(table string) sqlstore.Table {
	return sqlstore.Table{
		Name: table,
		DDL: []string{"CREATE TABLE IF NOT EXISTS " + table + ` (
  tenant text NOT NULL,
  originator_id uuid NOT NULL,
  commit_id uuid NOT NULL,
  PRIMARY KEY (tenant, originator_id, commit_id))`},
		Columns: []sqlstore.Column{
			{Name: "tenant", Types: []string{"text"}},
			{Name: "originator_id", Types: []string{"uuid"}},
			{Name: "commit_id", Types: []string{"uuid"}},
		},
		Unique: [][]string{{"tenant", "originator_id", "commit_id"}},
	}
}

func aggregateTable(table string) sqlstore.Table {
	return sqlstore.Table{
		Name: table,
		DDL: []string{"CREATE TABLE IF NOT EXISTS " + table + ` (
  tenant text NOT NULL,
  originator_id uuid NOT NULL,
  originator_version bigint NOT NULL,
  topic text NOT NULL,
  state bytea NOT NULL,
  PRIMARY KEY (tenant, originator_id, originator_version))`},
		Columns: []sqlstore.Column{
			{Name: "tenant", Types: []string{"text"}},
			{Name: "originator_id", Types: []string{"uuid"}},
			{Name: "originator_version", Types: []string{"bigint"}},
			{Name: "topic", Types: []string{"text"}},
			{Name: "state", Types: []string{"bytea"}},
		},
		Unique: [][]string{{"tenant", "originator_id", "originator_version"}},
	}
}

func trackingTable(table string) sqlstore.Table {
	return sqlstore.Table{
		Name: table,
		DDL: []string{"CREATE TABLE IF NOT EXISTS " + table + ` (
  tenant text NOT NULL,
  application_name text NOT NULL,
  notification_id bigint NOT NULL,
  PRIMARY KEY (application_name, notification_id))`},
		Columns: []sqlstore.Column{
			{Name: "tenant", Types: []string{"text"}},
			{Name: "application_name", Types: []string{"text"}},
			{Name: "notification_id", Types: []string{"bigint"}},
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
	q := f.qualified(table)
	if err := f.creator.Ensure(ctx, f.table(aggregateTable(q))); err != nil {
		return nil, err
	}
	return &AggregateRecorder{f.recorder(q)}, nil
}

// ApplicationRecorder returns the recorder of the application's events.
func (f *Factory) ApplicationRecorder(ctx context.Context) (persistence.ApplicationRecorder, error) {
	return f.processRecorder(ctx, false)
}

// ProcessRecorder returns the recorder of the application's events and
// tracking records.
func (f *Factory) ProcessRecorder(ctx context.Context) (persistence.ProcessRecorder, error) {
	return f.processRecorder(ctx, true)
}

func (f *Factory) processRecorder(ctx context.Context, tracking bool) (*Recorder, error) {
	events := f.qualified(f.tables.Events)
	if err := f.creator.Ensure(ctx, f.table(eventsTable(events))); err != nil {
		return nil, err
	}
	commits := f.qualified(f.tables.Commits)
	if err := f.creator.Ensure(ctx, f.table(commitsTable(commits))); err != nil {
		return nil, err
	}
	r := &Recorder{recorder: f.recorder(events), commits: commits, notifier: f.notifier, group: f.pool.group}
	r.events = true
	if tracking {
		r.tracking = f.qualified(f.tables.Tracking)
		if err := f.creator.Ensure(ctx, f.table(trackingTable(r.tracking))); err != nil {
			return nil, err
		}
	}
	if !f.cfg.ReadOnly {
		if err := r.checkCounter(ctx); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func (f *Factory) recorder(table string) recorder {
	return recorder{pool: f.pool.Pool, table: table, tenant: f.tenant, closed: f.closed, readOnly: f.cfg.ReadOnly, readRetry: f.cfg.ReadRetry}
}

// Tenant returns the factory of tenant id, on the same database and pool.
func (f *Factory) Tenant(id string) (persistence.Factory, error) {
	if err := persistence.CheckTenant(id); err != nil {
		return nil, err
	}
	t := *f
	t.tenant = id
	return &t, nil
}

// DeleteAggregate deletes the aggregate's events, commits and snapshots
// (every purpose) in the factory's tenant, in one transaction.
func (f *Factory) DeleteAggregate(ctx context.Context, id uuid.UUID) (bool, error) {
	op := "delete aggregate " + id.String() + " of " + f.qualified(f.tables.Events)
	had := false
	err := f.erase(ctx, op, func(ctx context.Context, tx pgx.Tx, tables []string) error {
		for _, t := range tables {
			if t == f.tables.Tracking {
				continue
			}
			tag, err := tx.Exec(ctx, "DELETE FROM "+f.qualified(t)+" WHERE tenant = $1 AND originator_id = $2", f.tenant, [16]byte(id))
			if err != nil {
				return err
			}
			if t == f.tables.Events && tag.RowsAffected() > 0 {
				had = true
			}
		}
		return nil
	})
	return had, err
}

// PurgeTenant deletes everything of the factory's tenant, in one
// transaction.
func (f *Factory) PurgeTenant(ctx context.Context) error {
	op := "purge tenant " + f.tenant + " of " + f.qualified(f.tables.Events)
	if f.tenant == "" {
		return &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: errors.New("the default tenant cannot be purged")}
	}
	return f.erase(ctx, op, func(ctx context.Context, tx pgx.Tx, tables []string) error {
		for _, t := range tables {
			if _, err := tx.Exec(ctx, "DELETE FROM "+f.qualified(t)+" WHERE tenant = $1", f.tenant); err != nil {
				return err
			}
		}
		return nil
	})
}

// erase runs del in a transaction with the application's tables that
// exist: its events, commits and tracking tables and those of every
// purpose.
func (f *Factory) erase(ctx context.Context, op string, del func(ctx context.Context, tx pgx.Tx, tables []string) error) error {
	r := f.recorder(f.qualified(f.tables.Events))
	if err := r.beginWrite(ctx, op); err != nil {
		return err
	}
	rows, err := f.pool.Query(ctx, "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", f.schema)
	if err != nil {
		return errorf(op+": list tables", err)
	}
	listed, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return errorf(op+": list tables", err)
	}
	var tables []string
	for _, t := range []string{f.tables.Events, f.tables.Commits, f.tables.Tracking, f.tables.Truncated} {
		if slices.Contains(listed, t) {
			tables = append(tables, t)
		}
	}
	tables = append(tables, f.tables.Purposes(listed)...)
	err = pgx.BeginFunc(ctx, f.pool.Pool, func(tx pgx.Tx) error { return del(ctx, tx, tables) })
	if err != nil {
		r.recover(err)
		return writeError(op, err)
	}
	return nil
}

// Close stops the notifier and releases the pool; the last factory of a
// database closes it.
func (f *Factory) Close() error {
	if f.tenant != "" {
		return nil // the default tenant's factory owns the pool
	}
	if !f.creator.Close() {
		return nil
	}
	f.closed.Store(true)
	if f.notifier != nil {
		f.notifier.stop()
	}
	releasePool(f.pool)
	return nil
}

// recorder is what all recorders share: a pool, an events table, and the
// factory's settings.
type recorder struct {
	pool      *pgxpool.Pool
	table     string
	tenant    string
	events    bool // an events table, with commit IDs and headers
	closed    *atomic.Bool
	readOnly  bool
	readRetry time.Duration
}

// begin checks, before a call of op, that the factory is open and ctx has
// not ended, so that neither reaches the server.
func (r *recorder) begin(ctx context.Context, op string) error {
	if r.closed.Load() {
		return &persistence.Error{Op: op, Kind: persistence.ErrInterface, Err: errors.New("recorder is closed")}
	}
	if err := ctx.Err(); err != nil {
		return &persistence.Error{Op: op, Kind: persistence.ErrOperational, Err: err}
	}
	return nil
}

// beginWrite is begin for a write, which a read-only store refuses.
func (r *recorder) beginWrite(ctx context.Context, op string) error {
	if err := r.begin(ctx, op); err != nil {
		return err
	}
	if r.readOnly {
		return &persistence.Error{Op: op, Kind: persistence.ErrReadOnly, Err: errors.New("the store was opened with READ_ONLY")}
	}
	return nil
}

// AggregateRecorder records events without notification IDs, such as
// snapshots, and can replace them.
type AggregateRecorder struct{ recorder }

// Recorder is the application and process recorder.
type Recorder struct {
	recorder
	commits  string
	tracking string
	notifier *notifier
	group    *sqlstore.Group[*pgSave] // the pool's group commit
}

var (
	_ persistence.ProcessRecorder      = (*Recorder)(nil)
	_ persistence.NotificationStreamer = (*Recorder)(nil)
	_ persistence.AggregateRecorder    = (*AggregateRecorder)(nil)
	_ persistence.Replacer             = (*AggregateRecorder)(nil)
	_ persistence.Eraser               = (*Factory)(nil)
	_ persistence.Lister               = (*AggregateRecorder)(nil)
)

// errorf classifies a pgx error.
func errorf(op string, err error) error {
	return persistence.Errorf(classify(err), op, err)
}

// Classify returns the persistence kind (ErrOperational, ErrIntegrity,
// ...) of an error of pgx or the server, or nil if err is nil. An error
// that is not the server's is a failure on the way to or from it:
// ErrOperational. Code that runs its own SQL on the database (read
// models) uses it to tell failures worth trying again from others.
func Classify(err error) error {
	if err == nil {
		return nil
	}
	return classify(err)
}

// classify maps PostgreSQL's SQLSTATE classes and connection failures to
// persistence kinds.
func classify(err error) error {
	if k := sqlstore.ContextKind(err); k != nil {
		return k
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "23"):
			return persistence.ErrIntegrity
		case strings.HasPrefix(pe.Code, "22"):
			return persistence.ErrData
		case strings.HasPrefix(pe.Code, "08"), strings.HasPrefix(pe.Code, "53"), strings.HasPrefix(pe.Code, "57"),
			strings.HasPrefix(pe.Code, "40"), pe.Code == "55P03", pe.Code == "55006", pe.Code == "25P03":
			return persistence.ErrOperational
		case strings.HasPrefix(pe.Code, "42"), strings.HasPrefix(pe.Code, "0A"), strings.HasPrefix(pe.Code, "25"):
			return persistence.ErrProgramming
		case strings.HasPrefix(pe.Code, "XX"):
			return persistence.ErrInternal
		}
		return persistence.ErrDatabase
	}
	// Anything else failed on the way to or from the server.
	return persistence.ErrOperational
}

// writeError classifies the error of a write. A write that failed on the
// way to or from the server, after it may have reached it, has an unknown
// outcome: the statement may have committed before the connection broke.
func writeError(op string, err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) && !pgconn.SafeToRetry(err) && !isClosedPool(err) {
		return persistence.Errorf(persistence.ErrUnknownOutcome, op, err)
	}
	return errorf(op, err)
}

func isClosedPool(err error) bool { return err != nil && err.Error() == "closed pool" }

// brokenConnection reports whether err means the connection is gone: the
// server restarted or ended the session, or the network failed.
func brokenConnection(err error) bool {
	if err == nil || sqlstore.ContextKind(err) != nil {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return strings.HasPrefix(pe.Code, "08") || pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03"
	}
	return true
}

// recover resets the pool after a broken connection: when the server
// restarts, every idle connection in the pool is as dead as the one that
// failed, and the next operations should not find that out one by one.
func (r *recorder) recover(err error) {
	if brokenConnection(err) {
		r.pool.Reset()
	}
}

// retry runs a read, and runs it again on a fresh connection while it
// fails on a broken connection, waiting longer each time, for up to the
// factory's ReadRetry: reads are idempotent, so a server restart of a few
// seconds costs a delay, not an error. It returns at once when ctx ends.
func retry[T any](ctx context.Context, r *recorder, op string, read func() (T, error)) (T, error) {
	var zero T
	if err := r.begin(ctx, op); err != nil {
		return zero, err
	}
	deadline := time.Now().Add(r.readRetry)
	wait := 50 * time.Millisecond
	for {
		v, err := read()
		if err == nil {
			return v, nil
		}
		r.recover(err)
		if ctx.Err() != nil || !brokenConnection(err) || time.Now().Add(wait).After(deadline) {
			return zero, errorf(op, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return zero, errorf(op, err)
		case <-t.C:
		}
		wait = min(2*wait, time.Second)
	}
}

// InsertEvents records events and the tracking record, if any, in one
// statement: one round trip, atomic without a transaction block. Saves
// made while others are being committed are committed together with
// their group (see group.go), each atomic and isolated as alone.
func (r *Recorder) InsertEvents(ctx context.Context, events []persistence.StoredEvent, opts ...persistence.InsertOption) ([]int64, error) {
	op := "insert events into " + r.table
	if err := r.beginWrite(ctx, op); err != nil {
		return nil, err
	}
	cfg := persistence.NewInsertConfig(opts)
	if cfg.Tracking != nil && r.tracking == "" {
		return nil, &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: errors.New("this recorder does not record tracking records")}
	}
	if len(events) == 0 && cfg.Tracking == nil {
		return nil, nil
	}
	if len(events) > MaxSave {
		return nil, &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: fmt.Errorf("%d events in one save, more than %d", len(events), MaxSave)}
	}
	if err := sqlstore.CheckBatch(op, events); err != nil {
		return nil, err
	}
	if err := persistence.CheckCommit(op, events); err != nil {
		return nil, err
	}
	s := &pgSave{ctx: ctx, table: r.table, tenant: r.tenant, commits: r.commits, tracked: r.tracking, events: events, tracking: cfg.Tracking}
	if len(events) > 0 {
		s.commitID, s.headers = events[0].CommitID, persistence.EncodeHeaders(events[0].Headers)
	}
	if s.headers == nil {
		s.headers = []byte{}
	}
	committing := s.commitID != uuid.Nil
	if err := r.group.Do(ctx, s); err != nil {
		// The save never reached the server: no connection for it.
		return nil, errorf(op, err)
	}
	got, err := s.got, s.err
	if err != nil && pgconn.SafeToRetry(err) && ctx.Err() == nil {
		// Nothing reached the server (a connection it had closed, say):
		// trying again on another connection cannot write twice.
		r.recover(err)
		q := statement([]*pgSave{s}, 0)
		got, err = scanIDs(len(events), 0)(r.pool.Query(ctx, q.SQL, q.Args...))
	}
	if err != nil {
		r.recover(err)
		if committing && errors.Is(writeError(op, err), persistence.ErrIntegrity) {
			if cerr := r.commitError(ctx, op, events); cerr != nil {
				return nil, cerr
			}
		}
		return nil, writeError(op, err)
	}
	if r.notifier != nil && len(events) > 0 {
		r.notifier.poke()
	}
	return got, nil
}

// commitError tells, after an insert failed on a unique key, whether its
// commit was recorded before (see sqlstore.CommitError).
func (r *Recorder) commitError(ctx context.Context, op string, events []persistence.StoredEvent) error {
	ids := sqlstore.Aggregates(events)
	rows, err := r.pool.Query(ctx, "SELECT originator_id FROM "+r.commits+" WHERE tenant = $1 AND commit_id = $2 AND originator_id = ANY($3)",
		r.tenant, [16]byte(events[0].CommitID), uuidArray(ids))
	if err != nil {
		return nil // the insert's own error says enough
	}
	defer rows.Close()
	var committed []uuid.UUID
	for rows.Next() {
		var id [16]byte
		if rows.Scan(&id) != nil {
			return nil
		}
		committed = append(committed, id)
	}
	return sqlstore.CommitError(op, events, committed)
}

func uuidArray(ids []uuid.UUID) [][16]byte {
	out := make([][16]byte, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out
}

// SelectEvents returns one aggregate's events as the query asks.
func (r *recorder) SelectEvents(ctx context.Context, id uuid.UUID, eq persistence.EventQuery) ([]persistence.StoredEvent, error) {
	q := sqlstore.SelectEvents(r.table, r.tenant, [16]byte(id), eq, r.events)
	q.SQL = sqlstore.Rebind(q.SQL)
	return retry(ctx, r, "select events from "+r.table, func() ([]persistence.StoredEvent, error) {
		rows, err := r.pool.Query(ctx, q.SQL, q.Args...)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		out := make([]persistence.StoredEvent, 0, max(eq.Limit, 0))
		var commitID [16]byte
		var headers []byte
		for rows.Next() {
			e := persistence.StoredEvent{OriginatorID: id}
			dest := []any{&e.OriginatorVersion, &e.Topic, &e.State}
			if r.events {
				dest = append(dest, &commitID, &headers)
			}
			if err := rows.Scan(dest...); err != nil {
				return nil, err
			}
			if r.events {
				e.CommitID = commitID
				if e.Headers, err = persistence.DecodeHeaders(headers); err != nil {
					return nil, err
				}
			}
			out = append(out, e)
		}
		return out, rows.Err()
	})
}

func topicsAny(topics []string) (string, []any) { return "topic = ANY(?)", []any{topics} }

// SelectNotifications returns the notifications readers can see, in order
// from q.Start.
func (r *Recorder) SelectNotifications(ctx context.Context, nq persistence.NotificationQuery) ([]persistence.Notification, error) {
	op := "select notifications from " + r.table
	if err := sqlstore.CheckLimit(op, nq.Limit); err != nil {
		return nil, err
	}
	q := sqlstore.SelectNotifications(r.table, r.tenant, nq, topicsAny, visible)
	q.SQL = sqlstore.Rebind(q.SQL)
	return retry(ctx, &r.recorder, op, func() ([]persistence.Notification, error) {
		out := make([]persistence.Notification, 0, min(nq.Limit, 1024))
		err := r.selectPage(ctx, q, func() *persistence.Notification {
			out = append(out, persistence.Notification{})
			return &out[len(out)-1]
		})
		return out, err
	})
}

// streamPage is the most rows one query of a stream asks for. A LIMIT
// keeps the planner on the notification ID index; without one, reading
// from the start looks like reading the whole table, which it would rather
// scan and sort. Each query costs a round trip and a start of the
// executor during which neither side works on rows: a catch-up of
// 100,000 notifications in pages of 10,000 took about 1.15 times the time
// of one scan, in pages of 50,000 about 0.9 (docs/benchmarks.md).
const streamPage = 50_000

// streamPageBytes bounds the state one page of a stream holds in memory:
// pages of large events are made smaller.
const streamPageBytes = 16 << 20

// Notifications streams the notifications readers can see (all of them
// from q.Start if q.Limit is 0), in queries of up to 50,000 rows: a round
// trip per page instead of per notification. Each page is read whole and
// its connection released before its notifications are yielded, so that
// what the caller does with them can use the pool, whatever its size.
// Each query's snapshot bounds what it sees.
func (r *Recorder) Notifications(ctx context.Context, nq persistence.NotificationQuery) iter.Seq2[persistence.Notification, error] {
	return r.streamNotifications(ctx, nq, streamPage)
}

// streamRows is the page of a stream in hand, held in blocks of
// streamBlock notifications that the next page fills again. The stream
// yields copies of them, and what a copy points to (its state, topic,
// headers) is made afresh for each page (sqlstore.Page), so filling the
// blocks again changes nothing a caller holds. A page read
// into one slice grew it by copying from a small first guess (a reader
// near the end of the log gets a few rows) to 50,000 rows: a quarter of the
// client's CPU in a catch-up of 100,000 (docs/benchmarks.md). Blocks are
// never copied, and a catch-up allocates those of its largest page.
type streamRows struct {
	blocks [][]persistence.Notification
	n      int
	// filled is how many notifications of the blocks may hold a row of
	// an earlier page (or of a failed attempt at this one).
	filled int
}

// streamBlock is how many notifications a block of streamRows holds.
const streamBlock = 1024

// add returns the zeroed next notification of the page.
func (p *streamRows) add() *persistence.Notification {
	b, i := p.n/streamBlock, p.n%streamBlock
	if b == len(p.blocks) {
		p.blocks = append(p.blocks, make([]persistence.Notification, streamBlock))
	}
	p.n++
	p.filled = max(p.filled, p.n)
	n := &p.blocks[b][i]
	*n = persistence.Notification{}
	return n
}

// trim clears the notifications beyond the page in hand that an earlier,
// larger page (or a failed attempt) filled: they would keep its states
// alive while this page is yielded, up to streamPageBytes of them.
func (p *streamRows) trim() {
	for i := p.n; i < p.filled; i++ {
		*p.at(i) = persistence.Notification{}
	}
	p.filled = p.n
}

// at returns the i-th notification of the page.
func (p *streamRows) at(i int) *persistence.Notification {
	return &p.blocks[i/streamBlock][i%streamBlock]
}

// streamNotifications is Notifications in pages of at most pageRows.
func (r *Recorder) streamNotifications(ctx context.Context, nq persistence.NotificationQuery, pageRows int) iter.Seq2[persistence.Notification, error] {
	return func(yield func(persistence.Notification, error) bool) {
		op := "stream notifications from " + r.table
		nq := nq // each range over the sequence starts afresh
		left := nq.Limit
		size := pageRows
		// The page's notifications are yielded as copies, so its blocks
		// are filled again by the next page.
		var page streamRows
		for {
			q := nq
			q.Limit = size
			if left > 0 && left < size {
				q.Limit = left
			}
			sq := sqlstore.SelectNotifications(r.table, r.tenant, q, topicsAny, visible)
			sq.SQL = sqlstore.Rebind(sq.SQL)
			_, err := retry(ctx, &r.recorder, op, func() (struct{}, error) {
				page.n = 0 // a failed attempt's rows are read again
				return struct{}{}, r.selectPage(ctx, sq, page.add)
			})
			if err != nil {
				yield(persistence.Notification{}, err)
				return
			}
			if page.n > 0 { // an empty page ends the stream, blocks and all
				page.trim()
			}
			n, bytes := page.n, 0
			for i := range n {
				note := page.at(i)
				bytes += len(note.State) + len(note.Topic) + 48
				if !yield(*note, nil) {
					return
				}
			}
			if left > 0 {
				if left -= n; left <= 0 {
					return
				}
			}
			if n < q.Limit {
				return
			}
			nq.Start = page.at(n-1).ID + 1
			size = min(pageRows, max(100, streamPageBytes/max(bytes/n, 1)))
		}
	}
}

// selectPage runs a select of notifications and decodes each of its rows
// into the notification add returns, which need stay valid only until the
// next call of add.
func (r *Recorder) selectPage(ctx context.Context, q sqlstore.Query, add func() *persistence.Notification) error {
	rows, err := r.pool.Query(ctx, q.SQL, q.Args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	raw := binaryColumns(rows.FieldDescriptions())
	var page sqlstore.Page
	var headers []byte
	for rows.Next() {
		n := add()
		if raw {
			if err := decodeNotification(rows.RawValues(), n, &page); err != nil {
				return err
			}
		} else {
			if err := rows.Scan(&n.ID, &n.Tenant, (*[16]byte)(&n.OriginatorID), &n.OriginatorVersion, &n.Topic, &n.State, (*[16]byte)(&n.CommitID), &headers); err != nil {
				return err
			}
			// Damaged headers are dropped rather than failing the page.
			n.Headers, _ = persistence.DecodeHeaders(headers)
		}
	}
	return rows.Err()
}

// notificationTypes are the type OIDs of sqlstore.NotificationColumns in
// the events table: bigint, text, uuid, bigint, text, bytea, uuid, bytea.
var notificationTypes = [8]uint32{20, 25, 2950, 20, 25, 17, 2950, 17}

// binaryColumns reports whether rows are the notification columns in
// PostgreSQL's binary format, which decodeNotification reads straight
// from the wire: a profile of a catch-up put most of the client's time
// in pgx's per-column scanning and in a string and a slice per row.
// Anything else (a column of another type, the text format) is scanned.
func binaryColumns(fields []pgconn.FieldDescription) bool {
	if len(fields) != len(notificationTypes) {
		return false
	}
	for i, f := range fields {
		// Text is sent as text (pgx prefers it), whose bytes are the
		// same in both formats.
		if f.DataTypeOID != notificationTypes[i] || f.Format != pgx.BinaryFormatCode && f.DataTypeOID != 25 {
			return false
		}
	}
	return true
}

// decodeNotification decodes one row of binary notification columns,
// copying through page (see sqlstore.Page).
func decodeNotification(v [][]byte, n *persistence.Notification, page *sqlstore.Page) error {
	if len(v) != 8 || len(v[0]) != 8 || len(v[2]) != 16 || len(v[3]) != 8 || len(v[6]) != 16 || v[1] == nil || v[4] == nil || v[5] == nil {
		return fmt.Errorf("%w: a notification row does not have the columns' binary sizes", persistence.ErrData)
	}
	n.ID = int64(binary.BigEndian.Uint64(v[0]))
	n.Tenant = page.Tenant(v[1])
	n.OriginatorID = uuid.UUID(v[2])
	n.OriginatorVersion = int64(binary.BigEndian.Uint64(v[3]))
	n.Topic = page.Topic(v[4])
	n.State = page.Bytes(v[5])
	n.CommitID = uuid.UUID(v[6])
	// Damaged headers are dropped rather than failing the page.
	n.Headers, _ = persistence.DecodeHeaders(v[7])
	return nil
}

// MaxNotificationID returns the highest notification ID readers can see,
// or 0.
func (r *Recorder) MaxNotificationID(ctx context.Context) (int64, error) {
	return retry(ctx, &r.recorder, "max notification ID of "+r.table, func() (int64, error) {
		var n int64
		err := r.pool.QueryRow(ctx, "SELECT COALESCE(MAX(notification_id), 0) FROM "+r.table+" WHERE tenant = $1 AND "+visible, r.tenant).Scan(&n)
		return n, err
	})
}

// MaxNotificationIDAcrossTenants returns the highest notification ID
// readers can see in every tenant, or 0.
func (r *Recorder) MaxNotificationIDAcrossTenants(ctx context.Context) (int64, error) {
	return retry(ctx, &r.recorder, "max notification ID of "+r.table, func() (int64, error) {
		var n int64
		err := r.pool.QueryRow(ctx, "SELECT COALESCE(MAX(notification_id), 0) FROM "+r.table+" WHERE "+visible).Scan(&n)
		return n, err
	})
}

// MaxTrackingID returns the highest notification ID recorded for the
// upstream application, or 0.
func (r *Recorder) MaxTrackingID(ctx context.Context, app string) (int64, error) {
	op := "max tracking ID in " + r.tracking
	if r.tracking == "" {
		return 0, &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: errors.New("not a process recorder")}
	}
	return retry(ctx, &r.recorder, op, func() (int64, error) {
		var n int64
		err := r.pool.QueryRow(ctx, "SELECT COALESCE(MAX(notification_id), 0) FROM "+r.tracking+" WHERE application_name = $1", app).Scan(&n)
		return n, err
	})
}

// HasTrackingID reports whether the notification ID was recorded for the
// upstream application.
func (r *Recorder) HasTrackingID(ctx context.Context, app string, id int64) (bool, error) {
	op := "has tracking ID in " + r.tracking
	if r.tracking == "" {
		return false, &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: errors.New("not a process recorder")}
	}
	return retry(ctx, &r.recorder, op, func() (bool, error) {
		var ok bool
		err := r.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+r.tracking+" WHERE application_name = $1 AND notification_id = $2)", app, id).Scan(&ok)
		return ok, err
	})
}

// checkCounter refuses to record into a table whose notification IDs are
// ahead of the server's transaction counter, which happens when a store is
// restored into a new cluster: new IDs would sort before old ones and
// readers would miss them.
func (r *Recorder) checkCounter(ctx context.Context) error {
	var ahead bool
	var maxID, next int64
	err := r.pool.QueryRow(ctx, `SELECT COALESCE(MAX(notification_id), 0), pg_snapshot_xmax(pg_current_snapshot())::text::bigint
FROM `+r.table).Scan(&maxID, &next)
	if err != nil {
		if isUndefinedTable(err) {
			return nil // CREATE_TABLE=false and no table yet: writes will say so
		}
		return errorf("check the transaction counter of "+r.table, err)
	}
	ahead = maxID >= next*65536
	if ahead {
		return &persistence.Error{Op: "open " + r.table, Kind: persistence.ErrOperational, Err: fmt.Errorf(
			"the table's highest notification ID %d is from transaction %d, but the server's next transaction is %d: "+
				"the store was probably restored into a new cluster; advance the transaction counter (pg_resetwal --epoch) before writing (see docs/postgres.md)",
			maxID, maxID>>16, next)}
	}
	return nil
}

func isUndefinedTable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "42P01"
}

// InsertEvents records events without notification IDs.
func (r *AggregateRecorder) InsertEvents(ctx context.Context, events []persistence.StoredEvent, opts ...persistence.InsertOption) ([]int64, error) {
	op := "insert events into " + r.table
	if err := r.beginWrite(ctx, op); err != nil {
		return nil, err
	}
	if persistence.NewInsertConfig(opts).Tracking != nil {
		return nil, &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: errors.New("an aggregate recorder does not record tracking records")}
	}
	return nil, r.write(ctx, op, events, "")
}

// Originators yields the IDs of the aggregates of the recorder's tenant,
// read whole before they are yielded.
func (r *AggregateRecorder) Originators(ctx context.Context) iter.Seq2[uuid.UUID, error] {
	return func(yield func(uuid.UUID, error) bool) {
		op := "list aggregates of " + r.table
		ids, err := retry(ctx, &r.recorder, op, func() ([][16]byte, error) {
			rows, err := r.pool.Query(ctx, "SELECT DISTINCT originator_id FROM "+r.table+" WHERE tenant = $1", r.tenant)
			if err != nil {
				return nil, err
			}
			return pgx.CollectRows(rows, pgx.RowTo[[16]byte])
		})
		if err != nil {
			yield(uuid.Nil, err)
			return
		}
		for _, id := range ids {
			if !yield(id, nil) {
				return
			}
		}
	}
}

// ReplaceEvents records events, replacing those at the same versions.
func (r *AggregateRecorder) ReplaceEvents(ctx context.Context, events []persistence.StoredEvent) error {
	if err := r.beginWrite(ctx, "replace events in "+r.table); err != nil {
		return err
	}
	return r.write(ctx, "replace events in "+r.table, events,
		" ON CONFLICT (tenant, originator_id, originator_version) DO UPDATE SET topic = excluded.topic, state = excluded.state")
}

func (r *AggregateRecorder) write(ctx context.Context, op string, events []persistence.StoredEvent, suffix string) error {
	if len(events) == 0 {
		return nil
	}
	if err := sqlstore.CheckBatch(op, events); err != nil {
		return err
	}
	_, err := r.pool.Exec(ctx, `INSERT INTO `+r.table+` (tenant, originator_id, originator_version, topic, state)
SELECT $5, o, v, tp, s FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::bytea[]) AS u(o, v, tp, s) ORDER BY o, v`+suffix,
		append(columns(events), r.tenant)...)
	if err != nil {
		r.recover(err)
		return writeError(op, err)
	}
	return nil
}

// columns turns events into the four arrays of the insert statements. IDs
// go as [16]byte: as uuid.UUID, pgx would convert each through its
// driver.Valuer, a string.
func columns(events []persistence.StoredEvent) []any {
	ids := make([][16]byte, len(events))
	versions := make([]int64, len(events))
	topics := make([]string, len(events))
	states := make([][]byte, len(events))
	for i, e := range events {
		ids[i], versions[i], topics[i], states[i] = e.OriginatorID, e.OriginatorVersion, e.Topic, e.State
		if states[i] == nil {
			states[i] = []byte{}
		}
	}
	return []any{ids, versions, topics, states}
}

// sharedPool is a pool shared by the factories of one database, so that a
// process with several applications does not open a pool for each.
type sharedPool struct {
	*pgxpool.Pool
	key   string
	refs  int
	group *sqlstore.Group[*pgSave] // commits the saves of every application on the pool
}

var pools = struct {
	sync.Mutex
	byKey map[string]*sharedPool
}{byKey: map[string]*sharedPool{}}

func acquirePool(ctx context.Context, c Config) (*sharedPool, error) {
	pc, err := c.poolConfig()
	if err != nil {
		return nil, err
	}
	key := fmt.Sprintf("%s|%d|%v|%v|%v|%v|%v", pc.ConnString(), c.PoolSize, c.ConnMaxAge, c.PrePing, c.LockTimeout, c.IdleInTransactionSessionTimeout, c.ReadOnly)
	pools.Lock()
	defer pools.Unlock()
	if p, ok := pools.byKey[key]; ok {
		p.refs++
		return p, nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, errorf("connect to PostgreSQL", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, errorf(fmt.Sprintf("connect to PostgreSQL at %s:%d", pc.ConnConfig.Host, pc.ConnConfig.Port), err)
	}
	p := &sharedPool{Pool: pool, key: key, refs: 1, group: newGroup(pool)}
	pools.byKey[key] = p
	return p, nil
}

func releasePool(p *sharedPool) {
	pools.Lock()
	defer pools.Unlock()
	p.refs--
	if p.refs == 0 {
		delete(pools.byKey, p.key)
		p.Close()
	}
}

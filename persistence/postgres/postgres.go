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
//	CREATE_TABLE          create the schema and tables (default true)
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
package postgres

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"
	"sync"

	"github.com/google/uuid"
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

	creator  sqlstore.Creator
	notifier *notifier
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
	pool, err := acquirePool(ctx, c)
	if err != nil {
		return nil, err
	}
	f := &Factory{cfg: c, pool: pool, tables: tables, schema: c.Schema}
	f.creator = sqlstore.Creator{Enabled: c.CreateTables, Exec: func(ctx context.Context, table, stmt string) error {
		if _, err := pool.Exec(ctx, stmt); err != nil && !isDuplicateObject(err) {
			// Concurrent creators of one table race in the catalog; the
			// loser's error is harmless: the table exists afterwards.
			return errorf("create table "+table, err)
		}
		return nil
	}}
	if c.Notify {
		f.notifier = newNotifier(pool.Pool, f.qualified(tables.Events))
	}
	return f, nil
}

func (f *Factory) qualified(table string) string { return f.schema + "." + table }

// Pool returns the factory's connection pool.
func (f *Factory) Pool() *pgxpool.Pool { return f.pool.Pool }

// Channel returns the channel on which saves of the application's events
// are announced (see [Factory.Listen]).
func (f *Factory) Channel() string { return f.qualified(f.tables.Events) }

// ensure creates the schema and a table once per factory if CREATE_TABLE
// allows.
func (f *Factory) ensure(ctx context.Context, table string, ddl ...string) error {
	return f.creator.Ensure(ctx, table, append([]string{"CREATE SCHEMA IF NOT EXISTS " + f.schema}, ddl...)...)
}

func isDuplicateObject(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "42P07" || pe.Code == "42P06" || pe.Code == "23505" || pe.Code == "42710")
}

func eventsDDL(table string) []string {
	return []string{
		"CREATE TABLE IF NOT EXISTS " + table + ` (
  notification_id bigint NOT NULL,
  originator_id uuid NOT NULL,
  originator_version bigint NOT NULL,
  topic text NOT NULL,
  state bytea NOT NULL,
  PRIMARY KEY (originator_id, originator_version))`,
		"CREATE UNIQUE INDEX IF NOT EXISTS " + strings.ReplaceAll(table, ".", "_") + "_nid ON " + table + " (notification_id)",
	}
}

func aggregateDDL(table string) []string {
	return []string{"CREATE TABLE IF NOT EXISTS " + table + ` (
  originator_id uuid NOT NULL,
  originator_version bigint NOT NULL,
  topic text NOT NULL,
  state bytea NOT NULL,
  PRIMARY KEY (originator_id, originator_version))`}
}

func trackingDDL(table string) []string {
	return []string{"CREATE TABLE IF NOT EXISTS " + table + ` (
  application_name text NOT NULL,
  notification_id bigint NOT NULL,
  PRIMARY KEY (application_name, notification_id))`}
}

// AggregateRecorder returns the recorder of the purpose's table
// ("snapshots": worlds_snapshots).
func (f *Factory) AggregateRecorder(ctx context.Context, purpose string) (persistence.AggregateRecorder, error) {
	table := f.tables.Purpose(purpose)
	if err := sqlstore.CheckIdentifier("table", table); err != nil {
		return nil, err
	}
	q := f.qualified(table)
	if err := f.ensure(ctx, q, aggregateDDL(q)...); err != nil {
		return nil, err
	}
	return &AggregateRecorder{recorder{pool: f.pool.Pool, table: q}}, nil
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
	if err := f.ensure(ctx, events, eventsDDL(events)...); err != nil {
		return nil, err
	}
	r := &Recorder{recorder: recorder{pool: f.pool.Pool, table: events}, notifier: f.notifier}
	if tracking {
		r.tracking = f.qualified(f.tables.Tracking)
		if err := f.ensure(ctx, r.tracking, trackingDDL(r.tracking)...); err != nil {
			return nil, err
		}
	}
	if err := r.checkCounter(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// Close stops the notifier and releases the pool; the last factory of a
// database closes it.
func (f *Factory) Close() error {
	if !f.creator.Close() {
		return nil
	}
	if f.notifier != nil {
		f.notifier.stop()
	}
	releasePool(f.pool)
	return nil
}

// recorder is what all recorders share: a pool and an events table.
type recorder struct {
	pool  *pgxpool.Pool
	table string
}

// AggregateRecorder records events without notification IDs, such as
// snapshots, and can replace them.
type AggregateRecorder struct{ recorder }

// Recorder is the application and process recorder.
type Recorder struct {
	recorder
	tracking string
	notifier *notifier
}

var (
	_ persistence.ProcessRecorder      = (*Recorder)(nil)
	_ persistence.NotificationStreamer = (*Recorder)(nil)
	_ persistence.AggregateRecorder    = (*AggregateRecorder)(nil)
	_ persistence.Replacer             = (*AggregateRecorder)(nil)
)

// errorf classifies a pgx error.
func errorf(op string, err error) error {
	return persistence.Errorf(classify(err), op, err)
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

// retry runs a read, and runs it once more on a fresh connection if it
// failed on a broken connection: reads are idempotent, so a server restart
// costs one retry, not an error.
func retry[T any](ctx context.Context, r *recorder, op string, read func() (T, error)) (T, error) {
	v, err := read()
	if err != nil && ctx.Err() == nil && brokenConnection(err) {
		r.recover(err)
		v, err = read()
	}
	if err != nil {
		r.recover(err)
		var zero T
		return zero, errorf(op, err)
	}
	return v, nil
}

// InsertEvents records events and the tracking record, if any, in one
// statement: one round trip, atomic without a transaction block.
func (r *Recorder) InsertEvents(ctx context.Context, events []persistence.StoredEvent, opts ...persistence.InsertOption) ([]int64, error) {
	op := "insert events into " + r.table
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
	var sql string
	args := columns(events)
	// Notification IDs follow the events' order in the save, but rows go
	// in by aggregate and version: two saves of the same aggregates (a
	// transfer each way between two accounts) then take the unique index's
	// row locks in the same order, and one waits for the other instead of
	// both deadlocking.
	insert := `INSERT INTO ` + r.table + ` (notification_id, originator_id, originator_version, topic, state)
SELECT pg_current_xact_id()::text::bigint * 65536 + (i - 1), o, v, tp, s
FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::bytea[]) WITH ORDINALITY AS u(o, v, tp, s, i)
ORDER BY o, v
RETURNING notification_id, originator_id, originator_version`
	if t := cfg.Tracking; t != nil {
		// The tracking record and the events go in one statement, so that
		// a repeated tracking record fails the whole save. A data-modifying
		// WITH runs to completion even though nothing reads it.
		sql = `WITH tracked AS (INSERT INTO ` + r.tracking + ` (application_name, notification_id) VALUES ($5, $6))
` + insert
		args = append(args, t.ApplicationName, t.NotificationID)
	} else {
		sql = insert
	}
	rows, err := r.pool.Query(ctx, sql, args...)
	if err != nil && pgconn.SafeToRetry(err) && ctx.Err() == nil {
		// Nothing reached the server (a connection it had closed, say):
		// trying again on another connection cannot write twice.
		r.recover(err)
		rows, err = r.pool.Query(ctx, sql, args...)
	}
	if err != nil {
		r.recover(err)
		return nil, errorf(op, err)
	}
	type key struct {
		id uuid.UUID
		v  int64
	}
	got := make(map[key]int64, len(events))
	for rows.Next() {
		var k key
		var nid int64
		if err := rows.Scan(&nid, (*[16]byte)(&k.id), &k.v); err != nil {
			rows.Close()
			return nil, errorf(op, err)
		}
		got[k] = nid
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		r.recover(err)
		return nil, errorf(op, err)
	}
	out := make([]int64, len(events))
	for i, e := range events {
		nid, ok := got[key{e.OriginatorID, e.OriginatorVersion}]
		if !ok {
			return nil, &persistence.Error{Op: op, Kind: persistence.ErrInternal, Err: fmt.Errorf("no notification ID returned for %s version %d", e.OriginatorID, e.OriginatorVersion)}
		}
		out[i] = nid
	}
	if r.notifier != nil && len(events) > 0 {
		r.notifier.poke()
	}
	return out, nil
}

// SelectEvents returns one aggregate's events as the query asks.
func (r *recorder) SelectEvents(ctx context.Context, id uuid.UUID, eq persistence.EventQuery) ([]persistence.StoredEvent, error) {
	q := sqlstore.SelectEvents(r.table, [16]byte(id), eq)
	q.SQL = sqlstore.Rebind(q.SQL)
	return retry(ctx, r, "select events from "+r.table, func() ([]persistence.StoredEvent, error) {
		rows, err := r.pool.Query(ctx, q.SQL, q.Args...)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		out := make([]persistence.StoredEvent, 0, max(eq.Limit, 0))
		for rows.Next() {
			e := persistence.StoredEvent{OriginatorID: id}
			if err := rows.Scan(&e.OriginatorVersion, &e.Topic, &e.State); err != nil {
				return nil, err
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
	q := sqlstore.SelectNotifications(r.table, nq, topicsAny, visible)
	q.SQL = sqlstore.Rebind(q.SQL)
	return retry(ctx, &r.recorder, op, func() ([]persistence.Notification, error) {
		rows, err := r.pool.Query(ctx, q.SQL, q.Args...)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		out := make([]persistence.Notification, 0, min(nq.Limit, 1024))
		for rows.Next() {
			var n persistence.Notification
			if err := rows.Scan(&n.ID, (*[16]byte)(&n.OriginatorID), &n.OriginatorVersion, &n.Topic, &n.State); err != nil {
				return nil, err
			}
			out = append(out, n)
		}
		return out, rows.Err()
	})
}

// streamPage is how many rows one query of a stream asks for. A LIMIT
// keeps the planner on the notification ID index; without one, reading
// from the start looks like reading the whole table, which it would rather
// scan and sort.
const streamPage = 10_000

// Notifications streams the notifications readers can see (all of them
// from q.Start if q.Limit is 0), a row at a time as they arrive, in
// queries of 10,000 rows: a round trip per 10,000 notifications instead of
// per page. Each query's snapshot bounds what it sees.
func (r *Recorder) Notifications(ctx context.Context, nq persistence.NotificationQuery) iter.Seq2[persistence.Notification, error] {
	return func(yield func(persistence.Notification, error) bool) {
		op := "stream notifications from " + r.table
		nq := nq // each range over the sequence starts afresh
		left := nq.Limit
		for {
			page := nq
			page.Limit = streamPage
			if left > 0 && left < streamPage {
				page.Limit = left
			}
			q := sqlstore.SelectNotifications(r.table, page, topicsAny, visible)
			q.SQL = sqlstore.Rebind(q.SQL)
			rows, err := r.pool.Query(ctx, q.SQL, q.Args...)
			if err != nil && pgconn.SafeToRetry(err) && ctx.Err() == nil {
				rows, err = r.pool.Query(ctx, q.SQL, q.Args...)
			}
			if err != nil {
				yield(persistence.Notification{}, errorf(op, err))
				return
			}
			n := 0
			for rows.Next() {
				var note persistence.Notification
				if err := rows.Scan(&note.ID, (*[16]byte)(&note.OriginatorID), &note.OriginatorVersion, &note.Topic, &note.State); err != nil {
					rows.Close()
					yield(persistence.Notification{}, errorf(op, err))
					return
				}
				n++
				nq.Start = note.ID + 1
				if !yield(note, nil) {
					rows.Close()
					return
				}
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				yield(persistence.Notification{}, errorf(op, err))
				return
			}
			if left > 0 {
				if left -= n; left <= 0 {
					return
				}
			}
			if n < page.Limit {
				return
			}
		}
	}
}

// MaxNotificationID returns the highest notification ID readers can see,
// or 0.
func (r *Recorder) MaxNotificationID(ctx context.Context) (int64, error) {
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
	if persistence.NewInsertConfig(opts).Tracking != nil {
		return nil, &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: errors.New("an aggregate recorder does not record tracking records")}
	}
	return nil, r.write(ctx, op, events, "")
}

// ReplaceEvents records events, replacing those at the same versions.
func (r *AggregateRecorder) ReplaceEvents(ctx context.Context, events []persistence.StoredEvent) error {
	return r.write(ctx, "replace events in "+r.table, events,
		" ON CONFLICT (originator_id, originator_version) DO UPDATE SET topic = excluded.topic, state = excluded.state")
}

func (r *AggregateRecorder) write(ctx context.Context, op string, events []persistence.StoredEvent, suffix string) error {
	if len(events) == 0 {
		return nil
	}
	if err := sqlstore.CheckBatch(op, events); err != nil {
		return err
	}
	_, err := r.pool.Exec(ctx, `INSERT INTO `+r.table+` (originator_id, originator_version, topic, state)
SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::bytea[]) AS u(o, v, tp, s) ORDER BY o, v`+suffix, columns(events)...)
	if err != nil {
		return errorf(op, err)
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
	key  string
	refs int
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
	key := fmt.Sprintf("%s|%d|%v|%v|%v|%v", pc.ConnString(), c.PoolSize, c.ConnMaxAge, c.PrePing, c.LockTimeout, c.IdleInTransactionSessionTimeout)
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
	p := &sharedPool{Pool: pool, key: key, refs: 1}
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

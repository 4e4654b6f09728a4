package mysql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/google/uuid"

	"github.com/strata-go/strata/internal/sqlstore"
	"github.com/strata-go/strata/persistence"
)

func init() {
	persistence.RegisterModule(persistence.Module{
		Name:      "mysql",
		Aliases:   []string{"mariadb"},
		Open:      func(ctx context.Context, env persistence.Env) (persistence.Factory, error) { return OpenEnv(ctx, env) },
		Variables: Variables,
	})
}

// MaxNameLength is the longest name MySQL gives a table.
const MaxNameLength = 64

// OpenEnv opens a factory configured by the environment.
func OpenEnv(ctx context.Context, env persistence.Env) (*Factory, error) {
	c, err := ConfigFromEnv(env)
	if err != nil {
		return nil, err
	}
	return Open(ctx, c)
}

// Factory makes the MySQL recorders of one application.
type Factory struct {
	cfg    Config
	pool   *sql.DB
	db     *sqlstore.DB
	tables sqlstore.Tables

	creator *sqlstore.Creator // shared by the factories of its tenants
	tenant  string
}

// Open connects to the database and returns the application's factory.
func Open(ctx context.Context, c Config) (*Factory, error) {
	tables, err := sqlstore.TablesFor(c.AppName, MaxNameLength-len("notification_ids")+len("snapshots"))
	if err != nil {
		return nil, err
	}
	tables = tables.WithSequence()
	if c.PoolSize <= 0 {
		c.PoolSize = 10
	}
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultPollInterval
	}
	mc, err := c.driverConfig()
	if err != nil {
		return nil, err
	}
	connector, err := mysql.NewConnector(mc)
	if err != nil {
		return nil, fmt.Errorf("%w: MySQL connection settings: %v", persistence.ErrConfig, err)
	}
	pool := sql.OpenDB(connector)
	pool.SetMaxOpenConns(c.PoolSize)
	pool.SetMaxIdleConns(c.PoolSize)
	op := "open mysql database " + mc.DBName + " at " + mc.Addr
	if err := pool.PingContext(ctx); err != nil {
		pool.Close()
		return nil, persistence.Errorf(kindOf(err), op, err)
	}
	f := &Factory{cfg: c, pool: pool, tables: tables}
	f.db = &sqlstore.DB{Writer: pool, Reader: pool, Dialect: newDialect(tables.Sequence), ReadOnly: c.ReadOnly}
	f.creator = &sqlstore.Creator{
		Enabled: c.CreateTables && !c.ReadOnly,
		Exec: func(ctx context.Context, table, stmt string) error {
			if _, err := pool.ExecContext(ctx, stmt); err != nil {
				return f.db.Errorf("create table "+table, err)
			}
			return nil
		},
		Inspect: func(ctx context.Context, table string) (sqlstore.Shape, error) {
			shape, err := inspect(ctx, pool, table)
			if err != nil {
				return shape, f.db.Errorf("inspect table "+table, err)
			}
			return shape, nil
		},
	}
	return f, nil
}

// inspect reads the columns and unique keys of table in the connection's
// database.
func inspect(ctx context.Context, db *sql.DB, table string) (sqlstore.Shape, error) {
	shape := sqlstore.Shape{Columns: map[string]string{}}
	rows, err := db.QueryContext(ctx, `SELECT COLUMN_NAME, LOWER(DATA_TYPE) FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?`, table)
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
	// Unique indexes (the primary key among them) over whole columns: an
	// index on a prefix of a column does not keep two values apart.
	keys, err := db.QueryContext(ctx, `SELECT INDEX_NAME, COLUMN_NAME, SUB_PART IS NOT NULL FROM information_schema.STATISTICS
WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND NON_UNIQUE = 0 ORDER BY INDEX_NAME, SEQ_IN_INDEX`, table)
	if err != nil {
		return shape, err
	}
	defer keys.Close()
	byIndex := map[string][]string{}
	partial := map[string]bool{}
	var order []string
	for keys.Next() {
		var index, column string
		var prefix bool
		if err := keys.Scan(&index, &column, &prefix); err != nil {
			return shape, err
		}
		if _, ok := byIndex[index]; !ok {
			order = append(order, index)
		}
		byIndex[index] = append(byIndex[index], column)
		partial[index] = partial[index] || prefix
	}
	for _, index := range order {
		if !partial[index] {
			shape.Unique = append(shape.Unique, byIndex[index])
		}
	}
	return shape, keys.Err()
}

// Text columns compare byte by byte, so that tenants, topics and
// application names that differ only in case or accents stay apart.
const text = "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"

// eventsTable is clustered by tenant and notification ID, so that a
// reader catching up on its tenant's log scans rows in the order they are
// stored, without a lookup per row.
func eventsTable(name string) sqlstore.Table {
	return sqlstore.Table{
		Name: name,
		DDL: []string{"CREATE TABLE IF NOT EXISTS " + name + ` (
  notification_id BIGINT NOT NULL,
  tenant VARBINARY(128) NOT NULL,
  originator_id BINARY(16) NOT NULL,
  originator_version BIGINT NOT NULL,
  topic TEXT ` + text + ` NOT NULL,
  state LONGBLOB NOT NULL,
  commit_id BINARY(16) NOT NULL,
  headers LONGBLOB NOT NULL,
  PRIMARY KEY (tenant, notification_id),
  UNIQUE KEY notification (notification_id),
  UNIQUE KEY aggregate (tenant, originator_id, originator_version),
  CHECK (notification_id > 0)
) ENGINE=InnoDB`},
		Columns: []sqlstore.Column{
			{Name: "notification_id", Types: []string{"bigint"}},
			{Name: "tenant", Types: []string{"varbinary"}},
			{Name: "originator_id", Types: []string{"binary"}},
			{Name: "originator_version", Types: []string{"bigint"}},
			{Name: "topic", Types: []string{"text", "mediumtext", "longtext"}},
			{Name: "state", Types: []string{"longblob"}},
			{Name: "commit_id", Types: []string{"binary"}},
			{Name: "headers", Types: []string{"longblob", "mediumblob", "blob"}},
		},
		Unique: [][]string{{"notification_id"}, {"tenant", "originator_id", "originator_version"}},
	}
}

// sequenceTable holds the counter of the events table's notification IDs:
// one row, named after the events table, that starts at the highest ID
// already recorded.
func sequenceTable(name, events string) sqlstore.Table {
	return sqlstore.Table{
		Name: name,
		DDL: []string{"CREATE TABLE IF NOT EXISTS " + name + ` (
  name VARCHAR(64) ` + text + ` NOT NULL,
  last_id BIGINT NOT NULL,
  PRIMARY KEY (name)
) ENGINE=InnoDB`,
			"INSERT IGNORE INTO " + name + " (name, last_id) SELECT '" + events + "', COALESCE(MAX(notification_id), 0) FROM " + events},
		Columns: []sqlstore.Column{
			{Name: "name", Types: []string{"varchar"}},
			{Name: "last_id", Types: []string{"bigint"}},
		},
		Unique: [][]string{{"name"}},
	}
}

func commitsTable(name string) sqlstore.Table {
	return sqlstore.Table{
		Name: name,
		DDL: []string{"CREATE TABLE IF NOT EXISTS " + name + ` (
  tenant VARBINARY(128) NOT NULL,
  originator_id BINARY(16) NOT NULL,
  commit_id BINARY(16) NOT NULL,
  PRIMARY KEY (tenant, originator_id, commit_id)
) ENGINE=InnoDB`},
		Columns: []sqlstore.Column{
			{Name: "tenant", Types: []string{"varbinary"}},
			{Name: "originator_id", Types: []string{"binary"}},
			{Name: "commit_id", Types: []string{"binary"}},
		},
		Unique: [][]string{{"tenant", "originator_id", "commit_id"}},
	}
}

func aggregateTable(name string) sqlstore.Table {
	return sqlstore.Table{
		Name: name,
		DDL: []string{"CREATE TABLE IF NOT EXISTS " + name + ` (
  tenant VARBINARY(128) NOT NULL,
  originator_id BINARY(16) NOT NULL,
  originator_version BIGINT NOT NULL,
  topic TEXT ` + text + ` NOT NULL,
  state LONGBLOB NOT NULL,
  PRIMARY KEY (tenant, originator_id, originator_version)
) ENGINE=InnoDB`},
		Columns: []sqlstore.Column{
			{Name: "tenant", Types: []string{"varbinary"}},
			{Name: "originator_id", Types: []string{"binary"}},
			{Name: "originator_version", Types: []string{"bigint"}},
			{Name: "topic", Types: []string{"text", "mediumtext", "longtext"}},
			{Name: "state", Types: []string{"longblob"}},
		},
		Unique: [][]string{{"tenant", "originator_id", "originator_version"}},
	}
}

func trackingTable(name string) sqlstore.Table {
	return sqlstore.Table{
		Name: name,
		DDL: []string{"CREATE TABLE IF NOT EXISTS " + name + ` (
  tenant VARBINARY(128) NOT NULL,
  application_name VARCHAR(255) ` + text + ` NOT NULL,
  notification_id BIGINT NOT NULL,
  PRIMARY KEY (application_name, notification_id)
) ENGINE=InnoDB`},
		Columns: []sqlstore.Column{
			{Name: "tenant", Types: []string{"varbinary"}},
			{Name: "application_name", Types: []string{"varchar"}},
			{Name: "notification_id", Types: []string{"bigint"}},
		},
		Unique: [][]string{{"application_name", "notification_id"}},
	}
}

// AggregateRecorder returns the recorder of the purpose's table
// ("snapshots": worlds_snapshots).
func (f *Factory) AggregateRecorder(ctx context.Context, purpose string) (persistence.AggregateRecorder, error) {
	table := f.tables.Purpose(purpose)
	op := "open recorder of " + table
	if err := sqlstore.CheckIdentifier("table", table); err != nil {
		return nil, err
	}
	if len(table) > MaxNameLength {
		return nil, &persistence.Error{Op: op, Kind: persistence.ErrConfig, Err: fmt.Errorf("purpose %q makes a table name longer than %d characters", purpose, MaxNameLength)}
	}
	if f.tables.Reserved(table) {
		return nil, &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: fmt.Errorf("purpose %q names one of the application's own tables", purpose)}
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
	return sqlstore.NewProcessRecorder(f.db, f.tables.Events, f.tables.Commits, f.tables.Tracking, f.tenant), nil
}

func (f *Factory) ensureEvents(ctx context.Context) error {
	if err := f.creator.Ensure(ctx, eventsTable(f.tables.Events)); err != nil {
		return err
	}
	if err := f.creator.Ensure(ctx, sequenceTable(f.tables.Sequence, f.tables.Events)); err != nil {
		return err
	}
	return f.creator.Ensure(ctx, commitsTable(f.tables.Commits))
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

// eraser deletes the factory's tenant's data.
func (f *Factory) eraser() sqlstore.Erase {
	return sqlstore.Erase{DB: f.db, Tables: f.tables, Tenant: f.tenant, ListTables: func(ctx context.Context) ([]string, error) {
		rows, err := f.pool.QueryContext(ctx, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()")
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
// the factory's tenant, in one transaction. The notification IDs of its
// events are never given again: the counter does not go back.
func (f *Factory) DeleteAggregate(ctx context.Context, id uuid.UUID) (bool, error) {
	return f.eraser().DeleteAggregate(ctx, id)
}

// PurgeTenant deletes everything of the factory's tenant, in one
// transaction.
func (f *Factory) PurgeTenant(ctx context.Context) error { return f.eraser().PurgeTenant(ctx) }

// Tables returns the names of the application's tables.
func (f *Factory) Tables() sqlstore.Tables { return f.tables }

// DB returns the factory's connection pool.
func (f *Factory) DB() *sql.DB { return f.pool }

// Close closes the factory's pool. The factory of a tenant (see Tenant)
// closes nothing.
func (f *Factory) Close() error {
	if f.tenant != "" {
		return nil // the default tenant's factory owns the pool
	}
	if !f.creator.Close() {
		return nil
	}
	f.db.MarkClosed()
	return f.pool.Close()
}

// newDialect is MySQL's part of the shared SQL recorders, for the
// application whose counter of notification IDs is in table sequence.
func newDialect(sequence string) sqlstore.Dialect {
	return sqlstore.Dialect{
		Name:  "mysql",
		IDArg: func(id uuid.UUID) any { return id[:] },
		// VALUES() is deprecated in MySQL 8.0.20 but is the form both
		// MySQL and MariaDB accept.
		Upsert:    "ON DUPLICATE KEY UPDATE topic = VALUES(topic), state = VALUES(state)",
		Classify:  kindOf,
		Ambiguous: ambiguous,
		Retry:     retry,
		Save: func(ctx context.Context, db *sql.DB, table, tenant string, before []sqlstore.Query, events []persistence.StoredEvent) ([]int64, error) {
			return save(ctx, db, sequence, table, tenant, before, events)
		},
		StablePrefix: func(ctx context.Context, db *sql.DB, table string) (int64, error) {
			return stablePrefix(ctx, db, sequence, table)
		},
	}
}

// stablePrefix returns the committed value of the counter of table's
// notification IDs: every save that took an ID at or below it has left
// InnoDB's table of running transactions before this statement ends, so a
// statement that begins afterwards sees all of them. A read view alone
// does not promise that: InnoDB builds it by walking its hash of running
// transactions without stopping commits, so a view can miss a save that
// committed during the walk and show the later save that waited for it
// (docs/mysql.md, "Why it is correct").
func stablePrefix(ctx context.Context, db *sql.DB, sequence, table string) (int64, error) {
	var last int64
	err := db.QueryRowContext(ctx, "SELECT last_id FROM "+sequence+" WHERE name = ?", table).Scan(&last)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, &persistence.Error{Op: "read the counter of notification IDs", Kind: persistence.ErrProgramming,
			Err: fmt.Errorf("table %s has no counter row for %s: it was not made by Strata, or the row was deleted", sequence, table)}
	}
	return last, err
}

// maxScript is the most bytes of SQL a save sends as one request; a larger
// save sends its statements one by one in the same transaction, to stay
// well within the server's max_allowed_packet (16 MiB by default in
// MariaDB, 64 MiB in MySQL 8).
const maxScript = 1 << 20

// save records a save in one transaction whose statements take the
// notification IDs from the counter row last, just before COMMIT:
//
//	START TRANSACTION; <tracking>; <commits>;
//	DO LAST_INSERT_ID(0);
//	UPDATE <sequence> SET last_id = LAST_INSERT_ID(last_id + n) WHERE name = '<events>';
//	INSERT INTO <events> (notification_id, ...) VALUES (LAST_INSERT_ID() - n + 1, ...), ...;
//	COMMIT
//
// The update locks the counter's row until the commit, so the next save
// reads the counter only after this one is visible or rolled back. Sent as
// one request (multiStatements), the lock is held for the server's work
// alone, with no round trip to the client. LAST_INSERT_ID is reset first,
// so that a missing counter row gives IDs that the table's CHECK refuses
// instead of the connection's previous value.
func save(ctx context.Context, db *sql.DB, sequence, table, tenant string, before []sqlstore.Query, events []persistence.StoredEvent) ([]int64, error) {
	stmts := []sqlstore.Query{{SQL: "START TRANSACTION"}}
	stmts = append(stmts, before...)
	counter := len(stmts) + 1
	if len(events) > 0 {
		stmts = append(stmts,
			sqlstore.Query{SQL: "DO LAST_INSERT_ID(0)"},
			sqlstore.Query{SQL: "UPDATE " + sequence + " SET last_id = LAST_INSERT_ID(last_id + ?) WHERE name = ?", Args: []any{len(events), table}})
		offset := int64(len(events)) - 1
		for _, batch := range sqlstore.Batches(events) {
			stmts = append(stmts, numbered(table, tenant, batch, offset))
			offset -= int64(len(batch))
		}
	}
	stmts = append(stmts, sqlstore.Query{SQL: "COMMIT"})
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	affected, insertIDs, err := run(ctx, conn, stmts)
	if err != nil {
		return nil, err
	}
	if len(events) == 0 {
		return nil, nil
	}
	if affected[counter] != 1 {
		return nil, &persistence.Error{Op: "reserve notification IDs", Kind: persistence.ErrProgramming,
			Err: fmt.Errorf("table %s has no counter row for %s: it was not made by Strata, or the row was deleted", sequence, table)}
	}
	last := insertIDs[counter]
	ids := make([]int64, len(events))
	for i := range ids {
		ids[i] = last - int64(len(events)-1-i)
	}
	return ids, nil
}

// numbered is the insert of a batch of events whose first has the ID
// LAST_INSERT_ID() - offset, and each next one more.
func numbered(table, tenant string, events []persistence.StoredEvent, offset int64) sqlstore.Query {
	var b strings.Builder
	args := make([]any, 0, 8*len(events))
	b.WriteString("INSERT INTO " + table + " (notification_id, tenant, originator_id, originator_version, topic, state, commit_id, headers) VALUES ")
	headers := persistence.EncodeHeaders(events[0].Headers)
	if headers == nil {
		headers = []byte{}
	}
	for i, e := range events {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(LAST_INSERT_ID() - ?, ?, ?, ?, ?, ?, ?, ?)")
		state := e.State
		if state == nil {
			state = []byte{}
		}
		args = append(args, offset-int64(i), tenant, e.OriginatorID[:], e.OriginatorVersion, e.Topic, state, e.CommitID[:], headers)
	}
	return sqlstore.Query{SQL: b.String(), Args: args}
}

// run sends the statements on conn, as one request if they are small
// enough, and returns each statement's rows affected and last insert ID.
// On failure it rolls back whatever is left open, or discards the
// connection, so that no transaction goes back to the pool; a failure that
// may have left the COMMIT done is an error wrapping
// persistence.ErrUnknownOutcome.
func run(ctx context.Context, conn *sql.Conn, stmts []sqlstore.Query) (affected, insertIDs []int64, err error) {
	size := 0
	for _, q := range stmts {
		size += len(q.SQL) + 16
		for _, a := range q.Args {
			if b, ok := a.([]byte); ok {
				size += 2 * len(b)
			} else if s, ok := a.(string); ok {
				size += 2 * len(s)
			}
		}
	}
	committing := false
	err = conn.Raw(func(dc any) error {
		ex := dc.(driver.ExecerContext)
		exec := func(q string, args []any) error {
			named := make([]driver.NamedValue, len(args))
			for i, a := range args {
				switch v := a.(type) {
				case int:
					a = int64(v)
				}
				named[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
			}
			res, err := ex.ExecContext(ctx, q, named)
			if err != nil {
				return err
			}
			mr := res.(mysql.Result)
			affected = append(affected, mr.AllRowsAffected()...)
			insertIDs = append(insertIDs, mr.AllLastInsertIds()...)
			return nil
		}
		if size <= maxScript {
			var b strings.Builder
			var args []any
			for i, q := range stmts {
				if i > 0 {
					b.WriteString(";\n")
				}
				b.WriteString(q.SQL)
				args = append(args, q.Args...)
			}
			committing = true // the request holds the COMMIT
			return exec(b.String(), args)
		}
		for i, q := range stmts {
			committing = i == len(stmts)-1
			if err := exec(q.SQL, q.Args); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		return affected, insertIDs, nil
	}
	// The server stops a script at its first failing statement, leaving
	// the transaction open: roll it back, or drop the connection.
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, rerr := conn.ExecContext(rctx, "ROLLBACK"); rerr != nil {
			conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		return nil, nil, err
	}
	conn.Raw(func(any) error { return driver.ErrBadConn })
	if committing && ambiguous(err) {
		return nil, nil, persistence.Errorf(persistence.ErrUnknownOutcome, "commit", err)
	}
	return nil, nil, err
}

// Classify returns the persistence kind (ErrOperational, ErrIntegrity,
// ...) of an error of the MySQL driver, or nil if err is not one. Code
// that runs its own SQL on the database uses it to tell failures worth
// trying again from others.
func Classify(err error) error { return kindOf(err) }

// Server error numbers (see the MySQL and MariaDB error references).
const (
	erDupEntry            = 1062
	erDupEntryWithKeyName = 1586
	erDupUnique           = 1169
	erLockWaitTimeout     = 1205
	erLockDeadlock        = 1213
	erNoSuchTable         = 1146
	erBadTable            = 1051
	erTooManyConnections  = 1040
	erConCount            = 1203
	erServerShutdown      = 1053
	erQueryInterrupted    = 1317
	erConnectionKilled    = 1927
	erStatementTimeout    = 1969
	erQueryTimeout        = 3024
	erOptionPreventsStmt  = 1290
	erReadOnlyTransaction = 1792
	erLockTableFull       = 1206
	erOutOfResources      = 1041
	erDiskFull            = 1021
	erDataTooLong         = 1406
	erOutOfRange          = 1264
	erTruncatedValue      = 1366
	erPacketTooLarge      = 1153
	erParseError          = 1064
	erBadField            = 1054
	erAccessDenied        = 1045
	erDBAccessDenied      = 1044
	erTableAccessDenied   = 1142
	erBadDB               = 1049
)

// kindOf maps the driver's errors to persistence kinds.
func kindOf(err error) error {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case erDupEntry, erDupEntryWithKeyName, erDupUnique:
			return persistence.ErrIntegrity
		case erLockWaitTimeout, erLockDeadlock, erTooManyConnections, erConCount, erServerShutdown, erQueryInterrupted,
			erConnectionKilled, erStatementTimeout, erQueryTimeout, erOptionPreventsStmt, erLockTableFull, erOutOfResources, erDiskFull:
			return persistence.ErrOperational
		case erReadOnlyTransaction:
			return persistence.ErrReadOnly
		case erNoSuchTable, erBadTable:
			return persistence.ErrNoTable
		case erDataTooLong, erOutOfRange, erTruncatedValue, erPacketTooLarge:
			return persistence.ErrData
		case erParseError, erBadField, erAccessDenied, erDBAccessDenied, erTableAccessDenied, erBadDB:
			return persistence.ErrProgramming
		}
		return persistence.ErrDatabase
	}
	var ne net.Error
	if errors.Is(err, mysql.ErrInvalidConn) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, mysql.ErrMalformPkt) ||
		errors.Is(err, mysql.ErrPktSync) || errors.Is(err, mysql.ErrBusyBuffer) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &ne) {
		return persistence.ErrOperational
	}
	return nil
}

// ambiguous reports whether a COMMIT that failed with err may have been
// recorded: the server answered nothing, so it may have committed before
// the connection broke. The driver says driver.ErrBadConn only when
// nothing was sent, and database/sql says sql.ErrTxDone when it rolled
// the transaction back itself.
func ambiguous(err error) bool {
	var me *mysql.MySQLError
	return !errors.As(err, &me) && !errors.Is(err, driver.ErrBadConn) && !errors.Is(err, sql.ErrTxDone)
}

// retry reports whether a transaction that failed with err was rolled
// back whole by InnoDB as a deadlock's victim, which running it again may
// not meet. A lock wait timeout is not retried: waiting again is what it
// bounds.
func retry(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == erLockDeadlock
}

package benchsuite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/go-sql-driver/mysql"
	"github.com/google/uuid"

	"github.com/strata-go/strata/persistence"
	smysql "github.com/strata-go/strata/persistence/mysql"
)

// DefaultMySQLDSN is the server that the strata bench command measures
// MySQL on unless told otherwise: the same server as the tests'. The
// benchmark makes a database of its own there and drops it afterwards.
const DefaultMySQLDSN = "root@tcp(127.0.0.1:3306)/test"

// MySQL returns the cases of the MySQL adapter in a new database
// (strata_mysql_bench_*) of the server at dsn, and a function that drops
// it. Strata's recorders and the baselines share one pool of 16
// connections and tables of the same shape; the baselines are raw
// AUTO_INCREMENT inserts (no ordering guarantee), every save serialised by
// a named lock held through its commit, and a post-commit sequencer that
// numbers committed rows in batches.
func MySQL(ctx context.Context, dsn string) ([]Case, func(), error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot parse the MySQL DSN: want user:password@tcp(host:port)/dbname")
	}
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return nil, nil, err
	}
	db := "strata_mysql_bench_" + uuid.NewString()[:8]
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+db); err != nil {
		admin.Close()
		return nil, nil, err
	}
	closers := []func(){func() {
		admin.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+db)
		admin.Close()
	}}
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	cfg.DBName = db
	pair := func(app string) (Pair, *rawMySQL, error) {
		f, err := smysql.Open(ctx, smysql.Config{DSN: cfg.FormatDSN(), AppName: app, PoolSize: ManyWriters, CreateTables: true})
		if err != nil {
			return Pair{}, nil, err
		}
		closers = append(closers, func() { f.Close() })
		rec, err := f.ApplicationRecorder(ctx)
		if err != nil {
			return Pair{}, nil, err
		}
		raw := &rawMySQL{db: f.DB(), table: "raw_" + app}
		if err := raw.create(ctx); err != nil {
			return Pair{}, nil, err
		}
		return Pair{rec, raw}, raw, nil
	}
	writes, raw, err := pair("writes")
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	reads, _, err := pair("reads")
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	cases := RecorderCases(writes, reads, 1/0.80, 1/0.80)
	one := func(base func(ctx context.Context, events []persistence.StoredEvent) error) func(context.Context) (Op, Op, error) {
		return func(context.Context) (Op, Op, error) {
			strata := func(ctx context.Context, _ int) error {
				_, err := writes.Recorder.InsertEvents(ctx, Events(1, StateSize))
				return err
			}
			return strata, func(ctx context.Context, _ int) error { return base(ctx, Events(1, StateSize)) }, nil
		}
	}
	seq := &sequencedMySQL{db: raw.db, table: "seq_writes", counter: "seq_writes_counter"}
	if err := seq.create(ctx); err != nil {
		closeAll()
		return nil, nil, err
	}
	locked := &lockedMySQL{raw}
	cases = append(cases,
		Case{Name: "save 1 event", Baseline: "named lock", Writers: ManyWriters, Events: 1, Target: 1.0 / 3, Setup: one(locked.Insert)},
		Case{Name: "save 1 event", Baseline: "post-commit sequencer", Writers: ManyWriters, Events: 1, Target: 1, Setup: one(seq.Insert)},
	)
	return cases, closeAll, nil
}

// rawMySQL is the baseline on MySQL: database/sql with go-sql-driver and
// the same pool, a table of the same shape whose notification IDs come
// from AUTO_INCREMENT, and SQL written here by hand.
type rawMySQL struct {
	db    *sql.DB
	table string
}

func (r *rawMySQL) create(ctx context.Context) error {
	_, err := r.db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+r.table+` (
  notification_id BIGINT NOT NULL AUTO_INCREMENT,
  originator_id BINARY(16) NOT NULL,
  originator_version BIGINT NOT NULL,
  topic TEXT NOT NULL,
  state LONGBLOB NOT NULL,
  PRIMARY KEY (notification_id),
  UNIQUE KEY aggregate (originator_id, originator_version)
) ENGINE=InnoDB`)
	return err
}

// insertSQL returns a multi-row insert of events into table.
func insertSQL(table string, events []persistence.StoredEvent) (string, []any) {
	var q strings.Builder
	q.WriteString("INSERT INTO " + table + " (originator_id, originator_version, topic, state) VALUES (?, ?, ?, ?)")
	args := make([]any, 0, 4*len(events))
	for i, e := range events {
		if i > 0 {
			q.WriteString(", (?, ?, ?, ?)")
		}
		args = append(args, e.OriginatorID[:], e.OriginatorVersion, e.Topic, e.State)
	}
	return q.String(), args
}

// execer is a pool or a transaction.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// insertRows inserts events with multi-row INSERTs and checks that each
// statement's rows got IDs (consecutive ones, from its LastInsertId).
func insertRows(ctx context.Context, db execer, table string, events []persistence.StoredEvent) error {
	for len(events) > 0 {
		batch := events[:min(len(events), rawRowsPerInsert)]
		events = events[len(batch):]
		q, args := insertSQL(table, batch)
		res, err := db.ExecContext(ctx, q, args...)
		if err != nil {
			return err
		}
		if first, err := res.LastInsertId(); err != nil || first <= 0 {
			return fmt.Errorf("no notification ID for %d rows: %v", len(batch), err)
		}
	}
	return nil
}

// Insert inserts the events atomically: one statement, or one
// transaction of several.
func (r *rawMySQL) Insert(ctx context.Context, events []persistence.StoredEvent) error {
	if len(events) <= rawRowsPerInsert {
		return insertRows(ctx, r.db, r.table, events)
	}
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := insertRows(ctx, tx, r.table, events); err != nil {
		return err
	}
	return tx.Commit()
}

func (r *rawMySQL) Scan(ctx context.Context) (int, error) {
	rows, err := r.db.QueryContext(ctx, "SELECT notification_id, originator_id, originator_version, topic, state FROM "+r.table+" ORDER BY notification_id")
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	// Like a reader of the log, hand out every row as a value of its own,
	// a page at a time.
	page := make([]persistence.Notification, 0, CatchUpPage)
	n := 0
	var id []byte
	for rows.Next() {
		var row persistence.Notification
		if err := rows.Scan(&row.ID, &id, &row.OriginatorVersion, &row.Topic, &row.State); err != nil {
			return n, err
		}
		row.OriginatorID = uuid.UUID(id)
		if page = append(page, row); len(page) == CatchUpPage {
			page = make([]persistence.Notification, 0, CatchUpPage)
		}
		n++
	}
	return n, rows.Err()
}

func (r *rawMySQL) SelectAggregate(ctx context.Context, id uuid.UUID) (int, error) {
	rows, err := r.db.QueryContext(ctx, "SELECT originator_version, topic, state FROM "+r.table+" WHERE originator_id = ? ORDER BY originator_version", id[:])
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	// Like a repository, hand out the events as values of their own.
	var events []persistence.StoredEvent
	for rows.Next() {
		e := persistence.StoredEvent{OriginatorID: id}
		if err := rows.Scan(&e.OriginatorVersion, &e.Topic, &e.State); err != nil {
			return len(events), err
		}
		events = append(events, e)
	}
	return len(events), rows.Err()
}

// lockedMySQL serialises every save with a named lock that it holds
// through its commit, which orders notification IDs by commit as a table
// lock does.
type lockedMySQL struct{ *rawMySQL }

func (r *lockedMySQL) Insert(ctx context.Context, events []persistence.StoredEvent) error {
	conn, err := r.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	var got int
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, 60)", r.table).Scan(&got); err != nil || got != 1 {
		return fmt.Errorf("named lock: %d %v", got, err)
	}
	defer conn.ExecContext(context.Background(), "DO RELEASE_LOCK(?)", r.table)
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := insertRows(ctx, tx, r.table, events); err != nil {
		return err
	}
	return tx.Commit()
}

// sequencedMySQL is the post-commit sequencer: a save inserts its rows
// without notification IDs and commits; then, unless another save's
// sequencer numbered them already, it numbers every committed row still
// without an ID, in one transaction that holds the counter's row, so that
// numbers are given in the order of the sequencers' commits.
type sequencedMySQL struct {
	db             *sql.DB
	table, counter string
}

func (s *sequencedMySQL) create(ctx context.Context) error {
	for _, stmt := range []string{
		"CREATE TABLE IF NOT EXISTS " + s.table + ` (
  pk BIGINT NOT NULL AUTO_INCREMENT,
  notification_id BIGINT NULL,
  originator_id BINARY(16) NOT NULL,
  originator_version BIGINT NOT NULL,
  topic TEXT NOT NULL,
  state LONGBLOB NOT NULL,
  PRIMARY KEY (pk),
  UNIQUE KEY notification (notification_id),
  UNIQUE KEY aggregate (originator_id, originator_version)
) ENGINE=InnoDB`,
		"CREATE TABLE IF NOT EXISTS " + s.counter + " (name VARCHAR(64) PRIMARY KEY, last_id BIGINT NOT NULL) ENGINE=InnoDB",
		"INSERT IGNORE INTO " + s.counter + " VALUES ('" + s.table + "', 0)",
	} {
		if _, err := s.db.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	return nil
}

func (s *sequencedMySQL) Insert(ctx context.Context, events []persistence.StoredEvent) error {
	q, args := insertSQL(s.table, events)
	res, err := s.db.ExecContext(ctx, q, args...)
	if err != nil {
		return err
	}
	first, err := res.LastInsertId()
	if err != nil {
		return err
	}
	var numbered int
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(notification_id) FROM "+s.table+" WHERE pk BETWEEN ? AND ?", first, first+int64(len(events))-1).Scan(&numbered); err != nil {
		return err
	}
	if numbered == len(events) {
		return nil
	}
	return s.sequence(ctx)
}

// sequence numbers the committed rows without IDs. Read committed keeps
// it from taking gap locks that would stop writers' inserts.
func (s *sequencedMySQL) sequence(ctx context.Context) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var last int64
	if err := tx.QueryRowContext(ctx, "SELECT last_id FROM "+s.counter+" WHERE name = ? FOR UPDATE", s.table).Scan(&last); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "SET @n := ?", last); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "UPDATE "+s.table+" SET notification_id = (@n := @n + 1) WHERE notification_id IS NULL ORDER BY pk"); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "UPDATE "+s.counter+" SET last_id = @n WHERE name = ?", s.table); err != nil {
		return err
	}
	return tx.Commit()
}

package benchsuite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/google/uuid"

	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/persistence/sqlite"
)

// SQLite returns the cases of the SQLite adapter on files in dir, and a
// function that closes them. Strata's recorders and the raw baseline use
// the same file, the same connection settings and identical tables.
func SQLite(ctx context.Context, dir string) ([]Case, func(), error) {
	var closers []func()
	closeAll := func() {
		for _, c := range closers {
			c()
		}
	}
	pair := func(name string, log bool) (Pair, error) {
		f, err := sqlite.Open(ctx, sqlite.Config{DBName: filepath.Join(dir, name+".db"), AppName: "Bench", CreateTables: true})
		if err != nil {
			return Pair{}, err
		}
		closers = append(closers, func() { f.Close() })
		rec, err := f.ApplicationRecorder(ctx)
		if err != nil {
			return Pair{}, err
		}
		writer, reader := f.DB()
		var raw interface {
			Raw
			create(ctx context.Context) error
		} = &rawSQLite{writer: writer, reader: reader}
		if log {
			raw = &rawSQLiteLog{writer: writer, reader: reader}
		}
		if err := raw.create(ctx); err != nil {
			return Pair{}, err
		}
		return Pair{rec, raw}, nil
	}
	writes, err := pair("writes", false)
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	// The catch-up baseline reads a table of exactly the shape of
	// Strata's events table, every column a follower receives.
	reads, err := pair("reads", true)
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	bulk := rawSQLiteBulk{writes.Raw.(*rawSQLite).writer}
	if err := bulk.create(ctx); err != nil {
		closeAll()
		return nil, nil, err
	}
	// Targets: within 85% of raw, as throughput: time at most 1/0.85.
	cases := RecorderCases(writes, reads, 1/0.85, 1/0.85)
	setCatchUpTarget(cases, CatchUpTarget)
	cases = append(cases, WriteCases(writes.Recorder, bulk, WriteTargets{Concurrent: 1.0 / 6, Bulk: 1 / 0.9})...)
	return cases, closeAll, nil
}

// rawSQLite is the baseline on SQLite: database/sql with the driver and
// SQL written here by hand, nothing of Strata's but the connections (the
// same settings and the same single writer).
type rawSQLite struct {
	writer, reader *sql.DB
}

func (r *rawSQLite) create(ctx context.Context) error {
	for _, stmt := range []string{
		`CREATE TABLE IF NOT EXISTS raw_events (
  notification_id INTEGER PRIMARY KEY AUTOINCREMENT,
  originator_id BLOB NOT NULL,
  originator_version INTEGER NOT NULL,
  topic TEXT NOT NULL,
  state BLOB NOT NULL)`,
		`CREATE UNIQUE INDEX IF NOT EXISTS raw_events_aggregate ON raw_events (originator_id, originator_version)`,
	} {
		if _, err := r.writer.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	return nil
}

// rawRowsPerInsert is how many rows one INSERT of the baseline holds at
// most, as many as one of Strata's.
const rawRowsPerInsert = 500

// Insert inserts the events in one transaction with multi-row INSERTs.
func (r *rawSQLite) Insert(ctx context.Context, events []persistence.StoredEvent) error {
	tx, err := r.writer.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for len(events) > 0 {
		batch := events[:min(len(events), rawRowsPerInsert)]
		events = events[len(batch):]
		var q strings.Builder
		q.WriteString("INSERT INTO raw_events (originator_id, originator_version, topic, state) VALUES (?, ?, ?, ?)")
		args := make([]any, 0, 4*len(batch))
		for i, e := range batch {
			if i > 0 {
				q.WriteString(", (?, ?, ?, ?)")
			}
			args = append(args, e.OriginatorID[:], e.OriginatorVersion, e.Topic, e.State)
		}
		q.WriteString(" RETURNING notification_id")
		rows, err := tx.QueryContext(ctx, q.String(), args...)
		if err != nil {
			return err
		}
		n := 0
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			n++
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if n != len(batch) {
			return fmt.Errorf("%d IDs for %d rows", n, len(batch))
		}
	}
	return tx.Commit()
}

func (r *rawSQLite) Scan(ctx context.Context) (int, error) {
	rows, err := r.reader.QueryContext(ctx, "SELECT notification_id, originator_id, originator_version, topic, state FROM raw_events ORDER BY notification_id")
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

func (r *rawSQLite) SelectAggregate(ctx context.Context, id uuid.UUID) (int, error) {
	rows, err := r.reader.QueryContext(ctx, "SELECT originator_version, topic, state FROM raw_events WHERE originator_id = ? ORDER BY originator_version", id[:])
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

// rawSQLiteLog is the catch-up baseline on SQLite: a table of exactly the
// shape of Strata's events table (its columns and its indexes), filled
// with the same rows as Strata's, and one query that reads every column
// of every row, which are all of the one tenant's, in order. A follower
// receives all eight columns (tenant, commit ID and headers included), so
// a baseline that read only five would not do the same work.
type rawSQLiteLog struct {
	writer, reader *sql.DB
}

func (r *rawSQLiteLog) create(ctx context.Context) error {
	for _, stmt := range []string{
		`CREATE TABLE IF NOT EXISTS raw_log (
  notification_id INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant TEXT NOT NULL,
  originator_id BLOB NOT NULL,
  originator_version INTEGER NOT NULL,
  topic TEXT NOT NULL,
  state BLOB NOT NULL,
  commit_id BLOB NOT NULL,
  headers BLOB NOT NULL)`,
		`CREATE UNIQUE INDEX IF NOT EXISTS raw_log_aggregate ON raw_log (tenant, originator_id, originator_version)`,
		`CREATE INDEX IF NOT EXISTS raw_log_tenant ON raw_log (tenant, notification_id)`,
	} {
		if _, err := r.writer.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	return nil
}

// Insert inserts the events in one transaction with multi-row INSERTs,
// with the values Strata records for events of the default tenant
// without a commit ID or headers.
func (r *rawSQLiteLog) Insert(ctx context.Context, events []persistence.StoredEvent) error {
	tx, err := r.writer.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	nilID := make([]byte, 16)
	for len(events) > 0 {
		batch := events[:min(len(events), rawRowsPerInsert)]
		events = events[len(batch):]
		var q strings.Builder
		q.WriteString("INSERT INTO raw_log (tenant, originator_id, originator_version, topic, state, commit_id, headers) VALUES ")
		args := make([]any, 0, 7*len(batch))
		for i, e := range batch {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?, ?, ?, ?, ?, ?)")
			args = append(args, "", e.OriginatorID[:], e.OriginatorVersion, e.Topic, e.State, nilID, []byte{})
		}
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// Scan reads the whole table in order with one query and hands out every
// row as a follower receives it: all eight columns, the commit ID and
// headers decoded.
func (r *rawSQLiteLog) Scan(ctx context.Context) (int, error) {
	rows, err := r.reader.QueryContext(ctx, "SELECT notification_id, tenant, originator_id, originator_version, topic, state, commit_id, headers FROM raw_log ORDER BY notification_id")
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	page := make([]persistence.Notification, 0, CatchUpPage)
	n := 0
	var id, commit, headers []byte
	for rows.Next() {
		var row persistence.Notification
		if err := rows.Scan(&row.ID, &row.Tenant, &id, &row.OriginatorVersion, &row.Topic, &row.State, &commit, &headers); err != nil {
			return n, err
		}
		row.OriginatorID = uuid.UUID(id)
		row.CommitID = uuid.UUID(commit)
		if row.Headers, err = persistence.DecodeHeaders(headers); err != nil {
			return n, err
		}
		if page = append(page, row); len(page) == CatchUpPage {
			page = make([]persistence.Notification, 0, CatchUpPage)
		}
		n++
	}
	return n, rows.Err()
}

// SelectAggregate reads one aggregate's events in order.
func (r *rawSQLiteLog) SelectAggregate(ctx context.Context, id uuid.UUID) (int, error) {
	rows, err := r.reader.QueryContext(ctx, "SELECT originator_version, topic, state FROM raw_log WHERE tenant = '' AND originator_id = ? ORDER BY originator_version", id[:])
	if err != nil {
		return 0, err
	}
	defer rows.Close()
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

// rawSQLiteBulk is the bulk baseline on SQLite: a table of exactly the
// shape of Strata's events table, and one multi-row INSERT in one
// transaction.
type rawSQLiteBulk struct{ writer *sql.DB }

func (r rawSQLiteBulk) create(ctx context.Context) error {
	for _, stmt := range []string{
		`CREATE TABLE IF NOT EXISTS raw_bulk (
  notification_id INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant TEXT NOT NULL,
  originator_id BLOB NOT NULL,
  originator_version INTEGER NOT NULL,
  topic TEXT NOT NULL,
  state BLOB NOT NULL,
  commit_id BLOB NOT NULL,
  headers BLOB NOT NULL)`,
		`CREATE UNIQUE INDEX IF NOT EXISTS raw_bulk_aggregate ON raw_bulk (tenant, originator_id, originator_version)`,
		`CREATE INDEX IF NOT EXISTS raw_bulk_tenant ON raw_bulk (tenant, notification_id)`,
	} {
		if _, err := r.writer.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	return nil
}

// InsertBulk inserts the events with one multi-row INSERT in one
// transaction and reads back their notification IDs.
func (r rawSQLiteBulk) InsertBulk(ctx context.Context, events []persistence.StoredEvent) error {
	tx, err := r.writer.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var q strings.Builder
	q.WriteString("INSERT INTO raw_bulk (tenant, originator_id, originator_version, topic, state, commit_id, headers) VALUES ")
	args := make([]any, 0, 7*len(events))
	nilID := make([]byte, 16)
	for i, e := range events {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?, ?, ?, ?, ?, ?)")
		args = append(args, "", e.OriginatorID[:], e.OriginatorVersion, e.Topic, e.State, nilID, []byte{})
	}
	q.WriteString(" RETURNING notification_id")
	rows, err := tx.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return err
	}
	n := 0
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		n++
	}
	if err := rows.Close(); err != nil {
		return err
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if n != len(events) {
		return fmt.Errorf("%d IDs for %d rows", n, len(events))
	}
	return tx.Commit()
}

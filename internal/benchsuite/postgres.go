package benchsuite

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/persistence/postgres"
)

// DefaultPostgresURL is the database that the strata bench command
// measures PostgreSQL on unless told otherwise: the same database as the
// tests'. It is a constant here, not taken from the tests' helper, so that
// the command does not link package testing.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// Postgres returns the cases of the PostgreSQL adapter in a new schema of
// the database at url, and a function that drops it. Strata's recorders
// and the baselines share one pool of 16 connections and identical tables;
// the baselines are raw inserts (notification IDs from an identity column,
// no ordering guarantee) and the reference design's table lock.
func Postgres(ctx context.Context, url string) ([]Case, func(), error) {
	return postgresIn(ctx, url, "bench_"+uuid.NewString()[:8])
}

// dropPostgresSchema drops schema and all it holds.
func dropPostgresSchema(url, schema string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	return err
}

// postgresIn is Postgres in the schema named schema.
func postgresIn(ctx context.Context, url, schema string) ([]Case, func(), error) {
	// The schema is dropped last, after every factory has closed, on a
	// connection of its own: registered first, it also runs when a
	// factory fails to open after the first made the schema.
	closers := []func(){func() {
		if err := dropPostgresSchema(url, schema); err != nil {
			fmt.Fprintf(os.Stderr, "benchmarks: drop schema %s: %v\n", schema, err)
		}
	}}
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	pair := func(app string, log bool) (Pair, *rawPostgres, error) {
		f, err := postgres.Open(ctx, postgres.Config{URL: url, AppName: app, Schema: schema, PoolSize: ManyWriters, CreateTables: true, ConnMaxAge: -1})
		if err != nil {
			return Pair{}, nil, err
		}
		closers = append(closers, func() { f.Close() })
		rec, err := f.ApplicationRecorder(ctx)
		if err != nil {
			return Pair{}, nil, err
		}
		raw := &rawPostgres{pool: f.Pool(), table: schema + ".raw_" + app, index: "raw_" + app + "_nid", strata: schema + "." + app + "_events"}
		if err := raw.create(ctx); err != nil {
			return Pair{}, nil, err
		}
		if log {
			rawLog := &rawPostgresLog{raw}
			if err := rawLog.create(ctx); err != nil {
				return Pair{}, nil, err
			}
			return Pair{rec, rawLog}, raw, nil
		}
		return Pair{rec, raw}, raw, nil
	}
	writes, raw, err := pair("writes", false)
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	// The catch-up baseline reads a table of exactly the shape of
	// Strata's events table, every column a follower receives.
	reads, _, err := pair("reads", true)
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	cases := RecorderCases(writes, reads, 1/0.80, 1/0.80)
	setCatchUpTarget(cases, CatchUpTarget)
	bulk := rawPostgresBulk{pool: raw.pool, table: schema + ".raw_bulk", index: "raw_bulk"}
	if err := bulk.create(ctx); err != nil {
		closeAll()
		return nil, nil, err
	}
	cases = append(cases, WriteCases(writes.Recorder, bulk, WriteTargets{Bulk: 1 / 0.9})...)
	// Group commit aims at 1.3 times the rate of raw inserts, a
	// transaction each, with as many writers.
	cases = append(cases, Case{Name: "save 1 event, concurrently", Baseline: "raw INSERT, a transaction each", Writers: ManyWriters, Events: 1, Target: 1 / 1.3,
		Setup: func(context.Context) (Op, Op, error) {
			strata := func(ctx context.Context, _ int) error {
				_, err := writes.Recorder.InsertEvents(ctx, Events(1, StateSize))
				return err
			}
			base := func(ctx context.Context, _ int) error { return raw.Insert(ctx, Events(1, StateSize)) }
			return strata, base, nil
		}})
	locked := &lockedPostgres{raw}
	cases = append(cases, Case{Name: "save 1 event", Baseline: "table lock", Writers: ManyWriters, Events: 1, Target: 1.0 / 3,
		Setup: func(context.Context) (Op, Op, error) {
			strata := func(ctx context.Context, _ int) error {
				_, err := writes.Recorder.InsertEvents(ctx, Events(1, StateSize))
				return err
			}
			base := func(ctx context.Context, _ int) error { return locked.Insert(ctx, Events(1, StateSize)) }
			return strata, base, nil
		}})
	return cases, closeAll, nil
}

// rawPostgres is the baseline on PostgreSQL: pgx with the same pool, a
// table of the same shape whose notification IDs come from an identity
// column, and the same one-statement insert. Its SQL is written here by
// hand; nothing of Strata's but the pool builds or sends it.
type rawPostgres struct {
	pool         *pgxpool.Pool
	table, index string
	strata       string // Strata's events table of the same pair
}

// Analyze gathers the statistics of both tables. Without them (the test
// server runs without autovacuum) the planner takes a freshly filled
// table for a few rows, and answers each page of Strata's catch-up by
// sorting the whole log; the raw scan, which has no condition, is read in
// index order either way.
func (r *rawPostgres) Analyze(ctx context.Context) error {
	_, err := r.pool.Exec(ctx, "ANALYZE "+r.table+", "+r.strata)
	return err
}

func (r *rawPostgres) create(ctx context.Context) error {
	_, err := r.pool.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+r.table+` (
  notification_id bigint GENERATED ALWAYS AS IDENTITY,
  originator_id uuid NOT NULL,
  originator_version bigint NOT NULL,
  topic text NOT NULL,
  state bytea NOT NULL,
  PRIMARY KEY (originator_id, originator_version));
CREATE UNIQUE INDEX IF NOT EXISTS `+r.index+" ON "+r.table+" (notification_id)")
	return err
}

func columns(events []persistence.StoredEvent) []any {
	ids := make([][16]byte, len(events))
	versions := make([]int64, len(events))
	topics := make([]string, len(events))
	states := make([][]byte, len(events))
	for i, e := range events {
		ids[i], versions[i], topics[i], states[i] = e.OriginatorID, e.OriginatorVersion, e.Topic, e.State
	}
	return []any{ids, versions, topics, states}
}

func (r *rawPostgres) insertSQL() string {
	return "INSERT INTO " + r.table + ` (originator_id, originator_version, topic, state)
SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::bytea[]) RETURNING notification_id`
}

func (r *rawPostgres) Insert(ctx context.Context, events []persistence.StoredEvent) error {
	return countRows(r.pool.Query(ctx, r.insertSQL(), columns(events)...))(len(events))
}

func countRows(rows pgx.Rows, err error) func(want int) error {
	return func(want int) error {
		if err != nil {
			return err
		}
		n := 0
		for rows.Next() {
			n++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if n != want {
			return fmt.Errorf("%d IDs for %d rows", n, want)
		}
		return nil
	}
}

func (r *rawPostgres) Scan(ctx context.Context) (int, error) {
	rows, err := r.pool.Query(ctx, "SELECT notification_id, originator_id, originator_version, topic, state FROM "+r.table+" ORDER BY notification_id")
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	// Like a reader of the log, hand out every row as a value of its own,
	// a page at a time.
	page := make([]persistence.Notification, 0, CatchUpPage)
	n := 0
	for rows.Next() {
		var row persistence.Notification
		if err := rows.Scan(&row.ID, (*[16]byte)(&row.OriginatorID), &row.OriginatorVersion, &row.Topic, &row.State); err != nil {
			return n, err
		}
		if page = append(page, row); len(page) == CatchUpPage {
			page = make([]persistence.Notification, 0, CatchUpPage)
		}
		n++
	}
	return n, rows.Err()
}

func (r *rawPostgres) SelectAggregate(ctx context.Context, id uuid.UUID) (int, error) {
	rows, err := r.pool.Query(ctx, "SELECT originator_version, topic, state FROM "+r.table+" WHERE originator_id = $1 ORDER BY originator_version", [16]byte(id))
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

// rawPostgresLog is the catch-up baseline on PostgreSQL: a table of
// exactly the shape of Strata's events table (its columns and its
// indexes), filled with the same rows as Strata's, and one query that
// reads every column of every row, which are all of the one tenant's, in
// order. A follower receives all eight columns (tenant, commit ID and
// headers included), so a baseline that read only five would not do the
// same work.
type rawPostgresLog struct{ *rawPostgres }

func (r *rawPostgresLog) create(ctx context.Context) error {
	return rawPostgresBulk{pool: r.pool, table: r.table + "_log", index: r.index + "_log"}.create(ctx)
}

func (r *rawPostgresLog) log() string { return r.table + "_log" }

// Analyze gathers the statistics of the log and of Strata's table (see
// rawPostgres.Analyze).
func (r *rawPostgresLog) Analyze(ctx context.Context) error {
	_, err := r.pool.Exec(ctx, "ANALYZE "+r.log()+", "+r.strata)
	return err
}

// Insert inserts the events with one statement, with the values Strata
// records for events of the default tenant without a commit ID or
// headers.
func (r *rawPostgresLog) Insert(ctx context.Context, events []persistence.StoredEvent) error {
	return rawPostgresBulk{pool: r.pool, table: r.log()}.InsertBulk(ctx, events)
}

// Scan reads the whole table in order with one query and hands out every
// row as a follower receives it: all eight columns, the headers decoded.
func (r *rawPostgresLog) Scan(ctx context.Context) (int, error) {
	rows, err := r.pool.Query(ctx, "SELECT notification_id, tenant, originator_id, originator_version, topic, state, commit_id, headers FROM "+r.log()+" ORDER BY notification_id")
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	page := make([]persistence.Notification, 0, CatchUpPage)
	n := 0
	var headers []byte
	for rows.Next() {
		var row persistence.Notification
		if err := rows.Scan(&row.ID, &row.Tenant, (*[16]byte)(&row.OriginatorID), &row.OriginatorVersion, &row.Topic, &row.State, (*[16]byte)(&row.CommitID), &headers); err != nil {
			return n, err
		}
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
func (r *rawPostgresLog) SelectAggregate(ctx context.Context, id uuid.UUID) (int, error) {
	rows, err := r.pool.Query(ctx, "SELECT originator_version, topic, state FROM "+r.log()+" WHERE tenant = '' AND originator_id = $1 ORDER BY originator_version", [16]byte(id))
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

// lockedPostgres is the reference design's scheme: every save locks the
// table in EXCLUSIVE mode, which serialises writers.
type lockedPostgres struct{ *rawPostgres }

func (r *lockedPostgres) Insert(ctx context.Context, events []persistence.StoredEvent) error {
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	batch := &pgx.Batch{}
	batch.Queue("LOCK TABLE " + r.table + " IN EXCLUSIVE MODE")
	batch.Queue(r.insertSQL(), columns(events)...)
	br := tx.SendBatch(ctx, batch)
	if _, err := br.Exec(); err != nil {
		br.Close()
		return err
	}
	if err := countRows(br.Query())(len(events)); err != nil {
		br.Close()
		return err
	}
	if err := br.Close(); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// rawPostgresBulk is the bulk baseline on PostgreSQL: a table of exactly
// the shape of Strata's events table, whose notification IDs come from an
// identity column, and one multi-row INSERT, a transaction of its own.
type rawPostgresBulk struct {
	pool         *pgxpool.Pool
	table, index string
}

func (r rawPostgresBulk) create(ctx context.Context) error {
	_, err := r.pool.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+r.table+` (
  notification_id bigint GENERATED ALWAYS AS IDENTITY,
  tenant text NOT NULL,
  originator_id uuid NOT NULL,
  originator_version bigint NOT NULL,
  topic text NOT NULL,
  state bytea NOT NULL,
  commit_id uuid NOT NULL,
  headers bytea NOT NULL,
  PRIMARY KEY (tenant, originator_id, originator_version));
CREATE UNIQUE INDEX IF NOT EXISTS `+r.index+"_nid ON "+r.table+" (notification_id);\nCREATE INDEX IF NOT EXISTS "+r.index+"_tenant ON "+r.table+" (tenant, notification_id)")
	return err
}

// InsertBulk inserts the events with one statement and reads back their
// notification IDs.
func (r rawPostgresBulk) InsertBulk(ctx context.Context, events []persistence.StoredEvent) error {
	args := append(columns(events), "", [16]byte{}, []byte{})
	return countRows(r.pool.Query(ctx, "INSERT INTO "+r.table+` (tenant, originator_id, originator_version, topic, state, commit_id, headers)
SELECT $5, o, v, tp, s, $6, $7 FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::bytea[]) AS u(o, v, tp, s) RETURNING notification_id`, args...))(len(events))
}

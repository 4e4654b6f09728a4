package pgprojection

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/persistence/postgres"
	"github.com/strata-go/strata/projection"
)

// Store keeps read models and their projections' positions in one schema
// of a PostgreSQL database. Its transactions set their search_path to the
// schema, so that a projection's unqualified table names are the
// schema's. It is safe for concurrent use, by runners in one process or
// many.
type Store struct {
	pool   *pgxpool.Pool
	schema string
}

var _ projection.Store[pgx.Tx] = (*Store)(nil)

// New returns a store on pool in schema ("public" if empty), which
// Prepare creates if need be.
func New(pool *pgxpool.Pool, schema string) (*Store, error) {
	if schema == "" {
		schema = "public"
	}
	if !identifier.MatchString(schema) {
		return nil, fmt.Errorf("%w: schema %q: use lower-case letters, digits and underscores", persistence.ErrConfig, schema)
	}
	return &Store{pool: pool, schema: schema}, nil
}

var identifier = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// FromFactory returns a store in the schema of f's tables, sharing its
// pool: read models beside the events.
func FromFactory(f *postgres.Factory) *Store {
	return &Store{pool: f.Pool(), schema: f.Schema()}
}

// Schema returns the store's schema.
func (s *Store) Schema() string { return s.schema }

// View returns the schema-qualified name of the view through which
// readers query the live version of the projection's table.
func (s *Store) View(name, table string) string { return s.schema + "." + projection.View(name, table) }

// Pool returns the pool to query read models through, by their views
// ([Store.View]).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// schema creates the store's tables. The advisory lock keeps concurrent
// first starts from racing on the catalogue, where CREATE ... IF NOT
// EXISTS is not safe.
const schema = `
CREATE TABLE IF NOT EXISTS strata_projections (
	name TEXT PRIMARY KEY,
	live_version INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS strata_projection_versions (
	name TEXT NOT NULL,
	version INTEGER NOT NULL,
	tables TEXT[] NOT NULL,
	PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS strata_projection_positions (
	name TEXT NOT NULL,
	version INTEGER NOT NULL,
	upstream TEXT NOT NULL,
	position BIGINT NOT NULL,
	PRIMARY KEY (name, version, upstream)
);
CREATE TABLE IF NOT EXISTS strata_projection_parked (
	name TEXT NOT NULL,
	version INTEGER NOT NULL,
	upstream TEXT NOT NULL,
	notification_id BIGINT NOT NULL,
	topic TEXT NOT NULL,
	error TEXT NOT NULL,
	parked_at TIMESTAMPTZ NOT NULL DEFAULT now(),
	PRIMARY KEY (name, version, upstream, notification_id)
);
CREATE TABLE IF NOT EXISTS strata_projection_holds (
	name TEXT PRIMARY KEY,
	version INTEGER NOT NULL,
	until_at TIMESTAMPTZ NOT NULL
);`

func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var pe *persistence.Error
	if errors.As(err, &pe) || errors.Is(err, projection.ErrMoved) {
		return err
	}
	return persistence.Errorf(postgres.Classify(err), op, err)
}

// Prepare creates the store's tables if need be.
func (s *Store) Prepare(ctx context.Context) error {
	return s.Transact(ctx, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext('strata_projections')); CREATE SCHEMA IF NOT EXISTS "+s.schema+";"+schema)
		return wrap("create projection tables", err)
	})
}

// Transact runs f in a transaction, committed if f returns nil.
func (s *Store) Transact(ctx context.Context, f func(ctx context.Context, tx pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return wrap("begin projection transaction", err)
	}
	if _, err := tx.Exec(ctx, "SET LOCAL search_path TO "+s.schema); err != nil {
		tx.Rollback(context.WithoutCancel(ctx))
		return wrap("begin projection transaction", err)
	}
	if err := f(ctx, tx); err != nil {
		tx.Rollback(context.WithoutCancel(ctx))
		return err
	}
	// A commit whose answer is lost leaves the outcome unknown; the
	// runner reads its positions again before its next batch, and
	// SetPosition refuses to move them twice.
	return wrap("commit projection transaction", tx.Commit(ctx))
}

func (s *Store) tables(ctx context.Context, tx pgx.Tx, m projection.Model) ([]string, error) {
	var list []string
	err := tx.QueryRow(ctx, `SELECT tables FROM strata_projection_versions WHERE name = $1 AND version = $2`, m.Name, m.Version).Scan(&list)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return list, wrap("read projection tables", err)
}

// Register records the tables of version m.
func (s *Store) Register(ctx context.Context, tx pgx.Tx, m projection.Model, tables []string) error {
	if _, err := tx.Exec(ctx, `INSERT INTO strata_projections (name) VALUES ($1) ON CONFLICT (name) DO NOTHING`, m.Name); err != nil {
		return wrap("register projection "+m.Name, err)
	}
	if _, err := s.Live(ctx, tx, m.Name); err != nil {
		return err
	}
	// A version registered before with other tables keeps them listed,
	// so that a switch drops every table it made.
	known, err := s.tables(ctx, tx, m)
	if err != nil {
		return err
	}
	for _, t := range tables {
		if !slices.Contains(known, t) {
			known = append(known, t)
		}
	}
	_, err = tx.Exec(ctx, `INSERT INTO strata_projection_versions (name, version, tables) VALUES ($1, $2, $3)
		ON CONFLICT (name, version) DO UPDATE SET tables = excluded.tables`, m.Name, m.Version, known)
	return wrap("register projection "+m.Name, err)
}

// Live returns the live version of the projection and locks its row, so
// that no switch happens before tx ends.
func (s *Store) Live(ctx context.Context, tx pgx.Tx, name string) (int, error) {
	var v int
	err := tx.QueryRow(ctx, `SELECT live_version FROM strata_projections WHERE name = $1 FOR UPDATE`, name).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return v, wrap("read live version of projection "+name, err)
}

// Positions returns version m's positions.
func (s *Store) Positions(ctx context.Context, tx pgx.Tx, m projection.Model) (map[string]int64, error) {
	rows, err := tx.Query(ctx, `SELECT upstream, position FROM strata_projection_positions WHERE name = $1 AND version = $2`, m.Name, m.Version)
	if err != nil {
		return nil, wrap("read projection positions", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var u string
		var p int64
		if err := rows.Scan(&u, &p); err != nil {
			return nil, wrap("read projection positions", err)
		}
		out[u] = p
	}
	return out, wrap("read projection positions", rows.Err())
}

// SetPosition moves version m's position in upstream from from to to.
func (s *Store) SetPosition(ctx context.Context, tx pgx.Tx, m projection.Model, upstream string, from, to int64) error {
	op := fmt.Sprintf("move projection %s version %d in %s to %d", m.Name, m.Version, upstream, to)
	tag, err := tx.Exec(ctx, `UPDATE strata_projection_positions SET position = $1 WHERE name = $2 AND version = $3 AND upstream = $4 AND position = $5`,
		to, m.Name, m.Version, upstream, from)
	if err != nil {
		return wrap(op, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	if from == 0 {
		tag, err = tx.Exec(ctx, `INSERT INTO strata_projection_positions (name, version, upstream, position) VALUES ($1, $2, $3, $4)
			ON CONFLICT (name, version, upstream) DO NOTHING`, m.Name, m.Version, upstream, to)
		if err != nil {
			return wrap(op, err)
		}
		if tag.RowsAffected() == 1 {
			return nil
		}
	}
	return fmt.Errorf("%s: %w (it is no longer at %d)", op, projection.ErrMoved, from)
}

// Switch points the views at version m's tables and drops version old.
// Readers of a view wait for the transaction; they then read the new
// version's table.
func (s *Store) Switch(ctx context.Context, tx pgx.Tx, m projection.Model, old int) error {
	op := fmt.Sprintf("switch projection %s to version %d", m.Name, m.Version)
	tables, err := s.tables(ctx, tx, m)
	if err != nil {
		return err
	}
	var oldTables []string
	if old > 0 {
		if oldTables, err = s.tables(ctx, tx, projection.Model{Name: m.Name, Version: old}); err != nil {
			return err
		}
	}
	for _, stmt := range projection.SwitchStatements(m, tables, oldTables) {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return wrap(op, err)
		}
	}
	if old > 0 && old != m.Version {
		if err := s.Drop(ctx, tx, projection.Model{Name: m.Name, Version: old}); err != nil {
			return err
		}
	}
	_, err = tx.Exec(ctx, `UPDATE strata_projections SET live_version = $1 WHERE name = $2`, m.Version, m.Name)
	return wrap(op, err)
}

// Drop drops the tables, positions and registration of version m.
func (s *Store) Drop(ctx context.Context, tx pgx.Tx, m projection.Model) error {
	op := fmt.Sprintf("drop projection %s version %d", m.Name, m.Version)
	tables, err := s.tables(ctx, tx, m)
	if err != nil {
		return err
	}
	for _, t := range tables {
		if _, err := tx.Exec(ctx, `DROP TABLE IF EXISTS `+m.Table(t)); err != nil {
			return wrap(op, err)
		}
	}
	for _, q := range []string{
		`DELETE FROM strata_projection_positions WHERE name = $1 AND version = $2`,
		`DELETE FROM strata_projection_versions WHERE name = $1 AND version = $2`,
	} {
		if _, err := tx.Exec(ctx, q, m.Name, m.Version); err != nil {
			return wrap(op, err)
		}
	}
	return nil
}

// Park records an event the projection could not process.
func (s *Store) Park(ctx context.Context, tx pgx.Tx, m projection.Model, e projection.Event, cause error) error {
	_, err := tx.Exec(ctx, `INSERT INTO strata_projection_parked (name, version, upstream, notification_id, topic, error)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (name, version, upstream, notification_id) DO UPDATE SET error = excluded.error, parked_at = now()`,
		m.Name, m.Version, e.Upstream, e.Notification.ID, e.Notification.Topic, cause.Error())
	return wrap(fmt.Sprintf("park notification %d of %s for projection %s", e.Notification.ID, e.Upstream, m.Name), err)
}

// Hold asks the live version of m's projection to stop for d. The
// server's clock times it, so that runners on machines whose clocks
// differ agree on when it lapses.
func (s *Store) Hold(ctx context.Context, tx pgx.Tx, m projection.Model, d time.Duration) error {
	_, err := tx.Exec(ctx, `INSERT INTO strata_projection_holds (name, version, until_at) VALUES ($1, $2, clock_timestamp() + $3 * interval '1 microsecond')
		ON CONFLICT (name) DO UPDATE SET version = excluded.version, until_at = excluded.until_at`,
		m.Name, m.Version, d.Microseconds())
	return wrap(fmt.Sprintf("hold projection %s for version %d", m.Name, m.Version), err)
}

// Held returns the version that holds the projection now, or 0.
func (s *Store) Held(ctx context.Context, tx pgx.Tx, name string) (int, error) {
	var v int
	err := tx.QueryRow(ctx, `SELECT version FROM strata_projection_holds WHERE name = $1 AND until_at > clock_timestamp()`, name).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return v, wrap("read hold of projection "+name, err)
}

// Parked returns the events parked by the projection named name, of
// every version, oldest first.
func (s *Store) Parked(ctx context.Context, name string) ([]projection.ParkedEvent, error) {
	rows, err := s.pool.Query(ctx, `SELECT version, upstream, notification_id, topic, error, parked_at FROM `+s.schema+`.strata_projection_parked
		WHERE name = $1 ORDER BY parked_at, upstream, notification_id`, name)
	if err != nil {
		return nil, wrap("read parked events of projection "+name, err)
	}
	defer rows.Close()
	var out []projection.ParkedEvent
	for rows.Next() {
		p := projection.ParkedEvent{Model: projection.Model{Name: name}}
		var at time.Time
		if err := rows.Scan(&p.Model.Version, &p.Upstream, &p.NotificationID, &p.Topic, &p.Error, &at); err != nil {
			return nil, wrap("read parked events of projection "+name, err)
		}
		p.ParkedAt = at
		out = append(out, p)
	}
	return out, wrap("read parked events of projection "+name, rows.Err())
}

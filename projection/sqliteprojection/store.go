package sqliteprojection

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/persistence/sqlite"
	"github.com/strata-go/strata/projection"
)

// Store keeps read models and their projections' positions in a SQLite
// database. It is safe for concurrent use.
type Store struct {
	db     *sql.DB
	reader *sql.DB
}

var _ projection.Store[*sql.Tx] = (*Store)(nil)

// New returns a store writing through db and reading through reader (db
// if nil). Transactions of db must take SQLite's write lock when they
// begin (a DSN with _txlock=immediate, or one connection), so that
// concurrent ones wait for each other instead of failing.
func New(db, reader *sql.DB) *Store {
	if reader == nil {
		reader = db
	}
	return &Store{db: db, reader: reader}
}

// FromFactory returns a store in the database of f: read models beside
// the events, written through f's write connection and read through its
// readers.
func FromFactory(f *sqlite.Factory) *Store {
	w, r := f.DB()
	return New(w, r)
}

// Reader returns the database to query read models through, by their
// views (projection.View).
func (s *Store) Reader() *sql.DB { return s.reader }

const schema = `
CREATE TABLE IF NOT EXISTS strata_projections (
	name TEXT PRIMARY KEY,
	live_version INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS strata_projection_versions (
	name TEXT NOT NULL,
	version INTEGER NOT NULL,
	tables TEXT NOT NULL,
	PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS strata_projection_positions (
	name TEXT NOT NULL,
	version INTEGER NOT NULL,
	upstream TEXT NOT NULL,
	position INTEGER NOT NULL,
	PRIMARY KEY (name, version, upstream)
);
CREATE TABLE IF NOT EXISTS strata_projection_parked (
	name TEXT NOT NULL,
	version INTEGER NOT NULL,
	upstream TEXT NOT NULL,
	notification_id INTEGER NOT NULL,
	topic TEXT NOT NULL,
	error TEXT NOT NULL,
	parked_at TEXT NOT NULL,
	PRIMARY KEY (name, version, upstream, notification_id)
);
CREATE TABLE IF NOT EXISTS strata_projection_holds (
	name TEXT PRIMARY KEY,
	version INTEGER NOT NULL,
	until_unix_nano INTEGER NOT NULL
);`

func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var pe *persistence.Error
	if errors.As(err, &pe) || errors.Is(err, projection.ErrMoved) {
		return err
	}
	kind := sqlite.Classify(err)
	if kind == nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		kind = persistence.ErrDatabase
	}
	return persistence.Errorf(kind, op, err)
}

// Prepare creates the store's tables if need be.
func (s *Store) Prepare(ctx context.Context) error {
	_, err := s.db.ExecContext(ctx, schema)
	return wrap("create projection tables", err)
}

// Transact runs f in a transaction, committed if f returns nil.
func (s *Store) Transact(ctx context.Context, f func(ctx context.Context, tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return wrap("begin projection transaction", err)
	}
	if err := f(ctx, tx); err != nil {
		tx.Rollback()
		return err
	}
	return wrap("commit projection transaction", tx.Commit())
}

func (s *Store) tables(ctx context.Context, tx *sql.Tx, m projection.Model) ([]string, error) {
	var list string
	err := tx.QueryRowContext(ctx, `SELECT tables FROM strata_projection_versions WHERE name = ? AND version = ?`, m.Name, m.Version).Scan(&list)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, wrap("read projection tables", err)
	}
	if list == "" {
		return nil, nil
	}
	return strings.Split(list, ","), nil
}

// Register records the tables of version m.
func (s *Store) Register(ctx context.Context, tx *sql.Tx, m projection.Model, tables []string) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO strata_projections (name) VALUES (?) ON CONFLICT (name) DO NOTHING`, m.Name); err != nil {
		return wrap("register projection "+m.Name, err)
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
	_, err = tx.ExecContext(ctx, `INSERT INTO strata_projection_versions (name, version, tables) VALUES (?, ?, ?)
		ON CONFLICT (name, version) DO UPDATE SET tables = excluded.tables`, m.Name, m.Version, strings.Join(known, ","))
	return wrap("register projection "+m.Name, err)
}

// Live returns the live version of the projection. The transaction holds
// SQLite's write lock, so no switch happens before it ends.
func (s *Store) Live(ctx context.Context, tx *sql.Tx, name string) (int, error) {
	var v int
	err := tx.QueryRowContext(ctx, `SELECT live_version FROM strata_projections WHERE name = ?`, name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return v, wrap("read live version of projection "+name, err)
}

// Positions returns version m's positions.
func (s *Store) Positions(ctx context.Context, tx *sql.Tx, m projection.Model) (map[string]int64, error) {
	rows, err := tx.QueryContext(ctx, `SELECT upstream, position FROM strata_projection_positions WHERE name = ? AND version = ?`, m.Name, m.Version)
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
func (s *Store) SetPosition(ctx context.Context, tx *sql.Tx, m projection.Model, upstream string, from, to int64) error {
	op := fmt.Sprintf("move projection %s version %d in %s to %d", m.Name, m.Version, upstream, to)
	res, err := tx.ExecContext(ctx, `UPDATE strata_projection_positions SET position = ? WHERE name = ? AND version = ? AND upstream = ? AND position = ?`,
		to, m.Name, m.Version, upstream, from)
	if err != nil {
		return wrap(op, err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	if from == 0 {
		res, err = tx.ExecContext(ctx, `INSERT INTO strata_projection_positions (name, version, upstream, position) VALUES (?, ?, ?, ?)
			ON CONFLICT (name, version, upstream) DO NOTHING`, m.Name, m.Version, upstream, to)
		if err != nil {
			return wrap(op, err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return nil
		}
	}
	return fmt.Errorf("%s: %w (it is no longer at %d)", op, projection.ErrMoved, from)
}

// Switch points the views at version m's tables and drops version old.
func (s *Store) Switch(ctx context.Context, tx *sql.Tx, m projection.Model, old int) error {
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
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return wrap(op, err)
		}
	}
	if old > 0 && old != m.Version {
		if err := s.Drop(ctx, tx, projection.Model{Name: m.Name, Version: old}); err != nil {
			return err
		}
	}
	_, err = tx.ExecContext(ctx, `UPDATE strata_projections SET live_version = ? WHERE name = ?`, m.Version, m.Name)
	return wrap(op, err)
}

// Drop drops the tables, positions and registration of version m.
func (s *Store) Drop(ctx context.Context, tx *sql.Tx, m projection.Model) error {
	op := fmt.Sprintf("drop projection %s version %d", m.Name, m.Version)
	tables, err := s.tables(ctx, tx, m)
	if err != nil {
		return err
	}
	for _, t := range tables {
		if _, err := tx.ExecContext(ctx, `DROP TABLE IF EXISTS `+m.Table(t)); err != nil {
			return wrap(op, err)
		}
	}
	for _, q := range []string{
		`DELETE FROM strata_projection_positions WHERE name = ? AND version = ?`,
		`DELETE FROM strata_projection_versions WHERE name = ? AND version = ?`,
	} {
		if _, err := tx.ExecContext(ctx, q, m.Name, m.Version); err != nil {
			return wrap(op, err)
		}
	}
	return nil
}

// Park records an event the projection could not process.
func (s *Store) Park(ctx context.Context, tx *sql.Tx, m projection.Model, e projection.Event, cause error) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO strata_projection_parked (name, version, upstream, notification_id, topic, error, parked_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET error = excluded.error, parked_at = excluded.parked_at`,
		m.Name, m.Version, e.Upstream, e.Notification.ID, e.Notification.Topic, cause.Error(), time.Now().UTC().Format(time.RFC3339Nano))
	return wrap(fmt.Sprintf("park notification %d of %s for projection %s", e.Notification.ID, e.Upstream, m.Name), err)
}

// Hold asks the live version of m's projection to stop for d. The
// store's database is a file on this machine, so its clock is the one
// every runner reads.
func (s *Store) Hold(ctx context.Context, tx *sql.Tx, m projection.Model, d time.Duration) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO strata_projection_holds (name, version, until_unix_nano) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET version = excluded.version, until_unix_nano = excluded.until_unix_nano`,
		m.Name, m.Version, time.Now().Add(d).UnixNano())
	return wrap(fmt.Sprintf("hold projection %s for version %d", m.Name, m.Version), err)
}

// Held returns the version that holds the projection now, or 0.
func (s *Store) Held(ctx context.Context, tx *sql.Tx, name string) (int, error) {
	var v int
	err := tx.QueryRowContext(ctx, `SELECT version FROM strata_projection_holds WHERE name = ? AND until_unix_nano > ?`, name, time.Now().UnixNano()).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return v, wrap("read hold of projection "+name, err)
}

// Parked returns the events parked by the projection named name, of
// every version, oldest first.
func (s *Store) Parked(ctx context.Context, name string) ([]projection.ParkedEvent, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT version, upstream, notification_id, topic, error, parked_at FROM strata_projection_parked
		WHERE name = ? ORDER BY parked_at, upstream, notification_id`, name)
	if err != nil {
		return nil, wrap("read parked events of projection "+name, err)
	}
	defer rows.Close()
	var out []projection.ParkedEvent
	for rows.Next() {
		p := projection.ParkedEvent{Model: projection.Model{Name: name}}
		var at string
		if err := rows.Scan(&p.Model.Version, &p.Upstream, &p.NotificationID, &p.Topic, &p.Error, &at); err != nil {
			return nil, wrap("read parked events of projection "+name, err)
		}
		p.ParkedAt, _ = time.Parse(time.RFC3339Nano, at)
		out = append(out, p)
	}
	return out, wrap("read parked events of projection "+name, rows.Err())
}

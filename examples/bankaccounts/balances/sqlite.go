package balances

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/strata-go/strata/projection"
	"github.com/strata-go/strata/projection/sqliteprojection"
)

// SQLite is the account-balances projection in SQLite's SQL, for
// sqliteprojection.Store. Balances are decimal text, added up in Go so
// that no float ever touches money; an index on their numeric value
// serves the largest-accounts query.
type SQLite struct{}

var _ projection.Projection[*sql.Tx] = SQLite{}

// Name returns the projection's name.
func (SQLite) Name() string { return Name }

// Version returns the version of the model's layout.
func (SQLite) Version() int { return 1 }

// Tables returns the model's one table.
func (SQLite) Tables() []string { return []string{table} }

// Setup creates the model's table and its index.
func (SQLite) Setup(ctx context.Context, tx *sql.Tx, m projection.Model) error {
	t := m.Table(table)
	_, err := tx.ExecContext(ctx, `
CREATE TABLE IF NOT EXISTS `+t+` (
	id TEXT PRIMARY KEY,
	full_name TEXT NOT NULL,
	balance TEXT NOT NULL,
	overdraft_limit TEXT NOT NULL,
	closed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS `+t+`_by_balance ON `+t+` (CAST(balance AS REAL) DESC) WHERE closed = 0;`)
	return err
}

// Process applies one event of an account.
func (SQLite) Process(ctx context.Context, tx *sql.Tx, m projection.Model, e projection.Event) error {
	c, ok := changeOf(e)
	if !ok {
		return nil
	}
	t, id := m.Table(table), e.OriginatorID.String()
	if c.open != nil {
		// DO NOTHING: an account is opened once, and its row must not be
		// reset if the event were ever applied twice.
		_, err := tx.ExecContext(ctx, `INSERT INTO `+t+` (id, full_name, balance, overdraft_limit) VALUES (?, ?, '0.00', '0.00')
			ON CONFLICT (id) DO NOTHING`, id, c.open.FullName)
		return err
	}
	var res sql.Result
	var err error
	switch {
	case c.amount != nil:
		var text string
		if err := tx.QueryRowContext(ctx, `SELECT balance FROM `+t+` WHERE id = ?`, id).Scan(&text); errors.Is(err, sql.ErrNoRows) {
			return missing(e)
		} else if err != nil {
			return err
		}
		balance, err := decimal.NewFromString(text)
		if err != nil {
			return fmt.Errorf("balances: account %s: balance %q: %w", id, text, err)
		}
		res, err = tx.ExecContext(ctx, `UPDATE `+t+` SET balance = ? WHERE id = ?`, balance.Add(*c.amount).String(), id)
	case c.overdraw != nil:
		res, err = tx.ExecContext(ctx, `UPDATE `+t+` SET overdraft_limit = ? WHERE id = ?`, c.overdraw.String(), id)
	case c.close:
		res, err = tx.ExecContext(ctx, `UPDATE `+t+` SET closed = 1 WHERE id = ?`, id)
	}
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return missing(e)
	}
	return nil
}

// Largest returns the n open accounts with the largest balances, largest
// first, from the live version of the model in s.
func Largest(ctx context.Context, s *sqliteprojection.Store, n int) ([]Account, error) {
	if err := limit(n); err != nil {
		return nil, err
	}
	rows, err := s.Reader().QueryContext(ctx, `SELECT id, full_name, balance, overdraft_limit, closed FROM `+projection.View(Name, table)+`
		WHERE closed = 0 ORDER BY CAST(balance AS REAL) DESC, id LIMIT ?`, n)
	if err != nil {
		return nil, fmt.Errorf("balances: largest accounts: %w", err)
	}
	defer rows.Close()
	var out []Account
	for rows.Next() {
		var a Account
		var id, balance, limit string
		if err := rows.Scan(&id, &a.FullName, &balance, &limit, &a.Closed); err != nil {
			return nil, fmt.Errorf("balances: largest accounts: %w", err)
		}
		if a.ID, err = uuid.Parse(id); err != nil {
			return nil, fmt.Errorf("balances: largest accounts: id %q: %w", id, err)
		}
		if a.Balance, err = decimal.NewFromString(balance); err != nil {
			return nil, fmt.Errorf("balances: account %s: balance %q: %w", id, balance, err)
		}
		if a.OverdraftLimit, err = decimal.NewFromString(limit); err != nil {
			return nil, fmt.Errorf("balances: account %s: overdraft limit %q: %w", id, limit, err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("balances: largest accounts: %w", err)
	}
	return out, nil
}

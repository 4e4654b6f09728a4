package balances

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/strata-go/strata/projection"
	"github.com/strata-go/strata/projection/pgprojection"
)

// Postgres is the account-balances projection in PostgreSQL's SQL, for
// pgprojection.Store. Balances are NUMERIC, added up by the database.
type Postgres struct{}

var _ projection.Projection[pgx.Tx] = Postgres{}

// Name returns the projection's name.
func (Postgres) Name() string { return Name }

// Version returns the version of the model's layout.
func (Postgres) Version() int { return 1 }

// Tables returns the model's one table.
func (Postgres) Tables() []string { return []string{table} }

// Setup creates the model's table and its index.
func (Postgres) Setup(ctx context.Context, tx pgx.Tx, m projection.Model) error {
	t := m.Table(table)
	_, err := tx.Exec(ctx, `
CREATE TABLE IF NOT EXISTS `+t+` (
	id UUID PRIMARY KEY,
	full_name TEXT NOT NULL,
	balance NUMERIC NOT NULL,
	overdraft_limit NUMERIC NOT NULL,
	closed BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS `+t+`_by_balance ON `+t+` (balance DESC) WHERE NOT closed;`)
	return err
}

// Process applies one event of an account.
func (Postgres) Process(ctx context.Context, tx pgx.Tx, m projection.Model, e projection.Event) error {
	c, ok := changeOf(e)
	if !ok {
		return nil
	}
	t, id := m.Table(table), e.OriginatorID
	var sql string
	var args []any
	switch {
	case c.open != nil:
		_, err := tx.Exec(ctx, `INSERT INTO `+t+` (id, full_name, balance, overdraft_limit) VALUES ($1, $2, 0.00, 0.00)
			ON CONFLICT (id) DO NOTHING`, id, c.open.FullName)
		return err
	case c.amount != nil:
		sql, args = `UPDATE `+t+` SET balance = balance + $2::numeric WHERE id = $1`, []any{id, c.amount.String()}
	case c.overdraw != nil:
		sql, args = `UPDATE `+t+` SET overdraft_limit = $2::numeric WHERE id = $1`, []any{id, c.overdraw.String()}
	case c.close:
		sql, args = `UPDATE `+t+` SET closed = true WHERE id = $1`, []any{id}
	}
	tag, err := tx.Exec(ctx, sql, args...)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return missing(e)
	}
	return nil
}

// LargestPostgres returns the n open accounts with the largest balances,
// largest first, from the live version of the model in s.
func LargestPostgres(ctx context.Context, s *pgprojection.Store, n int) ([]Account, error) {
	if err := limit(n); err != nil {
		return nil, err
	}
	// a.balance, not balance: ORDER BY would take the text output column.
	rows, err := s.Pool().Query(ctx, `SELECT a.id, a.full_name, a.balance::text, a.overdraft_limit::text, a.closed FROM `+s.View(Name, table)+` a
		WHERE NOT a.closed ORDER BY a.balance DESC, a.id LIMIT $1`, n)
	if err != nil {
		return nil, fmt.Errorf("balances: largest accounts: %w", err)
	}
	defer rows.Close()
	var out []Account
	for rows.Next() {
		var a Account
		var balance, limit string
		if err := rows.Scan(&a.ID, &a.FullName, &balance, &limit, &a.Closed); err != nil {
			return nil, fmt.Errorf("balances: largest accounts: %w", err)
		}
		if a.Balance, err = decimal.NewFromString(balance); err != nil {
			return nil, fmt.Errorf("balances: account %s: balance %q: %w", a.ID, balance, err)
		}
		if a.OverdraftLimit, err = decimal.NewFromString(limit); err != nil {
			return nil, fmt.Errorf("balances: account %s: overdraft limit %q: %w", a.ID, limit, err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("balances: largest accounts: %w", err)
	}
	return out, nil
}

package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/strata-go/strata/persistence"
)

// Truncate deletes the oldest events of an aggregate, in one write
// transaction, and keeps their versions taken with a truncation point per
// aggregate in [Tables.Truncated] and a trigger on the events table that
// refuses an insert below it. It implements persistence.Truncater for the
// factories of SQL adapters whose engine has triggers.
//
// The point table and the trigger are created by the first truncation, in
// its transaction, so that the inserts of a store that was never truncated
// pay nothing for them.
type Truncate struct {
	DB     *DB
	Tables Tables
	Tenant string
	// Fence are the statements that create, if they do not exist, the
	// table Tables.Truncated (tenant, originator_id, before_version, with
	// (tenant, originator_id) unique) and the trigger that fails an insert
	// into Tables.Events at a version below its aggregate's point with a
	// constraint error (which the dialect classifies as an integrity
	// error).
	Fence []string
	// SetPoint records a point: its arguments are the tenant, the
	// originator ID and the version; it keeps the higher of a recorded
	// point and the new one.
	SetPoint string
	// HasPoints is a query of one argument, the name of Tables.Truncated,
	// that returns whether the table exists (as a count or a boolean).
	HasPoints string
}

// TruncationPoint returns the version the aggregate was truncated before,
// or 0 if it never was.
func (t Truncate) TruncationPoint(ctx context.Context, id uuid.UUID) (int64, error) {
	op := fmt.Sprintf("truncation point of aggregate %s of %s", id, t.Tables.Events)
	if err := t.DB.begin(ctx, op); err != nil {
		return 0, err
	}
	var exists bool
	if err := t.DB.Reader.QueryRowContext(ctx, t.HasPoints, t.Tables.Truncated).Scan(&exists); err != nil {
		return 0, t.DB.Errorf(op, err)
	}
	if !exists {
		return 0, nil
	}
	q := t.DB.rebind(Query{"SELECT before_version FROM " + t.Tables.Truncated + " WHERE tenant = ? AND originator_id = ?", []any{t.Tenant, t.DB.Dialect.IDArg(id)}})
	var v int64
	switch err := t.DB.Reader.QueryRowContext(ctx, q.SQL, q.Args...).Scan(&v); {
	case errors.Is(err, sql.ErrNoRows):
		return 0, nil
	case err != nil:
		return 0, t.DB.Errorf(op, err)
	}
	return v, nil
}

// TruncateAggregate deletes the aggregate's events below version before,
// and returns how many it deleted (see persistence.Truncater).
func (t Truncate) TruncateAggregate(ctx context.Context, id uuid.UUID, before int64) (int, error) {
	op := fmt.Sprintf("truncate aggregate %s of %s before version %d", id, t.Tables.Events, before)
	if err := t.DB.beginWrite(ctx, op); err != nil {
		return 0, err
	}
	idArg := t.DB.Dialect.IDArg(id)
	var refused error
	deleted := 0
	err := t.DB.write(ctx, op, func(tx *sql.Tx) error {
		refused, deleted = nil, 0
		q := t.DB.rebind(Query{"SELECT MAX(originator_version) FROM " + t.Tables.Events + " WHERE tenant = ? AND originator_id = ?", []any{t.Tenant, idArg}})
		var last sql.NullInt64
		if err := tx.QueryRowContext(ctx, q.SQL, q.Args...).Scan(&last); err != nil {
			return err
		}
		switch {
		case !last.Valid:
			refused = errors.New("the aggregate has no events")
		case before > last.Int64:
			refused = fmt.Errorf("its last version is %d, which a truncation keeps", last.Int64)
		}
		if refused != nil {
			return nil // nothing written: the transaction commits empty
		}
		for _, stmt := range t.Fence {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return err
			}
		}
		q = t.DB.rebind(Query{"DELETE FROM " + t.Tables.Events + " WHERE tenant = ? AND originator_id = ? AND originator_version < ?", []any{t.Tenant, idArg, before}})
		res, err := tx.ExecContext(ctx, q.SQL, q.Args...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		deleted = int(n)
		q = t.DB.rebind(Query{t.SetPoint, []any{t.Tenant, idArg, before}})
		_, err = tx.ExecContext(ctx, q.SQL, q.Args...)
		return err
	})
	if err != nil {
		return 0, err
	}
	if refused != nil {
		return 0, &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: refused}
	}
	return deleted, nil
}

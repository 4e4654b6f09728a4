package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/strata-go/strata/persistence"
)

var _ persistence.Truncater = (*Factory)(nil)

// TruncateAggregate deletes the aggregate's events below version before
// in the factory's tenant, with their notifications, in one transaction
// (see persistence.Truncater).
//
// Truncated versions stay taken by a truncation point per aggregate, in
// the table <application>_truncated, and a trigger on the events table
// that fails an insert below its aggregate's point as a unique violation
// (an integrity error). The first truncation of an application creates
// both, under an advisory lock, so that the inserts of a store that was
// never truncated run no trigger.
func (f *Factory) TruncateAggregate(ctx context.Context, id uuid.UUID, before int64) (int, error) {
	events, points := f.qualified(f.tables.Events), f.qualified(f.tables.Truncated)
	op := fmt.Sprintf("truncate aggregate %s of %s before version %d", id, events, before)
	r := f.recorder(events)
	if err := r.beginWrite(ctx, op); err != nil {
		return 0, err
	}
	var refused error
	deleted := 0
	err := pgx.BeginFunc(ctx, f.pool.Pool, func(tx pgx.Tx) error {
		var last *int64
		if err := tx.QueryRow(ctx, "SELECT max(originator_version) FROM "+events+" WHERE tenant = $1 AND originator_id = $2",
			f.tenant, [16]byte(id)).Scan(&last); err != nil {
			return err
		}
		switch {
		case last == nil:
			refused = errors.New("the aggregate has no events")
		case before > *last:
			refused = fmt.Errorf("its last version is %d, which a truncation keeps", *last)
		}
		if refused != nil {
			return nil
		}
		if err := f.fence(ctx, tx, events, points); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, "DELETE FROM "+events+" WHERE tenant = $1 AND originator_id = $2 AND originator_version < $3",
			f.tenant, [16]byte(id), before)
		if err != nil {
			return err
		}
		deleted = int(tag.RowsAffected())
		_, err = tx.Exec(ctx, "INSERT INTO "+points+` (tenant, originator_id, before_version) VALUES ($1, $2, $3)
ON CONFLICT (tenant, originator_id) DO UPDATE SET before_version = GREATEST(`+points+`.before_version, excluded.before_version)`,
			f.tenant, [16]byte(id), before)
		return err
	})
	if err != nil {
		r.recover(err)
		return 0, writeError(op, err)
	}
	if refused != nil {
		return 0, &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: refused}
	}
	return deleted, nil
}

// TruncationPoint returns the version the aggregate was truncated before,
// or 0.
func (f *Factory) TruncationPoint(ctx context.Context, id uuid.UUID) (int64, error) {
	points := f.qualified(f.tables.Truncated)
	op := fmt.Sprintf("truncation point of aggregate %s in %s", id, points)
	r := f.recorder(points)
	return retry(ctx, &r, op, func() (int64, error) {
		var exists bool
		if err := f.pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", points).Scan(&exists); err != nil || !exists {
			return 0, err
		}
		var v int64
		err := f.pool.QueryRow(ctx, "SELECT before_version FROM "+points+" WHERE tenant = $1 AND originator_id = $2", f.tenant, [16]byte(id)).Scan(&v)
		if errors.Is(err, pgx.ErrNoRows) {
			return 0, nil
		}
		return v, err
	})
}

// fence creates the table of truncation points and the trigger that reads
// it, unless they exist.
func (f *Factory) fence(ctx context.Context, tx pgx.Tx, events, points string) error {
	var exists bool
	if err := tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", points).Scan(&exists); err != nil || exists {
		return err
	}
	// Two first truncations at once would race to create them.
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext($1))", points); err != nil {
		return err
	}
	if err := tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", points).Scan(&exists); err != nil || exists {
		return err
	}
	fn := points + "_fence"
	for _, stmt := range []string{
		"CREATE TABLE " + points + ` (
  tenant text NOT NULL,
  originator_id uuid NOT NULL,
  before_version bigint NOT NULL,
  PRIMARY KEY (tenant, originator_id))`,
		"CREATE OR REPLACE FUNCTION " + fn + `() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM ` + points + ` p WHERE p.tenant = NEW.tenant AND p.originator_id = NEW.originator_id
      AND NEW.originator_version < p.before_version) THEN
    RAISE EXCEPTION 'version % of aggregate % was truncated', NEW.originator_version, NEW.originator_id
      USING ERRCODE = 'unique_violation';
  END IF;
  RETURN NEW;
END $$`,
		"DROP TRIGGER IF EXISTS " + f.tables.Truncated + "_fence ON " + events,
		"CREATE TRIGGER " + f.tables.Truncated + "_fence BEFORE INSERT ON " + events + " FOR EACH ROW EXECUTE FUNCTION " + fn + "()",
	} {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return err
		}
	}
	return nil
}

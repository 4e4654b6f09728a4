package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-go/strata/persistence"
)

var _ persistence.HorizonReader = (*Factory)(nil)

// horizonQuery finds the transaction that holds the cluster's visibility
// horizon back longest: of the backends, the one with the oldest
// transaction ID or snapshot (backend_xid: a transaction that wrote,
// which hides later commits from readers of the log even while idle;
// backend_xmin: a snapshot, which keeps vacuum from removing rows), and
// of the prepared transactions, which hold their IDs until committed or
// rolled back. age() counts transaction IDs, so it is right across
// wraparound; GREATEST ignores the NULL of the one a backend lacks. The
// query's own backend has a snapshot while it runs, and is left out.
const horizonQuery = `SELECT pid, app, db, st, secs FROM (
	SELECT pid, coalesce(application_name, '') AS app, coalesce(datname, '') AS db, coalesce(state, '') AS st,
		greatest(extract(epoch FROM clock_timestamp() - coalesce(xact_start, query_start, backend_start)), 0)::float8 AS secs,
		greatest(age(backend_xid), age(backend_xmin)) AS xids
	FROM pg_stat_activity
	WHERE (backend_xid IS NOT NULL OR backend_xmin IS NOT NULL) AND pid <> pg_backend_pid()
	UNION ALL
	SELECT 0, 'prepared transaction ' || gid, database, 'prepared',
		greatest(extract(epoch FROM clock_timestamp() - prepared), 0)::float8, age(transaction)
	FROM pg_prepared_xacts
) AS holders
ORDER BY xids DESC, secs DESC
LIMIT 1`

// Horizon returns the backend whose transaction holds the cluster's
// visibility horizon back longest, from pg_stat_activity: its age, process
// ID, application_name, database and state. While it runs, notifications
// saved after it began stay invisible to readers (see docs/postgres.md),
// and vacuum keeps the rows it could see. A prepared transaction (two-phase
// commit) has PID 0, its global ID in ApplicationName and the state
// "prepared". A role that is not a superuser
// sees other roles' backends only with pg_read_all_stats (or pg_monitor);
// without it, their transactions are not found.
func (f *Factory) Horizon(ctx context.Context) (persistence.Horizon, error) {
	var h persistence.Horizon
	var age float64
	err := f.pool.Pool.QueryRow(ctx, horizonQuery).Scan(&h.PID, &h.ApplicationName, &h.Database, &h.State, &age)
	if errors.Is(err, pgx.ErrNoRows) {
		return persistence.Horizon{}, nil
	}
	if err != nil {
		return persistence.Horizon{}, errorf("read the visibility horizon from pg_stat_activity", err)
	}
	h.Age = time.Duration(age * float64(time.Second))
	return h, nil
}

var _ persistence.VisibilityAwaiter = (*Factory)(nil)

// AwaitVisibility waits until every transaction that was running when it
// was called has ended, so that the log, whose rows show below the xmin
// of a reader's snapshot, shows everything committed before the call; or
// until ctx ends. It takes a transaction ID of its own (one statement,
// committed at once), which every transaction running then, and every
// commit made before, is older than, and polls until the snapshots' xmin
// has reached it: first every millisecond, then every 100 ms. (A
// snapshot's xmax does not serve: it is one past the last transaction
// completed, not the next to be assigned, so a transaction still running
// may be at or above it.)
func (f *Factory) AwaitVisibility(ctx context.Context) error {
	var xmax int64
	if err := f.pool.Pool.QueryRow(ctx, "SELECT pg_current_xact_id()::text::bigint").Scan(&xmax); err != nil {
		return errorf("take a transaction ID", err)
	}
	for wait := time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		var done bool
		if err := f.pool.Pool.QueryRow(ctx, "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint >= $1", xmax).Scan(&done); err != nil {
			return errorf("read the transaction IDs running", err)
		}
		if done {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

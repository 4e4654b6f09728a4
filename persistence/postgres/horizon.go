package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-go/strata/persistence"
)

var _ persistence.HorizonReader = (*Factory)(nil)

// horizonQuery finds the backend whose snapshot is the oldest in the
// cluster: the one with the oldest backend_xmin (age() counts transaction
// IDs, so it is right across wraparound). Its transaction's start says
// how long it has held readers back. The query's own backend has a
// snapshot while it runs, and is left out.
const horizonQuery = `SELECT pid, coalesce(application_name, ''), coalesce(datname, ''), coalesce(state, ''),
	greatest(extract(epoch FROM clock_timestamp() - coalesce(xact_start, query_start, backend_start)), 0)::float8
FROM pg_stat_activity
WHERE backend_xmin IS NOT NULL AND pid <> pg_backend_pid()
ORDER BY age(backend_xmin) DESC, xact_start
LIMIT 1`

// Horizon returns the backend whose transaction holds the cluster's
// visibility horizon back longest, from pg_stat_activity: its age, process
// ID, application_name, database and state. While it runs, notifications
// saved after it began stay invisible to readers (see docs/postgres.md),
// and vacuum keeps the rows it could see. A role that is not a superuser
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

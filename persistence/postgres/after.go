package postgres

import (
	"context"
	"fmt"

	"github.com/strata-go/strata/persistence"
)

var _ persistence.AfterSelector = (*recorder)(nil)

// SelectEventsAfter returns the events of several aggregates after a
// version each, in one query: the aggregates are an array, each looked up
// in the table's primary key, each row naming the element of after it
// answers.
func (r *recorder) SelectEventsAfter(ctx context.Context, after []persistence.After) ([][]persistence.StoredEvent, error) {
	op := "select events after versions from " + r.table
	if len(after) == 0 {
		return nil, r.begin(ctx, op)
	}
	ids := make([][16]byte, len(after))
	versions := make([]int64, len(after))
	for i, a := range after {
		ids[i], versions[i] = a.OriginatorID, a.Version
	}
	cols := "originator_version, topic, state"
	if r.events {
		cols += ", commit_id, headers"
	}
	// A subquery per aggregate, kept apart by OFFSET 0: joined to the
	// table, the array is planned as a hash join on a scan of the whole
	// table, which an aggregate's version bound does not narrow enough
	// in the planner's estimates.
	sql := `SELECT a.i, e.* FROM unnest($2::uuid[], $3::bigint[]) WITH ORDINALITY AS a(id, v, i)
CROSS JOIN LATERAL (SELECT ` + cols + ` FROM ` + r.table + `
WHERE tenant = $1 AND originator_id = a.id AND originator_version > a.v ORDER BY originator_version OFFSET 0) e
ORDER BY a.i, e.originator_version`
	return retry(ctx, r, op, func() ([][]persistence.StoredEvent, error) {
		rows, err := r.pool.Query(ctx, sql, r.tenant, ids, versions)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		out := make([][]persistence.StoredEvent, len(after))
		var i int64
		var commitID [16]byte
		var headers []byte
		for rows.Next() {
			var e persistence.StoredEvent
			dest := []any{&i, &e.OriginatorVersion, &e.Topic, &e.State}
			if r.events {
				dest = append(dest, &commitID, &headers)
			}
			if err := rows.Scan(dest...); err != nil {
				return nil, err
			}
			if i < 1 || i > int64(len(after)) {
				return nil, fmt.Errorf("%w: a row of aggregate %d of %d", persistence.ErrInternal, i, len(after))
			}
			e.OriginatorID = after[i-1].OriginatorID
			if r.events {
				e.CommitID = commitID
				if e.Headers, err = persistence.DecodeHeaders(headers); err != nil {
					return nil, err
				}
			}
			out[i-1] = append(out[i-1], e)
		}
		return out, rows.Err()
	})
}

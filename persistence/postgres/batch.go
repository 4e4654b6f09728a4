package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/strata-go/strata/persistence"
)

var _ persistence.BatchProcessRecorder = (*Recorder)(nil)

// InsertTrackedBatch records the inserts with their tracking records and
// commits in one statement, as InsertEvents records one save: one round
// trip and one transaction for a follower's whole batch. The events of all
// inserts are numbered in the order of inserts, from the transaction's ID
// (see docs/postgres.md), so a batch holds at most MaxSave events.
func (r *Recorder) InsertTrackedBatch(ctx context.Context, inserts []persistence.TrackedInsert) ([][]int64, error) {
	op := "insert tracked batch into " + r.table
	if err := r.beginWrite(ctx, op); err != nil {
		return nil, err
	}
	if r.tracking == "" {
		return nil, &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: errors.New("this recorder does not record tracking records")}
	}
	if len(inserts) == 0 {
		return nil, nil
	}
	if err := persistence.CheckTrackedBatch(op, inserts); err != nil {
		return nil, err
	}
	var all []persistence.StoredEvent
	var commitIDs [][16]byte
	var headers [][]byte
	var commitAggs, commitOf [][16]byte
	apps := make([]string, len(inserts))
	positions := make([]int64, len(inserts))
	for i, in := range inserts {
		apps[i], positions[i] = in.Tracking.ApplicationName, in.Tracking.NotificationID
		if len(in.Events) == 0 {
			continue
		}
		h := persistence.EncodeHeaders(in.Events[0].Headers)
		if h == nil {
			h = []byte{}
		}
		for _, e := range in.Events {
			all = append(all, e)
			commitIDs = append(commitIDs, e.CommitID)
			headers = append(headers, h)
		}
		if in.Events[0].CommitID != uuid.Nil {
			seen := map[uuid.UUID]bool{}
			for _, e := range in.Events {
				if !seen[e.OriginatorID] {
					seen[e.OriginatorID] = true
					commitAggs = append(commitAggs, e.OriginatorID)
					commitOf = append(commitOf, e.CommitID)
				}
			}
		}
	}
	if len(all) > MaxSave {
		return nil, &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: fmt.Errorf("%d events in one batch, more than %d", len(all), MaxSave)}
	}
	args := append(columns(all), r.tenant, commitIDs, headers, apps, positions, commitAggs, commitOf)
	// As in InsertEvents: rows go in by aggregate and version, so that
	// concurrent writers take the unique index's locks in one order.
	sql := `WITH tracked AS (INSERT INTO ` + r.tracking + ` (tenant, application_name, notification_id)
SELECT $5, a, n FROM unnest($8::text[], $9::bigint[]) AS t(a, n)),
committed AS (INSERT INTO ` + r.commits + ` (tenant, originator_id, commit_id)
SELECT $5::text, o, c FROM unnest($10::uuid[], $11::uuid[]) AS u(o, c) ORDER BY o, c)
INSERT INTO ` + r.table + ` (notification_id, tenant, originator_id, originator_version, topic, state, commit_id, headers)
SELECT pg_current_xact_id()::text::bigint * 65536 + (i - 1), $5, o, v, tp, s, c, h
FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::bytea[], $6::uuid[], $7::bytea[]) WITH ORDINALITY AS u(o, v, tp, s, c, h, i)
ORDER BY o, v
RETURNING notification_id`
	got, err := scanIDs(len(all), 0)(r.pool.Query(ctx, sql, args...))
	if err != nil && pgconn.SafeToRetry(err) && ctx.Err() == nil {
		r.recover(err)
		got, err = scanIDs(len(all), 0)(r.pool.Query(ctx, sql, args...))
	}
	if err != nil {
		r.recover(err)
		// Which insert failed (a tracking record or a commit already
		// recorded, a conflicting version) the statement does not say.
		return nil, &persistence.BatchError{Index: -1, Err: writeError(op, err)}
	}
	out := make([][]int64, len(inserts))
	for i, in := range inserts {
		out[i], got = got[:len(in.Events):len(in.Events)], got[len(in.Events):]
	}
	if r.notifier != nil && len(all) > 0 {
		r.notifier.poke()
	}
	return out, nil
}

package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/google/uuid"

	"github.com/strata-go/strata/persistence"
)

// BatchRecorder is a process recorder that also records batches of
// tracked inserts in one write transaction (see
// persistence.BatchProcessRecorder). Engines whose dialect has its own
// Save (MySQL's sequence of notification IDs) have no such transaction to
// offer, and use the plain [Recorder].
type BatchRecorder struct{ *Recorder }

var _ persistence.BatchProcessRecorder = BatchRecorder{}

// NewBatchProcessRecorder is [NewProcessRecorder] for an engine whose
// dialect has no Save.
func NewBatchProcessRecorder(db *DB, table, commits, tracking, tenant string) BatchRecorder {
	return BatchRecorder{NewProcessRecorder(db, table, commits, tracking, tenant)}
}

// InsertTrackedBatch records the inserts, their commits and their tracking
// records in one write transaction: one statement for the tracking
// records, then the commits and events of each insert.
func (r BatchRecorder) InsertTrackedBatch(ctx context.Context, inserts []persistence.TrackedInsert) ([][]int64, error) {
	op := "insert tracked batch into " + r.table
	if err := r.db.beginWrite(ctx, op); err != nil {
		return nil, err
	}
	if r.tracking == "" || r.db.Dialect.Save != nil {
		return nil, &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: errors.New("this recorder records no batches of tracked inserts")}
	}
	if err := persistence.CheckTrackedBatch(op, inserts); err != nil {
		return nil, err
	}
	for i, in := range inserts {
		if err := CheckBatch(op, in.Events); err != nil {
			return nil, &persistence.BatchError{Index: i, Err: err}
		}
	}
	var track strings.Builder
	args := make([]any, 0, 3*len(inserts))
	track.WriteString("INSERT INTO " + r.tracking + " (tenant, application_name, notification_id) VALUES ")
	for i, in := range inserts {
		if i > 0 {
			track.WriteString(", ")
		}
		track.WriteString("(?, ?, ?)")
		args = append(args, r.tenant, in.Tracking.ApplicationName, in.Tracking.NotificationID)
	}
	tracking := r.db.rebind(Query{track.String(), args})
	out := make([][]int64, len(inserts))
	failed := -1
	err := r.write(ctx, op, func(tx *sql.Tx) error {
		failed = -1
		if _, err := tx.ExecContext(ctx, tracking.SQL, tracking.Args...); err != nil {
			return err // a tracking record already recorded: which one the fallback finds
		}
		for i, in := range inserts {
			failed = i
			if len(in.Events) > 0 && in.Events[0].CommitID != uuid.Nil {
				q := r.db.rebind(InsertCommits(r.commits, r.tenant, in.Events, r.db.Dialect.IDArg))
				if _, err := tx.ExecContext(ctx, q.SQL, q.Args...); err != nil {
					return err
				}
			}
			ids, err := r.insert(ctx, tx, in.Events, r.insertQueries(in.Events))
			if err != nil {
				return err
			}
			out[i] = ids
		}
		failed = -1
		return nil
	})
	if err != nil {
		if failed >= 0 && errors.Is(err, persistence.ErrIntegrity) && len(inserts[failed].Events) > 0 && inserts[failed].Events[0].CommitID != uuid.Nil {
			if cerr := r.commitError(ctx, op, inserts[failed].Events); cerr != nil {
				err = cerr
			}
		}
		return nil, &persistence.BatchError{Index: failed, Err: err}
	}
	return out, nil
}

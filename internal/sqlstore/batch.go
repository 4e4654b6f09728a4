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
// records in one write transaction (shared with the saves waiting beside
// it, on a dialect with group commit: see [DB.commitWrite]) of three
// statements, whatever the number of inserts: one for the tracking records, one for the commits of
// all the inserts, one for all their events (more for batches of more
// than MaxBatch events). Statements are what a batch costs an embedded
// engine most, each parsed and planned afresh: a batch of 100
// notifications recorded a statement or two per insert spent about as
// long parsing as writing. If the transaction fails on a unique key, which
// insert is at fault is found by running the batch again insert by insert
// (see trackedOneByOne): nothing of the first attempt is recorded, and
// conflicts are rare enough for their cost not to matter.
func (r BatchRecorder) InsertTrackedBatch(ctx context.Context, inserts []persistence.TrackedInsert) ([][]int64, error) {
	op := "insert tracked batch into " + r.table
	if err := r.db.beginWrite(ctx, op); err != nil {
		return nil, err
	}
	if r.tracking == "" || r.db.Dialect.Save != nil {
		return nil, &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: errors.New("this recorder records no batches of tracked inserts")}
	}
	if len(inserts) == 0 {
		return nil, nil
	}
	if err := persistence.CheckTrackedBatch(op, inserts); err != nil {
		return nil, err
	}
	for i, in := range inserts {
		if err := CheckBatch(op, in.Events); err != nil {
			return nil, &persistence.BatchError{Index: i, Err: err}
		}
	}
	tracking := r.trackingQuery(inserts)
	commits, hasCommits := r.commitsQuery(inserts)
	var all []persistence.StoredEvent
	for _, in := range inserts {
		all = append(all, in.Events...)
	}
	events := r.batchEventQueries(all)
	out := make([][]int64, len(inserts))
	statements := 1 + len(events)
	if hasCommits {
		statements++
	}
	// The statements' texts vary with the batch's size: none is kept
	// prepared.
	err := r.db.commitWrite(ctx, op, statements, nil, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, tracking.SQL, tracking.Args...); err != nil {
			return err
		}
		if hasCommits {
			if _, err := tx.ExecContext(ctx, commits.SQL, commits.Args...); err != nil {
				return err
			}
		}
		if len(all) == 0 {
			return nil
		}
		ids, err := r.insert(ctx, tx, all, events)
		if err != nil {
			return err
		}
		for i, in := range inserts {
			out[i], ids = ids[:len(in.Events):len(in.Events)], ids[len(in.Events):]
		}
		return nil
	})
	if err == nil {
		return out, nil
	}
	if errors.Is(err, persistence.ErrIntegrity) {
		return r.trackedOneByOne(ctx, op, inserts)
	}
	return nil, &persistence.BatchError{Index: -1, Err: err}
}

// trackingQuery is the insert of the tracking records of inserts.
func (r BatchRecorder) trackingQuery(inserts []persistence.TrackedInsert) Query {
	var b strings.Builder
	args := make([]any, 0, 3*len(inserts))
	b.WriteString("INSERT INTO " + r.tracking + " (tenant, application_name, notification_id) VALUES ")
	for i, in := range inserts {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?)")
		args = append(args, r.tenant, in.Tracking.ApplicationName, in.Tracking.NotificationID)
	}
	return r.db.rebind(Query{b.String(), args})
}

// commitsQuery is the insert of the commits of inserts, a row per
// aggregate of each insert that has a commit ID; it reports false if there
// are none.
func (r BatchRecorder) commitsQuery(inserts []persistence.TrackedInsert) (Query, bool) {
	var b strings.Builder
	var args []any
	b.WriteString("INSERT INTO " + r.commits + " (tenant, originator_id, commit_id) VALUES ")
	for _, in := range inserts {
		if len(in.Events) == 0 || in.Events[0].CommitID == uuid.Nil {
			continue
		}
		commit := r.db.Dialect.IDArg(in.Events[0].CommitID)
		for _, id := range Aggregates(in.Events) {
			if len(args) > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(?, ?, ?)")
			args = append(args, r.tenant, r.db.Dialect.IDArg(id), commit)
		}
	}
	return r.db.rebind(Query{b.String(), args}), len(args) > 0
}

// batchEventQueries is [Recorder.insertQueries] for the events of several
// commits, each with its own commit ID and headers, a query per batch of
// [Batches], so that [Recorder.insert] runs them.
func (r BatchRecorder) batchEventQueries(events []persistence.StoredEvent) []Query {
	batches := Batches(events)
	qs := make([]Query, len(batches))
	var headers []byte
	var headersOf uuid.UUID
	for i, batch := range batches {
		var b strings.Builder
		args := make([]any, 0, 7*len(batch))
		b.WriteString("INSERT INTO " + r.table + " (tenant, originator_id, originator_version, topic, state, commit_id, headers) VALUES ")
		for j, e := range batch {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(?, ?, ?, ?, ?, ?, ?)")
			// The events of a commit share its headers (persistence.CheckCommit).
			if headers == nil || e.CommitID != headersOf {
				headers, headersOf = nonNil(persistence.EncodeHeaders(e.Headers)), e.CommitID
			}
			args = append(args, r.tenant, r.db.Dialect.IDArg(e.OriginatorID), e.OriginatorVersion, e.Topic, nonNil(e.State),
				r.db.Dialect.IDArg(e.CommitID), headers)
		}
		if s := r.db.Dialect.Returning; s != "" {
			b.WriteString(" " + s)
		}
		qs[i] = r.db.rebind(Query{b.String(), args})
	}
	return qs
}

// trackedOneByOne records the inserts in one write transaction, each
// insert's commits and events in statements of their own, so that a
// failure names the insert at fault and, for a commit recorded before,
// says so (persistence.ErrAlreadyCommitted) rather than report a conflict.
func (r BatchRecorder) trackedOneByOne(ctx context.Context, op string, inserts []persistence.TrackedInsert) ([][]int64, error) {
	tracking := r.trackingQuery(inserts)
	out := make([][]int64, len(inserts))
	failed := -1
	err := r.db.commitWrite(ctx, op, 2, nil, func(ctx context.Context, tx *sql.Tx) error {
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

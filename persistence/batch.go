package persistence

import (
	"context"
	"errors"
	"fmt"
)

// TrackedInsert is what processing one upstream notification records: the
// events it produced (one commit, perhaps none) and the notification's
// tracking record.
type TrackedInsert struct {
	Events   []StoredEvent
	Tracking Tracking
}

// BatchProcessRecorder is implemented by process recorders that record
// several tracked inserts in one transaction: a follower's batch of
// processed notifications costs one commit (one fsync, one round trip)
// instead of one per notification.
//
// InsertTrackedBatch records every insert, each with its tracking record,
// in order, all or nothing: if any of them would fail as InsertEvents with
// its tracking record would (a repeated tracking record, a conflicting
// event, a commit already recorded), nothing is recorded and the error is
// a *[BatchError] naming the insert at fault if the recorder can tell,
// wrapping the kind (ErrIntegrity, ErrAlreadyCommitted, ...). It returns
// the notification IDs of each insert's events, in the order of inserts.
// Inserts of one batch may follow each other (an aggregate's version 6 in
// one, 7 in the next).
type BatchProcessRecorder interface {
	ProcessRecorder
	InsertTrackedBatch(ctx context.Context, inserts []TrackedInsert) ([][]int64, error)
}

// BatchError is the error of a batch of tracked inserts: the index of the
// insert that failed (-1 if the recorder cannot tell which), how many
// inserts before it were recorded, and the cause.
type BatchError struct {
	// Index is the insert that failed, or -1.
	Index int
	// Recorded is how many inserts, from the first, were recorded: 0 for
	// a [BatchProcessRecorder], which records all or nothing.
	Recorded int
	Err      error
}

func (e *BatchError) Error() string {
	if e.Index < 0 {
		return fmt.Sprintf("batch of tracked inserts (%d recorded): %v", e.Recorded, e.Err)
	}
	return fmt.Sprintf("tracked insert %d of a batch (%d recorded): %v", e.Index+1, e.Recorded, e.Err)
}

// Unwrap returns the cause.
func (e *BatchError) Unwrap() error { return e.Err }

// InsertTracked records the inserts in order, each atomically with its
// tracking record, and returns the notification IDs of each insert's
// events. A [BatchProcessRecorder] records them in one transaction, all or
// nothing. Any other process recorder records them one InsertEvents call
// each, stopping at the first that fails: those before it stay recorded.
// Either way, an error is a *[BatchError] whose Recorded says how many
// inserts, from the first, were recorded, so that a caller knows exactly
// which are done; its Err wraps the kind of the failure, as InsertEvents's
// error would.
func InsertTracked(ctx context.Context, r ProcessRecorder, inserts []TrackedInsert) ([][]int64, error) {
	if len(inserts) == 0 {
		return nil, nil
	}
	if b, ok := r.(BatchProcessRecorder); ok {
		ids, err := b.InsertTrackedBatch(ctx, inserts)
		if err != nil {
			var be *BatchError
			if !errors.As(err, &be) {
				err = &BatchError{Index: -1, Err: err}
			}
			return nil, err
		}
		return ids, nil
	}
	out := make([][]int64, 0, len(inserts))
	for i, in := range inserts {
		ids, err := r.InsertEvents(ctx, in.Events, WithTracking(in.Tracking))
		if err != nil {
			return out, &BatchError{Index: i, Recorded: i, Err: err}
		}
		out = append(out, ids)
	}
	return out, nil
}

// CheckTrackedBatch checks a batch for a [BatchProcessRecorder] before it
// touches the store: each insert is one commit (see [CheckCommit]), and no
// tracking record or event (ID and version) appears twice. The error is a
// *BatchError naming the insert at fault.
func CheckTrackedBatch(op string, inserts []TrackedInsert) error {
	type event struct {
		id      [16]byte
		version int64
	}
	tracked := make(map[Tracking]struct{}, len(inserts))
	events := map[event]struct{}{}
	for i, in := range inserts {
		if err := CheckCommit(op, in.Events); err != nil {
			return &BatchError{Index: i, Err: err}
		}
		if _, dup := tracked[in.Tracking]; dup {
			return &BatchError{Index: i, Err: &Error{Op: op, Kind: ErrIntegrity,
				Err: fmt.Errorf("tracking record %s %d twice in one batch", in.Tracking.ApplicationName, in.Tracking.NotificationID)}}
		}
		tracked[in.Tracking] = struct{}{}
		for _, e := range in.Events {
			k := event{e.OriginatorID, e.OriginatorVersion}
			if _, dup := events[k]; dup {
				return &BatchError{Index: i, Err: &Error{Op: op, Kind: ErrIntegrity,
					Err: fmt.Errorf("event of %s at version %d twice in one batch", e.OriginatorID, e.OriginatorVersion)}}
			}
			events[k] = struct{}{}
		}
	}
	return nil
}

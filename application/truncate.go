package application

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/google/uuid"

	"github.com/strata-go/strata/persistence"
)

var (
	// ErrTruncated means an aggregate cannot be loaded as asked because its
	// stream is truncated: the events before a version were deleted (or
	// archived), and no usable snapshot covers them. Loading the latest
	// version, from the latest snapshot, still works.
	ErrTruncated = errors.New("the aggregate's stream is truncated")
	// ErrNotTruncatable means a store that cannot truncate streams (its
	// factory is no persistence.Truncater).
	ErrNotTruncatable = errors.New("the store cannot truncate streams")
)

// TruncateOption configures [Application.Truncate].
type TruncateOption func(*truncateConfig)

type truncateConfig struct {
	maxAge  time.Duration
	now     func() time.Time
	archive *Application
}

// TruncateOlderThan truncates only the events older than age (by their
// timestamps): of the events a snapshot covers, those recorded less than
// age ago are kept.
func TruncateOlderThan(age time.Duration) TruncateOption {
	return func(c *truncateConfig) { c.maxAge = age }
}

// TruncateAt makes the age of TruncateOlderThan count from now() rather
// than the clock's time.
func TruncateAt(now func() time.Time) TruncateOption {
	return func(c *truncateConfig) { c.now = now }
}

// ArchiveTo moves the truncated events to archive, the same application
// on another store (a second Strata store), before deleting them: each
// commit recorded again there as it was (versions, topics, state as
// stored, commit ID and headers), in the same tenant. The archive's own
// notification IDs are its own. An archive already holding some of the
// versions (a truncation interrupted after archiving) gets only the
// others.
func ArchiveTo(archive *Application) TruncateOption {
	return func(c *truncateConfig) { c.archive = archive }
}

// Truncation is what [Application.Truncate] did to one aggregate.
type Truncation struct {
	// ID is the aggregate.
	ID uuid.UUID
	// Snapshot is the version of the latest snapshot, which bounds the
	// truncation (0 and nothing done if the aggregate has no usable
	// snapshot).
	Snapshot int64
	// Before is the truncation point: the stream's first version after
	// the truncation (its first version if nothing was truncated).
	Before int64
	// Deleted is how many events were deleted, Archived how many were
	// recorded in the archive first.
	Deleted, Archived int
}

// Truncate truncates the stream of the aggregate id of the application's
// tenant: it deletes the events before its latest snapshot, which loading
// no longer needs, keeping the event at the snapshot's version. Nothing
// past the latest usable snapshot (one that decodes and can be upcast) is
// ever truncated, so the aggregate stays loadable: [Repository.Get] starts
// from the snapshot. The truncation point is moved back, if need be, so
// that no commit is split (a save's events are kept or truncated
// together), and with [TruncateOlderThan] to the first event younger than
// the age.
//
// Their notifications leave the log: followers that had not read them
// never will (the strata command's truncate checks them first), and
// loading the aggregate at a truncated version fails with [ErrTruncated].
// The store's factory must be a persistence.Truncater, else the error
// wraps [ErrNotTruncatable]; snapshotting must be enabled.
func (a *Application) Truncate(ctx context.Context, id uuid.UUID, opts ...TruncateOption) (Truncation, error) {
	c := truncateConfig{now: time.Now}
	for _, o := range opts {
		o(&c)
	}
	res := Truncation{ID: id}
	fail := func(err error) (Truncation, error) { return res, fmt.Errorf("truncate %s: %w", id, err) }
	tr, ok := a.factory.(persistence.Truncater)
	if !ok {
		return fail(ErrNotTruncatable)
	}
	if a.snapshots == nil {
		return fail(fmt.Errorf("%w (set IS_SNAPSHOTTING_ENABLED)", ErrSnapshotting))
	}
	snap, ok, err := a.snapshots.Latest(ctx, id, nil)
	if err != nil {
		return fail(err)
	}
	if !ok {
		return res, nil
	}
	res.Snapshot = snap.OriginatorVersion
	s := snap.OriginatorVersion
	events, err := a.recorder.SelectEvents(ctx, id, persistence.EventQuery{Lte: &s})
	if err != nil {
		return fail(err)
	}
	if len(events) == 0 || events[len(events)-1].OriginatorVersion != s {
		// The snapshot's own event is missing (or the snapshot is of
		// versions the stream does not have): truncating could leave a
		// stream that no snapshot loads.
		return fail(fmt.Errorf("the latest snapshot is at version %d, which the stream does not have", s))
	}
	res.Before = events[0].OriginatorVersion
	// cut is the index in events of the first event kept.
	cut := len(events) - 1
	if c.maxAge > 0 {
		oldest := c.now().Add(-c.maxAge)
		for i, e := range events[:cut] {
			ev, err := a.mapper.ToEvent(e)
			if err != nil || !ev.Timestamp.Before(oldest) {
				// Young enough to keep, or of an age nobody can read.
				cut = i
				break
			}
		}
	}
	for cut > 0 && events[cut].CommitID != uuid.Nil && events[cut-1].CommitID == events[cut].CommitID {
		cut--
	}
	if cut == 0 {
		return res, nil
	}
	before := events[cut].OriginatorVersion
	if c.archive != nil {
		n, err := a.archive(ctx, c.archive, id, events[:cut])
		res.Archived = n
		if err != nil {
			return fail(fmt.Errorf("archive versions %d to %d: %w", events[0].OriginatorVersion, before-1, err))
		}
	}
	n, err := tr.TruncateAggregate(ctx, id, before)
	if err != nil {
		return fail(err)
	}
	res.Before, res.Deleted = before, n
	return res, nil
}

// archive records events (of one aggregate, in order of version) in the
// archive, commit by commit, skipping the versions it already has, and
// returns how many it recorded.
func (a *Application) archive(ctx context.Context, archive *Application, id uuid.UUID, events []persistence.StoredEvent) (int, error) {
	dst, err := archive.ForTenant(a.tenant)
	if err != nil {
		return 0, err
	}
	have, err := dst.recorder.SelectEvents(ctx, id, persistence.EventQuery{Desc: true, Limit: 1})
	if err != nil {
		return 0, err
	}
	for len(have) > 0 && len(events) > 0 && events[0].OriginatorVersion <= have[0].OriginatorVersion {
		events = events[1:]
	}
	n := 0
	for len(events) > 0 {
		end := 1
		for end < len(events) && events[end].CommitID == events[0].CommitID && maps.Equal(events[end].Headers, events[0].Headers) {
			end++
		}
		if _, err := dst.recorder.InsertEvents(ctx, events[:end]); err != nil {
			return n, err
		}
		n += end
		events = events[end:]
	}
	return n, nil
}

// storedSnapshots opens the store's snapshots for an application that
// takes none (its snapshots are nil), or returns nil if the store has
// none. It is only needed to load a truncated stream, so it is not kept.
func (a *Application) storedSnapshots(ctx context.Context) (*persistence.SnapshotStore, error) {
	rec, err := a.factory.AggregateRecorder(ctx, "snapshots")
	if errors.Is(err, persistence.ErrNoTable) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return persistence.NewSnapshotStore(a.mapper, rec), nil
}

package persistence

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/strata-go/strata/domain"
)

// EventStore stores and retrieves domain events: a mapper in front of an
// aggregate (or application, or process) recorder.
type EventStore struct {
	mapper   *Mapper
	recorder AggregateRecorder
}

// NewEventStore returns an event store over the recorder.
func NewEventStore(mapper *Mapper, recorder AggregateRecorder) *EventStore {
	return &EventStore{mapper: mapper, recorder: recorder}
}

// Mapper returns the store's mapper.
func (s *EventStore) Mapper() *Mapper { return s.mapper }

// Recorder returns the store's recorder.
func (s *EventStore) Recorder() AggregateRecorder { return s.recorder }

// Put records the events atomically, as one commit, and returns their
// notification IDs (nil if the recorder gives none). If any event
// conflicts with one already recorded, none is recorded and the error
// wraps [ErrIntegrity]; if the commit ID (see [WithCommit]; a new random
// one without it) is already recorded for the events' aggregates, the
// error wraps [ErrAlreadyCommitted].
func (s *EventStore) Put(ctx context.Context, events []domain.Event, opts ...InsertOption) ([]int64, error) {
	c := Commit{}
	if cfg := NewInsertConfig(opts); cfg.Commit != nil {
		c = *cfg.Commit
	}
	if c.ID == uuid.Nil {
		c.ID = uuid.New()
	}
	stored := make([]StoredEvent, len(events))
	for i, e := range events {
		var err error
		if stored[i], err = s.mapper.ToStored(e); err != nil {
			return nil, err
		}
		stored[i].CommitID, stored[i].Headers = c.ID, c.Headers
	}
	return s.recorder.InsertEvents(ctx, stored, opts...)
}

// RecordedEvent is an event as it was recorded: the decoded event, and the
// commit that recorded it.
type RecordedEvent struct {
	domain.Event
	CommitID uuid.UUID
	Headers  Headers
}

// GetRecorded returns the events of one aggregate that the query selects,
// with their commits.
func (s *EventStore) GetRecorded(ctx context.Context, originatorID uuid.UUID, q EventQuery) ([]RecordedEvent, error) {
	stored, err := s.recorder.SelectEvents(ctx, originatorID, q)
	if err != nil {
		return nil, err
	}
	events := make([]RecordedEvent, len(stored))
	for i, se := range stored {
		e, err := s.mapper.ToEvent(se)
		if err != nil {
			return nil, err
		}
		events[i] = RecordedEvent{Event: e, CommitID: se.CommitID, Headers: se.Headers}
	}
	return events, nil
}

// Get returns the events of one aggregate that the query selects.
func (s *EventStore) Get(ctx context.Context, originatorID uuid.UUID, q EventQuery) ([]domain.Event, error) {
	stored, err := s.recorder.SelectEvents(ctx, originatorID, q)
	if err != nil {
		return nil, err
	}
	events := make([]domain.Event, len(stored))
	for i, se := range stored {
		if events[i], err = s.mapper.ToEvent(se); err != nil {
			return nil, err
		}
	}
	return events, nil
}

// SnapshotStore stores and retrieves snapshots of aggregates in an
// aggregate recorder of their own.
type SnapshotStore struct {
	mapper   *Mapper
	recorder AggregateRecorder
}

// NewSnapshotStore returns a snapshot store over the recorder.
func NewSnapshotStore(mapper *Mapper, recorder AggregateRecorder) *SnapshotStore {
	return &SnapshotStore{mapper: mapper, recorder: recorder}
}

// Recorder returns the store's recorder.
func (s *SnapshotStore) Recorder() AggregateRecorder { return s.recorder }

// Put records snapshots. A snapshot at a version that already has one
// replaces it if the recorder is a [Replacer]; otherwise the existing one
// is kept.
func (s *SnapshotStore) Put(ctx context.Context, snapshots ...domain.Snapshot) error {
	stored := make([]StoredEvent, len(snapshots))
	for i, snap := range snapshots {
		var err error
		if stored[i], err = s.mapper.SnapshotToStored(snap); err != nil {
			return err
		}
	}
	if r, ok := s.recorder.(Replacer); ok {
		return r.ReplaceEvents(ctx, stored)
	}
	_, err := s.recorder.InsertEvents(ctx, stored)
	if errors.Is(err, ErrIntegrity) && len(stored) == 1 {
		return nil // a snapshot at this version exists already
	}
	return err
}

// Get returns the snapshots of one aggregate that the query selects.
func (s *SnapshotStore) Get(ctx context.Context, originatorID uuid.UUID, q EventQuery) ([]domain.Snapshot, error) {
	stored, err := s.recorder.SelectEvents(ctx, originatorID, q)
	if err != nil {
		return nil, err
	}
	snaps := make([]domain.Snapshot, len(stored))
	for i, se := range stored {
		if snaps[i], err = s.mapper.ToSnapshot(se); err != nil {
			return nil, err
		}
	}
	return snaps, nil
}

// Latest returns the latest snapshot of an aggregate at or below version
// lte (any version if lte is nil), and whether there is one. A snapshot
// that cannot be upcast to the aggregate type's class version is not used:
// Latest reports none and the aggregate is rebuilt from its events.
func (s *SnapshotStore) Latest(ctx context.Context, originatorID uuid.UUID, lte *int64) (domain.Snapshot, bool, error) {
	stored, err := s.recorder.SelectEvents(ctx, originatorID, EventQuery{Lte: lte, Desc: true, Limit: 1})
	if err != nil || len(stored) == 0 {
		return domain.Snapshot{}, false, err
	}
	snap, err := s.mapper.ToSnapshot(stored[0])
	if errors.Is(err, domain.ErrUpcast) {
		return domain.Snapshot{}, false, nil
	}
	if err != nil {
		return domain.Snapshot{}, false, fmt.Errorf("latest snapshot: %w", err)
	}
	return snap, true, nil
}

package domain

import (
	"fmt"
	"reflect"
	"time"

	"github.com/google/uuid"
)

// Snapshot is the state of an aggregate at one version. Loading an
// aggregate from its latest snapshot and the events after it gives the same
// aggregate as replaying all its events, in less time.
type Snapshot struct {
	OriginatorID      uuid.UUID
	OriginatorVersion int64
	// Timestamp is when the aggregate was last modified at this version.
	Timestamp time.Time
	// CreatedOn is when the aggregate was created.
	CreatedOn time.Time
	// State is a copy of the aggregate. Its exported fields (or its own
	// MarshalJSON) are what a stored snapshot keeps.
	State Root
}

// TakeSnapshot returns a snapshot of agg at its current version. The
// snapshot holds a shallow copy of the aggregate, without pending events:
// later changes to agg's fields do not change the snapshot, but slices and
// maps are shared until the snapshot is stored.
func TakeSnapshot(agg Root) (Snapshot, error) {
	b := agg.aggregate()
	if b.id == uuid.Nil {
		return Snapshot{}, fmt.Errorf("snapshot of %T: %w", agg, ErrNotCreated)
	}
	state := shallowCopy(agg)
	state.aggregate().pending = nil
	return Snapshot{
		OriginatorID:      b.id,
		OriginatorVersion: b.version,
		Timestamp:         b.modifiedOn,
		CreatedOn:         b.createdOn,
		State:             state,
	}, nil
}

// Aggregate returns a new aggregate rebuilt from the snapshot: a copy of
// its state with the snapshot's ID, version and timestamps, and no pending
// events. Replay the events after the snapshot's version to bring it up to
// date.
func (s Snapshot) Aggregate() (Root, error) {
	if s.State == nil {
		return nil, fmt.Errorf("restore snapshot of %s version %d: %w", s.OriginatorID, s.OriginatorVersion, ErrNilEvent)
	}
	if s.OriginatorID == uuid.Nil {
		return nil, fmt.Errorf("restore snapshot of %T: %w", s.State, ErrNilID)
	}
	agg := shallowCopy(s.State)
	b := agg.aggregate()
	b.id, b.version = s.OriginatorID, s.OriginatorVersion
	b.createdOn, b.modifiedOn = s.CreatedOn, s.Timestamp
	b.pending = nil
	return agg, nil
}

// shallowCopy returns a new aggregate of agg's type with agg's fields.
func shallowCopy(agg Root) Root {
	v := reflect.ValueOf(agg)
	c := reflect.New(v.Type().Elem())
	c.Elem().Set(v.Elem())
	return c.Interface().(Root)
}

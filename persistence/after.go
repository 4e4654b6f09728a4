package persistence

import (
	"context"
	"fmt"

	"github.com/google/uuid"
)

// After names one aggregate and a version of it: the events after that
// version are wanted.
type After struct {
	OriginatorID uuid.UUID
	Version      int64
}

// AfterSelector is implemented by aggregate recorders that select the
// events of several aggregates in one query. [SelectEventsAfter] uses it.
//
// SelectEventsAfter returns, for each element of after, in the same
// order, the events of its aggregate with a version greater than its
// Version, in order of version (a nil or empty slice if it has none), as
// SelectEvents would return them one by one. An aggregate may be named
// more than once.
type AfterSelector interface {
	SelectEventsAfter(ctx context.Context, after []After) ([][]StoredEvent, error)
}

// SelectEventsAfter returns what [AfterSelector.SelectEventsAfter] returns,
// in as few queries as the store can if r is an AfterSelector (one, or one
// per so many aggregates) and with a SelectEvents per aggregate otherwise. A process application's batch uses it to bring the
// aggregates it carries from one batch to the next up to date at once,
// rather than one round trip each.
func SelectEventsAfter(ctx context.Context, r AggregateRecorder, after []After) ([][]StoredEvent, error) {
	if len(after) == 0 {
		return nil, nil
	}
	if s, ok := r.(AfterSelector); ok {
		got, err := s.SelectEventsAfter(ctx, after)
		if err == nil && len(got) != len(after) {
			return nil, &Error{Op: "select events after versions", Kind: ErrInternal,
				Err: fmt.Errorf("%T returned the events of %d aggregates for %d", r, len(got), len(after))}
		}
		return got, err
	}
	out := make([][]StoredEvent, len(after))
	for i, a := range after {
		v := a.Version
		events, err := r.SelectEvents(ctx, a.OriginatorID, EventQuery{Gt: &v})
		if err != nil {
			return nil, err
		}
		out[i] = events
	}
	return out, nil
}

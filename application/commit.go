package application

import (
	"context"
	"fmt"
	"maps"

	"github.com/google/uuid"

	"github.com/strata-go/strata/persistence"
)

// Commit describes one save: its ID, which makes the save idempotent, its
// headers, and how it resolves conflicts.
type Commit struct {
	// ID identifies the save. Give one (an idempotency key, such as a
	// request's ID) to make the save safe to repeat: a save with an ID
	// already recorded for its aggregates records nothing and fails with
	// ErrAlreadyCommitted. uuid.Nil makes Strata choose a random one.
	ID uuid.UUID
	// Headers are recorded with every event of the save, after the
	// headers of the save's context (see [ContextWithHeaders]), which
	// they override.
	Headers persistence.Headers
	// Detector, if not nil, resolves a version conflict of this save as
	// [WithConflictDetector] does for every save of an application.
	Detector *ConflictDetector
}

type headersKey struct{}

// ContextWithHeaders returns a context whose saves record these headers
// too (the user, a correlation ID of the request), merged with those of
// ctx. Middleware that knows who asks sets them once.
func ContextWithHeaders(ctx context.Context, h persistence.Headers) context.Context {
	return context.WithValue(ctx, headersKey{}, mergeHeaders(HeadersFrom(ctx), h))
}

// HeadersFrom returns the headers of ctx (see [ContextWithHeaders]).
func HeadersFrom(ctx context.Context) persistence.Headers {
	h, _ := ctx.Value(headersKey{}).(persistence.Headers)
	return h
}

// mergeHeaders returns a's headers overridden by b's, sharing neither.
func mergeHeaders(a, b persistence.Headers) persistence.Headers {
	if len(a) == 0 && len(b) == 0 {
		return nil
	}
	out := make(persistence.Headers, len(a)+len(b))
	maps.Copy(out, a)
	maps.Copy(out, b)
	return out
}

// Recorded returns the recorded events of the aggregate id (up to the
// version of AtVersion, if given), with the commit that recorded each.
func (a *Application) Recorded(ctx context.Context, id uuid.UUID, opts ...GetOption) ([]Recording, error) {
	c := newGetConfig(opts)
	events, err := a.events.GetRecorded(ctx, id, persistence.EventQuery{Lte: c.version})
	if err != nil {
		return nil, fmt.Errorf("recorded events of %s: %w", id, err)
	}
	out := make([]Recording, len(events))
	for i, e := range events {
		out[i] = Recording{Event: e.Event, Tenant: a.tenant, CommitID: e.CommitID, Headers: e.Headers}
	}
	return out, nil
}

// Recorded returns the recorded events of the aggregate id, with their
// commits (see [Application.Recorded]).
func (r *Repository[A]) Recorded(ctx context.Context, id uuid.UUID, opts ...GetOption) ([]Recording, error) {
	return r.app.Recorded(ctx, id, opts...)
}

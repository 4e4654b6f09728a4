package application

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"

	"github.com/strata-go/strata/domain"
	"github.com/strata-go/strata/observe"
	"github.com/strata-go/strata/persistence"
)

// GetOption modifies how an aggregate is loaded.
type GetOption func(*getConfig)

type getConfig struct {
	version    *int64
	noSnapshot bool
}

func newGetConfig(opts []GetOption) getConfig {
	var c getConfig
	for _, o := range opts {
		o(&c)
	}
	return c
}

// AtVersion loads the aggregate as it was at version v. If v is above the
// aggregate's latest version, the latest is loaded.
func AtVersion(v int64) GetOption {
	return func(c *getConfig) { c.version = &v }
}

// FromEvents loads the aggregate from all its events, ignoring snapshots.
func FromEvents() GetOption {
	return func(c *getConfig) { c.noSnapshot = true }
}

// Repository loads aggregates of one type, A (a pointer to the aggregate
// struct), from an application's event store, using its latest snapshot
// at or below the wanted version and only the events after it.
type Repository[A domain.Root] struct {
	app  *Application
	info *domain.TypeInfo
}

// NewRepository returns the repository of aggregates of type T in app.
// T must be registered with the application (see [WithTypes]).
//
//	worlds, err := application.NewRepository[World](app)
//	world, err := worlds.Get(ctx, id)
func NewRepository[T any, PT interface {
	*T
	domain.Root
}](app *Application) (*Repository[PT], error) {
	info, err := app.types.LookupType(reflect.TypeFor[PT]())
	if err != nil {
		return nil, fmt.Errorf("repository of %s: %w", reflect.TypeFor[T](), err)
	}
	return &Repository[PT]{app: app, info: info}, nil
}

// Get loads the aggregate with the given ID. If none is recorded the
// error wraps [ErrAggregateNotFound]; if its events are of another
// aggregate type (as far as the types' created events tell), the error
// wraps [ErrAggregateType].
func (r *Repository[A]) Get(ctx context.Context, id uuid.UUID, opts ...GetOption) (A, error) {
	var zero A
	agg, err := r.app.load(ctx, id, r.info, newGetConfig(opts))
	if err != nil {
		return zero, err
	}
	return agg.(A), nil
}

// Contains reports whether an aggregate with the ID has recorded events.
func (r *Repository[A]) Contains(ctx context.Context, id uuid.UUID) (bool, error) {
	return r.app.Contains(ctx, id)
}

// TakeSnapshot snapshots the aggregate as recorded (at the given version,
// if AtVersion is given) and stores the snapshot. The aggregate is loaded
// from its events only, so the snapshot is a fresh rebuild.
func (r *Repository[A]) TakeSnapshot(ctx context.Context, id uuid.UUID, opts ...GetOption) (domain.Snapshot, error) {
	return r.app.takeSnapshot(ctx, id, r.info, opts)
}

// Contains reports whether an aggregate with the ID has recorded events.
func (a *Application) Contains(ctx context.Context, id uuid.UUID) (bool, error) {
	if b := batchFor(ctx, a); b != nil {
		if _, ok := b.copies[id]; ok {
			return true, nil
		}
	}
	stored, err := a.recorder.SelectEvents(ctx, id, persistence.EventQuery{Limit: 1})
	if err != nil {
		return false, fmt.Errorf("contains %s: %w", id, err)
	}
	return len(stored) > 0, nil
}

// load rebuilds an aggregate of type want (any aggregate type if nil).
func (a *Application) load(ctx context.Context, id uuid.UUID, want *domain.TypeInfo, c getConfig) (agg domain.Root, err error) {
	ctx, op := a.tel.Begin(ctx, observe.SpanGet, observe.OpGet, observe.MetricGetDuration, a.attrs, a.spanAttrs...)
	defer func() {
		switch {
		case errors.Is(err, ErrAggregateNotFound):
			op.End(ctx, nil, attribute.String(observe.KeyAggregateID, id.String()))
		case err != nil || !op.Span().IsRecording():
			op.End(ctx, err)
		default:
			name := reflect.TypeOf(agg).String()
			if info, lerr := a.types.Lookup(agg); lerr == nil {
				name = info.Name()
			}
			op.End(ctx, nil, attribute.String(observe.KeyAggregateID, id.String()), attribute.String(observe.KeyAggregateType, name),
				attribute.Int64(observe.KeyAggregateVersion, agg.Version()))
		}
	}()
	// A load with a batch's context is served from its working copy,
	// which has the changes the store does not have yet; a load of a past
	// version, or from events only, is a question for the store.
	b := batchFor(ctx, a)
	if b != nil && c.version == nil && !c.noSnapshot {
		if agg, ok := b.lookup(id, want); ok {
			return agg, nil
		}
		if agg, ok := b.fastForward(ctx, id, want); ok {
			b.copies[id] = agg
			return agg, nil
		}
	} else {
		b = nil
	}
	agg, err = a.loadAggregate(ctx, id, want, c)
	if err == nil && b != nil {
		b.copies[id] = agg
	}
	return agg, err
}

func (a *Application) loadAggregate(ctx context.Context, id uuid.UUID, want *domain.TypeInfo, c getConfig) (domain.Root, error) {
	return a.loadWith(ctx, a.snapshots, id, want, c)
}

// loadWith is loadAggregate with the snapshots of snaps (none if nil).
func (a *Application) loadWith(ctx context.Context, snaps *persistence.SnapshotStore, id uuid.UUID, want *domain.TypeInfo, c getConfig) (domain.Root, error) {
	var agg domain.Root
	var info *domain.TypeInfo
	q := persistence.EventQuery{Lte: c.version}
	if snaps != nil && !c.noSnapshot {
		snap, ok, err := snaps.Latest(ctx, id, c.version)
		if err != nil {
			return nil, fmt.Errorf("get %s: %w", id, err)
		}
		if ok && (want == nil || reflect.TypeOf(snap.State) == want.GoType()) {
			if agg, err = snap.Aggregate(); err != nil {
				return nil, fmt.Errorf("get %s: %w", id, err)
			}
			if info, err = a.types.Lookup(agg); err != nil {
				return nil, fmt.Errorf("get %s: %w", id, err)
			}
			v := snap.OriginatorVersion
			q.Gt = &v
			a.policy.remember(id, v)
		} else if ok {
			return nil, fmt.Errorf("get %s: %w: it is a %s, not a %s", id, ErrAggregateType, reflect.TypeOf(snap.State), want.GoType())
		}
	}
	events, err := a.events.Get(ctx, id, q)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", id, err)
	}
	if err := a.checkTruncated(ctx, id, agg, want, events, c); err != nil {
		if snaps == nil && !c.noSnapshot && errors.Is(err, ErrTruncated) {
			// An application that takes no snapshots still loads a
			// truncated stream from the store's snapshots.
			if store, serr := a.storedSnapshots(ctx); serr != nil {
				err = errors.Join(err, serr)
			} else if store != nil {
				return a.loadWith(ctx, store, id, want, c)
			}
		}
		return nil, fmt.Errorf("get %s: %w", id, err)
	}
	if agg == nil {
		if len(events) == 0 {
			return nil, fmt.Errorf("get %s: %w", id, ErrAggregateNotFound)
		}
		if info, err = a.aggregateType(events[0], want); err != nil {
			return nil, fmt.Errorf("get %s: %w", id, err)
		}
		agg = info.New().(domain.Root)
	}
	if err := info.Replay(agg, events...); err != nil {
		return nil, fmt.Errorf("get %s: %w", id, err)
	}
	return agg, nil
}

// aggregateType decides the type of the aggregate whose first event is
// first: want, checked against its created events if it declares them, or
// the type that declares first's type as a created event.
func (a *Application) aggregateType(first domain.Event, want *domain.TypeInfo) (*domain.TypeInfo, error) {
	created := reflect.TypeOf(first.Data)
	if want != nil {
		if cb := want.CreatedByTypes(); len(cb) > 0 && !slices.Contains(cb, created) {
			if other, ok := a.types.AggregateCreatedBy(first.Data); ok {
				return nil, fmt.Errorf("%w: it is a %s, not a %s", ErrAggregateType, other.GoType(), want.GoType())
			}
			return nil, fmt.Errorf("%w: its first event is a %s, which does not create a %s", ErrAggregateType, created, want.GoType())
		}
		return want, nil
	}
	info, ok := a.types.AggregateCreatedBy(first.Data)
	if !ok {
		return nil, fmt.Errorf("%w: no registered aggregate type is created by %s (declare it with domain.CreatedBy)", domain.ErrUnregistered, created)
	}
	return info, nil
}

// checkTruncated fails with ErrTruncated if the events that would rebuild
// the aggregate (after the snapshot agg, or from the start if agg is nil)
// begin after a gap: the stream was truncated before them, and no usable
// snapshot covers the truncated versions.
func (a *Application) checkTruncated(ctx context.Context, id uuid.UUID, agg domain.Root, want *domain.TypeInfo, events []domain.Event, c getConfig) error {
	if agg == nil {
		if len(events) == 0 {
			if c.version == nil {
				return nil
			}
			// Nothing up to the version asked for: no aggregate, or one
			// whose stream now starts later.
			rest, err := a.recorder.SelectEvents(ctx, id, persistence.EventQuery{Limit: 1})
			if err != nil || len(rest) == 0 {
				return err
			}
			initial := int64(1)
			if want != nil {
				initial = domain.InitialVersion(want.New())
			}
			if rest[0].OriginatorVersion <= initial {
				return nil // a version before its first
			}
			return fmt.Errorf("%w: version %d is not recorded: its events start at version %d", ErrTruncated, *c.version, rest[0].OriginatorVersion)
		}
		first := events[0].OriginatorVersion
		initial := int64(1)
		if want != nil {
			initial = domain.InitialVersion(want.New())
		} else if info, ok := a.types.AggregateCreatedBy(events[0].Data); ok {
			initial = domain.InitialVersion(info.New())
		}
		if first <= initial {
			return nil
		}
		return fmt.Errorf("%w: its events start at version %d, and no usable snapshot at version %d or later is there to load it from", ErrTruncated, first, first-1)
	}
	from := agg.Version()
	if len(events) > 0 {
		if first := events[0].OriginatorVersion; first > from+1 {
			return fmt.Errorf("%w: the snapshot at version %d is older than its events, which start at version %d", ErrTruncated, from, first)
		}
		return nil
	}
	if c.version == nil || *c.version <= from {
		return nil
	}
	// No event between the snapshot and the version asked for: the stream
	// may end at the snapshot, or have been truncated past it.
	rest, err := a.recorder.SelectEvents(ctx, id, persistence.EventQuery{Gt: &from, Limit: 1})
	if err != nil {
		return err
	}
	if len(rest) > 0 && rest[0].OriginatorVersion > from+1 {
		return fmt.Errorf("%w: version %d is not recorded: the snapshot at version %d is older than its events, which start at version %d",
			ErrTruncated, *c.version, from, rest[0].OriginatorVersion)
	}
	return nil
}

package system

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/domain"
	"github.com/strata-go/strata/observe"
	"github.com/strata-go/strata/persistence"
)

// PoisonPolicy says what a follower does with a poison notification: one
// it cannot process however often it tries, because it cannot be decoded
// (an unknown topic, damaged or undecryptable state, a damaged row) or
// because its policy or the save of its results fails with an error that
// is not temporary (see [Temporary]).
type PoisonPolicy int

const (
	// StopAtPoison stops the follower at the notification: it is reported
	// once, by Err and in the log, with the follower, the upstream
	// application, the notification ID, the topic and the cause, and the
	// follower processes nothing more until it is resumed (after a fix).
	// It is the default: nothing is skipped unless an operator says so.
	StopAtPoison PoisonPolicy = iota
	// ParkPoison parks the notification and goes on: a [Parked] record
	// of it is saved in the follower's own store atomically with its
	// tracking record, so it is parked exactly once, and an operator can
	// retry it (after a fix) or skip it; see [ParkedNotifications],
	// [RetryParked] and [SkipParked].
	ParkPoison
)

func (p PoisonPolicy) String() string {
	switch p {
	case StopAtPoison:
		return "stop"
	case ParkPoison:
		return "park"
	}
	return "PoisonPolicy(" + strconv.Itoa(int(p)) + ")"
}

// ErrTemporary marks a policy's error as temporary: the notification is
// processed again later, with growing waits, and never treated as poison.
// Errors wrapping persistence.ErrOperational (a lost connection, a
// timeout) and those of an ended context are temporary too.
var ErrTemporary = errors.New("temporary failure")

// Temporary returns err marked as temporary (see [ErrTemporary]), for a
// policy whose failure may pass, such as a call to a service that is down.
func Temporary(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrTemporary, err)
}

// isTemporary reports whether processing that failed with err may succeed
// later without a change of code or data.
func isTemporary(err error) bool {
	return errors.Is(err, ErrTemporary) || errors.Is(err, persistence.ErrOperational) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// ErrStopped means a follower stopped at a poison notification under
// [StopAtPoison]: it processes nothing more until resumed.
var ErrStopped = errors.New("follower stopped at a poison notification")

// PoisonError is the error of a poison notification: it names the
// follower, the upstream application, the notification and its topic, and
// wraps the cause.
type PoisonError struct {
	Follower       string
	Upstream       string
	NotificationID int64
	Topic          string
	Err            error
}

func (e *PoisonError) Error() string {
	return fmt.Sprintf("%s cannot process notification %d of %s (topic %q): %v", e.Follower, e.NotificationID, e.Upstream, e.Topic, e.Err)
}

// Unwrap returns the cause.
func (e *PoisonError) Unwrap() error { return e.Err }

// Parked is a notification that a follower parked (a dead letter): the
// upstream notification it could not process, why, and what became of it.
// It is an aggregate of the follower's own application, whose ID derives
// from the follower, the upstream application and the notification ID, so
// that a notification is parked once.
type Parked struct {
	domain.Aggregate
	// Tenant is the notification's tenant, whose data the record is.
	Tenant            string    `json:"tenant,omitempty"`
	Follower          string    `json:"follower"`
	Upstream          string    `json:"upstream"`
	NotificationID    int64     `json:"notification_id"`
	Topic             string    `json:"topic"`
	OriginatorID      uuid.UUID `json:"originator_id"`
	OriginatorVersion int64     `json:"originator_version"`
	Error             string    `json:"error"`
	// Outcome is "" while the notification is parked, "retried" once a
	// retry processed it, and "skipped" once an operator skipped it.
	Outcome string `json:"outcome"`
	Reason  string `json:"reason,omitempty"`
}

// NotificationParked is the event that parks a notification.
type NotificationParked struct {
	Follower          string    `json:"follower"`
	Upstream          string    `json:"upstream"`
	NotificationID    int64     `json:"notification_id"`
	Topic             string    `json:"topic"`
	OriginatorID      uuid.UUID `json:"originator_id"`
	OriginatorVersion int64     `json:"originator_version"`
	Error             string    `json:"error"`
}

// ApplyTo records what was parked.
func (e NotificationParked) ApplyTo(p *Parked) {
	p.Follower, p.Upstream, p.NotificationID, p.Topic = e.Follower, e.Upstream, e.NotificationID, e.Topic
	p.OriginatorID, p.OriginatorVersion, p.Error = e.OriginatorID, e.OriginatorVersion, e.Error
}

// ParkedRetried records that a retry processed the parked notification;
// its results were saved with this event.
type ParkedRetried struct{}

// ApplyTo marks the notification processed.
func (ParkedRetried) ApplyTo(p *Parked) { p.Outcome = "retried" }

// ParkedSkipped records that an operator skipped the parked notification.
type ParkedSkipped struct {
	Reason string `json:"reason"`
}

// ApplyTo marks the notification skipped.
func (e ParkedSkipped) ApplyTo(p *Parked) { p.Outcome, p.Reason = "skipped", e.Reason }

// ParkingTypes are the types of parked notifications. Runners register
// them with every application they build, and with the types that decode
// every leader's log, so that parked records are readable everywhere;
// followers do not give them to their policies.
var ParkingTypes = domain.Types(
	domain.AggregateType[Parked](domain.Named("strata.Parked"), domain.CreatedBy(NotificationParked{}),
		domain.Events(ParkedRetried{}, ParkedSkipped{})),
	domain.EventType[NotificationParked](domain.Named("strata.Parked.NotificationParked")),
	domain.EventType[ParkedRetried](domain.Named("strata.Parked.Retried")),
	domain.EventType[ParkedSkipped](domain.Named("strata.Parked.Skipped")),
)

// parkingNamespace is the namespace of parked notifications' IDs.
var parkingNamespace = uuid.MustParse("0c0e6f9a-3f57-5a7e-9d61-1b1f4c3f2a90")

// ParkedID returns the ID of the record of notification id of upstream
// parked by follower.
func ParkedID(follower, upstream string, id int64) uuid.UUID {
	return domain.NameID(parkingNamespace, follower+"\x00"+upstream+"\x00"+strconv.FormatInt(id, 10))
}

// isParkingEvent reports whether a decoded upstream event is a parked
// notification's, which a follower tracks without giving it to its policy.
func isParkingEvent(data any) bool {
	switch data.(type) {
	case NotificationParked, ParkedRetried, ParkedSkipped:
		return true
	}
	return false
}

// ParkedNotifications returns the notifications that the follower app
// (a process application built by a runner, or as a runner builds it)
// parked and that are still parked, in every tenant, in the order they
// were parked. A parked record is kept in the tenant of its notification.
func ParkedNotifications(ctx context.Context, app *application.Application) ([]*Parked, error) {
	var out []*Parked
	var start int64 = 1
	for {
		page, err := app.AllTenants().Select(ctx, start, application.MaxLimit, application.Topics("strata.Parked.NotificationParked"))
		if err != nil {
			return nil, fmt.Errorf("parked notifications of %s: %w", app.Name(), err)
		}
		for _, n := range page {
			start = n.ID + 1
			p, err := loadParked(ctx, app, n.Tenant, n.OriginatorID)
			if err != nil {
				return nil, fmt.Errorf("parked notifications of %s: %w", app.Name(), err)
			}
			if p.Outcome == "" {
				out = append(out, p)
			}
		}
		if len(page) < application.MaxLimit {
			return out, nil
		}
	}
}

// loadParked loads a parked record of a tenant of app.
func loadParked(ctx context.Context, app *application.Application, tenant string, id uuid.UUID) (*Parked, error) {
	view, err := app.ForTenant(tenant)
	if err != nil {
		return nil, err
	}
	repo, err := application.NewRepository[Parked](view)
	if err != nil {
		return nil, err
	}
	p, err := repo.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	p.Tenant = tenant
	return p, nil
}

// ErrNotParked means a notification that is not parked: it never was, or
// it was retried or skipped already.
var ErrNotParked = errors.New("notification is not parked")

// park records the poison notification as parked with its tracking record.
func (f *follower) park(ctx context.Context, up *upstream, note persistence.Notification, cause error) error {
	p, err := domain.New[Parked](ParkedID(f.name, up.name, note.ID), NotificationParked{
		Follower: f.name, Upstream: up.name, NotificationID: note.ID, Topic: note.Topic,
		OriginatorID: note.OriginatorID, OriginatorVersion: note.OriginatorVersion, Error: cause.Error(),
	})
	if err != nil {
		return err
	}
	tracking := persistence.Tracking{ApplicationName: up.name, NotificationID: note.ID}
	app, err := f.app.ForTenant(note.Tenant)
	if err != nil {
		return err
	}
	if _, err := app.SaveTracked(ctx, tracking, p); err != nil {
		if errors.Is(err, persistence.ErrIntegrity) {
			if done, herr := f.recorder.HasTrackingID(ctx, up.name, note.ID); herr == nil && done {
				return nil // another instance processed or parked it first
			}
		}
		return fmt.Errorf("park notification %d of %s: %w", note.ID, up.name, err)
	}
	f.logger.WarnContext(ctx, "notification parked", observe.KeyUpstream, up.name, observe.KeyNotificationID, note.ID, observe.KeyTopic, note.Topic, "error", cause)
	return nil
}

// retryParked processes a parked notification again and, if its policy
// succeeds, records the results with the parked record's Retried event, in
// the notification's tenant.
func (f *follower) retryParked(ctx context.Context, upstreamName string, id int64) error {
	up := f.upstream(upstreamName)
	if up == nil {
		return fmt.Errorf("retry notification %d: %w %q: %s does not follow it", id, ErrUnknownApplication, upstreamName, f.name)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	items, err := up.reader.log.Select(ctx, id, 1)
	if err != nil {
		return fmt.Errorf("retry notification %d of %s: read it: %w", id, upstreamName, err)
	}
	if len(items) == 0 || items[0].ID != id {
		return fmt.Errorf("retry notification %d of %s: %w: %s does not have it", id, upstreamName, ErrNotParked, upstreamName)
	}
	note := items[0]
	app, err := f.app.ForTenant(note.Tenant)
	if err != nil {
		return err
	}
	const attempts = 5
	for attempt := 1; ; attempt++ {
		p, err := loadParked(ctx, f.app, note.Tenant, ParkedID(f.name, upstreamName, id))
		if errors.Is(err, application.ErrAggregateNotFound) || err == nil && p.Outcome != "" {
			return fmt.Errorf("retry notification %d of %s in %s: %w", id, upstreamName, f.name, ErrNotParked)
		}
		if err != nil {
			return err
		}
		event, err := up.mapper.ToEvent(note.StoredEvent)
		if err != nil {
			return &PoisonError{Follower: f.name, Upstream: upstreamName, NotificationID: id, Topic: note.Topic, Err: err}
		}
		proc := &Processing{Upstream: upstreamName, Tracking: persistence.Tracking{ApplicationName: upstreamName, NotificationID: id},
			Notification: note, Tenant: note.Tenant, App: app, Commit: causedBy(note), nodes: f.nodes}
		if err := f.node.Policy(ctx, event, proc); err != nil {
			return &PoisonError{Follower: f.name, Upstream: upstreamName, NotificationID: id, Topic: note.Topic, Err: fmt.Errorf("policy: %w", err)}
		}
		if err := domain.Trigger(p, ParkedRetried{}); err != nil {
			return err
		}
		_, err = app.SaveCommit(ctx, proc.Commit, append(proc.aggregates, p)...)
		if err == nil {
			return nil
		}
		if errors.Is(err, persistence.ErrIntegrity) && attempt < attempts {
			continue // an aggregate, or the parked record, changed meanwhile
		}
		return fmt.Errorf("retry notification %d of %s: %w", id, upstreamName, err)
	}
}

// SkipParked records that an operator skipped notification id of
// upstream, which the follower application parked: it stays in the
// follower's store, no longer parked, with the reason. Errors wrap
// [ErrNotParked] if it is not parked. Runners offer it as a method too;
// this function needs only the follower's application, as tools that do
// not run the system have it.
func SkipParked(ctx context.Context, follower *application.Application, upstream string, id int64, reason string) error {
	return skipParked(ctx, follower, follower.Name(), upstream, id, reason)
}

func skipParked(ctx context.Context, app *application.Application, follower, upstream string, id int64, reason string) error {
	notParked := fmt.Errorf("skip notification %d of %s in %s: %w", id, upstream, follower, ErrNotParked)
	parked, err := ParkedNotifications(ctx, app)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(parked, func(p *Parked) bool {
		return p.Upstream == upstream && p.NotificationID == id && p.Follower == follower
	})
	if i < 0 {
		return notParked
	}
	view, err := app.ForTenant(parked[i].Tenant)
	if err != nil {
		return err
	}
	return application.Retry(ctx, func(ctx context.Context) error {
		p, err := loadParked(ctx, app, parked[i].Tenant, parked[i].ID())
		if err != nil {
			return err
		}
		if p.Outcome != "" {
			return notParked
		}
		if err := domain.Trigger(p, ParkedSkipped{Reason: reason}); err != nil {
			return err
		}
		_, err = view.Save(ctx, p)
		return err
	}, application.Backoff(10*time.Millisecond, 200*time.Millisecond))
}

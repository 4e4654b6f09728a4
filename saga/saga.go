// Package saga runs process managers (sagas): event-sourced aggregates
// whose transitions record commands to dispatch, with an outbox that makes
// recording a command and dispatching it safe across crashes.
//
// A saga is an ordinary aggregate of a process application (the saga
// application). A command is an event of the saga whose type has a
// handler: triggering it records the command atomically with the saga's
// other events of the save, which is the outbox. A [Dispatcher] is a
// process application that follows the saga application and calls each
// command's handler, then records the command's [Outcome] with its
// tracking record. A dispatcher killed after a handler ran and before the
// outcome was recorded calls the handler again after a restart: dispatch is
// at least once, and each [Dispatch] carries an ID that stays the same, for
// the receiver to deduplicate (as the commit ID of what it saves, see
// application.Commit). The saga application follows the dispatcher and
// moves its sagas on when their commands' outcomes arrive: on to the next
// step, or to a compensating step.
//
//	sagas:      Transfers (follows TransferDispatch)  ── DebitRequested ──▶
//	dispatcher: TransferDispatch (follows Transfers)  ── handler: debit the account, Outcome ──▶ Transfers
//
// docs/aett.md compares this with aett's sagas, which record undispatched
// messages in commit headers and leave dispatch to others.
package saga

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	"github.com/google/uuid"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/domain"
	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/system"
)

// Dispatch is a command as its handler gets it.
type Dispatch struct {
	// ID identifies the command: the same each time it is dispatched, so
	// that the receiver records its effect once (use it as the commit ID
	// of what the handler saves).
	ID uuid.UUID
	// Saga is the ID of the saga that recorded the command, and Tenant its
	// tenant.
	Saga   uuid.UUID
	Tenant string
	// Topic is the command's topic.
	Topic string
	// Processing is the dispatcher's processing of the command: its Node
	// method reaches the other applications of the process.
	Processing *system.Processing
}

// ErrRefused marks a handler's error as the receiver's refusal of the
// command (an account that is closed): its Outcome records the failure,
// and the saga compensates. Errors that are neither refusals nor temporary
// (system.Temporary, persistence.ErrOperational) stop the dispatcher at
// the command, as a poison notification does, since they need a fix.
var ErrRefused = errors.New("command refused")

// Refused returns err marked as a refusal (see [ErrRefused]).
func Refused(err error) error { return fmt.Errorf("%w: %w", ErrRefused, err) }

// Outcome is the record of a dispatched command, an aggregate of the
// dispatcher's application whose ID is the command's ID.
type Outcome struct {
	domain.Aggregate
	Saga    uuid.UUID `json:"saga"`
	Topic   string    `json:"topic"`
	Failure string    `json:"failure,omitempty"`
}

// CommandDone records that a command's handler succeeded.
type CommandDone struct {
	Saga  uuid.UUID `json:"saga"`
	Topic string    `json:"topic"`
}

// ApplyTo records the outcome.
func (e CommandDone) ApplyTo(o *Outcome) { o.Saga, o.Topic = e.Saga, e.Topic }

// CommandFailed records that a command's receiver refused it.
type CommandFailed struct {
	Saga    uuid.UUID `json:"saga"`
	Topic   string    `json:"topic"`
	Failure string    `json:"failure"`
}

// ApplyTo records the outcome.
func (e CommandFailed) ApplyTo(o *Outcome) { o.Saga, o.Topic, o.Failure = e.Saga, e.Topic, e.Failure }

// Types are the types of outcomes, which a dispatcher records and its
// saga application decodes (system.Define with the dispatcher gives them).
var Types = domain.Types(
	domain.AggregateType[Outcome](domain.Named("strata.saga.Outcome"), domain.CreatedBy(CommandDone{}, CommandFailed{})),
	domain.EventType[CommandDone](domain.Named("strata.saga.CommandDone")),
	domain.EventType[CommandFailed](domain.Named("strata.saga.CommandFailed")),
)

// handler calls a registered handler with the command's typed value.
type handler func(ctx context.Context, d Dispatch, command any) error

// Dispatcher is the process application that dispatches the commands of
// the saga application it follows. Register a handler for each command
// type with [Handle] before the runner starts.
type Dispatcher struct {
	*application.Application
	handlers map[reflect.Type]handler
}

// NewDispatcher builds the dispatcher application named name, with the
// options a runner gives (see system.Define).
func NewDispatcher(ctx context.Context, name string, opts ...application.Option) (*Dispatcher, error) {
	app, err := application.New(ctx, name, append([]application.Option{application.WithTypes(Types)}, opts...)...)
	if err != nil {
		return nil, err
	}
	return &Dispatcher{Application: app, handlers: map[reflect.Type]handler{}}, nil
}

// Handle registers the handler of commands of type C. A handler that
// returns nil has done the command; one that returns an error wrapping
// ErrRefused has had it refused; a temporary error is retried later; any
// other error stops the dispatcher at the command.
func Handle[C any](d *Dispatcher, h func(ctx context.Context, dispatch Dispatch, command C) error) {
	d.handlers[reflect.TypeFor[C]()] = func(ctx context.Context, dispatch Dispatch, command any) error {
		return h(ctx, dispatch, command.(C))
	}
}

// CommandID returns the ID of the command that is the event at version of
// saga id in tenant, which is what its Dispatch and Outcome carry.
func CommandID(tenant string, id uuid.UUID, version int64) uuid.UUID {
	return persistence.EventID(tenant, id, version)
}

// ProcessAlone makes runners record each command's outcome as soon as it
// is dispatched (see system.AloneProcessor): a handler acts on other
// applications at once, and in a batch every command of the batch would be
// dispatched before any outcome was recorded, and dispatched again if the
// batch were processed again.
func (d *Dispatcher) ProcessAlone() bool { return true }

// Policy dispatches an upstream event that is a command (its type has a
// handler) and records its outcome. Other events are only tracked.
func (d *Dispatcher) Policy(ctx context.Context, e domain.Event, p *system.Processing) error {
	h := d.handlers[reflect.TypeOf(e.Data)]
	if h == nil {
		return nil
	}
	dispatch := Dispatch{ID: CommandID(p.Tenant, e.OriginatorID, e.OriginatorVersion), Saga: e.OriginatorID, Tenant: p.Tenant,
		Topic: p.Notification.Topic, Processing: p}
	err := h(ctx, dispatch, e.Data)
	var outcome *Outcome
	switch {
	case err == nil:
		outcome, err = domain.New[Outcome](dispatch.ID, CommandDone{Saga: dispatch.Saga, Topic: dispatch.Topic})
	case errors.Is(err, ErrRefused):
		outcome, err = domain.New[Outcome](dispatch.ID, CommandFailed{Saga: dispatch.Saga, Topic: dispatch.Topic, Failure: err.Error()})
	default:
		return fmt.Errorf("dispatch %s %s of saga %s: %w", dispatch.Topic, dispatch.ID, dispatch.Saga, err)
	}
	if err != nil {
		return err
	}
	p.Save(outcome)
	return nil
}

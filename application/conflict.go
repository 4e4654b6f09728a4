package application

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	"github.com/google/uuid"

	"github.com/strata-go/strata/domain"
	"github.com/strata-go/strata/persistence"
)

// ConflictDefault says whether two events conflict when no rule is
// registered for their pair of types.
type ConflictDefault int

const (
	// ConflictUnlessRegistered makes every pair without a rule conflict:
	// nothing is merged that was not declared mergeable. It is Strata's
	// default, the safest.
	ConflictUnlessRegistered ConflictDefault = iota
	// ConflictSameType is NEventStore's rule: an attempted event whose
	// type has no rule conflicts with committed events of the same type
	// only; one whose type has rules conflicts with committed events of
	// the types it has no rule for.
	ConflictSameType
	// ConflictNever is aett's rule: only pairs registered as conflicting
	// conflict.
	ConflictNever
)

// DefaultConflictAttempts is how many times a save resolves a conflict
// before it gives up with the conflict error.
const DefaultConflictAttempts = 3

// ConflictDetector decides whether the events of a save that lost a race
// conflict with the events the winner recorded, as aett's and NEventStore's
// conflict detectors do. Rules are registered per pair of event types
// (attempted, committed) with [Conflicts], [NeverConflict] and
// [AlwaysConflict]; pairs without a rule follow the detector's default.
//
// A save that resolves a conflict applies its events again on top of the
// committed ones, through the aggregate's own apply code: an aggregate that
// refuses an event in its new state (an overdraft after a concurrent
// withdrawal) makes the save fail with the conflict, whatever the rules
// say. A ConflictDetector is safe for concurrent use once its rules are
// registered.
type ConflictDetector struct {
	def      ConflictDefault
	rules    map[[2]reflect.Type]func(attempted, committed any) bool
	ruled    map[reflect.Type]bool // attempted types that have rules
	attempts int
}

// NewConflictDetector returns a detector with no rules and the given
// default.
func NewConflictDetector(def ConflictDefault) *ConflictDetector {
	return &ConflictDetector{def: def, rules: map[[2]reflect.Type]func(any, any) bool{}, ruled: map[reflect.Type]bool{}, attempts: DefaultConflictAttempts}
}

// SetAttempts sets how many times a save resolves conflicts before it
// gives up (default DefaultConflictAttempts; at least 1).
func (d *ConflictDetector) SetAttempts(n int) *ConflictDetector {
	d.attempts = max(n, 1)
	return d
}

// Conflicts registers how an attempted event of type A and a committed
// event of type C are decided: decide reports whether they conflict.
func Conflicts[A, C any](d *ConflictDetector, decide func(attempted A, committed C) bool) {
	a, c := reflect.TypeFor[A](), reflect.TypeFor[C]()
	d.rules[[2]reflect.Type{a, c}] = func(x, y any) bool { return decide(x.(A), y.(C)) }
	d.ruled[a] = true
}

// NeverConflict registers that attempted events of type A never conflict
// with committed events of type C (two deposits to one account).
func NeverConflict[A, C any](d *ConflictDetector) {
	Conflicts(d, func(A, C) bool { return false })
}

// AlwaysConflict registers that attempted events of type A always conflict
// with committed events of type C (a deposit after the account was closed).
func AlwaysConflict[A, C any](d *ConflictDetector) {
	Conflicts(d, func(A, C) bool { return true })
}

// Conflict reports whether an attempted event's data conflicts with a
// committed event's.
func (d *ConflictDetector) Conflict(attempted, committed any) bool {
	a, c := reflect.TypeOf(attempted), reflect.TypeOf(committed)
	if decide, ok := d.rules[[2]reflect.Type{a, c}]; ok {
		return decide(attempted, committed)
	}
	switch d.def {
	case ConflictSameType:
		return d.ruled[a] || a == c
	case ConflictNever:
		return false
	}
	return true
}

func (d *ConflictDetector) maxAttempts() int { return d.attempts }

// ConflictError is the error of a save whose events conflict with events
// another writer committed first. It wraps ErrConflict (and, if an
// aggregate refused an event in its new state, the aggregate's error).
type ConflictError struct {
	// Aggregate is the aggregate of the conflict.
	Aggregate uuid.UUID
	// Attempted and Committed are the types of the conflicting events;
	// Committed is empty when the aggregate refused Attempted.
	Attempted, Committed string
	// CommittedVersion is the version of the committed event.
	CommittedVersion int64
	// Err is what the aggregate said, when it refused the event.
	Err error
}

func (e *ConflictError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("conflict on %s: %s cannot be applied after the events committed meanwhile: %v", e.Aggregate, e.Attempted, e.Err)
	}
	return fmt.Sprintf("conflict on %s: %s conflicts with %s committed meanwhile at version %d", e.Aggregate, e.Attempted, e.Committed, e.CommittedVersion)
}

// Unwrap returns ErrConflict and the aggregate's error, if any.
func (e *ConflictError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrConflict, e.Err}
	}
	return []error{ErrConflict}
}

// rebase resolves a conflict of a save of aggs: for each aggregate whose
// stored version moved past the version its pending events start from, it
// asks d about each pair of pending and newly committed events and, if
// none conflicts, rebuilds the aggregate at the store's head and applies
// its pending events' data again. It reports whether any aggregate moved;
// a conflict is a *ConflictError.
func (a *Application) rebase(ctx context.Context, d *ConflictDetector, aggs []domain.Root) (bool, error) {
	moved := false
	for _, agg := range aggs {
		pending := agg.PendingEvents()
		if len(pending) == 0 {
			continue
		}
		seen := pending[0].OriginatorVersion - 1
		unseen, err := a.events.Get(ctx, agg.ID(), persistence.EventQuery{Gt: &seen})
		if err != nil {
			return false, err
		}
		if len(unseen) == 0 {
			continue
		}
		for _, p := range pending {
			for _, c := range unseen {
				if d.Conflict(p.Data, c.Data) {
					return false, &ConflictError{Aggregate: agg.ID(), Attempted: typeName(p.Data), Committed: typeName(c.Data), CommittedVersion: c.OriginatorVersion}
				}
			}
		}
		info, err := a.types.Lookup(agg)
		if err != nil {
			return false, err
		}
		fresh, err := a.load(ctx, agg.ID(), info, getConfig{})
		if err != nil {
			return false, err
		}
		for _, p := range pending {
			if err := domain.Trigger(fresh, p.Data); err != nil {
				if errors.Is(err, domain.ErrUnknownEvent) {
					return false, err
				}
				return false, &ConflictError{Aggregate: agg.ID(), Attempted: typeName(p.Data), Err: err}
			}
		}
		// The caller's aggregate becomes the rebased one, pending events
		// and all, so that what it holds is what is saved.
		reflect.ValueOf(agg).Elem().Set(reflect.ValueOf(fresh).Elem())
		moved = true
	}
	return moved, nil
}

func typeName(v any) string { return reflect.TypeOf(v).String() }

// Package domain is Strata's domain layer: event-sourced aggregates, the
// events that record their decisions, snapshots of their state, identifiers,
// and the registry that gives every persisted type a stable topic and a class
// version.
//
// # Aggregates
//
// An aggregate is a Go struct that embeds [Aggregate]. Its state changes only
// by applying events; the same code runs when a command triggers an event and
// when the aggregate is rebuilt from stored events. Two styles are supported
// and may be mixed:
//
//   - Explicit: each event type has an ApplyTo method for the aggregate
//     (see [Applier]); commands call [Create] or [Trigger].
//   - Declarative: the aggregate has one Apply(event any) error method, a type
//     switch over its events (see [Mutator]); commands are one line each.
//
// A command that fails before it triggers an event changes nothing. Triggered
// events stay pending on the aggregate until they are collected, normally by an
// application's Save.
//
// # Events
//
// An [Event] carries the originator ID, the originator version, a UTC
// timestamp, and the user's event value in Data. Versions increase by exactly
// one per event; applying an event of another aggregate ([ErrOriginator]) or
// out of sequence ([ErrVersion]) is an error, never silent.
//
// # Topics and versions
//
// A [Registry] maps stable topic strings to Go types and back. The default
// topic is derived from the package path and type name; a type may be given
// an explicit name and keep old names as aliases. Types carry a class version
// (default 1) and upcasters from each older version to the next, which the
// persistence layer runs on stored state before it becomes a Go value. A gap in
// the chain of upcasters is reported when the type is registered.
//
// This package imports nothing beyond the standard library and
// github.com/google/uuid.
package domain

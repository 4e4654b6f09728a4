package projection

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/strata-go/strata/domain"
	"github.com/strata-go/strata/persistence"
)

// Projection builds a read model from events: it creates the model's
// tables for one version, and applies each event within a transaction of
// the store, in which the runner also records how far it has read. Tx is
// the store's transaction (*sql.Tx for SQLite and MySQL, pgx.Tx for
// PostgreSQL, *MemoryTx[V] in memory).
type Projection[Tx any] interface {
	// Name names the projection; with the version, it names its tables.
	Name() string
	// Version is the version of the read model's layout and rules. A
	// runner of a higher version than the live one rebuilds the model
	// beside it and switches to it once it has caught up (see [Runner]).
	Version() int
	// Tables lists the logical names of the model's tables, which the
	// store versions (see [Model.Table]).
	Tables() []string
	// Setup creates the tables of the model's version, in tx.
	Setup(ctx context.Context, tx Tx, m Model) error
	// Process applies one event to the model, in tx. An error that is not
	// temporary (see system.Temporary) is a poison event.
	Process(ctx context.Context, tx Tx, m Model, e Event) error
}

// Event is an event as a projection gets it: decoded, with the position of
// its notification in its upstream log.
type Event struct {
	// Event is the decoded domain event; nil if DecodeErr is set.
	domain.Event
	// Upstream names the application the event comes from.
	Upstream string
	// Notification is the upstream notification (ID, tenant, commit ID,
	// headers): the notification ID is the event's position.
	Notification persistence.Notification
	// DecodeErr is why the event could not be decoded, if it could not
	// (a [Subscription] returns such events in their place; a [Runner]
	// treats them as poison, apart from erased ones, which it skips).
	DecodeErr error
}

// Model names the tables of one version of a projection's read model.
type Model struct {
	Name    string
	Version int
}

// Table returns the name of the model's table for the logical name table:
// "<name>_v<version>_<table>". Readers do not use it: they query the view
// named [View], which points at the live version.
func (m Model) Table(table string) string {
	return m.Name + "_v" + strconv.Itoa(m.Version) + "_" + table
}

// SwitchStatements returns the SQL that points the views of projection
// m.Name at version m's tables, for SQL stores to run in their switch
// transaction: it drops the views of the old version's tables that m does
// not have, and recreates each of m's (dropped first, since CREATE OR
// REPLACE VIEW cannot change a view's columns, which a new version may).
func SwitchStatements(m Model, tables, oldTables []string) []string {
	var out []string
	for _, t := range oldTables {
		if !slices.Contains(tables, t) {
			out = append(out, `DROP VIEW IF EXISTS `+View(m.Name, t))
		}
	}
	for _, t := range tables {
		view := View(m.Name, t)
		out = append(out, `DROP VIEW IF EXISTS `+view, `CREATE VIEW `+view+` AS SELECT * FROM `+m.Table(t))
	}
	return out
}

// View returns the name of the view through which readers query the live
// version of table: "<name>_<table>".
func View(name, table string) string { return name + "_" + table }

var identifier = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// checkNames checks that a projection's names make SQL identifiers.
func checkNames(name string, version int, tables []string) error {
	if !identifier.MatchString(name) {
		return fmt.Errorf("%w: projection name %q: use lower-case letters, digits and underscores", persistence.ErrConfig, name)
	}
	if version < 1 {
		return fmt.Errorf("%w: projection %s has version %d, want 1 or more", persistence.ErrConfig, name, version)
	}
	for _, t := range tables {
		if !identifier.MatchString(t) {
			return fmt.Errorf("%w: table %q of projection %s: use lower-case letters, digits and underscores", persistence.ErrConfig, t, name)
		}
	}
	return nil
}

// Store keeps read models and the positions of their projections, so
// that each batch of events and the positions it reaches are recorded in
// one transaction: exactly once. Stores for SQL databases version the
// model's tables and switch readers between versions with views.
type Store[Tx any] interface {
	// Transact runs f in a transaction and commits it if f returns nil.
	Transact(ctx context.Context, f func(ctx context.Context, tx Tx) error) error
	// Prepare creates the store's own tables if need be.
	Prepare(ctx context.Context) error
	// Register records the logical tables of version m, so that a later
	// switch can drop them, and the projection's name if it is new.
	Register(ctx context.Context, tx Tx, m Model, tables []string) error
	// Live returns the live version of the projection (0 if none) and
	// locks it for the rest of tx, so that no switch happens before tx
	// ends.
	Live(ctx context.Context, tx Tx, name string) (int, error)
	// Positions returns the positions of version m in each upstream log.
	Positions(ctx context.Context, tx Tx, m Model) (map[string]int64, error)
	// SetPosition moves version m's position in upstream from from to to;
	// it fails with an error wrapping ErrMoved if the stored position is
	// not from (another runner moved it).
	SetPosition(ctx context.Context, tx Tx, m Model, upstream string, from, to int64) error
	// Switch makes m the live version: readers' views point at its tables,
	// and the tables and positions of version old, which was live (0 if
	// none), are dropped.
	Switch(ctx context.Context, tx Tx, m Model, old int) error
	// Drop drops the tables and positions of version m (a rebuild given up).
	Drop(ctx context.Context, tx Tx, m Model) error
	// Park records a poison event that the projection could not process.
	Park(ctx context.Context, tx Tx, m Model, e Event, cause error) error
	// Hold asks the live version of m's projection to stop for d, so
	// that m, a newer version at the head of its sources, can draw level
	// with it and switch: without it, a rebuild chasing a live version
	// that writers keep busy could race it for ever. A later hold
	// replaces an earlier one; a hold lapses by itself, so a rebuild that
	// dies while holding stops the live version for d at most.
	Hold(ctx context.Context, tx Tx, m Model, d time.Duration) error
	// Held returns the version that holds the projection named name now
	// (0 if none does).
	Held(ctx context.Context, tx Tx, name string) (int, error)
}

// Errors of projections; test with errors.Is.
var (
	// ErrMoved means a position moved by another runner of the same
	// projection version: the batch was not recorded and is read again.
	ErrMoved = errors.New("the projection's position was moved by another runner")
	// ErrSuperseded means a runner of a projection version older than the
	// live one: it stops, since a newer version has replaced its model.
	ErrSuperseded = errors.New("a newer version of the projection is live")
)

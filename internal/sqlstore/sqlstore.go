// Package sqlstore is the SQL layer that Strata's relational adapters
// share: table names, the queries of the three recorder kinds, the scanning
// of rows into stored events, and a recorder over database/sql whose
// engine-specific parts (placeholders, DDL, inserting with notification
// IDs, error classification, how a write transaction begins) are given by
// a [Dialect]. An adapter for another SQL database is a Dialect and a
// persistence module registration.
package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/strata-go/strata/persistence"
)

// Tables are the tables of one application.
type Tables struct {
	// Events holds the application's events with their notification IDs.
	Events string
	// Tracking holds the positions of processed upstream notifications.
	Tracking string
	// prefix is prepended to the names of aggregate recorders' tables.
	prefix string
}

// Purpose returns the table of an aggregate recorder for a purpose, such
// as "snapshots".
func (t Tables) Purpose(purpose string) string { return t.prefix + purpose }

var identifier = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// TablesFor returns the tables of the named application: worlds_events,
// worlds_tracking and worlds_snapshots for "Worlds". The name is folded to
// lower case, other characters than letters and digits become
// underscores, and the names must fit maxLen (0 for no limit).
func TablesFor(appName string, maxLen int) (Tables, error) {
	var b strings.Builder
	for _, r := range strings.ToLower(appName) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	prefix := b.String()
	if prefix == "" {
		prefix = "stored"
	}
	if prefix[0] >= '0' && prefix[0] <= '9' {
		prefix = "_" + prefix
	}
	prefix += "_"
	t := Tables{Events: prefix + "events", Tracking: prefix + "tracking", prefix: prefix}
	for _, name := range []string{t.Events, t.Tracking, t.Purpose("snapshots")} {
		if !identifier.MatchString(name) {
			return Tables{}, fmt.Errorf("%w: table name %q from application name %q", persistence.ErrConfig, name, appName)
		}
		if maxLen > 0 && len(name) > maxLen {
			return Tables{}, fmt.Errorf("%w: table name %q from application name %q is longer than %d characters", persistence.ErrConfig, name, appName, maxLen)
		}
	}
	return t, nil
}

// CheckIdentifier checks a name used in SQL (a schema, a table).
func CheckIdentifier(kind, name string) error {
	if !identifier.MatchString(name) {
		return fmt.Errorf("%w: %s %q: use lower-case letters, digits and underscores", persistence.ErrConfig, kind, name)
	}
	return nil
}

// Rebind turns ? placeholders into $1, $2, ... for engines that number
// them. The queries of this package never contain ? elsewhere.
func Rebind(query string) string {
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Query is a SQL statement with ? placeholders and its arguments.
type Query struct {
	SQL  string
	Args []any
}

// SelectEvents returns the query of one aggregate's events. id is the
// aggregate ID as the engine stores it.
func SelectEvents(table string, id any, q persistence.EventQuery) Query {
	var b strings.Builder
	args := []any{id}
	b.WriteString("SELECT originator_version, topic, state FROM ")
	b.WriteString(table)
	b.WriteString(" WHERE originator_id = ?")
	if q.Gt != nil {
		b.WriteString(" AND originator_version > ?")
		args = append(args, *q.Gt)
	}
	if q.Lte != nil {
		b.WriteString(" AND originator_version <= ?")
		args = append(args, *q.Lte)
	}
	b.WriteString(" ORDER BY originator_version")
	if q.Desc {
		b.WriteString(" DESC")
	}
	if q.Limit > 0 {
		b.WriteString(" LIMIT ?")
		args = append(args, q.Limit)
	}
	return Query{b.String(), args}
}

// SelectNotifications returns the query of notifications. topicsIn
// renders the topic filter; [TopicsIn] writes the portable IN list.
// visible, if not empty, is a further condition that hides rows readers
// must not see yet.
func SelectNotifications(table string, q persistence.NotificationQuery, topicsIn func(topics []string) (string, []any), visible string) Query {
	var b strings.Builder
	args := []any{q.Start}
	b.WriteString("SELECT notification_id, originator_id, originator_version, topic, state FROM ")
	b.WriteString(table)
	b.WriteString(" WHERE notification_id >= ?")
	if q.Stop > 0 {
		b.WriteString(" AND notification_id <= ?")
		args = append(args, q.Stop)
	}
	if len(q.Topics) > 0 {
		cond, targs := topicsIn(q.Topics)
		b.WriteString(" AND ")
		b.WriteString(cond)
		args = append(args, targs...)
	}
	if visible != "" {
		b.WriteString(" AND ")
		b.WriteString(visible)
	}
	b.WriteString(" ORDER BY notification_id LIMIT ?")
	args = append(args, q.Limit)
	return Query{b.String(), args}
}

// TopicsIn renders "topic IN (?, ?, ...)".
func TopicsIn(topics []string) (string, []any) {
	args := make([]any, len(topics))
	for i, t := range topics {
		args[i] = t
	}
	return "topic IN (" + strings.TrimSuffix(strings.Repeat("?, ", len(topics)), ", ") + ")", args
}

// InsertEvents returns a multi-row insert of events, with a suffix such
// as "RETURNING notification_id" or an upsert clause. idArg converts IDs
// to the engine's form.
func InsertEvents(table string, events []persistence.StoredEvent, idArg func(uuid.UUID) any, suffix string) Query {
	var b strings.Builder
	args := make([]any, 0, 4*len(events))
	b.WriteString("INSERT INTO ")
	b.WriteString(table)
	b.WriteString(" (originator_id, originator_version, topic, state) VALUES ")
	for i, e := range events {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?)")
		state := e.State
		if state == nil {
			state = []byte{}
		}
		args = append(args, idArg(e.OriginatorID), e.OriginatorVersion, e.Topic, state)
	}
	if suffix != "" {
		b.WriteByte(' ')
		b.WriteString(suffix)
	}
	return Query{b.String(), args}
}

// MaxBatch is the most events one insert statement carries; larger saves
// are split into several statements in the same transaction, to stay
// within engines' limits on bound parameters.
const MaxBatch = 500

// Batches splits events into slices of at most MaxBatch.
func Batches(events []persistence.StoredEvent) [][]persistence.StoredEvent {
	var out [][]persistence.StoredEvent
	for len(events) > MaxBatch {
		out = append(out, events[:MaxBatch])
		events = events[MaxBatch:]
	}
	if len(events) > 0 {
		out = append(out, events)
	}
	return out
}

// CheckBatch refuses a batch with two events at one version before it
// reaches the database, with the same error a unique index would give.
func CheckBatch(op string, events []persistence.StoredEvent) error {
	type key struct {
		id uuid.UUID
		v  int64
	}
	if len(events) < 2 {
		return nil
	}
	seen := make(map[key]struct{}, len(events))
	for _, e := range events {
		k := key{e.OriginatorID, e.OriginatorVersion}
		if _, dup := seen[k]; dup {
			return &persistence.Error{Op: op, Kind: persistence.ErrIntegrity,
				Err: fmt.Errorf("two events of %s at version %d in one save", e.OriginatorID, e.OriginatorVersion)}
		}
		seen[k] = struct{}{}
	}
	return nil
}

// CheckLimit refuses a notification query without a positive limit.
func CheckLimit(op string, limit int) error {
	if limit <= 0 {
		return &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: fmt.Errorf("limit %d is not positive", limit)}
	}
	return nil
}

// ParseID turns a stored ID back into a UUID.
func ParseID(b []byte) (uuid.UUID, error) {
	switch len(b) {
	case 16:
		return uuid.UUID(b), nil
	case 36:
		return uuid.ParseBytes(b)
	}
	return uuid.Nil, fmt.Errorf("%w: stored originator ID has %d bytes", persistence.ErrData, len(b))
}

// ContextKind classifies the errors of cancelled or timed-out contexts,
// which every engine returns, as operational; it returns nil for others.
func ContextKind(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return persistence.ErrOperational
	}
	return nil
}

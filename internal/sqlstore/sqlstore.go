// Package sqlstore is the SQL layer that Strata's relational adapters
// share: table names, the queries of the three recorder kinds, the scanning
// of rows into stored events, and a recorder over database/sql whose
// engine-specific parts (placeholders, DDL, inserting with notification
// IDs, error classification, how a write transaction begins) are given by
// a [Dialect]. An adapter for another SQL database is a Dialect and a
// persistence module registration.
package sqlstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
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
	// Commits holds the commit IDs recorded for each aggregate, which
	// makes a commit recorded again detectable.
	Commits string
	// Sequence, if not empty, holds the counter of notification IDs of an
	// engine whose generated keys are not commit-ordered (see
	// Dialect.Reserve). TablesFor leaves it empty; [Tables.WithSequence]
	// names it.
	Sequence string
	// Truncated holds the truncation points of aggregates whose oldest
	// events were deleted (see [Truncate]); it exists once one was.
	Truncated string
	// prefix is prepended to the names of aggregate recorders' tables.
	prefix string
}

// Purpose returns the table of an aggregate recorder for a purpose, such
// as "snapshots".
func (t Tables) Purpose(purpose string) string { return t.prefix + purpose }

// WithSequence returns t with a Sequence table, <prefix>notification_ids.
func (t Tables) WithSequence() Tables {
	t.Sequence = t.prefix + "notification_ids"
	return t
}

// Reserved reports whether name is one of the application's own tables
// (events, tracking, commits, truncation points, sequence), which no
// purpose may name.
func (t Tables) Reserved(name string) bool {
	return name == t.Events || name == t.Tracking || name == t.Commits || name == t.Truncated || t.Sequence != "" && name == t.Sequence
}

// Purposes returns, of the names of tables, those of the application's
// aggregate recorders: its prefix, and not its events, tracking, commits
// or sequence.
func (t Tables) Purposes(tables []string) []string {
	var out []string
	for _, name := range tables {
		if strings.HasPrefix(name, t.prefix) && !t.Reserved(name) {
			out = append(out, name)
		}
	}
	return out
}

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
	t := Tables{Events: prefix + "events", Tracking: prefix + "tracking", Commits: prefix + "commits", Truncated: prefix + "truncated", prefix: prefix}
	for _, name := range []string{t.Events, t.Tracking, t.Commits, t.Purpose("snapshots")} {
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

// SelectEvents returns the query of one aggregate's events in a tenant.
// id is the aggregate ID as the engine stores it. With commits, the query
// also selects commit_id and headers, which events tables have and
// aggregate recorders' tables do not.
func SelectEvents(table, tenant string, id any, q persistence.EventQuery, commits bool) Query {
	var b strings.Builder
	args := []any{tenant, id}
	b.WriteString("SELECT originator_version, topic, state")
	if commits {
		b.WriteString(", commit_id, headers")
	}
	b.WriteString(" FROM ")
	b.WriteString(table)
	b.WriteString(" WHERE tenant = ? AND originator_id = ?")
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

// SelectEventsAfter returns the query of the events of several aggregates
// of a tenant, each after a version of its own: ids[i] (as the engine
// stores it) after versions[i]. It is a UNION ALL of a branch per
// aggregate, each answered from the primary key as SelectEvents is; a row's
// first column, i, is the index of the aggregate it belongs to, and rows
// come in order of i and version. The other columns are SelectEvents'.
// Engines bound a compound query's branches (SQLite to 500 by default):
// callers pass at most MaxAfter aggregates.
func SelectEventsAfter(table, tenant string, ids []any, versions []int64, commits bool) Query {
	cols := "originator_version, topic, state"
	if commits {
		cols += ", commit_id, headers"
	}
	var b strings.Builder
	args := make([]any, 0, 3*len(ids))
	for i, id := range ids {
		if i > 0 {
			b.WriteString(" UNION ALL ")
		}
		fmt.Fprintf(&b, "SELECT %d AS i, %s FROM %s WHERE tenant = ? AND originator_id = ? AND originator_version > ?", i, cols, table)
		args = append(args, tenant, id, versions[i])
	}
	b.WriteString(" ORDER BY i, originator_version")
	return Query{b.String(), args}
}

// MaxAfter is the most aggregates one SelectEventsAfter query names.
const MaxAfter = 200

// NotificationColumns are the columns that SelectNotifications selects, in
// order.
const NotificationColumns = "notification_id, tenant, originator_id, originator_version, topic, state, commit_id, headers"

// SelectNotifications returns the query of notifications of tenant (of
// every tenant if q.AllTenants). topicsIn renders the topic filter;
// [TopicsIn] writes the portable IN list. visible, if not empty, is a
// further condition that hides rows readers must not see yet.
func SelectNotifications(table, tenant string, q persistence.NotificationQuery, topicsIn func(topics []string) (string, []any), visible string) Query {
	return selectNotifications(table, tenant, q, topicsIn, visible, "tenant = ?")
}

// selectNotifications is SelectNotifications with the condition on the
// tenant (one placeholder) given.
func selectNotifications(table, tenant string, q persistence.NotificationQuery, topicsIn func(topics []string) (string, []any), visible, tenantCond string) Query {
	var b strings.Builder
	args := []any{q.Start}
	b.WriteString("SELECT " + NotificationColumns + " FROM ")
	b.WriteString(table)
	b.WriteString(" WHERE notification_id >= ?")
	if !q.AllTenants {
		b.WriteString(" AND ")
		b.WriteString(tenantCond)
		args = append(args, tenant)
	}
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

// InsertEvents returns a multi-row insert of events of a tenant, with a
// suffix such as "RETURNING notification_id" or an upsert clause. idArg
// converts IDs to the engine's form. With commits, the events' commit_id
// and headers are inserted too (events tables have them).
func InsertEvents(table, tenant string, events []persistence.StoredEvent, idArg func(uuid.UUID) any, suffix string, commits bool) Query {
	var b strings.Builder
	cols, marks := "tenant, originator_id, originator_version, topic, state", "(?, ?, ?, ?, ?)"
	if commits {
		cols, marks = cols+", commit_id, headers", "(?, ?, ?, ?, ?, ?, ?)"
	}
	args := make([]any, 0, 7*len(events))
	b.WriteString("INSERT INTO ")
	b.WriteString(table)
	b.WriteString(" (" + cols + ") VALUES ")
	var headers []byte
	if commits && len(events) > 0 {
		headers = nonNil(persistence.EncodeHeaders(events[0].Headers))
	}
	for i, e := range events {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(marks)
		args = append(args, tenant, idArg(e.OriginatorID), e.OriginatorVersion, e.Topic, nonNil(e.State))
		if commits {
			args = append(args, idArg(e.CommitID), headers)
		}
	}
	if suffix != "" {
		b.WriteByte(' ')
		b.WriteString(suffix)
	}
	return Query{b.String(), args}
}

// InsertCommits returns the insert of the commit of events into the
// commits table: a row for each aggregate, in order of ID, so that saves
// of the same aggregates take their locks in the same order.
func InsertCommits(table, tenant string, events []persistence.StoredEvent, idArg func(uuid.UUID) any) Query {
	ids := Aggregates(events)
	var b strings.Builder
	args := make([]any, 0, 3*len(ids))
	b.WriteString("INSERT INTO ")
	b.WriteString(table)
	b.WriteString(" (tenant, originator_id, commit_id) VALUES ")
	for i, id := range ids {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?)")
		args = append(args, tenant, idArg(id), idArg(events[0].CommitID))
	}
	return Query{b.String(), args}
}

// Aggregates returns the IDs of the events' aggregates, each once, in
// order.
func Aggregates(events []persistence.StoredEvent) []uuid.UUID {
	ids := make([]uuid.UUID, 0, len(events))
	for _, e := range events {
		ids = append(ids, e.OriginatorID)
	}
	slices.SortFunc(ids, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	return slices.Compact(ids)
}

// CommittedFor returns the query of which of ids have commit c recorded
// in tenant.
func CommittedFor(table, tenant string, c uuid.UUID, ids []uuid.UUID, idArg func(uuid.UUID) any) Query {
	args := []any{tenant, idArg(c)}
	for _, id := range ids {
		args = append(args, idArg(id))
	}
	return Query{"SELECT originator_id FROM " + table + " WHERE tenant = ? AND commit_id = ? AND originator_id IN (" +
		strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ") + ")", args}
}

// CommitError returns the error of an insert of events that failed on a
// unique key, given which of the events' aggregates have the events'
// commit recorded: ErrAlreadyCommitted if all of them do, an integrity
// error that says so if some do, or nil (a version or tracking conflict)
// if none does.
func CommitError(op string, events []persistence.StoredEvent, committed []uuid.UUID) error {
	if len(committed) == 0 {
		return nil
	}
	ids := Aggregates(events)
	c := events[0].CommitID
	for _, id := range ids {
		if !slices.Contains(committed, id) {
			return &persistence.Error{Op: op, Kind: persistence.ErrIntegrity,
				Err: fmt.Errorf("commit %s is recorded for aggregate %s but not for %s: a commit ID names one save", c, committed[0], id)}
		}
	}
	return &persistence.Error{Op: op, Kind: persistence.ErrAlreadyCommitted, Err: fmt.Errorf("commit %s is recorded", c)}
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
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

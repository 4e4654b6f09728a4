package postgres

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-go/strata/internal/sqlstore"
	"github.com/strata-go/strata/persistence"
)

// Group commit. Saves made while the pool's groups are busy committing
// others wait in a queue; the next group takes them all and records the
// saves of each events table in one statement: one round trip, one
// transaction, one flush of the commit record, and the server's work of
// a statement and a commit done once for the group instead of once per
// save. A group that spans several tables sends one statement per table in
// one pipeline, which the server runs as one implicit transaction.
//
// A statement is atomic, so a group is recorded whole or not at all. If it
// fails on the server (a conflict of one of its saves, a repeated tracking
// record or commit), nothing of it was recorded, and each of its saves is
// then sent again alone, to get an outcome of its own: a conflicting save
// fails alone, the others are recorded. If the connection breaks, every
// save of the group has an unknown outcome (persistence.ErrUnknownOutcome),
// which retrying with the save's commit ID settles.
//
// A group's notification IDs are those of one save of all its events:
// the transaction's ID times 65536 plus the event's index in the group,
// so the ordering scheme of docs/postgres.md holds unchanged, also when
// the group is several statements (several tables, or tenants). Rows
// still go in by aggregate and version within each statement, so that
// two groups take the unique index's locks in the same order.

// maxGroup is the most saves in one group.
const maxGroup = 64

// groupSlots is how many groups may be committing at once, each on a
// connection of its own: while one waits for its flush, the next one is
// sent.
const groupSlots = 2

// pgSave is a save waiting to be committed, with room for its outcome.
type pgSave struct {
	ctx              context.Context
	table, tenant    string
	commits, tracked string // the tables of its commit and tracking record
	events           []persistence.StoredEvent
	commitID         uuid.UUID
	headers          []byte
	tracking         *persistence.Tracking
	// got holds its events' notification IDs, in order; err is the
	// engine's error, nil if the save was recorded.
	got []int64
	err error
}

// sameStatement reports whether a and b can be recorded by one statement.
func sameStatement(a, b *pgSave) bool {
	return a.table == b.table && a.tenant == b.tenant && a.commits == b.commits && a.tracked == b.tracked
}

// newGroup returns the group commit of a pool.
func newGroup(pool *pgxpool.Pool) *sqlstore.Group[*pgSave] {
	return sqlstore.NewGroup(groupSlots, maxGroup, func(ctx context.Context, take func() ([]*pgSave, bool)) error {
		conn, err := pool.Acquire(ctx)
		if err != nil {
			return err
		}
		defer conn.Release()
		saves, _ := take() // no Gather: the first take is the whole group
		ctx = context.WithoutCancel(ctx)
		// The IDs of a transaction's events must fit its 65536 indexes.
		for len(saves) > 0 {
			n, total := 0, 0
			for n < len(saves) && (n == 0 || total+len(saves[n].events) <= MaxSave) {
				total += len(saves[n].events)
				n++
			}
			commitGroup(ctx, conn.Conn(), saves[:n])
			saves = saves[n:]
		}
		return nil
	})
}

// commitGroup records saves on conn and sets their outcomes.
func commitGroup(ctx context.Context, conn *pgx.Conn, saves []*pgSave) {
	var live []*pgSave
	for _, s := range saves {
		s.got, s.err = nil, nil
		if err := s.ctx.Err(); err != nil {
			// Never sent: the outcome is known, nothing recorded.
			s.err = &persistence.Error{Op: "wait for a group commit", Kind: persistence.ErrOperational, Err: err}
			continue
		}
		live = append(live, s)
	}
	switch len(live) {
	case 0:
		return
	case 1:
		s := live[0]
		q := statement(live, 0)
		s.got, s.err = scanIDs(len(s.events), 0)(conn.Query(s.ctx, q.SQL, q.Args...))
		return
	}
	// One statement per table, in the order of their first saves.
	var stmts [][]*pgSave
	for _, s := range live {
		i := slices.IndexFunc(stmts, func(st []*pgSave) bool { return sameStatement(st[0], s) })
		if i < 0 {
			stmts = append(stmts, []*pgSave{s})
		} else {
			stmts[i] = append(stmts[i], s)
		}
	}
	var err error
	if len(stmts) == 1 {
		q := statement(stmts[0], 0)
		got, qerr := scanIDs(eventCount(stmts[0]), 0)(conn.Query(ctx, q.SQL, q.Args...))
		err = distribute(stmts[0], got, qerr)
	} else {
		// The statements are one transaction: each numbers its events
		// from where the one before it stopped.
		b := &pgx.Batch{}
		bases := make([]int, len(stmts))
		for i, st := range stmts {
			if i > 0 {
				bases[i] = bases[i-1] + eventCount(stmts[i-1])
			}
			q := statement(st, bases[i])
			b.Queue(q.SQL, q.Args...)
		}
		br := conn.SendBatch(ctx, b)
		for i, st := range stmts {
			got, qerr := scanIDs(eventCount(st), bases[i])(br.Query())
			if err = distribute(st, got, qerr); err != nil {
				break
			}
		}
		if cerr := br.Close(); err == nil {
			err = cerr
		}
	}
	if err == nil {
		return
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || conn.IsClosed() {
		// The connection broke: the group may have been recorded.
		for _, s := range live {
			s.got, s.err = nil, err
		}
		return
	}
	// Nothing of the group was recorded, and the failure may be any of
	// its saves': each is sent again alone, for an outcome of its own.
	for _, s := range live {
		commitGroup(ctx, conn, []*pgSave{s})
	}
}

// distribute gives each save the notification IDs of its events, from
// those of a group's statement, which are in the order of its saves.
func distribute(saves []*pgSave, got []int64, err error) error {
	if err != nil {
		return err
	}
	for _, s := range saves {
		s.got, got = got[:len(s.events):len(s.events)], got[len(s.events):]
	}
	return nil
}

// eventCount is the number of events of saves.
func eventCount(saves []*pgSave) int {
	n := 0
	for _, s := range saves {
		n += len(s.events)
	}
	return n
}

// statement returns the one statement that records saves, all of one
// table and tenant: the tracking records, the commit records and the
// events, so that a repeated tracking record or commit fails the whole
// statement. A data-modifying WITH runs to completion even though
// nothing reads it. Notification IDs follow the events' order in the
// saves, but rows go in by aggregate and version: two statements of the
// same aggregates (a transfer each way between two accounts) then take the
// unique index's row locks in the same order, and one waits for the
// other instead of both deadlocking. The events are numbered from base,
// the events of the statements before it in its transaction.
func statement(saves []*pgSave, base int) sqlstore.Query {
	first := saves[0]
	n := eventCount(saves)
	ids := make([][16]byte, 0, n)
	versions := make([]int64, 0, n)
	topics := make([]string, 0, n)
	states := make([][]byte, 0, n)
	// A save's events share its commit ID and headers: the columns are
	// sent once, not per event, when every save of the statement has the
	// same (always so for one save).
	same := !slices.ContainsFunc(saves, func(s *pgSave) bool { return s.commitID != first.commitID || !bytes.Equal(s.headers, first.headers) })
	var commitIDs [][16]byte
	var headers [][]byte
	if !same {
		commitIDs, headers = make([][16]byte, 0, n), make([][]byte, 0, n)
	}
	type commit struct{ id, commit uuid.UUID }
	type track struct {
		app string
		nid int64
	}
	var commits []commit
	var tracks []track
	for _, s := range saves {
		for _, e := range s.events {
			state := e.State
			if state == nil {
				state = []byte{}
			}
			ids, versions, topics, states = append(ids, e.OriginatorID), append(versions, e.OriginatorVersion), append(topics, e.Topic), append(states, state)
			if !same {
				commitIDs, headers = append(commitIDs, s.commitID), append(headers, s.headers)
			}
		}
		if s.commitID != uuid.Nil {
			for _, id := range sqlstore.Aggregates(s.events) {
				commits = append(commits, commit{id, s.commitID})
			}
		}
		if s.tracking != nil {
			tracks = append(tracks, track{s.tracking.ApplicationName, s.tracking.NotificationID})
		}
	}
	cols, from := ", $6::uuid[], $7::bytea[]) WITH ORDINALITY AS u(o, v, tp, s, c, h, i)", "c, h"
	args := []any{ids, versions, topics, states, first.tenant, commitIDs, headers}
	if same {
		cols, from = ") WITH ORDINALITY AS u(o, v, tp, s, i)", "$6::uuid, $7::bytea"
		args = []any{ids, versions, topics, states, first.tenant, [16]byte(first.commitID), first.headers}
	}
	var with []string
	if len(tracks) > 0 {
		slices.SortFunc(tracks, func(a, b track) int { return cmp.Or(cmp.Compare(a.app, b.app), cmp.Compare(a.nid, b.nid)) })
		apps, nids := make([]string, len(tracks)), make([]int64, len(tracks))
		for i, t := range tracks {
			apps[i], nids[i] = t.app, t.nid
		}
		with = append(with, `tracked AS (INSERT INTO `+first.tracked+` (tenant, application_name, notification_id)
SELECT $5, a, n FROM unnest($8::text[], $9::bigint[]) AS t(a, n))`)
		args = append(args, apps, nids)
	}
	if len(commits) > 0 {
		slices.SortFunc(commits, func(a, b commit) int {
			return cmp.Or(bytes.Compare(a.id[:], b.id[:]), bytes.Compare(a.commit[:], b.commit[:]))
		})
		aggs, cids := make([][16]byte, len(commits)), make([][16]byte, len(commits))
		for i, c := range commits {
			aggs[i], cids[i] = c.id, c.commit
		}
		p := len(args)
		with = append(with, `committed AS (INSERT INTO `+first.commits+` (tenant, originator_id, commit_id)
SELECT $5::text, o, c FROM unnest($`+strconv.Itoa(p+1)+`::uuid[], $`+strconv.Itoa(p+2)+`::uuid[]) AS u(o, c))`)
		args = append(args, aggs, cids)
	}
	args = append(args, int64(base))
	insert := `INSERT INTO ` + first.table + ` (notification_id, tenant, originator_id, originator_version, topic, state, commit_id, headers)
SELECT pg_current_xact_id()::text::bigint * 65536 + $` + strconv.Itoa(len(args)) + `::bigint + (i - 1), $5, o, v, tp, s, ` + from + `
FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::bytea[]` + cols + `
ORDER BY o, v
RETURNING notification_id`
	if len(with) > 0 {
		insert = "WITH " + strings.Join(with, ", ") + "\n" + insert
	}
	return sqlstore.Query{SQL: insert, Args: args}
}

// scanIDs returns a reader of the notification IDs that an insert of n
// events, numbered from base, returned, in the order of its events. An
// event's ID is its transaction's ID times 65536 plus its number, so the
// ID alone says which event it is: the rows need not say it, nor come in
// any order.
func scanIDs(n, base int) func(rows pgx.Rows, err error) ([]int64, error) {
	return func(rows pgx.Rows, err error) ([]int64, error) {
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		got := make([]int64, n)
		var nid int64 // outside the loop: Scan's argument escapes, once
		for rows.Next() {
			if err := rows.Scan(&nid); err != nil {
				return nil, err
			}
			i := nid&(MaxSave-1) - int64(base)
			if i < 0 || i >= int64(n) || got[i] != 0 {
				return nil, &persistence.Error{Op: "read the notification IDs of an insert", Kind: persistence.ErrInternal, Err: fmt.Errorf("notification ID %d returned for event %d of %d", nid, i, n)}
			}
			got[i] = nid
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
		if i := slices.Index(got, 0); i >= 0 {
			return nil, &persistence.Error{Op: "read the notification IDs of an insert", Kind: persistence.ErrInternal, Err: fmt.Errorf("no notification ID returned for event %d of %d", i, n)}
		}
		return got, nil
	}
}

package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/strata-go/strata/persistence"
)

// Dialect is what a database/sql engine contributes to [Recorder].
type Dialect struct {
	// Name names the engine in messages.
	Name string
	// Rebind rewrites ? placeholders, or is nil if the engine takes them.
	Rebind func(string) string
	// IDArg converts an aggregate ID to the form the engine stores.
	IDArg func(uuid.UUID) any
	// Returning is the suffix of an insert that returns notification_id,
	// originator_id and originator_version of each inserted row.
	Returning string
	// Upsert is the suffix that makes an insert replace rows at existing
	// (originator_id, originator_version) keys.
	Upsert string
	// BeginWrite begins a write transaction; nil means db.BeginTx.
	BeginWrite func(ctx context.Context, db *sql.DB) (*sql.Tx, error)
	// Visible is a condition of notification selects that hides rows
	// readers must not see yet, or "".
	Visible string
	// StablePrefix, if not nil, returns the highest notification ID of
	// table at or below which every save that took an ID has been made
	// visible, or rolled back, before StablePrefix returned; a select of
	// notifications, a statement that begins afterwards, shows none above
	// it. For an engine whose statements may see a later save without an
	// earlier one that the later waited for (InnoDB does not take a
	// statement's read view at one instant), so that a reader never takes
	// for good the gap of a save that is still being made visible.
	StablePrefix func(ctx context.Context, db *sql.DB, table string) (int64, error)
	// TopicsIn renders the topic filter; nil means [TopicsIn].
	TopicsIn func([]string) (string, []any)
	// Classify returns the kind of an engine error (a persistence kind
	// such as persistence.ErrIntegrity), or nil if it does not know it.
	Classify func(error) error
	// Ambiguous reports whether a commit that failed with err may all the
	// same have been recorded (the connection to a server broke after the
	// COMMIT was sent). Such failures wrap persistence.ErrUnknownOutcome.
	// Nil means commits fail only when nothing was recorded, as with an
	// embedded engine.
	Ambiguous func(error) bool
	// Save, if not nil, records the save of events into the events table
	// in a transaction of the engine's own making, instead of Returning:
	// for engines whose generated keys are not commit-ordered, or that
	// cannot return them. It runs before (the tracking record's and the
	// commit's inserts, already rebound), then inserts the events with
	// their notification IDs, commits, and returns the IDs in the order of
	// events. Its errors are the engine's, or *persistence.Error values
	// whose kinds it chose (ErrUnknownOutcome for a commit that may have
	// been recorded).
	Save func(ctx context.Context, db *sql.DB, table, tenant string, before []Query, events []persistence.StoredEvent) ([]int64, error)
	// Retry, if not nil, reports whether a write transaction that failed
	// with err was rolled back whole by the engine for a reason that
	// running it again may not meet (a deadlock), so that it is run again,
	// up to [WriteAttempts] times in all.
	Retry func(error) bool
	// GroupCommit, if 2 or more, is the most saves that one transaction
	// commits together: saves that wait for the write connection while it
	// commits another are then committed in one transaction, each in a
	// savepoint of its own (see [Group]). For engines whose writes go
	// through one connection, where each commit's durable flush would
	// otherwise be paid by every save. It begins transactions with the
	// connection's BeginTx (BeginWrite is not used) and does not apply to
	// a dialect with Save. A save of one statement runs without a
	// savepoint where StatementUndone says its failure undid it alone.
	GroupCommit int
	// StatementUndone, if not nil, reports whether a statement that failed
	// with err was undone alone, its transaction left open with the work
	// before it (SQLite's ON CONFLICT ABORT, the default, for a unique
	// key), so that a group commit may run a save of one statement without
	// a savepoint. Any other failure of such a save (a trigger's
	// RAISE(ROLLBACK) ends the transaction, RAISE(FAIL) keeps the
	// statement's rows before it) has the group run again without it.
	// Nil: every save of a group runs in a savepoint.
	StatementUndone func(err error) bool
	// LastInsertID says that the notification ID of a row inserted alone
	// is the Result's LastInsertId (notification_id is SQLite's rowid), so
	// that the insert of one event needs no Returning: SQLite buffers the
	// rows of RETURNING in a temporary table of their own, which for one
	// row costs more than the insert.
	LastInsertID bool
	// Prepare keeps the statements of saves prepared on the writer pool,
	// for an engine whose statements cost as much to prepare as to run
	// (an embedded one); each connection of the pool prepares them once.
	Prepare bool
	// DriverRows reads pages of notifications through the driver's own
	// rows (driver.QueryerContext on a reader connection) rather than
	// database/sql's, whose conversion of every column of every row
	// (convertAssign) was a tenth of a catch-up's CPU on SQLite. For
	// drivers whose values are those of SQLite: integers as int64, text
	// as string or []byte, blobs as []byte.
	DriverRows bool
	// SoleTenant, if not empty, is the engine's condition on the tenant
	// that no index answers (SQLite's "+tenant = ?"), used by notification
	// selects when the events table holds the rows of no other tenant
	// than the reader's: the page is then a range of the table's own key,
	// notification_id, instead of a walk of the (tenant, notification_id)
	// index with a lookup of every row in the table (about a tenth of a
	// catch-up on SQLite). Another tenant's rows saved after the check
	// are still filtered out, only more slowly: the condition is the
	// same, the plan differs.
	SoleTenant string
	// SelectAfter, if set, is the text of a statement that selects the
	// events of several aggregates after a version each, with the rows of
	// the package's SelectEventsAfter (i counting from 0), from three
	// arguments: a JSON array of the versions, the tenant, and the
	// aggregates' IDs, 16 bytes each, end to end. Its text is the same
	// however many aggregates it names, so it is prepared once on the
	// reader pool: an embedded engine parses a UNION ALL of a branch per
	// aggregate at about the cost of running it. Without it, recorders
	// use the UNION ALL.
	SelectAfter func(table string, commits bool) string
}

// WriteAttempts is how many times a write transaction runs at most when
// Dialect.Retry says its failure may pass.
const WriteAttempts = 5

// DB is a database as the recorders use it: a pool for writes and one for
// reads (which may be the same), and the engine's dialect. A factory owns
// one DB and closes it with [DB.MarkClosed], after which its recorders
// refuse every call, even if the pools stay open for other factories of
// the same database.
type DB struct {
	Writer  *sql.DB
	Reader  *sql.DB
	Dialect Dialect
	// ReadOnly makes the recorders refuse every write with an error
	// wrapping persistence.ErrReadOnly; Writer may then be nil.
	ReadOnly bool

	closed    atomic.Bool
	stmts     statements
	readStmts statements // prepared on the reader pool
	groupOnce sync.Once
	group     *Group[*pendingSave]
}

// MarkClosed makes the recorders of db refuse further calls with an error
// wrapping persistence.ErrInterface.
func (db *DB) MarkClosed() {
	db.closed.Store(true)
	db.stmts.close()
	db.readStmts.close()
}

// beginWrite is begin for a write, which a read-only store refuses.
func (db *DB) beginWrite(ctx context.Context, op string) error {
	if err := db.begin(ctx, op); err != nil {
		return err
	}
	if db.ReadOnly {
		return &persistence.Error{Op: op, Kind: persistence.ErrReadOnly, Err: errors.New("the store was opened with READ_ONLY")}
	}
	return nil
}

// begin checks, before a call of op, that the factory is open and ctx has
// not ended, so that neither reaches the database.
func (db *DB) begin(ctx context.Context, op string) error {
	if db.closed.Load() {
		return &persistence.Error{Op: op, Kind: persistence.ErrInterface, Err: errors.New("recorder is closed")}
	}
	if err := ctx.Err(); err != nil {
		return &persistence.Error{Op: op, Kind: persistence.ErrOperational, Err: err}
	}
	return nil
}

func (db *DB) rebind(q Query) Query {
	if db.Dialect.Rebind != nil {
		q.SQL = db.Dialect.Rebind(q.SQL)
	}
	return q
}

// Errorf wraps an engine error with its kind for operation op.
func (db *DB) Errorf(op string, err error) error {
	kind := ContextKind(err)
	if kind == nil && db.Dialect.Classify != nil {
		kind = db.Dialect.Classify(err)
	}
	if kind == nil {
		switch {
		case err.Error() == "sql: database is closed":
			// database/sql has no sentinel for a closed pool.
			kind = persistence.ErrInterface
		case errors.Is(err, sql.ErrConnDone), errors.Is(err, sql.ErrTxDone):
			kind = persistence.ErrOperational
		default:
			kind = persistence.ErrDatabase
		}
	}
	return persistence.Errorf(kind, op, err)
}

// Recorder is a recorder over database/sql of one tenant. Depending on its
// constructor it is an aggregate, application or process recorder.
type Recorder struct {
	db       *DB
	table    string
	tracking string
	commits  string // the commits table of an events table, or ""
	tenant   string
	events   bool // the table is an events table: notification IDs, commits
}

// AggregateRecorder is a recorder of events without notification IDs,
// such as snapshots, which can also be replaced.
type AggregateRecorder struct{ *Recorder }

var (
	_ persistence.ProcessRecorder   = (*Recorder)(nil)
	_ persistence.AggregateRecorder = AggregateRecorder{}
	_ persistence.Replacer          = AggregateRecorder{}
	_ persistence.Lister            = AggregateRecorder{}
)

// NewAggregateRecorder returns an aggregate recorder of the events of
// tenant in table, which has no notification IDs (snapshots, for example).
func NewAggregateRecorder(db *DB, table, tenant string) AggregateRecorder {
	return AggregateRecorder{&Recorder{db: db, table: table, tenant: tenant}}
}

// NewApplicationRecorder returns an application recorder of the events of
// tenant in table, whose commits are in commits.
func NewApplicationRecorder(db *DB, table, commits, tenant string) *Recorder {
	return &Recorder{db: db, table: table, commits: commits, tenant: tenant, events: true}
}

// NewProcessRecorder returns a process recorder of the events of tenant
// in table, the commits in commits and the tracking records in tracking.
func NewProcessRecorder(db *DB, table, commits, tracking, tenant string) *Recorder {
	return &Recorder{db: db, table: table, commits: commits, tracking: tracking, tenant: tenant, events: true}
}

// InsertEvents records the events, their commit and the tracking record,
// if any, in one write transaction and returns their notification IDs.
func (r *Recorder) InsertEvents(ctx context.Context, events []persistence.StoredEvent, opts ...persistence.InsertOption) ([]int64, error) {
	op := "insert events into " + r.table
	if err := r.db.beginWrite(ctx, op); err != nil {
		return nil, err
	}
	cfg := persistence.NewInsertConfig(opts)
	if cfg.Tracking != nil && r.tracking == "" {
		return nil, &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: errors.New("this recorder does not record tracking records")}
	}
	if len(events) == 0 && cfg.Tracking == nil {
		return nil, nil
	}
	if err := CheckBatch(op, events); err != nil {
		return nil, err
	}
	if err := persistence.CheckCommit(op, events); err != nil {
		return nil, err
	}
	var before []Query
	if t := cfg.Tracking; t != nil {
		before = append(before, r.db.rebind(Query{"INSERT INTO " + r.tracking + " (tenant, application_name, notification_id) VALUES (?, ?, ?)", []any{r.tenant, t.ApplicationName, t.NotificationID}}))
	}
	if r.events && len(events) > 0 && events[0].CommitID != uuid.Nil {
		before = append(before, r.db.rebind(InsertCommits(r.commits, r.tenant, events, r.db.Dialect.IDArg)))
	}
	var ids []int64
	var err error
	if save := r.db.Dialect.Save; save != nil && r.events {
		err = r.db.retrying(ctx, func() (error, error) {
			var cause error
			ids, cause = save(ctx, r.db.Writer, r.table, r.tenant, before, events)
			if cause != nil {
				return r.db.Errorf(op, cause), cause
			}
			return nil, nil
		})
	} else {
		qs := r.insertQueries(events)
		err = r.db.commitWrite(ctx, op, len(before)+len(qs), [][]Query{before, qs}, func(ctx context.Context, tx *sql.Tx) error {
			for _, q := range before {
				if err := r.db.exec(ctx, tx, q); err != nil {
					return err
				}
			}
			var err error
			ids, err = r.insert(ctx, tx, events, qs)
			return err
		})
	}
	if errors.Is(err, persistence.ErrIntegrity) && r.events && len(events) > 0 && events[0].CommitID != uuid.Nil {
		if cerr := r.commitError(ctx, op, events); cerr != nil {
			return nil, cerr
		}
	}
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// commitError tells, after an insert failed on a unique key, whether its
// commit was recorded before (see [CommitError]).
func (r *Recorder) commitError(ctx context.Context, op string, events []persistence.StoredEvent) error {
	q := r.db.rebind(CommittedFor(r.commits, r.tenant, events[0].CommitID, Aggregates(events), r.db.Dialect.IDArg))
	rows, err := r.db.Reader.QueryContext(ctx, q.SQL, q.Args...)
	if err != nil {
		return nil // the insert's own error says enough
	}
	defer rows.Close()
	var committed []uuid.UUID
	for rows.Next() {
		var raw []byte
		if rows.Scan(&raw) != nil {
			return nil
		}
		if id, err := ParseID(raw); err == nil {
			committed = append(committed, id)
		}
	}
	return CommitError(op, events, committed)
}

// write runs f in a write transaction and commits it.
func (r *Recorder) write(ctx context.Context, op string, f func(tx *sql.Tx) error) error {
	return r.db.write(ctx, op, f)
}

// write runs f in a write transaction and commits it, running it again
// while the dialect says its failure may pass.
func (db *DB) write(ctx context.Context, op string, f func(tx *sql.Tx) error) error {
	return db.retrying(ctx, func() (error, error) { return db.writeOnce(ctx, op, f) })
}

// retrying runs attempt, which returns the classified error and the
// engine's own, again while the dialect says its failure may pass.
func (db *DB) retrying(ctx context.Context, attempt func() (error, error)) error {
	for n := 1; ; n++ {
		err, cause := attempt()
		if err == nil || db.Dialect.Retry == nil || n == WriteAttempts || !db.Dialect.Retry(cause) || ctx.Err() != nil {
			return err
		}
		// A short pause, growing and jittered by the attempt, lets the
		// transaction that won the deadlock finish first.
		t := time.NewTimer(time.Duration(n*n) * time.Millisecond * time.Duration(1+rand.IntN(4)))
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// writeOnce runs f in a write transaction and commits it. It returns the
// classified error and the engine's own.
func (db *DB) writeOnce(ctx context.Context, op string, f func(tx *sql.Tx) error) (error, error) {
	var tx *sql.Tx
	var err error
	if db.Dialect.BeginWrite != nil {
		tx, err = db.Dialect.BeginWrite(ctx, db.Writer)
	} else {
		tx, err = db.Writer.BeginTx(ctx, nil)
	}
	if err != nil {
		return db.Errorf(op+": begin", err), err
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return db.Errorf(op, err), err
	}
	if err := tx.Commit(); err != nil {
		if a := db.Dialect.Ambiguous; a != nil && a(err) {
			return persistence.Errorf(persistence.ErrUnknownOutcome, op+": commit", err), err
		}
		return db.Errorf(op+": commit", err), err
	}
	return nil, nil
}

// insertQueries returns the inserts of events, a query per batch (see
// [Batches]).
func (r *Recorder) insertQueries(events []persistence.StoredEvent) []Query {
	batches := Batches(events)
	qs := make([]Query, len(batches))
	for i, batch := range batches {
		if r.events && r.lastInsertID(batch) {
			qs[i] = r.db.rebind(InsertEvents(r.table, r.tenant, batch, r.db.Dialect.IDArg, "", true))
		} else if r.events {
			qs[i] = r.db.rebind(InsertEvents(r.table, r.tenant, batch, r.db.Dialect.IDArg, r.db.Dialect.Returning, true))
		} else {
			qs[i] = r.db.rebind(InsertEvents(r.table, r.tenant, batch, r.db.Dialect.IDArg, "", false))
		}
	}
	return qs
}

// lastInsertID reports whether the insert of batch into an events table
// gets its notification ID from the statement's result (see
// Dialect.LastInsertID).
func (r *Recorder) lastInsertID(batch []persistence.StoredEvent) bool {
	return len(batch) == 1 && r.db.Dialect.LastInsertID
}

// insert inserts events with the queries of insertQueries and returns
// their notification IDs in the order of events.
func (r *Recorder) insert(ctx context.Context, tx *sql.Tx, events []persistence.StoredEvent, qs []Query) ([]int64, error) {
	type key struct {
		id uuid.UUID
		v  int64
	}
	if !r.events {
		for _, q := range qs {
			if err := r.db.exec(ctx, tx, q); err != nil {
				return nil, err
			}
		}
		return nil, nil
	}
	ids := make([]int64, 0, len(events))
	for b, batch := range Batches(events) {
		if r.lastInsertID(batch) {
			res, err := r.db.execResult(ctx, tx, qs[b])
			if err != nil {
				return nil, err
			}
			nid, err := res.LastInsertId()
			if err != nil {
				return nil, err
			}
			ids = append(ids, nid)
			continue
		}
		rows, err := r.db.query(ctx, tx, qs[b])
		if err != nil {
			return nil, err
		}
		// RETURNING gives no order guarantee, but engines return the rows
		// of a multi-row VALUES in its order: each row is checked against
		// the event at its place, and rows are matched by key only from
		// the first that is elsewhere.
		var got map[key]int64
		byOrder := make([]int64, 0, len(batch))
		var rawID sql.RawBytes
		for rows.Next() {
			var nid, v int64
			if err := rows.Scan(&nid, &rawID, &v); err != nil {
				rows.Close()
				return nil, err
			}
			id, err := ParseID(rawID)
			if err != nil {
				rows.Close()
				return nil, err
			}
			if got == nil {
				if k := len(byOrder); k < len(batch) && batch[k].OriginatorID == id && batch[k].OriginatorVersion == v {
					byOrder = append(byOrder, nid)
					continue
				}
				got = make(map[key]int64, len(batch))
				for k, nid := range byOrder {
					got[key{batch[k].OriginatorID, batch[k].OriginatorVersion}] = nid
				}
			}
			got[key{id, v}] = nid
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
		if got == nil && len(byOrder) == len(batch) {
			ids = append(ids, byOrder...)
			continue
		}
		if got == nil {
			got = make(map[key]int64, len(batch))
			for k, nid := range byOrder {
				got[key{batch[k].OriginatorID, batch[k].OriginatorVersion}] = nid
			}
		}
		for _, e := range batch {
			nid, ok := got[key{e.OriginatorID, e.OriginatorVersion}]
			if !ok {
				return nil, fmt.Errorf("%w: insert returned no notification ID for %s version %d", persistence.ErrInternal, e.OriginatorID, e.OriginatorVersion)
			}
			ids = append(ids, nid)
		}
	}
	return ids, nil
}

// ReplaceEvents records the events, replacing those at the same versions.
// Only aggregate recorders offer it: an event with a notification changed
// in place would never reach the readers who had read it.
func (r AggregateRecorder) ReplaceEvents(ctx context.Context, events []persistence.StoredEvent) error {
	op := "replace events in " + r.table
	if err := r.db.beginWrite(ctx, op); err != nil {
		return err
	}
	if len(events) == 0 {
		return nil
	}
	if err := CheckBatch(op, events); err != nil {
		return err
	}
	var qs []Query
	for _, batch := range Batches(events) {
		qs = append(qs, r.db.rebind(InsertEvents(r.table, r.tenant, batch, r.db.Dialect.IDArg, r.db.Dialect.Upsert, false)))
	}
	// Committed with the saves waiting beside it, as an insert is: on
	// SQLite an application's automatic snapshots are written after its
	// saves, and a transaction of their own would make the next save wait
	// for their flush before its own.
	// Only a replace of one event has a text that comes back often
	// enough to keep prepared.
	var prepare [][]Query
	if len(events) == 1 {
		prepare = [][]Query{qs}
	}
	return r.db.commitWrite(ctx, op, len(qs), prepare, func(ctx context.Context, tx *sql.Tx) error {
		for _, q := range qs {
			if err := r.db.exec(ctx, tx, q); err != nil {
				return err
			}
		}
		return nil
	})
}

// Originators yields the IDs of the aggregates of the recorder's tenant,
// read whole before they are yielded.
func (r AggregateRecorder) Originators(ctx context.Context) iter.Seq2[uuid.UUID, error] {
	return func(yield func(uuid.UUID, error) bool) {
		op := "list aggregates of " + r.table
		if err := r.db.begin(ctx, op); err != nil {
			yield(uuid.Nil, err)
			return
		}
		q := r.db.rebind(Query{"SELECT DISTINCT originator_id FROM " + r.table + " WHERE tenant = ?", []any{r.tenant}})
		rows, err := r.db.Reader.QueryContext(ctx, q.SQL, q.Args...)
		if err != nil {
			yield(uuid.Nil, r.db.Errorf(op, err))
			return
		}
		var ids []uuid.UUID
		for rows.Next() {
			var raw []byte
			if err := rows.Scan(&raw); err != nil {
				rows.Close()
				yield(uuid.Nil, r.db.Errorf(op, err))
				return
			}
			if id, err := ParseID(raw); err == nil {
				ids = append(ids, id)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			yield(uuid.Nil, r.db.Errorf(op, err))
			return
		}
		for _, id := range ids {
			if !yield(id, nil) {
				return
			}
		}
	}
}

// SelectEvents returns one aggregate's events as the query asks.
func (r *Recorder) SelectEvents(ctx context.Context, id uuid.UUID, eq persistence.EventQuery) ([]persistence.StoredEvent, error) {
	op := "select events from " + r.table
	if err := r.db.begin(ctx, op); err != nil {
		return nil, err
	}
	q := r.db.rebind(SelectEvents(r.table, r.tenant, r.db.Dialect.IDArg(id), eq, r.events))
	rows, err := r.db.Reader.QueryContext(ctx, q.SQL, q.Args...)
	if err != nil {
		return nil, r.db.Errorf(op, err)
	}
	defer rows.Close()
	out := make([]persistence.StoredEvent, 0, max(eq.Limit, 0))
	var rawCommit, headers []byte
	for rows.Next() {
		e := persistence.StoredEvent{OriginatorID: id}
		dest := []any{&e.OriginatorVersion, &e.Topic, &e.State}
		if r.events {
			dest = append(dest, &rawCommit, &headers)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, r.db.Errorf(op, err)
		}
		if r.events {
			if err := scanCommit(&e, rawCommit, headers); err != nil {
				return nil, r.db.Errorf(op, err)
			}
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, r.db.Errorf(op, err)
	}
	return out, nil
}

var _ persistence.AfterSelector = (*Recorder)(nil)

// SelectEventsAfter returns the events of several aggregates after a
// version each: in one statement if the dialect has SelectAfter, in a
// UNION ALL per MaxAfter aggregates otherwise (see the package's
// SelectEventsAfter).
func (r *Recorder) SelectEventsAfter(ctx context.Context, after []persistence.After) ([][]persistence.StoredEvent, error) {
	op := "select events after versions from " + r.table
	if err := r.db.begin(ctx, op); err != nil {
		return nil, err
	}
	out := make([][]persistence.StoredEvent, len(after))
	if len(after) == 0 {
		return out, nil
	}
	if r.db.Dialect.SelectAfter != nil {
		versions := make([]byte, 0, 8*len(after))
		ids := make([]byte, 0, 16*len(after))
		versions = append(versions, '[')
		for i, a := range after {
			if i > 0 {
				versions = append(versions, ',')
			}
			versions = strconv.AppendInt(versions, a.Version, 10)
			ids = append(ids, a.OriginatorID[:]...)
		}
		versions = append(versions, ']')
		text := r.db.Dialect.SelectAfter(r.table, r.events)
		st, err := r.db.readerStatement(ctx, text)
		var rows *sql.Rows
		switch {
		case err != nil:
		case st != nil:
			rows, err = st.QueryContext(ctx, string(versions), r.tenant, ids)
		default:
			rows, err = r.db.Reader.QueryContext(ctx, text, string(versions), r.tenant, ids)
		}
		if err != nil {
			// Closed meanwhile: its prepared statement is closed too.
			if cerr := r.db.begin(ctx, op); cerr != nil {
				return nil, cerr
			}
			return nil, r.db.Errorf(op, err)
		}
		if err := r.scanAfter(op, rows, after, out); err != nil {
			return nil, err
		}
		return out, nil
	}
	for start := 0; start < len(after); start += MaxAfter {
		chunk := after[start:min(start+MaxAfter, len(after))]
		ids := make([]any, len(chunk))
		versions := make([]int64, len(chunk))
		for i, a := range chunk {
			ids[i], versions[i] = r.db.Dialect.IDArg(a.OriginatorID), a.Version
		}
		q := r.db.rebind(SelectEventsAfter(r.table, r.tenant, ids, versions, r.events))
		rows, err := r.db.Reader.QueryContext(ctx, q.SQL, q.Args...)
		if err != nil {
			return nil, r.db.Errorf(op, err)
		}
		if err := r.scanAfter(op, rows, chunk, out[start:]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// scanAfter reads the rows of a select of events after versions, of the
// aggregates of chunk, putting each one's events in out at its index, and
// closes them.
func (r *Recorder) scanAfter(op string, rows *sql.Rows, chunk []persistence.After, out [][]persistence.StoredEvent) error {
	defer rows.Close()
	var i int
	var rawCommit, headers []byte
	for rows.Next() {
		var e persistence.StoredEvent
		dest := []any{&i, &e.OriginatorVersion, &e.Topic, &e.State}
		if r.events {
			dest = append(dest, &rawCommit, &headers)
		}
		if err := rows.Scan(dest...); err != nil {
			return r.db.Errorf(op, err)
		}
		if i < 0 || i >= len(chunk) {
			return r.db.Errorf(op, fmt.Errorf("%w: a row of aggregate %d of %d", persistence.ErrInternal, i, len(chunk)))
		}
		e.OriginatorID = chunk[i].OriginatorID
		if r.events {
			if err := scanCommit(&e, rawCommit, headers); err != nil {
				return r.db.Errorf(op, err)
			}
		}
		out[i] = append(out[i], e)
	}
	if err := rows.Err(); err != nil {
		return r.db.Errorf(op, err)
	}
	return nil
}

// scanCommit fills an event's commit from its columns.
func scanCommit(e *persistence.StoredEvent, rawCommit, headers []byte) error {
	if len(rawCommit) > 0 {
		id, err := ParseID(rawCommit)
		if err != nil {
			return err
		}
		if id != uuid.Nil {
			e.CommitID = id
		}
	}
	h, err := persistence.DecodeHeaders(headers)
	e.Headers = h
	return err
}

// setRowBytes sets the notification's fields read as bytes, copying
// through page: its originator ID, state, commit ID and headers.
func setRowBytes(n *persistence.Notification, page *Page, rawID, state, rawCommit, headers []byte) {
	n.State = page.Bytes(state)
	if n.State == nil {
		n.State = []byte{}
	}
	// A damaged ID leaves the nil UUID, which no aggregate has: the
	// notification is still read, so that one bad row does not hide the
	// log behind it, and decoding it fails (see persistence.Mapper).
	n.OriginatorID, _ = ParseID(rawID)
	if err := scanCommit(&n.StoredEvent, rawCommit, headers); err != nil {
		// Damaged headers are dropped for the same reason.
		n.Headers = nil
	}
}

// SelectNotifications returns notifications in order from q.Start.
func (r *Recorder) SelectNotifications(ctx context.Context, nq persistence.NotificationQuery) ([]persistence.Notification, error) {
	op := "select notifications from " + r.table
	if err := r.db.begin(ctx, op); err != nil {
		return nil, err
	}
	if err := r.needNotifications(op); err != nil {
		return nil, err
	}
	if err := CheckLimit(op, nq.Limit); err != nil {
		return nil, err
	}
	if stable := r.db.Dialect.StablePrefix; stable != nil {
		h, err := stable(ctx, r.db.Reader, r.table)
		if err != nil {
			return nil, r.db.Errorf(op+": read the end of the stable prefix", err)
		}
		// IDs begin at 1, and a Stop of 0 would mean no bound at all.
		if h < max(nq.Start, 1) {
			return []persistence.Notification{}, nil
		}
		if nq.Stop <= 0 || nq.Stop > h {
			nq.Stop = h
		}
	}
	topicsIn := r.db.Dialect.TopicsIn
	if topicsIn == nil {
		topicsIn = TopicsIn
	}
	cond := "tenant = ?"
	if sole := r.db.Dialect.SoleTenant; sole != "" && !nq.AllTenants {
		alone, err := r.soleTenant(ctx)
		if err != nil {
			return nil, r.db.Errorf(op, err)
		}
		if alone {
			cond = sole
		}
	}
	q := r.db.rebind(selectNotifications(r.table, r.tenant, nq, topicsIn, r.db.Dialect.Visible, cond))
	if r.db.Dialect.DriverRows {
		out, err := r.driverNotifications(ctx, q, nq.Limit)
		if err != nil {
			return nil, r.db.Errorf(op, err)
		}
		return out, nil
	}
	rows, err := r.db.Reader.QueryContext(ctx, q.SQL, q.Args...)
	if err != nil {
		return nil, r.db.Errorf(op, err)
	}
	defer rows.Close()
	out := make([]persistence.Notification, 0, min(nq.Limit, 1024))
	// The driver's bytes, read in place (sql.RawBytes) and copied once:
	// states into the page's blocks, IDs and headers into their values.
	var rawID, rawCommit, headers, state sql.RawBytes
	var page Page
	for rows.Next() {
		// Scanned in place: a local the scan points into would be moved
		// to the heap, an allocation per row.
		out = append(out, persistence.Notification{})
		n := &out[len(out)-1]
		if err := rows.Scan(&n.ID, &n.Tenant, &rawID, &n.OriginatorVersion, &n.Topic, &state, &rawCommit, &headers); err != nil {
			return nil, r.db.Errorf(op, err)
		}
		setRowBytes(n, &page, rawID, state, rawCommit, headers)
	}
	if err := rows.Err(); err != nil {
		return nil, r.db.Errorf(op, err)
	}
	return out, nil
}

// soleTenant reports whether the events table holds rows of the
// recorder's tenant and of no other. The smallest and largest tenant are
// the ends of the (tenant, notification_id) index: two seeks, not a scan.
func (r *Recorder) soleTenant(ctx context.Context) (bool, error) {
	q := r.db.rebind(Query{"SELECT (SELECT min(tenant) FROM " + r.table + ") = ? AND (SELECT max(tenant) FROM " + r.table + ") = ?", []any{r.tenant, r.tenant}})
	var alone sql.NullBool
	if err := r.db.Reader.QueryRowContext(ctx, q.SQL, q.Args...).Scan(&alone); err != nil {
		return false, err
	}
	return alone.Valid && alone.Bool, nil
}

// MaxNotificationID returns the highest notification ID of the tenant, or
// 0.
func (r *Recorder) MaxNotificationID(ctx context.Context) (int64, error) {
	return r.maxNotificationID(ctx, false)
}

// MaxNotificationIDAcrossTenants returns the highest notification ID of
// every tenant, or 0.
func (r *Recorder) MaxNotificationIDAcrossTenants(ctx context.Context) (int64, error) {
	return r.maxNotificationID(ctx, true)
}

func (r *Recorder) maxNotificationID(ctx context.Context, allTenants bool) (int64, error) {
	op := "max notification ID of " + r.table
	if err := r.db.begin(ctx, op); err != nil {
		return 0, err
	}
	if err := r.needNotifications(op); err != nil {
		return 0, err
	}
	sqlText := "SELECT COALESCE(MAX(notification_id), 0) FROM " + r.table + " WHERE tenant = ?"
	args := []any{r.tenant}
	if allTenants {
		sqlText = "SELECT COALESCE(MAX(notification_id), 0) FROM " + r.table + " WHERE notification_id IS NOT NULL"
		args = nil
	}
	if v := r.db.Dialect.Visible; v != "" {
		sqlText += " AND " + v
	}
	q := r.db.rebind(Query{sqlText, args})
	var n int64
	if err := r.db.Reader.QueryRowContext(ctx, q.SQL, q.Args...).Scan(&n); err != nil {
		return 0, r.db.Errorf(op, err)
	}
	return n, nil
}

// MaxTrackingID returns the highest notification ID recorded for the
// upstream application, in any tenant, or 0.
func (r *Recorder) MaxTrackingID(ctx context.Context, app string) (int64, error) {
	op := "max tracking ID in " + r.tracking
	if err := r.db.begin(ctx, op); err != nil {
		return 0, err
	}
	if r.tracking == "" {
		return 0, &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: errors.New("not a process recorder")}
	}
	q := r.db.rebind(Query{"SELECT COALESCE(MAX(notification_id), 0) FROM " + r.tracking + " WHERE application_name = ?", []any{app}})
	var n int64
	if err := r.db.Reader.QueryRowContext(ctx, q.SQL, q.Args...).Scan(&n); err != nil {
		return 0, r.db.Errorf(op, err)
	}
	return n, nil
}

// HasTrackingID reports whether the notification ID was recorded for the
// upstream application, in any tenant.
func (r *Recorder) HasTrackingID(ctx context.Context, app string, id int64) (bool, error) {
	op := "has tracking ID in " + r.tracking
	if err := r.db.begin(ctx, op); err != nil {
		return false, err
	}
	if r.tracking == "" {
		return false, &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: errors.New("not a process recorder")}
	}
	q := r.db.rebind(Query{"SELECT COUNT(*) FROM " + r.tracking + " WHERE application_name = ? AND notification_id = ?", []any{app, id}})
	var n int
	if err := r.db.Reader.QueryRowContext(ctx, q.SQL, q.Args...).Scan(&n); err != nil {
		return false, r.db.Errorf(op, err)
	}
	return n > 0, nil
}

func (r *Recorder) needNotifications(op string) error {
	if !r.events {
		return &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: errors.New("an aggregate recorder has no notifications")}
	}
	return nil
}

// Erase deletes data of one tenant from the tables of an application, in
// one write transaction: an aggregate's stream, or everything of the
// tenant. It implements persistence.Eraser for the factories of SQL
// adapters.
type Erase struct {
	DB     *DB
	Tables Tables
	Tenant string
	// ListTables returns the names of the tables of the database (of its
	// schema), among which Tables.Purposes finds the application's
	// aggregate recorders' tables.
	ListTables func(ctx context.Context) ([]string, error)
	// Qualify returns a table's name as statements use it (with its
	// schema), or nil for the name itself.
	Qualify func(table string) string
}

func (e Erase) qualify(t string) string {
	if e.Qualify != nil {
		return e.Qualify(t)
	}
	return t
}

// tables returns those of the named tables that exist, then the tables of
// every purpose.
func (e Erase) tables(ctx context.Context, named ...string) ([]string, error) {
	listed, err := e.ListTables(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, t := range named {
		if slices.Contains(listed, t) {
			out = append(out, t)
		}
	}
	return append(out, e.Tables.Purposes(listed)...), nil
}

// DeleteAggregate deletes the aggregate's events, commits and recorded
// aggregates of every purpose, and reports whether it had events.
func (e Erase) DeleteAggregate(ctx context.Context, id uuid.UUID) (bool, error) {
	op := "delete aggregate " + id.String() + " of " + e.Tables.Events
	if err := e.DB.beginWrite(ctx, op); err != nil {
		return false, err
	}
	tables, err := e.tables(ctx, e.Tables.Events, e.Tables.Commits, e.Tables.Truncated)
	if err != nil {
		return false, e.DB.Errorf(op+": list tables", err)
	}
	had := false
	err = e.DB.write(ctx, op, func(tx *sql.Tx) error {
		for _, t := range tables {
			q := e.DB.rebind(Query{"DELETE FROM " + e.qualify(t) + " WHERE tenant = ? AND originator_id = ?", []any{e.Tenant, e.DB.Dialect.IDArg(id)}})
			res, err := tx.ExecContext(ctx, q.SQL, q.Args...)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); t == e.Tables.Events && n > 0 {
				had = true
			}
		}
		return nil
	})
	return had, err
}

// PurgeTenant deletes everything of the tenant.
func (e Erase) PurgeTenant(ctx context.Context) error {
	op := "purge tenant " + e.Tenant + " of " + e.Tables.Events
	if err := e.DB.beginWrite(ctx, op); err != nil {
		return err
	}
	if e.Tenant == "" {
		return &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: errors.New("the default tenant cannot be purged")}
	}
	tables, err := e.tables(ctx, e.Tables.Events, e.Tables.Commits, e.Tables.Tracking, e.Tables.Truncated)
	if err != nil {
		return e.DB.Errorf(op+": list tables", err)
	}
	return e.DB.write(ctx, op, func(tx *sql.Tx) error {
		for _, t := range tables {
			q := e.DB.rebind(Query{"DELETE FROM " + e.qualify(t) + " WHERE tenant = ?", []any{e.Tenant}})
			if _, err := tx.ExecContext(ctx, q.SQL, q.Args...); err != nil {
				return err
			}
		}
		return nil
	})
}

package sqlstore

import (
	"context"
	"database/sql"

	"github.com/strata-go/strata/persistence"
)

// pendingSave is one write (an InsertEvents call, a tracked batch)
// waiting to be committed with others.
type pendingSave struct {
	ctx context.Context
	op  string
	// statements is how many statements run runs; only whether it is one
	// matters (see commitGathering).
	statements int
	queries    [][]Query
	// run runs the save's statements in tx; it may run more than once
	// (again alone, when its group's transaction failed as a whole).
	run func(ctx context.Context, tx *sql.Tx) error
	// err is the save's outcome, classified; cause is the engine's error.
	err, cause error
}

// commitWrite runs run in a write transaction and commits it: with the
// saves of others, in a group (see [DB.commitGathering]), if the dialect
// commits saves together, else alone. statements is how many statements
// run runs (only whether it is one matters), and prepare the queries
// worth preparing for the next writes (none for statements whose text
// varies with their rows). run may run more than once, on a context of
// its own, which it must use.
func (db *DB) commitWrite(ctx context.Context, op string, statements int, prepare [][]Query, run func(ctx context.Context, tx *sql.Tx) error) error {
	g := db.groupOf()
	if g == nil {
		return db.write(ctx, op, func(tx *sql.Tx) error { return run(ctx, tx) })
	}
	return db.retrying(ctx, func() (error, error) {
		s := &pendingSave{ctx: ctx, op: op, queries: prepare, statements: statements, run: run}
		if err := g.Do(ctx, s); err != nil {
			return db.Errorf(op, err), err
		}
		return s.err, s.cause
	})
}

// savepoint is the name of the savepoint each save of a group runs in.
const savepoint = "strata_save"

// groupOf returns the group commit of db, or nil if its dialect does not
// commit saves together.
func (db *DB) groupOf() *Group[*pendingSave] {
	if db.Dialect.GroupCommit < 2 {
		return nil
	}
	db.groupOnce.Do(func() {
		db.group = NewGroup(1, db.Dialect.GroupCommit, db.leadGroup)
		db.group.Gather()
	})
	return db.group
}

// leadGroup takes the write connection, then the saves queued by then,
// and commits them with those that the group gathers meanwhile.
func (db *DB) leadGroup(ctx context.Context, take func() ([]*pendingSave, bool)) error {
	conn, err := db.Writer.Conn(ctx)
	if err != nil {
		return err
	}
	saves, more := take()
	ctx = context.WithoutCancel(ctx)
	if more {
		saves = db.commitGathering(ctx, conn, saves, take)
	} else {
		db.commitGroup(ctx, conn, saves)
	}
	conn.Close()
	// The statements the group ran are prepared for the next groups now
	// that the connection is free, which preparing waits for.
	for _, s := range saves {
		db.prepare(ctx, s.queries...)
	}
	return nil
}

// live returns the saves of batch whose context has not ended, and fails
// the others: they never reach the database.
func live(batch []*pendingSave) []*pendingSave {
	var out []*pendingSave
	for _, s := range batch {
		s.err, s.cause = nil, nil
		if err := s.ctx.Err(); err != nil {
			s.err, s.cause = &persistence.Error{Op: s.op, Kind: persistence.ErrOperational, Err: err}, err
			continue
		}
		out = append(out, s)
	}
	return out
}

// commitGroup commits the saves of batch on conn and sets their outcomes.
// A save alone runs in a transaction of its own, as without group
// commit; several run as in [DB.commitGathering], with no more to come.
func (db *DB) commitGroup(ctx context.Context, conn *sql.Conn, batch []*pendingSave) {
	batch = live(batch)
	switch len(batch) {
	case 0:
		return
	case 1:
		s := batch[0]
		s.err, s.cause = db.writeOn(s.ctx, conn, s.op, func(tx *sql.Tx) error { return s.run(s.ctx, tx) })
		return
	}
	db.commitGathering(ctx, conn, batch, nil)
}

// commitGathering commits the saves of batch on conn, with those that
// take returns while it says more may come, and sets their outcomes; it
// returns all the saves it took. The saves run in one transaction, each
// in a savepoint (a save of one statement needs none if the dialect's
// StatementUndone says its failure undoes it alone): a save that fails
// is rolled back to its savepoint and fails alone, and the others commit
// together, with one durable flush. The statements of the saves taken
// first run while the others arrive. Saves whose context ended before
// their turn fail without reaching the database. Once the transaction
// has failed as a whole, no more saves are taken: the ones taken run
// again as a group of their own (see regroup).
func (db *DB) commitGathering(ctx context.Context, conn *sql.Conn, batch []*pendingSave, take func() ([]*pendingSave, bool)) []*pendingSave {
	all := batch
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		for _, s := range live(batch) {
			s.err, s.cause = db.Errorf(s.op+": begin", err), err
		}
		return all
	}
	var ok []*pendingSave
	for len(batch) > 0 {
		batch = live(batch)
		for i, s := range batch {
			if s.statements == 1 && db.Dialect.StatementUndone != nil {
				// One statement is atomic without a savepoint if its
				// failure undoes it alone (a unique key's conflict); any
				// other failure may have ended the transaction, or kept
				// part of the statement.
				if err := s.run(ctx, tx); err != nil {
					if !db.Dialect.StatementUndone(err) {
						db.regroup(ctx, conn, tx, s, err, append(ok, batch[i+1:]...))
						return all
					}
					s.err, s.cause = db.Errorf(s.op, err), err
					continue
				}
				ok = append(ok, s)
				continue
			}
			if _, err := tx.ExecContext(ctx, "SAVEPOINT "+savepoint); err != nil {
				db.regroup(ctx, conn, tx, s, err, append(ok, batch[i+1:]...))
				return all
			}
			if err := s.run(ctx, tx); err != nil {
				if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO "+savepoint); rerr != nil {
					// The engine ended the whole transaction with the failure:
					// the saves that had run are gone with it.
					db.regroup(ctx, conn, tx, s, err, append(ok, batch[i+1:]...))
					return all
				}
				s.err, s.cause = db.Errorf(s.op, err), err
			}
			if _, err := tx.ExecContext(ctx, "RELEASE "+savepoint); err != nil {
				db.regroup(ctx, conn, tx, s, err, append(ok, batch[i+1:]...))
				return all
			}
			if s.err == nil {
				ok = append(ok, s)
			}
		}
		batch = nil
		if take != nil {
			var more bool
			batch, more = take()
			all = append(all, batch...)
			if !more {
				take = nil
			}
		}
	}
	if len(ok) == 0 {
		tx.Rollback()
		return all
	}
	if err := tx.Commit(); err != nil {
		rollbackOpen(ctx, conn)
		if a := db.Dialect.Ambiguous; a != nil && a(err) {
			for _, s := range ok {
				s.err, s.cause = persistence.Errorf(persistence.ErrUnknownOutcome, s.op+": commit", err), err
			}
			return all
		}
		// Nothing of the group was recorded, and which save the failure
		// belongs to is unknown: each runs again alone, for an outcome of
		// its own.
		for _, s := range ok {
			db.commitGroup(ctx, conn, []*pendingSave{s})
		}
	}
	return all
}

// regroup ends a group's transaction that failed as a whole while save
// failed ran: failed gets the error, and the others run again as a group.
func (db *DB) regroup(ctx context.Context, conn *sql.Conn, tx *sql.Tx, failed *pendingSave, err error, others []*pendingSave) {
	tx.Rollback()
	rollbackOpen(ctx, conn)
	failed.err, failed.cause = db.Errorf(failed.op, err), err
	db.commitGroup(ctx, conn, others)
}

// rollbackOpen rolls back a transaction that an engine may have left open
// on conn after a failed COMMIT (SQLite does, on a deferred constraint),
// so that the connection's next transaction can begin; with none open,
// the engine's complaint is of no interest.
func rollbackOpen(ctx context.Context, conn *sql.Conn) {
	conn.ExecContext(ctx, "ROLLBACK")
}

// writeOn runs f in a transaction on conn and commits it. It returns the
// classified error and the engine's own.
func (db *DB) writeOn(ctx context.Context, conn *sql.Conn, op string, f func(tx *sql.Tx) error) (error, error) {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return db.Errorf(op+": begin", err), err
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return db.Errorf(op, err), err
	}
	if err := tx.Commit(); err != nil {
		rollbackOpen(context.WithoutCancel(ctx), conn)
		if a := db.Dialect.Ambiguous; a != nil && a(err) {
			return persistence.Errorf(persistence.ErrUnknownOutcome, op+": commit", err), err
		}
		return db.Errorf(op+": commit", err), err
	}
	return nil, nil
}

// QueuedSaves returns how many saves wait to be committed, not yet taken
// by a group (0 without group commit). Tests use it to know that saves
// will be committed together.
func (db *DB) QueuedSaves() int {
	if g := db.groupOf(); g != nil {
		return g.Queued()
	}
	return 0
}

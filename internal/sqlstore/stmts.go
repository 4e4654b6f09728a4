package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// maxStatements is the most statements a DB keeps prepared.
const maxStatements = 64

// statements keeps the write path's statements prepared on the writer
// pool, for dialects with Dialect.Prepare: parsing and planning an insert
// costs an embedded engine about as much as running it for a few rows.
type statements struct {
	mu     sync.Mutex
	m      map[string]*sql.Stmt
	closed bool // no more are kept
}

// query runs q in tx, with a statement prepared once if the dialect asks
// for it.
func (db *DB) query(ctx context.Context, tx *sql.Tx, q Query) (*sql.Rows, error) {
	if st := db.prepared(q.SQL); st != nil {
		return tx.StmtContext(ctx, st).QueryContext(ctx, q.Args...)
	}
	return tx.QueryContext(ctx, q.SQL, q.Args...)
}

// exec is query for a statement that returns no rows.
func (db *DB) exec(ctx context.Context, tx *sql.Tx, q Query) error {
	_, err := db.execResult(ctx, tx, q)
	return err
}

// execResult is exec that returns the statement's result.
func (db *DB) execResult(ctx context.Context, tx *sql.Tx, q Query) (sql.Result, error) {
	if st := db.prepared(q.SQL); st != nil {
		return tx.StmtContext(ctx, st).ExecContext(ctx, q.Args...)
	}
	return tx.ExecContext(ctx, q.SQL, q.Args...)
}

// prepared returns the statement of text prepared on the writer pool,
// or nil if it is not (see prepare).
func (db *DB) prepared(text string) *sql.Stmt {
	if !db.Dialect.Prepare {
		return nil
	}
	db.stmts.mu.Lock()
	defer db.stmts.mu.Unlock()
	return db.stmts.m[text]
}

// prepare prepares the statements of the queries on the writer pool, if
// the dialect keeps statements and the cache has room. It must not run in
// a write transaction of a pool of one connection, for which it waits. A
// statement that does not prepare is left out: its error comes when it
// runs.
func (db *DB) prepare(ctx context.Context, queries ...[]Query) {
	if !db.Dialect.Prepare {
		return
	}
	for _, qs := range queries {
		for _, q := range qs {
			db.stmts.get(ctx, db.Writer, q.SQL)
		}
	}
}

// close closes the statements, which the pool may outlive.
func (s *statements) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.m {
		st.Close()
	}
	s.m = nil
	s.closed = true
}

// readerStatement returns the statement of text prepared on the reader
// pool (see statements.get); database/sql prepares it again on each
// connection that runs it. A nil statement is to be run unprepared.
func (db *DB) readerStatement(ctx context.Context, text string) (*sql.Stmt, error) {
	return db.readStmts.get(ctx, db.Reader, text)
}

// get returns the statement of text kept in s, preparing it on pool the
// first time, outside the lock, so that callers waiting for a connection
// wait on their own contexts. It returns nil once maxStatements are kept,
// errRecorderClosed once s is closed, and the error of a statement that
// does not prepare.
func (s *statements) get(ctx context.Context, pool *sql.DB, text string) (*sql.Stmt, error) {
	s.mu.Lock()
	st, ok := s.m[text]
	full, closed := len(s.m) >= maxStatements, s.closed
	s.mu.Unlock()
	switch {
	case closed:
		return nil, errRecorderClosed
	case ok || full:
		return st, nil
	}
	st, err := pool.PrepareContext(ctx, text)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		st.Close()
		return nil, errRecorderClosed
	}
	if other, ok := s.m[text]; ok {
		st.Close() // another caller prepared it meanwhile
		return other, nil
	}
	if len(s.m) >= maxStatements {
		st.Close()
		return nil, nil
	}
	if s.m == nil {
		s.m = map[string]*sql.Stmt{}
	}
	s.m[text] = st
	return st, nil
}

// errRecorderClosed is readerStatement's error once the DB is closed;
// callers report the closed recorder (see [DB.begin]).
var errRecorderClosed = errors.New("recorder is closed")

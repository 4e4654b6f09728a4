package persistence

import (
	"errors"
	"fmt"
)

// kind is a sentinel error that belongs to broader kinds, so that
// errors.Is(err, ErrDatabase) holds for an integrity error.
type kind struct {
	msg     string
	parents []error
}

func (k *kind) Error() string   { return k.msg }
func (k *kind) Unwrap() []error { return k.parents }

func newKind(msg string, parents ...error) error { return &kind{msg: msg, parents: parents} }

// The error taxonomy of recorders and mappers. It mirrors the database API
// exceptions of the reference design: every recorder error wraps one of
// these kinds and, where there is one, the driver's own error. Test with
// errors.Is:
//
//	if errors.Is(err, persistence.ErrIntegrity) { /* another writer won: reload and retry */ }
var (
	// ErrPersistence is the kind every other kind belongs to.
	ErrPersistence = newKind("persistence error")
	// ErrConflict means a record conflicts with one already recorded.
	ErrConflict = newKind("record conflict", ErrPersistence)
	// ErrInterface means a problem with the database interface rather than
	// the database, such as using a closed recorder.
	ErrInterface = newKind("interface error", ErrPersistence)
	// ErrDatabase is the kind of errors that come from the database.
	ErrDatabase = newKind("database error", ErrPersistence)
	// ErrData means data that cannot be processed: corrupt bytes, a wrong
	// cipher key, a value out of range.
	ErrData = newKind("data error", ErrDatabase)
	// ErrOperational means the database could not do the operation for
	// reasons outside the program's control: a lost connection, a timeout,
	// a busy database. Retrying may succeed. Unless the error also wraps
	// [ErrUnknownOutcome], a write that failed with it recorded nothing.
	ErrOperational = newKind("operational error", ErrDatabase)
	// ErrUnknownOutcome means a write whose outcome is unknown: the request
	// reached the database, then the connection failed before its answer
	// came back (the server restarted, the network dropped), so the write
	// may have been recorded or not. It is also an [ErrOperational].
	//
	// The safe reaction is to save again the same way: a save of the same
	// aggregate objects (still holding their pending events) either records
	// them or, if the first attempt was recorded, fails with an integrity
	// error at the same versions; a save with a commit ID is reported as
	// already committed. Never re-run the command on a reloaded aggregate
	// without a commit ID: that could record its decision twice.
	ErrUnknownOutcome = newKind("outcome unknown: the write may have been recorded", ErrOperational)
	// ErrIntegrity means a save was refused because it would break the
	// store's integrity: an event at a version that is already recorded
	// (another writer got there first) or a tracking record that is
	// already recorded. Nothing of the save was recorded.
	ErrIntegrity = newKind("integrity error", ErrDatabase, ErrConflict)
	// ErrInternal means the database reached an inconsistent internal state.
	ErrInternal = newKind("internal error", ErrDatabase)
	// ErrProgramming means the program used the store wrongly: a missing
	// table, bad arguments, a tracking record given to a recorder that
	// cannot store it.
	ErrProgramming = newKind("programming error", ErrDatabase)
	// ErrNoTable means a table (or stream, or collection) that the store
	// does not have and may not create: the application has no data there,
	// or its name, the database or the schema is wrong. It is an
	// [ErrProgramming].
	ErrNoTable = newKind("no such table", ErrProgramming)
	// ErrReadOnly means a write to a store opened read-only (READ_ONLY).
	// It is an [ErrProgramming].
	ErrReadOnly = newKind("store is read-only", ErrProgramming)
	// ErrNotSupported means the store does not support what was asked.
	ErrNotSupported = newKind("not supported", ErrDatabase)

	// ErrWrongKey means state was encrypted with a key the cipher does not
	// have.
	ErrWrongKey = newKind("encrypted with another cipher key", ErrData)
	// ErrCorrupt means stored state is truncated or damaged: it fails
	// authentication, decompression or decoding.
	ErrCorrupt = newKind("corrupt data", ErrData)
	// ErrAlreadyCommitted means a save whose commit ID is already recorded
	// for its aggregates: an earlier attempt of the same save was recorded
	// (perhaps one that failed with ErrUnknownOutcome). Nothing new was
	// recorded. It is not a conflict: the save's effect is in the store.
	ErrAlreadyCommitted = newKind("commit already recorded", ErrPersistence)
	// ErrErased means state whose data key was erased (crypto-shredding):
	// it can never be decrypted again. It is an [ErrData].
	ErrErased = newKind("erased", ErrData)

	// ErrConfig means a setting that is missing or cannot be parsed. The
	// error names the environment variable and its value.
	ErrConfig = newKind("invalid configuration")
)

// Error is the error recorders return: what was being done, the kind of
// failure, and the driver's error if there is one. errors.Is matches both
// the kind and the driver error.
type Error struct {
	Op   string // what was being done, for example "insert events into worlds_events"
	Kind error  // one of the kinds above
	Err  error  // the underlying error, or nil
}

func (e *Error) Error() string {
	if e.Err == nil {
		return e.Op + ": " + e.Kind.Error()
	}
	return fmt.Sprintf("%s: %v: %v", e.Op, e.Kind, e.Err)
}

// Unwrap returns the kind and the underlying error.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// Errorf returns an *Error of the given kind for operation op, wrapping
// err. If err already is an *Error, it keeps its kind and only gains op, so
// that classification happens once, where the error arises.
func Errorf(kind error, op string, err error) error {
	var pe *Error
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", op, err)
	}
	return &Error{Op: op, Kind: kind, Err: err}
}

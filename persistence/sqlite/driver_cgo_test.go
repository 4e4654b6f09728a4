//go:build strata_sqlite_cgo && cgo

package sqlite

import (
	"testing"

	sqlite3 "github.com/mattn/go-sqlite3"
)

func TestResultCodesAreTheDrivers(t *testing.T) {
	for name, c := range map[string]struct {
		here  int
		mattn sqlite3.ErrNo
	}{
		"ERROR": {codeError, sqlite3.ErrError}, "PERM": {codePerm, sqlite3.ErrPerm}, "BUSY": {codeBusy, sqlite3.ErrBusy},
		"LOCKED": {codeLocked, sqlite3.ErrLocked}, "NOMEM": {codeNoMem, sqlite3.ErrNomem}, "READONLY": {codeReadOnly, sqlite3.ErrReadonly},
		"INTERRUPT": {codeInterrupt, sqlite3.ErrInterrupt}, "IOERR": {codeIOErr, sqlite3.ErrIoErr}, "CORRUPT": {codeCorrupt, sqlite3.ErrCorrupt},
		"FULL": {codeFull, sqlite3.ErrFull}, "CANTOPEN": {codeCantOpen, sqlite3.ErrCantOpen}, "PROTOCOL": {codeProtocol, sqlite3.ErrProtocol},
		"SCHEMA": {codeSchema, sqlite3.ErrSchema}, "TOOBIG": {codeTooBig, sqlite3.ErrTooBig}, "CONSTRAINT": {codeConstraint, sqlite3.ErrConstraint},
		"MISMATCH": {codeMismatch, sqlite3.ErrMismatch}, "MISUSE": {codeMisuse, sqlite3.ErrMisuse}, "RANGE": {codeRange, sqlite3.ErrRange},
		"NOTADB": {codeNotADB, sqlite3.ErrNotADB},
	} {
		if c.here != int(c.mattn) {
			t.Errorf("SQLITE_%s: %d here, %d in mattn/go-sqlite3", name, c.here, c.mattn)
		}
	}
	for name, c := range map[string]struct {
		here  int
		mattn sqlite3.ErrNoExtended
	}{
		"CONSTRAINT_PRIMARYKEY": {codeConstraintPrimaryKey, sqlite3.ErrConstraintPrimaryKey}, "CONSTRAINT_UNIQUE": {codeConstraintUnique, sqlite3.ErrConstraintUnique},
	} {
		if c.here != int(c.mattn) {
			t.Errorf("SQLITE_%s: %d here, %d in mattn/go-sqlite3", name, c.here, c.mattn)
		}
	}
}

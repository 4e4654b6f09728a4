//go:build !strata_sqlite_cgo

package sqlite

import (
	"testing"

	sqlite3 "modernc.org/sqlite/lib"
)

func TestResultCodesAreTheDrivers(t *testing.T) {
	for name, c := range map[string][2]int{
		"ERROR": {codeError, sqlite3.SQLITE_ERROR}, "PERM": {codePerm, sqlite3.SQLITE_PERM}, "BUSY": {codeBusy, sqlite3.SQLITE_BUSY},
		"LOCKED": {codeLocked, sqlite3.SQLITE_LOCKED}, "NOMEM": {codeNoMem, sqlite3.SQLITE_NOMEM}, "READONLY": {codeReadOnly, sqlite3.SQLITE_READONLY},
		"INTERRUPT": {codeInterrupt, sqlite3.SQLITE_INTERRUPT}, "IOERR": {codeIOErr, sqlite3.SQLITE_IOERR}, "CORRUPT": {codeCorrupt, sqlite3.SQLITE_CORRUPT},
		"FULL": {codeFull, sqlite3.SQLITE_FULL}, "CANTOPEN": {codeCantOpen, sqlite3.SQLITE_CANTOPEN}, "PROTOCOL": {codeProtocol, sqlite3.SQLITE_PROTOCOL},
		"SCHEMA": {codeSchema, sqlite3.SQLITE_SCHEMA}, "TOOBIG": {codeTooBig, sqlite3.SQLITE_TOOBIG}, "CONSTRAINT": {codeConstraint, sqlite3.SQLITE_CONSTRAINT},
		"MISMATCH": {codeMismatch, sqlite3.SQLITE_MISMATCH}, "MISUSE": {codeMisuse, sqlite3.SQLITE_MISUSE}, "RANGE": {codeRange, sqlite3.SQLITE_RANGE},
		"NOTADB":                {codeNotADB, sqlite3.SQLITE_NOTADB},
		"CONSTRAINT_PRIMARYKEY": {codeConstraintPrimaryKey, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY}, "CONSTRAINT_UNIQUE": {codeConstraintUnique, sqlite3.SQLITE_CONSTRAINT_UNIQUE},
	} {
		if c[0] != c[1] {
			t.Errorf("SQLITE_%s: %d here, %d in modernc.org/sqlite", name, c[0], c[1])
		}
	}
}

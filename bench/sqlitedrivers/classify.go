package sqlitedrivers

import (
	"errors"
	"runtime"

	mattn "github.com/mattn/go-sqlite3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }

// classify returns "unique", "busy", "locked" or "" for an error from either driver.
func classify(err error) string {
	var me *sqlite.Error
	if errors.As(err, &me) {
		switch {
		case me.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || me.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return "unique"
		case me.Code()&0xff == sqlite3.SQLITE_BUSY:
			return "busy"
		case me.Code()&0xff == sqlite3.SQLITE_LOCKED:
			return "locked"
		}
		return ""
	}
	var ce mattn.Error
	if errors.As(err, &ce) {
		switch {
		case ce.ExtendedCode == mattn.ErrConstraintUnique || ce.ExtendedCode == mattn.ErrConstraintPrimaryKey:
			return "unique"
		case ce.Code == mattn.ErrBusy:
			return "busy"
		case ce.Code == mattn.ErrLocked:
			return "locked"
		}
	}
	return ""
}

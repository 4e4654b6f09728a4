package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/strata-go/strata/persistence"
)

// Table is a table that recorders use: its name, the statements that
// create it, and the shape an existing table must have for the recorders
// to read and write it correctly.
type Table struct {
	// Name is the table's name as statements use it (qualified with its
	// schema where the engine has schemas).
	Name string
	// DDL creates the table and its indexes if they do not exist.
	DDL []string
	// Columns are the columns the table must have. It may have more.
	Columns []Column
	// Unique are the column lists that must each be a primary key or a
	// unique index of the table: without them, two writers could record
	// the same version.
	Unique [][]string
}

// Column is a column a table must have.
type Column struct {
	Name string
	// Types are the types, in lower case, that the engine may report for
	// a column of the right kind ("bigint", "integer").
	Types []string
}

// Shape is what an engine reports about an existing table: its columns'
// types in lower case by name (none if the table does not exist), and its
// primary key and unique indexes.
type Shape struct {
	Columns map[string]string
	Unique  [][]string
}

// Creator opens the tables of a factory's recorders, once each: it creates
// them if CREATE_TABLE allows, then checks that the table has the shape
// the recorders need, so that a table made by something else (an ID
// stored as text, a missing unique key) fails at open with a message
// naming the table and the column, instead of reading nothing or
// recording duplicates. It refuses to open recorders once the factory is
// closed. It is safe for concurrent use.
type Creator struct {
	// Enabled creates tables (CREATE_TABLE); without it, tables must exist.
	Enabled bool
	// Exec runs one statement of DDL and returns a classified error.
	Exec func(ctx context.Context, table, stmt string) error
	// Inspect returns the shape of an existing table, or a Shape without
	// columns if there is no such table.
	Inspect func(ctx context.Context, table string) (Shape, error)

	mu     sync.Mutex
	opened map[string]bool
	closed bool
}

// Ensure creates table if it is enabled and checks its shape, unless it
// did so before.
func (c *Creator) Ensure(ctx context.Context, t Table) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	op := "open recorder of " + t.Name
	if c.closed {
		return &persistence.Error{Op: op, Kind: persistence.ErrInterface, Err: errors.New("factory is closed")}
	}
	if c.opened[t.Name] {
		return nil
	}
	// A table that exists is only checked: statements meant to create it
	// (its indexes among them) must not change a table made by someone
	// else.
	var shape Shape
	if c.Inspect != nil {
		var err error
		if shape, err = c.Inspect(ctx, t.Name); err != nil {
			return err
		}
	}
	if c.Enabled && (c.Inspect == nil || len(shape.Columns) == 0) {
		for _, stmt := range t.DDL {
			if err := c.Exec(ctx, t.Name, stmt); err != nil {
				return err
			}
		}
		if c.Inspect != nil {
			var err error
			if shape, err = c.Inspect(ctx, t.Name); err != nil {
				return err
			}
		}
	}
	if c.Inspect != nil {
		if err := CheckShape(op, t, shape, c.Enabled); err != nil {
			return err
		}
	}
	if c.opened == nil {
		c.opened = map[string]bool{}
	}
	c.opened[t.Name] = true
	return nil
}

// CheckShape returns an error for operation op that names the table and
// what is wrong if shape lacks a column, has a column of another type, or
// lacks a unique key of t; a missing table is an error wrapping
// persistence.ErrNoTable, the others wrap persistence.ErrProgramming.
// creating says whether the table would have been created, for the
// message of a missing table.
func CheckShape(op string, t Table, shape Shape, creating bool) error {
	if len(shape.Columns) == 0 {
		why := "CREATE_TABLE is off or the store is READ_ONLY"
		if creating {
			why = "and was not created"
		}
		return &persistence.Error{Op: op, Kind: persistence.ErrNoTable, Err: fmt.Errorf(
			"table %s does not exist (%s): the application has no data in this store, or the application name, the database or the schema is not the right one", t.Name, why)}
	}
	if err := checkColumns(t, shape); err != nil {
		return &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: err}
	}
	return nil
}

func checkColumns(t Table, shape Shape) error {
	for _, col := range t.Columns {
		got, ok := shape.Columns[col.Name]
		if !ok {
			return fmt.Errorf("table %s has no column %s: it was not made by Strata, or by a version with another layout", t.Name, col.Name)
		}
		if !slices.Contains(col.Types, got) {
			return fmt.Errorf("table %s: column %s is of type %s, want %s: it was not made by Strata, or by a version with another layout", t.Name, col.Name, got, strings.Join(col.Types, " or "))
		}
	}
	for _, key := range t.Unique {
		if !slices.ContainsFunc(shape.Unique, func(k []string) bool { return slices.Equal(k, key) }) {
			return fmt.Errorf("table %s has no primary key or unique index on (%s): without it, two writers could record the same version", t.Name, strings.Join(key, ", "))
		}
	}
	return nil
}

// Close makes further Ensure calls fail, and reports whether this call
// closed it (so that the factory releases its resources once).
func (c *Creator) Close() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.closed = true
	return true
}

package sqlstore

import (
	"context"
	"errors"
	"sync"

	"github.com/strata-go/strata/persistence"
)

// Creator creates the tables of a factory's recorders, once each, if
// CREATE_TABLE allows, and refuses to open recorders once the factory is
// closed. It is safe for concurrent use.
type Creator struct {
	// Enabled creates tables (CREATE_TABLE); without it, Ensure only
	// checks that the factory is open.
	Enabled bool
	// Exec runs one statement of DDL and returns a classified error.
	Exec func(ctx context.Context, table, stmt string) error

	mu      sync.Mutex
	created map[string]bool
	closed  bool
}

// Ensure runs the DDL of table, unless it ran before.
func (c *Creator) Ensure(ctx context.Context, table string, ddl ...string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return &persistence.Error{Op: "open recorder of " + table, Kind: persistence.ErrInterface, Err: errors.New("factory is closed")}
	}
	if !c.Enabled || c.created[table] {
		return nil
	}
	for _, stmt := range ddl {
		if err := c.Exec(ctx, table, stmt); err != nil {
			return err
		}
	}
	if c.created == nil {
		c.created = map[string]bool{}
	}
	c.created[table] = true
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

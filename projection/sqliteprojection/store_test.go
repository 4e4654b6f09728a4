package sqliteprojection_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/persistence/sqlite"
	"github.com/strata-go/strata/projection"
	"github.com/strata-go/strata/projection/projectiontest"
	"github.com/strata-go/strata/projection/sqliteprojection"
)

// tallies is the suite's tally projection in SQLite's SQL.
type tallies struct {
	version int
	hook    projectiontest.Hook
}

func (p tallies) Name() string     { return "tallies" }
func (p tallies) Version() int     { return p.version }
func (p tallies) Tables() []string { return []string{"tallies"} }

func (p tallies) Setup(ctx context.Context, tx *sql.Tx, m projection.Model) error {
	extra := ""
	if p.version >= 2 {
		extra = fmt.Sprintf(", made_by INTEGER NOT NULL DEFAULT %d", p.version)
	}
	_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+m.Table("tallies")+
		` (id TEXT PRIMARY KEY, total INTEGER NOT NULL, events INTEGER NOT NULL`+extra+`)`)
	return err
}

func (p tallies) Process(ctx context.Context, tx *sql.Tx, m projection.Model, e projection.Event) error {
	added, ok := e.Data.(projectiontest.Added)
	if !ok {
		return nil
	}
	if err := p.hook(e, added.N); err != nil {
		return err
	}
	if added.N < 0 {
		return errors.New("a tally cannot go down")
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO `+m.Table("tallies")+` (id, total, events) VALUES (?, ?, 1)
		ON CONFLICT (id) DO UPDATE SET total = total + excluded.total, events = events + 1`, e.OriginatorID.String(), added.N)
	return err
}

func harness() projectiontest.Harness[*sql.Tx] {
	type store = projection.Store[*sql.Tx]
	return projectiontest.Harness[*sql.Tx]{
		Open: func(t *testing.T) (store, *application.Application) {
			app := projectiontest.Open(t, map[string]string{"PERSISTENCE_MODULE": "sqlite", "SQLITE_DBNAME": filepath.Join(t.TempDir(), "strata.db")})
			return sqliteprojection.FromFactory(app.Factory().(*sqlite.Factory)), app
		},
		Projection: func(version int, hook projectiontest.Hook) projection.Projection[*sql.Tx] {
			return tallies{version: version, hook: hook}
		},
		Read: func(ctx context.Context, s store) (projectiontest.Totals, error) {
			var out projectiontest.Totals
			err := s.(*sqliteprojection.Store).Reader().QueryRowContext(ctx,
				`SELECT count(*), coalesce(sum(total), 0), coalesce(sum(events), 0) FROM `+projection.View("tallies", "tallies")).
				Scan(&out.Tallies, &out.Sum, &out.Events)
			return out, err
		},
		Tables: func(ctx context.Context, s store, name string) ([]string, error) {
			rows, err := s.(*sqliteprojection.Store).Reader().QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
			if err != nil {
				return nil, err
			}
			defer rows.Close()
			var out []string
			for rows.Next() {
				var table string
				if err := rows.Scan(&table); err != nil {
					return nil, err
				}
				if strings.HasPrefix(table, name+"_v") {
					out = append(out, table)
				}
			}
			return out, rows.Err()
		},
		Parked: func(ctx context.Context, s store, name string) ([]projection.ParkedEvent, error) {
			return s.(*sqliteprojection.Store).Parked(ctx, name)
		},
	}
}

func TestStore(t *testing.T) { projectiontest.Run(t, harness()) }

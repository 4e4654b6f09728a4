package pgprojection_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/internal/pgtest"
	"github.com/strata-go/strata/persistence/postgres"
	"github.com/strata-go/strata/projection"
	"github.com/strata-go/strata/projection/pgprojection"
	"github.com/strata-go/strata/projection/projectiontest"
)

// tallies is the suite's tally projection in PostgreSQL's SQL.
type tallies struct {
	version int
	hook    projectiontest.Hook
}

func (p tallies) Name() string     { return "tallies" }
func (p tallies) Version() int     { return p.version }
func (p tallies) Tables() []string { return []string{"tallies"} }

func (p tallies) Setup(ctx context.Context, tx pgx.Tx, m projection.Model) error {
	extra := ""
	if p.version >= 2 {
		extra = fmt.Sprintf(", made_by INTEGER NOT NULL DEFAULT %d", p.version)
	}
	_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+m.Table("tallies")+
		` (id UUID PRIMARY KEY, total BIGINT NOT NULL, events BIGINT NOT NULL`+extra+`)`)
	return err
}

func (p tallies) Process(ctx context.Context, tx pgx.Tx, m projection.Model, e projection.Event) error {
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
	_, err := tx.Exec(ctx, `INSERT INTO `+m.Table("tallies")+` AS t (id, total, events) VALUES ($1, $2, 1)
		ON CONFLICT (id) DO UPDATE SET total = t.total + excluded.total, events = t.events + 1`, e.OriginatorID, added.N)
	return err
}

func harness() projectiontest.Harness[pgx.Tx] {
	type store = projection.Store[pgx.Tx]
	return projectiontest.Harness[pgx.Tx]{
		Open: func(t *testing.T) (store, *application.Application) {
			app := projectiontest.Open(t, pgtest.Env(t))
			return pgprojection.FromFactory(app.Factory().(*postgres.Factory)), app
		},
		Projection: func(version int, hook projectiontest.Hook) projection.Projection[pgx.Tx] {
			return tallies{version: version, hook: hook}
		},
		Read: func(ctx context.Context, s store) (projectiontest.Totals, error) {
			ps := s.(*pgprojection.Store)
			var out projectiontest.Totals
			err := ps.Pool().QueryRow(ctx, `SELECT count(*), coalesce(sum(total), 0)::bigint, coalesce(sum(events), 0)::bigint FROM `+
				ps.View("tallies", "tallies")).Scan(&out.Tallies, &out.Sum, &out.Events)
			return out, err
		},
		Tables: func(ctx context.Context, s store, name string) ([]string, error) {
			ps := s.(*pgprojection.Store)
			rows, err := ps.Pool().Query(ctx, `SELECT table_name FROM information_schema.tables
				WHERE table_schema = $1 AND table_type = 'BASE TABLE' AND starts_with(table_name, $2) ORDER BY table_name`, ps.Schema(), name+"_v")
			if err != nil {
				return nil, err
			}
			return pgx.CollectRows(rows, pgx.RowTo[string])
		},
		Parked: func(ctx context.Context, s store, name string) ([]projection.ParkedEvent, error) {
			return s.(*pgprojection.Store).Parked(ctx, name)
		},
	}
}

func TestStore(t *testing.T) { projectiontest.Run(t, harness()) }

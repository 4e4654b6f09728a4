package projection_test

import (
	"context"
	"errors"
	"maps"
	"testing"

	"github.com/google/uuid"

	"github.com/strata-go/strata/application"
	_ "github.com/strata-go/strata/persistence/memory"
	"github.com/strata-go/strata/projection"
	"github.com/strata-go/strata/projection/projectiontest"
)

// row is one tally of the in-memory tally model.
type row struct{ Total, Events int }

type tallies = map[uuid.UUID]row

type memoryTallies struct {
	version int
	hook    projectiontest.Hook
}

func (p memoryTallies) Name() string     { return "tallies" }
func (p memoryTallies) Version() int     { return p.version }
func (p memoryTallies) Tables() []string { return []string{"tallies"} }
func (p memoryTallies) Setup(context.Context, *projection.MemoryTx[tallies], projection.Model) error {
	return nil
}

func (p memoryTallies) Process(_ context.Context, tx *projection.MemoryTx[tallies], m projection.Model, e projection.Event) error {
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
	model := tx.Model(m)
	r := (*model)[e.OriginatorID]
	r.Total += added.N
	r.Events++
	(*model)[e.OriginatorID] = r
	return nil
}

func newMemoryStore() *projection.MemoryStore[tallies] {
	return projection.NewMemoryStore(func() tallies { return tallies{} }, maps.Clone[tallies])
}

func TestMemoryStore(t *testing.T) {
	type store = projection.Store[*projection.MemoryTx[tallies]]
	projectiontest.Run(t, projectiontest.Harness[*projection.MemoryTx[tallies]]{
		Open: func(t *testing.T) (store, *application.Application) {
			return newMemoryStore(), projectiontest.Open(t, map[string]string{"PERSISTENCE_MODULE": "memory"})
		},
		Projection: func(version int, hook projectiontest.Hook) projection.Projection[*projection.MemoryTx[tallies]] {
			return memoryTallies{version: version, hook: hook}
		},
		Read: func(_ context.Context, s store) (projectiontest.Totals, error) {
			var out projectiontest.Totals
			live := false
			s.(*projection.MemoryStore[tallies]).Read("tallies", func(v tallies, version int) {
				live = version > 0
				for _, r := range v {
					out.Tallies++
					out.Sum += r.Total
					out.Events += r.Events
				}
			})
			if !live {
				return out, errors.New("no version of the tally model is live")
			}
			return out, nil
		},
		Parked: func(_ context.Context, s store, name string) ([]projection.ParkedEvent, error) {
			return s.(*projection.MemoryStore[tallies]).Parked(), nil
		},
	})
}

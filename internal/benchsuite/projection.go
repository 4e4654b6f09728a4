package benchsuite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/examples/worlds"
	"github.com/strata-go/strata/persistence/postgres"
	"github.com/strata-go/strata/persistence/sqlite"
	"github.com/strata-go/strata/projection"
	"github.com/strata-go/strata/projection/pgprojection"
	"github.com/strata-go/strata/projection/sqliteprojection"
)

// ProjectionResult is one round of a projection's throughput: the Worlds
// example's leader saving one event per save, and a projection counting
// each world's events in a table of the same database, with the runner's
// default batches.
type ProjectionResult struct {
	Store  string
	Events int
	// LeaderAlone is the leader's save throughput in events/s with no
	// projection running: the baseline.
	LeaderAlone float64
	// CatchUp is the projection's throughput on a backlog (the baseline's
	// events).
	CatchUp float64
	// LeaderFollowed is the leader's save throughput while the projection
	// follows.
	LeaderFollowed float64
	// Projection is the projection's throughput while the leader saves as
	// fast as it can: the events over the time from the first save to the
	// model having the last.
	Projection float64
	// Ratio is Projection over LeaderAlone.
	Ratio float64
}

// happenings counts each world's events; the same model in each dialect.
type happenings struct{ postgres bool }

func (happenings) Name() string     { return "happenings" }
func (happenings) Version() int     { return 1 }
func (happenings) Tables() []string { return []string{"worlds"} }

func (p happenings) create(m projection.Model) string {
	id := "TEXT"
	if p.postgres {
		id = "UUID"
	}
	return `CREATE TABLE IF NOT EXISTS ` + m.Table("worlds") + ` (id ` + id + ` PRIMARY KEY, events BIGINT NOT NULL, last TEXT NOT NULL)`
}

func (p happenings) upsert(m projection.Model) string {
	args := "?, ?"
	if p.postgres {
		args = "$1, $2"
	}
	return `INSERT INTO ` + m.Table("worlds") + ` (id, last, events) VALUES (` + args + `, 1)
		ON CONFLICT (id) DO UPDATE SET events = ` + m.Table("worlds") + `.events + 1, last = excluded.last`
}

func what(e projection.Event) (string, bool) {
	if s, ok := e.Data.(worlds.SomethingHappened); ok {
		return s.What, true
	}
	return "", false
}

type sqliteHappenings struct{ happenings }

func (p sqliteHappenings) Setup(ctx context.Context, tx *sql.Tx, m projection.Model) error {
	_, err := tx.ExecContext(ctx, p.create(m))
	return err
}

func (p sqliteHappenings) Process(ctx context.Context, tx *sql.Tx, m projection.Model, e projection.Event) error {
	if w, ok := what(e); ok {
		_, err := tx.ExecContext(ctx, p.upsert(m), e.OriginatorID.String(), w)
		return err
	}
	return nil
}

type pgHappenings struct{ happenings }

func (p pgHappenings) Setup(ctx context.Context, tx pgx.Tx, m projection.Model) error {
	_, err := tx.Exec(ctx, p.create(m))
	return err
}

func (p pgHappenings) Process(ctx context.Context, tx pgx.Tx, m projection.Model, e projection.Event) error {
	if w, ok := what(e); ok {
		_, err := tx.Exec(ctx, p.upsert(m), e.OriginatorID, w)
		return err
	}
	return nil
}

// waiter is what the measurement needs of a runner of either dialect.
type waiter interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	WaitFor(ctx context.Context, positions map[string]int64) error
}

// ProjectionThroughput measures a projection in a fresh SQLite or
// PostgreSQL store (env) in three phases: the leader alone saves n events
// (the baseline); the projection's runner starts and catches up on them;
// then the leader saves n more while the runner follows.
func ProjectionThroughput(ctx context.Context, store string, env map[string]string, n int) (ProjectionResult, error) {
	res := ProjectionResult{Store: store, Events: n}
	if n < 1 {
		return res, errors.New("projection throughput: no events to measure")
	}
	app, err := worlds.New(ctx, application.WithoutProcessEnv(), application.WithEnv(env))
	if err != nil {
		return res, err
	}
	defer app.Close()
	var last int64
	start := time.Now()
	if err := saveEvents(ctx, app, n, "backlog", func(id int64) { last = id }); err != nil {
		return res, fmt.Errorf("leader alone: %w", err)
	}
	res.LeaderAlone = float64(n) / time.Since(start).Seconds()

	src := []projection.Source{projection.FromApplication(ctx, app.Application)}
	var r waiter
	switch f := app.Factory().(type) {
	case *sqlite.Factory:
		r, err = projection.NewRunner[*sql.Tx](sqliteprojection.FromFactory(f), sqliteHappenings{}, src)
	case *postgres.Factory:
		r, err = projection.NewRunner[pgx.Tx](pgprojection.FromFactory(f), pgHappenings{happenings{postgres: true}}, src)
	default:
		err = fmt.Errorf("projection throughput: store %s has no projection store", store)
	}
	if err != nil {
		return res, err
	}
	start = time.Now()
	if err := r.Start(ctx); err != nil {
		return res, err
	}
	defer r.Stop(context.WithoutCancel(ctx))
	if err := r.WaitFor(ctx, map[string]int64{app.Name(): last}); err != nil {
		return res, fmt.Errorf("catch up: %w", err)
	}
	res.CatchUp = float64(n) / time.Since(start).Seconds()

	start = time.Now()
	if err := saveEvents(ctx, app, n, "thing", func(id int64) { last = id }); err != nil {
		return res, fmt.Errorf("leader followed: %w", err)
	}
	res.LeaderFollowed = float64(n) / time.Since(start).Seconds()
	if err := r.WaitFor(ctx, map[string]int64{app.Name(): last}); err != nil {
		return res, fmt.Errorf("follow: %w", err)
	}
	res.Projection = float64(n) / time.Since(start).Seconds()
	res.Ratio = res.Projection / res.LeaderAlone
	return res, r.Stop(ctx)
}

// PrintProjection writes rounds of results as a table, one row per store:
// the medians, and the ratio's median with its minimum and maximum.
func PrintProjection(w io.Writer, rounds []ProjectionResult) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "store\tevents\trounds\tleader alone/s\tcatch-up/s\tleader followed/s\tprojection/s\tprojection/leader alone (min–max)")
	var stores []string
	for _, r := range rounds {
		if !slices.Contains(stores, r.Store) {
			stores = append(stores, r.Store)
		}
	}
	for _, s := range stores {
		var alone, catchUp, followed, proj, ratio []float64
		n := 0
		for _, r := range rounds {
			if r.Store == s {
				alone, catchUp, proj, ratio = append(alone, r.LeaderAlone), append(catchUp, r.CatchUp), append(proj, r.Projection), append(ratio, r.Ratio)
				followed = append(followed, r.LeaderFollowed)
				n = r.Events
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%.0f\t%.0f\t%.0f\t%.2fx (%.2f–%.2f)\n", s, n, len(ratio), median(alone), median(catchUp), median(followed), median(proj),
			median(ratio), slices.Min(ratio), slices.Max(ratio))
	}
	tw.Flush()
}

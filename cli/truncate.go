package cli

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/persistence"
)

// TruncateConfig says how [Admin.Truncate] truncates streams.
type TruncateConfig struct {
	// MaxAge, if positive, truncates only events older than it; without
	// it, every event before an aggregate's latest snapshot.
	MaxAge time.Duration
	// Archive, if not nil, is the Admin of a second store of the same
	// domain that receives the truncated events before they are deleted.
	Archive *Admin
	// Force truncates even while followers have not processed every
	// notification of the application (they would never see the
	// truncated ones).
	Force bool
	// Progress, if not nil, is called after each aggregate.
	Progress func(Progress)
}

// TruncateReport is what [Admin.Truncate] did.
type TruncateReport struct {
	// Aggregates is how many aggregates of the type have a snapshot (the
	// only ones that can be truncated), Truncated how many were.
	Aggregates, Truncated int
	// Deleted is how many events were deleted, Archived how many of them
	// were recorded in the archive first.
	Deleted, Archived int
}

// Truncate truncates the streams of every instance of the named aggregate
// type in the Admin's tenant that has a snapshot, each up to its latest
// snapshot (see application.Application.Truncate): the aggregates stay
// loadable from their snapshots. Instances are found by their snapshots
// (the snapshot store must list its aggregates: persistence.Lister).
//
// Unless c.Force, it is refused, with an error wrapping
// [ErrLiveFollowers], while a follower of the application has not
// processed every notification of the tenant. When ctx ends it stops
// between two aggregates, each truncated whole, and returns what it did
// with ctx's error.
func (a *Admin) Truncate(ctx context.Context, aggregate string, c TruncateConfig) (TruncateReport, error) {
	var rep TruncateReport
	t, err := a.aggregate(aggregate)
	if err != nil {
		return rep, err
	}
	app, err := a.view(ctx, t.app)
	if err != nil {
		return rep, err
	}
	fail := func(err error) (TruncateReport, error) {
		return rep, fmt.Errorf("truncate %s after %d stream(s): %w", t.name, rep.Truncated, err)
	}
	if _, ok := app.Factory().(persistence.Truncater); !ok {
		return fail(fmt.Errorf("%w (%s)", application.ErrNotTruncatable, describeStore(app.Env())))
	}
	if err := a.checkFollowers(ctx, app, c.Force); err != nil {
		return fail(err)
	}
	var opts []application.TruncateOption
	if c.MaxAge > 0 {
		opts = append(opts, application.TruncateOlderThan(c.MaxAge))
	}
	if c.Archive != nil {
		// Every application of the archive is opened (its tables made),
		// so that the archive is a store of the domain, which the
		// commands that read can open.
		for _, name := range c.Archive.Applications() {
			archive, err := c.Archive.Application(ctx, name)
			if err != nil {
				return fail(fmt.Errorf("archive: %w", err))
			}
			if name == t.app {
				opts = append(opts, application.ArchiveTo(archive))
			}
		}
	}
	lister, ok := app.Snapshots().Recorder().(persistence.Lister)
	if !ok {
		return fail(fmt.Errorf("the snapshot store of %s cannot list its aggregates", t.app))
	}
	topics := append([]string{t.info.Topic()}, t.info.Aliases()...)
	// Listing first, then truncating, so that no cursor stays open while
	// writing.
	var ids []persistence.StoredEvent
	for id, err := range lister.Originators(ctx) {
		if err != nil {
			return fail(err)
		}
		latest, err := app.Snapshots().Recorder().SelectEvents(ctx, id, persistence.EventQuery{Desc: true, Limit: 1})
		if err != nil {
			return fail(err)
		}
		if len(latest) > 0 && slices.Contains(topics, latest[0].Topic) {
			ids = append(ids, latest[0])
		}
	}
	rep.Aggregates = len(ids)
	for i, snap := range ids {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		res, err := app.Truncate(ctx, snap.OriginatorID, opts...)
		rep.Archived += res.Archived
		if err != nil {
			return fail(err)
		}
		if res.Deleted > 0 {
			rep.Truncated++
			rep.Deleted += res.Deleted
		}
		if c.Progress != nil {
			c.Progress(Progress{Aggregate: t.name, Done: i + 1, Total: len(ids)})
		}
	}
	return rep, nil
}

func (r *root) truncateCommand() *cobra.Command {
	var aggregate, archive string
	var maxAge time.Duration
	var force bool
	cmd := &cobra.Command{
		Use:   "truncate",
		Short: "Delete (or archive) the events of a type's streams that snapshots make unnecessary",
		Long: `Truncate the streams of every instance of an aggregate type that has a
snapshot, in the default tenant or the one of --tenant: delete the events
before the aggregate's latest snapshot (the snapshot's own event stays),
each stream in one transaction. Loading starts from the snapshot, so the
aggregates stay loadable; nothing past an aggregate's latest snapshot is
ever truncated, and a save's events are kept or truncated together. Take
snapshots first (snapshot create).

  --max-age D     truncate only the events older than D (such as 720h)
  --archive STORE record the truncated events in a second store first, each
                  commit as it was (the store of the same domain; see below),
                  so that they can still be read there

The truncated events' notifications leave the log: while a follower of the
application has not processed every notification of the tenant, the
command refuses (it would never see them); --force truncates all the same.
The truncated versions stay taken: a writer holding an older copy of an
aggregate gets a conflict. verify reports a truncated stream as truncated,
not as missing versions. The store must offer truncation (memory, SQLite,
PostgreSQL).

` + storeSpecHelp + `

Output:
  Truncated 3 of 3 World stream(s) with a snapshot: 57 event(s) deleted.
  (with --archive: "57 event(s) archived to ..., then deleted.")`,
		Example: r.examples("truncate --aggregate "+r.aggregate, "truncate --aggregate "+r.aggregate+" --max-age 720h --archive archive.db"),
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if maxAge < 0 {
				return usageError{fmt.Errorf("--max-age %s: a negative age", maxAge)}
			}
			admin, err := r.load(writing)
			if err != nil {
				return err
			}
			defer admin.Close()
			c := TruncateConfig{MaxAge: maxAge, Force: force}
			where := ""
			if archive != "" {
				arch, err := r.loadStore("--archive", archive, writing)
				if err != nil {
					return err
				}
				defer arch.Close()
				if err := arch.SetTenant(r.tenant); err != nil {
					return usageError{fmt.Errorf("--tenant: %w", err)}
				}
				c.Archive = arch
				vars, _ := ParseStore(archive)
				where = describeStore(persistence.NewEnv("", persistence.ProcessEnv(), vars))
			}
			bar := newProgressBar(cmd.ErrOrStderr())
			if bar != nil {
				c.Progress = bar.update
			}
			ctx := cmd.Context()
			rep, err := admin.Truncate(ctx, aggregate, c)
			bar.clear()
			if err != nil {
				if ctx.Err() != nil {
					return interruptedError{msg: fmt.Sprintf("Interrupted after truncating %d stream(s) (%d event(s) deleted); each is complete.", rep.Truncated, rep.Deleted), err: err}
				}
				return err
			}
			what := fmt.Sprintf("%d event(s) deleted", rep.Deleted)
			if archive != "" {
				what = fmt.Sprintf("%d event(s) archived to %s, then deleted", rep.Archived, where)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Truncated %d of %d %s stream(s) with a snapshot: %s.\n", rep.Truncated, rep.Aggregates, aggregate, what)
			return nil
		},
	}
	cmd.Flags().StringVar(&aggregate, "aggregate", "", "the aggregate type, such as World (required)")
	cmd.Flags().DurationVar(&maxAge, "max-age", 0, "truncate only events older than this (default: every event before the latest snapshot)")
	cmd.Flags().StringVar(&archive, "archive", "", "record the truncated events in this store first (a SQLite file, a postgres:// URL or VAR=VALUE,...)")
	cmd.Flags().BoolVar(&force, "force", false, "truncate even if followers have not processed everything")
	_ = cmd.MarkFlagRequired("aggregate")
	return cmd
}

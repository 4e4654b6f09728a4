package cli

import (
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/spf13/cobra"
)

func (r *root) snapshotCommand() *cobra.Command {
	group := &cobra.Command{
		Use:   "snapshot",
		Short: "Manage snapshots of event-sourced aggregates",
		Long: `Manage snapshots of event-sourced aggregates. A snapshot holds an aggregate's
state at one version, so that loading it replays only the events after that
version. Applications take snapshots as they are configured to
(IS_SNAPSHOTTING_ENABLED, SNAPSHOT_THRESHOLD); snapshot create takes them on
demand: after a migration or a bulk import, to warm up hot aggregates, or for
aggregates with fewer events than the threshold.`,
		Args: cobra.NoArgs,
	}
	var aggregate, identifier string
	create := &cobra.Command{
		Use:   "create",
		Short: "Create snapshots of one aggregate, of all of a type, or of all",
		Long: `Create snapshots of event-sourced aggregates, in one of three modes:

  --aggregate User --identifier ID   one instance, rebuilt from all its events
                                     even if it has a snapshot (a forced
                                     refresh); the snapshot replaces any at
                                     the same version
  --aggregate User                   every instance of the type
  (neither)                          every instance of every event-sourced
                                     aggregate type of the domain

Instances are found in their application's notification log by the events
that create them, a page at a time, up to the last event when the command
starts, and truncated instances (strata truncate) by their snapshots. On a terminal, stderr shows a progress bar. Ctrl-C stops between two
snapshots: the ones created are complete.

Output:
  Snapshot created for User with identifier ID.
  Created 42 snapshot(s) for User.
  User: 42 snapshot(s)                   (a line per type, then)
  Created 57 snapshot(s) across 2 aggregate(s).

Errors (exit status 1): an aggregate type "not found in domain"; a type that
is "not an event-sourced aggregate"; an identifier whose aggregate "does not
exist". --identifier without --aggregate is a wrong command line (exit status
2). A domain without event-sourced aggregates is not an error.`,
		Example: r.examples("snapshot create", "snapshot create --aggregate "+r.aggregate,
			"snapshot create --aggregate "+r.aggregate+" --identifier "+sampleID),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if identifier != "" && aggregate == "" {
				return usageError{errors.New("--identifier requires --aggregate")}
			}
			admin, err := r.load(writing)
			if err != nil {
				return err
			}
			defer admin.Close()
			ctx, out := cmd.Context(), cmd.OutOrStdout()
			bar := newProgressBar(cmd.ErrOrStderr())
			var opts []SnapshotOption
			if bar != nil {
				opts = append(opts, WithProgress(bar.update))
			}
			interrupted := func(n int, err error) error {
				bar.clear()
				if ctx.Err() != nil {
					return interruptedError{msg: fmt.Sprintf("Interrupted: created %d snapshot(s) before the interruption.", n), err: err}
				}
				return err
			}
			switch {
			case identifier != "":
				if _, err := admin.aggregate(aggregate); err != nil {
					return err
				}
				id, err := uuid.Parse(identifier)
				if err != nil {
					return fmt.Errorf("%s with identifier %s %w (identifiers are UUIDs)", aggregate, identifier, ErrInstanceNotFound)
				}
				if _, err := admin.CreateSnapshot(ctx, aggregate, id); err != nil {
					return interrupted(0, err)
				}
				fmt.Fprintf(out, "Snapshot created for %s with identifier %s.\n", aggregate, identifier)
			case aggregate != "":
				n, err := admin.CreateSnapshots(ctx, aggregate, opts...)
				if err != nil {
					return interrupted(n, err)
				}
				bar.clear()
				fmt.Fprintf(out, "Created %d snapshot(s) for %s.\n", n, aggregate)
			default:
				names := admin.Aggregates()
				if len(names) == 0 {
					fmt.Fprintln(out, "No event-sourced aggregates found in domain.")
					return nil
				}
				counts, err := admin.CreateAllSnapshots(ctx, opts...)
				total := 0
				for _, n := range counts {
					total += n
				}
				if err != nil {
					return interrupted(total, err)
				}
				bar.clear()
				for _, name := range names {
					fmt.Fprintf(out, "%s: %d snapshot(s)\n", name, counts[name])
				}
				fmt.Fprintf(out, "Created %d snapshot(s) across %d aggregate(s).\n", total, len(names))
			}
			return nil
		},
	}
	create.Flags().StringVar(&aggregate, "aggregate", "", "the aggregate type, such as World (default: every event-sourced aggregate type)")
	create.Flags().StringVar(&identifier, "identifier", "", identifierFlag+" (requires --aggregate; default: every instance)")
	group.AddCommand(create)
	return group
}

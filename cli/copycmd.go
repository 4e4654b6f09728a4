package cli

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-go/strata/persistence"
)

func (r *root) copyCommand() *cobra.Command {
	var from, to string
	var visible time.Duration
	cmd := &cobra.Command{
		Use:   "copy",
		Short: "Copy every application's events, snapshots and tracking to another store, then verify it",
		Long: `Copy the stores of the domain's applications from the store of --from to the
store of --to (SQLite to PostgreSQL, PostgreSQL to MySQL, any store the
command can open), every tenant's data:

  events     in the order of the source's notification log, each commit in
             one transaction with its commit ID and headers; versions,
             topics and stored state unchanged (encrypted state stays
             encrypted: the target needs the same CIPHER_KEY)
  snapshots  and data keys (CIPHER_DATA_KEYS), replaced if copied before
  tracking   the followers' positions, translated to the target's
             notification IDs (the target numbers its log its own way)

Then it verifies the target as verify does, and exits 1 if verify finds a
problem. The source is opened read-only.

Interrupted (Ctrl-C, a kill, a lost connection), the copy can be run again
with the same arguments: each commit is recorded in the target with a
checkpoint (a tracking record of upstream "strata copy" at the commit's
position in the source), in the same transaction, and a new run goes on
after the last one, without duplicates. A target that has events but no
checkpoint is refused. Nothing else may write to the target during a copy.

The copy reads the target's notification log back (where an interrupted
copy stopped, the followers' positions). On PostgreSQL a commit shows in
that log only once the transactions that began before it, in any database
of the cluster, have ended: the copy waits for them up to --visible-within,
then fails naming the backend that holds it back.

` + storeSpecHelp + `

On a terminal, a progress bar on stderr shows each application's events,
snapshots and tracking; piped, there is none.

Output:
  Copied 129 notification(s) in 72 commit(s), 9 snapshot(s) and key(s), 63 tracking record(s)
  from SQLite database strata.db to PostgreSQL database test on 127.0.0.1:5432, schema copy.
  Verified Worlds, Counters: 129 notification(s), 9 aggregate(s), 9 snapshot(s), 1 tracking position(s): no problems.

Exit status: 0 copied and verified, 1 failed or verify found problems, 2
wrong command line, 130 interrupted (run it again to go on).`,
		Example: r.examples("copy --from strata.db --to postgres://postgres@127.0.0.1:5432/test",
			"copy --from strata.db --to PERSISTENCE_MODULE=mysql,MYSQL_DSN=root@tcp(127.0.0.1:3306)/strata"),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if r.tenant != "" {
				return usageError{errors.New("--tenant: copy copies every tenant's data; it takes no --tenant")}
			}
			if r.db != "" {
				return usageError{errors.New("--db: copy reads the store of --from and writes that of --to; it takes no --db")}
			}
			fromVars, err := ParseStore(from)
			if err != nil {
				return usageError{fmt.Errorf("--from: %w", err)}
			}
			toVars, err := ParseStore(to)
			if err != nil {
				return usageError{fmt.Errorf("--to: %w", err)}
			}
			fromName, toName := describeStore(persistence.NewEnv("", persistence.ProcessEnv(), fromVars)), describeStore(persistence.NewEnv("", persistence.ProcessEnv(), toVars))
			if fromName == toName {
				return usageError{fmt.Errorf("--from and --to are the same store (%s)", fromName)}
			}
			src, err := r.loadStore("--from", from, reading)
			if err != nil {
				return err
			}
			defer src.Close()
			dst, err := r.loadStore("--to", to, writing)
			if err != nil {
				return err
			}
			defer dst.Close()
			ctx := cmd.Context()
			bar := newProgressBar(cmd.ErrOrStderr())
			opts := []CopyOption{CopyVisibleWithin(visible)}
			if bar != nil {
				opts = append(opts, CopyProgressFunc(func(p CopyProgress) {
					bar.update(Progress{Aggregate: p.Application + " " + p.Step, Done: int(p.Done), Total: int(p.Total)})
				}))
			}
			rep, err := src.CopyTo(ctx, dst, opts...)
			bar.clear()
			out := cmd.OutOrStdout()
			for _, name := range rep.Applications {
				if n := rep.Resumed[name]; n > 0 {
					fmt.Fprintf(out, "Resumed the copy of %s after notification %d.\n", name, n)
				}
			}
			if err != nil {
				if ctx.Err() != nil {
					return interruptedError{msg: fmt.Sprintf("Interrupted after copying %d notification(s) in %d commit(s); run the same command again to go on.", rep.Notifications, rep.Commits), err: err}
				}
				return err
			}
			fmt.Fprintf(out, "Copied %d notification(s) in %d commit(s), %d snapshot(s) and key(s), %d tracking record(s)\nfrom %s to %s.\n",
				rep.Notifications, rep.Commits, rep.Records, rep.Tracking, fromName, toName)
			// The target as a reader opens it.
			check, err := r.loadStore("--to", to, reading)
			if err != nil {
				return err
			}
			defer check.Close()
			var vopts []VerifyOption
			if bar != nil {
				vopts = append(vopts, VerifyProgressFunc(func(p VerifyProgress) {
					bar.update(Progress{Aggregate: "verify " + p.Application + " " + p.Step, Done: int(p.Done), Total: int(p.Total)})
				}))
			}
			vrep, err := check.Verify(ctx, vopts...)
			bar.clear()
			if err != nil {
				if ctx.Err() != nil {
					return interruptedError{msg: "Interrupted: the copy is complete, its verification is not.", err: err}
				}
				return fmt.Errorf("verify the target: %w", err)
			}
			fmt.Fprint(out, formatReport(vrep))
			if !vrep.OK() {
				return fmt.Errorf("%w: the target has %d problem(s)", ErrProblems, len(vrep.Problems))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the store to copy from: a SQLite file, a postgres:// URL or VAR=VALUE,... (required)")
	cmd.Flags().StringVar(&to, "to", "", "the store to copy to, given the same way (required)")
	cmd.Flags().DurationVar(&visible, "visible-within", DefaultCopyVisibleWithin, "how long to wait for the copied commits to show in the target's log (PostgreSQL: until older transactions end)")
	_ = cmd.MarkFlagRequired("from")
	_ = cmd.MarkFlagRequired("to")
	return cmd
}

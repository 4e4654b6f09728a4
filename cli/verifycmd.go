package cli

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
)

// ErrProblems means that verify found problems in a store; the report
// lists them.
var ErrProblems = errors.New("the store has problems")

func (r *root) verifyCommand() *cobra.Command {
	var apps []string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Read the store end to end and report damage (exit status 1 if any)",
		Long: `Read the stores of the domain's applications end to end, every tenant's data,
and report what is wrong with them. It writes nothing: the stores are opened
read-only. It finds:

  versions   an aggregate whose versions are not contiguous from its type's
             initial version (a version missing)
  decode     an event that does not decode: an unknown topic, a wrong
             CIPHER_KEY, corrupt bytes, a damaged originator ID
  order      notification IDs out of order: the log's IDs not increasing, or
             an aggregate's later version with a lower notification ID
  tracking   a follower's tracking record ahead of its upstream's last
             notification
  snapshot   a snapshot that does not decode or does not match the aggregate
             rebuilt from its events at the snapshot's version

As text, one line per problem, then a summary:

  versions Worlds: aggregate 0b9ab1a2-3c4d-4e5f-8a6b-7c8d9e0f1a2b: version 4 is missing (it has versions up to 21)
  Verified Worlds, Counters: 127 notification(s), 9 aggregate(s), 6 snapshot(s), 1 tracking position(s): 1 problem(s).

With --json, one JSON object: applications, notifications, aggregates,
snapshots, tracking (the counts read) and problems, each with kind,
application, tenant (unless the default), aggregate_id, version and
notification_id (where they apply) and message.

On a terminal, a progress bar on stderr shows each application's
notifications and aggregates; piped, there is none.

Exit status: 0 no problems, 1 problems found (or the store cannot be read),
2 wrong command line, 130 interrupted.`,
		Example: r.examples("verify", "verify --application "+r.application+" --json"),
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if r.tenant != "" {
				return usageError{errors.New("--tenant: verify reads every tenant's data; it takes no --tenant")}
			}
			admin, err := r.load(reading)
			if err != nil {
				return err
			}
			defer admin.Close()
			ctx := cmd.Context()
			opts := []VerifyOption{VerifyApplications(apps...)}
			bar := newProgressBar(cmd.ErrOrStderr())
			if bar != nil {
				opts = append(opts, VerifyProgressFunc(func(p VerifyProgress) {
					bar.update(Progress{Aggregate: p.Application + " " + p.Step, Done: int(p.Done), Total: int(p.Total)})
				}))
			}
			rep, err := admin.Verify(ctx, opts...)
			bar.clear()
			if err != nil {
				if ctx.Err() != nil {
					return interruptedError{msg: "Interrupted: the store was not verified to its end.", err: err}
				}
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetEscapeHTML(false)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else if _, err := fmt.Fprint(out, formatReport(rep)); err != nil {
				return err
			}
			if !rep.OK() {
				return fmt.Errorf("%w: found %d problem(s)", ErrProblems, len(rep.Problems))
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&apps, "application", nil, "verify only these applications, comma-separated (default: every application of the domain)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as one JSON object")
	return cmd
}

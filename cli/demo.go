package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/strata-go/strata/system"
)

func (r *root) demoCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "Fill the store with the domain's demo and print what happened",
		Long: `Run the domain's demo on the configured store (by default ` + r.defaultStore() + `):
it creates aggregates of the domain's
types, saves their events through the domain's applications (followers process
them as they are saved), and prints what happened and where the data is.
Running it again adds more.`,
		Example: r.examples("demo", "demo --db demo.db"+r.otherDomain),
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if r.tenant != "" {
				// A domain's demo saves through its applications, which are
				// the default tenant's: with --tenant it would still write
				// there.
				return usageError{fmt.Errorf("--tenant %q: the demo runs in the default tenant only", r.tenant)}
			}
			admin, err := r.load(writing)
			if err != nil {
				return err
			}
			defer admin.Close()
			d := admin.Domain()
			if d.Demo == nil {
				return fmt.Errorf("domain %s has no demo", d.Name)
			}
			var opts []system.Option
			for _, name := range admin.Applications() {
				opts = append(opts, system.WithAppOptions(name, r.storeOptions()...))
			}
			runner := system.NewSingleThreadedRunner(admin.sys, opts...)
			ctx := cmd.Context()
			if err := runner.Start(ctx); err != nil {
				return fmt.Errorf("start the applications of domain %s: %w", d.Name, err)
			}
			defer runner.Stop(ctx)
			out := cmd.OutOrStdout()
			if err := d.Demo(ctx, runner, out); err != nil {
				return fmt.Errorf("demo of domain %s: %w", d.Name, err)
			}
			if err := runner.Err(); err != nil {
				return fmt.Errorf("demo of domain %s: processing: %w", d.Name, err)
			}
			if apps := admin.Applications(); len(apps) > 0 {
				first, err := runner.Get(apps[0])
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "Stored in %s.\n", describeStore(first.App().Env()))
			}
			name, flag := cmd.Root().Name(), r.domainFlag(d.Name)
			next := []string{name + " log" + flag}
			if aggs := admin.Aggregates(); len(aggs) > 0 {
				next = append(next, name+" events"+flag+" --aggregate "+aggs[0]+" --identifier ID", name+" snapshot create"+flag)
			}
			fmt.Fprintf(out, "Next: %s\n", strings.Join(next, ", "))
			return nil
		},
	}
}

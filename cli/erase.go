package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/persistence"
)

// ErrLiveFollowers means a deletion refused because a follower of the
// application has not processed the notifications it would delete: it
// would never see them. Force the deletion to go on.
var ErrLiveFollowers = errors.New("followers have not processed everything")

// checkFollowers refuses, unless force, when a follower of the leader
// named app has tracked less than the tenant's last notification there.
func (a *Admin) checkFollowers(ctx context.Context, app *application.Application, force bool) error {
	if force {
		return nil
	}
	last, err := app.Recorder().MaxNotificationID(ctx)
	if err != nil {
		return err
	}
	for _, f := range a.sys.Followers(app.Name()) {
		follower, err := a.Application(ctx, f)
		if err != nil {
			return err
		}
		rec, ok := follower.Recorder().(persistence.ProcessRecorder)
		if !ok {
			continue
		}
		tracked, err := rec.MaxTrackingID(ctx, app.Name())
		if err != nil {
			return err
		}
		if tracked < last {
			return fmt.Errorf("%w: %s has processed %s up to notification %d, not %d; run it first, or force", ErrLiveFollowers, f, app.Name(), tracked, last)
		}
	}
	return nil
}

// DeleteAggregate deletes the aggregate of the named type with the
// identifier, in the Admin's tenant: its events, commits and snapshots,
// atomically (see application.Application.DeleteAggregate). Unless force,
// it is refused, with an error wrapping [ErrLiveFollowers], while a
// follower of its application has not processed every notification of the
// tenant: a follower never sees what it had not read when it is deleted.
func (a *Admin) DeleteAggregate(ctx context.Context, aggregate string, id uuid.UUID, force bool) error {
	_, app, err := a.instance(ctx, aggregate, id)
	if err != nil {
		return err
	}
	if err := a.checkFollowers(ctx, app, force); err != nil {
		return fmt.Errorf("delete %s with identifier %s: %w", aggregate, id, err)
	}
	if _, err := app.DeleteAggregate(ctx, id); err != nil {
		return fmt.Errorf("delete %s with identifier %s: %w", aggregate, id, err)
	}
	return nil
}

// PurgeTenant deletes all the data of the Admin's tenant in every
// application of the domain (see application.Application.PurgeTenant),
// leaders' after their followers have processed them, unless force.
func (a *Admin) PurgeTenant(ctx context.Context, force bool) error {
	a.mu.Lock()
	tenant := a.tenant
	a.mu.Unlock()
	if tenant == "" {
		return fmt.Errorf("purge: %w: name the tenant (--tenant); the default tenant cannot be purged", persistence.ErrProgramming)
	}
	names := a.sys.Names()
	for _, name := range names {
		app, err := a.view(ctx, name)
		if err != nil {
			return err
		}
		if err := a.checkFollowers(ctx, app, force); err != nil {
			return fmt.Errorf("purge tenant %q: %w", tenant, err)
		}
	}
	for _, name := range names {
		app, err := a.view(ctx, name)
		if err != nil {
			return err
		}
		if err := app.PurgeTenant(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (r *root) deleteCommand() *cobra.Command {
	var aggregate, identifier string
	var force bool
	cmd := &cobra.Command{
		Use:   "delete",
		Short: "Delete one aggregate's events, commits and snapshots",
		Long: `Delete one aggregate's stream: its events (their notifications leave the
log; their IDs are never given again), its commit records and its snapshots,
in one transaction, in the default tenant or the one of --tenant.

While a follower of its application has not processed every notification
of the tenant, the command refuses (it would never see what it had not
read); --force deletes all the same. What followers derived from the
aggregate's events stays theirs.`,
		Example: r.examples("delete --aggregate " + r.aggregate + " --identifier " + sampleID),
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			admin, err := r.load(writing)
			if err != nil {
				return err
			}
			defer admin.Close()
			if _, err := admin.aggregate(aggregate); err != nil {
				return err
			}
			id, err := uuid.Parse(identifier)
			if err != nil {
				return fmt.Errorf("%s with identifier %s %w (identifiers are UUIDs)", aggregate, identifier, ErrInstanceNotFound)
			}
			if err := admin.DeleteAggregate(cmd.Context(), aggregate, id, force); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted %s %s.\n", aggregate, id)
			return nil
		},
	}
	cmd.Flags().StringVar(&aggregate, "aggregate", "", "the aggregate type, such as World (required)")
	cmd.Flags().StringVar(&identifier, "identifier", "", identifierFlag+" (required)")
	cmd.Flags().BoolVar(&force, "force", false, "delete even if followers have not processed everything")
	_ = cmd.MarkFlagRequired("aggregate")
	_ = cmd.MarkFlagRequired("identifier")
	return cmd
}

func (r *root) purgeCommand() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "purge",
		Short: "Delete all the data of one tenant (--tenant) in every application",
		Long: `Delete all the data of the tenant of --tenant in every application of the
domain: events, commits, snapshots and tracking records, one application
after the other, each in one transaction. Other tenants' data is untouched;
the default tenant cannot be purged.

While a follower has not processed every notification of the tenant, the
command refuses; --force purges all the same.`,
		Example: r.examples("purge --tenant acme"),
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if r.tenant == "" {
				return usageError{errors.New("purge needs --tenant")}
			}
			admin, err := r.load(writing)
			if err != nil {
				return err
			}
			defer admin.Close()
			if err := admin.PurgeTenant(cmd.Context(), force); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Purged tenant %q.\n", r.tenant)
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "purge even if followers have not processed everything")
	return cmd
}

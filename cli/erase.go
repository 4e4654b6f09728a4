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

// Erase erases the data key of the Admin's tenant in every application
// that encrypts with data keys per tenant, or, if aggregate is not empty,
// the data key of that aggregate (CIPHER_DATA_KEYS=aggregate): the events
// stay, unreadable for good (crypto-shredding).
func (a *Admin) Erase(ctx context.Context, aggregate string, id uuid.UUID) error {
	if aggregate != "" {
		_, app, err := a.instance(ctx, aggregate, id)
		if err != nil {
			return err
		}
		return app.EraseAggregate(ctx, id)
	}
	erased := 0
	for _, name := range a.sys.Names() {
		app, err := a.view(ctx, name)
		if err != nil {
			return err
		}
		if k := app.DataKeys(); k == nil || k.Scope() != persistence.KeyPerTenant {
			continue
		}
		if err := app.EraseTenant(ctx); err != nil {
			return err
		}
		erased++
	}
	if erased == 0 {
		return fmt.Errorf("erase: %w per tenant in domain %s (set CIPHER_DATA_KEYS=tenant and CIPHER_KEY)", application.ErrNoDataKeys, a.dom.Name)
	}
	return nil
}

// RotateDataKeys wraps the data keys of every application again with the
// current CIPHER_KEY (see application.Application.RotateDataKeys) and
// returns how many it wrapped.
func (a *Admin) RotateDataKeys(ctx context.Context) (int, error) {
	total := 0
	for _, name := range a.sys.Names() {
		app, err := a.Application(ctx, name)
		if err != nil {
			return total, err
		}
		if app.DataKeys() == nil {
			continue
		}
		n, err := app.RotateDataKeys(ctx)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func (r *root) eraseCommand() *cobra.Command {
	var aggregate, identifier string
	cmd := &cobra.Command{
		Use:   "erase",
		Short: "Erase the data key of a tenant or an aggregate (crypto-shredding)",
		Long: `Erase the data key that encrypts the data of the tenant of --tenant (the
default tenant without it) in every application, with CIPHER_DATA_KEYS=tenant,
or of one aggregate (--aggregate TYPE --identifier ID), with
CIPHER_DATA_KEYS=aggregate. The events stay in the log, in order, and can
never be decrypted again: log and events print them as <erased>, followers
go past them, and nothing more can be saved with that key. Processes that
cached the key use it for up to a minute more.`,
		Example: r.examples("erase --tenant acme", "erase --aggregate "+r.aggregate+" --identifier "+sampleID),
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (aggregate == "") != (identifier == "") {
				return usageError{errors.New("--aggregate and --identifier go together")}
			}
			admin, err := r.load(writing)
			if err != nil {
				return err
			}
			defer admin.Close()
			var id uuid.UUID
			if aggregate != "" {
				if _, err := admin.aggregate(aggregate); err != nil {
					return err
				}
				if id, err = uuid.Parse(identifier); err != nil {
					return fmt.Errorf("%s with identifier %s %w (identifiers are UUIDs)", aggregate, identifier, ErrInstanceNotFound)
				}
			}
			if err := admin.Erase(cmd.Context(), aggregate, id); err != nil {
				return err
			}
			if aggregate != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "Erased the data key of %s %s.\n", aggregate, id)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "Erased the data key of tenant %q.\n", r.tenant)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&aggregate, "aggregate", "", "the aggregate type, with CIPHER_DATA_KEYS=aggregate")
	cmd.Flags().StringVar(&identifier, "identifier", "", identifierFlag)
	return cmd
}

func (r *root) rotateKeysCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "rotate-keys",
		Short: "Wrap every data key again with the current CIPHER_KEY",
		Long: `Wrap every data key (CIPHER_DATA_KEYS) again with the current master key,
CIPHER_KEY, reading those wrapped by the previous ones (CIPHER_PREVIOUS_KEYS),
which are no longer needed afterwards. Events are not rewritten.`,
		Example: r.examples("rotate-keys"),
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			admin, err := r.load(writing)
			if err != nil {
				return err
			}
			defer admin.Close()
			n, err := admin.RotateDataKeys(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Wrapped %d data key(s) with the current CIPHER_KEY.\n", n)
			return nil
		},
	}
}

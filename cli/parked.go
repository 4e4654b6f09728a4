package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/strata-go/strata/system"
)

// Parked returns the notifications that the named follower (every
// follower of the domain if name is empty) parked and that are still
// parked (see system.ParkPoison), follower after follower.
func (a *Admin) Parked(ctx context.Context, name string) ([]*system.Parked, error) {
	followers, err := a.followers(name)
	if err != nil {
		return nil, err
	}
	var out []*system.Parked
	for _, f := range followers {
		app, err := a.Application(ctx, f)
		if err != nil {
			return nil, err
		}
		parked, err := system.ParkedNotifications(ctx, app)
		if err != nil {
			return nil, err
		}
		out = append(out, parked...)
	}
	return out, nil
}

func (a *Admin) followers(name string) ([]string, error) {
	var all []string
	for _, n := range a.sys.Names() {
		if a.sys.IsFollower(n) {
			all = append(all, n)
		}
	}
	if name == "" {
		return all, nil
	}
	if !slices.Contains(all, name) {
		return nil, fmt.Errorf("%w %q: not a follower of domain %s (followers: %s)", system.ErrUnknownApplication, name, a.dom.Name, strings.Join(all, ", "))
	}
	return []string{name}, nil
}

// RetryParked processes again a notification of upstream that the named
// follower parked, with the follower's policy: it starts the follower as a
// single-threaded runner does (which also processes what it had not yet
// processed), retries the notification, and stops. See
// system.Runner.RetryParked.
func (a *Admin) RetryParked(ctx context.Context, follower, upstream string, id int64) error {
	if _, err := a.followers(follower); err != nil {
		return err
	}
	opts := []system.Option{system.Hosting(follower)}
	for _, name := range a.sys.Names() {
		opts = append(opts, system.WithAppOptions(name, a.opts...))
	}
	r := system.NewSingleThreadedRunner(a.sys, opts...)
	if err := r.Start(ctx); err != nil {
		return err
	}
	defer r.Stop(context.WithoutCancel(ctx))
	return r.RetryParked(ctx, follower, upstream, id)
}

// SkipParked marks a parked notification skipped, with a reason (see
// system.SkipParked).
func (a *Admin) SkipParked(ctx context.Context, follower, upstream string, id int64, reason string) error {
	if _, err := a.followers(follower); err != nil {
		return err
	}
	if !slices.Contains(a.sys.Leaders(follower), upstream) {
		return fmt.Errorf("%w %q: %s does not follow it", system.ErrUnknownApplication, upstream, follower)
	}
	app, err := a.Application(ctx, follower)
	if err != nil {
		return err
	}
	return system.SkipParked(ctx, app, upstream, id, reason)
}

func (r *root) parkedCommand() *cobra.Command {
	var follower, upstream, reason string
	var id int64
	cmd := &cobra.Command{
		Use:   "parked",
		Short: "List, retry or skip the notifications that followers parked",
		Long: `List the notifications that followers parked because they could not process
them (a runner with system.ParkPoison parks them instead of stopping), one line
each: the follower, the upstream application, the notification ID, its topic,
and the error.

  parked retry   processes a parked notification again with the follower's
                 policy (after a fix); its results are recorded exactly once
  parked skip    marks a parked notification skipped, with a reason`,
		Example: r.examples("parked", "parked retry --application Counters --upstream Worlds --notification 42",
			"parked skip --application Counters --upstream Worlds --notification 42 --reason \"written by a bug\""),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			admin, err := r.load(reading)
			if err != nil {
				return err
			}
			defer admin.Close()
			parked, err := admin.Parked(cmd.Context(), follower)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			for _, p := range parked {
				fmt.Fprintf(out, "%s: notification %d of %s (%s): %s\n", p.Follower, p.NotificationID, p.Upstream, p.Topic, p.Error)
			}
			if len(parked) == 0 {
				fmt.Fprintln(out, "No parked notifications.")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&follower, "application", "", "the follower whose parked notifications to list (default: every follower)")
	which := func(c *cobra.Command) {
		f := c.Flags()
		f.StringVar(&follower, "application", "", "the follower that parked the notification")
		f.StringVar(&upstream, "upstream", "", "the application the notification belongs to")
		f.Int64Var(&id, "notification", 0, "the notification's ID in the upstream log")
		for _, name := range []string{"application", "upstream", "notification"} {
			c.MarkFlagRequired(name)
		}
	}
	retry := &cobra.Command{
		Use:   "retry",
		Short: "Process a parked notification again",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			admin, err := r.load(writing)
			if err != nil {
				return err
			}
			defer admin.Close()
			if err := admin.RetryParked(cmd.Context(), follower, upstream, id); err != nil {
				return parkedError(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s processed notification %d of %s.\n", follower, id, upstream)
			return nil
		},
	}
	which(retry)
	skip := &cobra.Command{
		Use:   "skip",
		Short: "Mark a parked notification skipped",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			admin, err := r.load(writing)
			if err != nil {
				return err
			}
			defer admin.Close()
			if err := admin.SkipParked(cmd.Context(), follower, upstream, id, reason); err != nil {
				return parkedError(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s skipped notification %d of %s.\n", follower, id, upstream)
			return nil
		},
	}
	which(skip)
	skip.Flags().StringVar(&reason, "reason", "", "why it is skipped, kept with it")
	cmd.AddCommand(retry, skip)
	return cmd
}

// parkedError keeps an unknown application a usage error.
func parkedError(err error) error {
	if errors.Is(err, system.ErrUnknownApplication) {
		return usageError{err}
	}
	return err
}

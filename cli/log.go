package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/system"
)

// logOptions are the flags of the log command.
type logOptions struct {
	application string
	start       int64
	limit       int
	topics      []string
	follow      bool
	poll        time.Duration
	format      string
}

func (r *root) logCommand() *cobra.Command {
	var o logOptions
	cmd := &cobra.Command{
		Use:   "log",
		Short: "Print an application's notification log, decoded; --follow to tail it",
		Long: `Print the notifications of an application's log from a notification ID on,
decoded with the application's types. Notification IDs increase in the order
readers see events; they may have gaps (with PostgreSQL, large ones).

It prints every tenant's notifications, or with --tenant one tenant's.

As text, one line per notification: the notification ID, the time (UTC), the
originator ID, its version, the topic and the event's fields as JSON, then
the tenant (tenant=..., unless the default) and the commit's headers (as
JSON, if it has any):

  2 2026-03-01T10:00:00.000001Z 0b9ab1a2-3c4d-4e5f-8a6b-7c8d9e0f1a2b v2 World.SomethingHappened {"what":"dinosaurs"}

As JSON, one object per line with id, tenant (unless the default),
originator_id, originator_version, timestamp, topic, data, commit_id and
headers (if any).

With --follow, the command keeps waiting for new notifications until Ctrl-C
(exit status 0): it polls every --poll, and with PostgreSQL it is also woken
by the saves of other processes (LISTEN).`,
		Example: r.examples("log --limit 10", "log --application "+r.application+" --start 20 --format json",
			"log --topics "+r.topic+" --follow"),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := newPrinter(cmd.OutOrStdout(), o.format, true)
			if err != nil {
				return err
			}
			switch {
			case o.start < 0:
				return usageError{fmt.Errorf("--start %d is negative", o.start)}
			case o.limit < 0:
				return usageError{fmt.Errorf("--limit %d is negative", o.limit)}
			case o.poll <= 0:
				return usageError{fmt.Errorf("--poll %v is not positive", o.poll)}
			}
			admin, err := r.load(reading)
			if err != nil {
				return err
			}
			defer admin.Close()
			app, err := admin.Application(cmd.Context(), o.application)
			if err != nil {
				return err
			}
			log := app.AllTenants()
			if r.tenant != "" {
				view, err := app.ForTenant(r.tenant)
				if err != nil {
					return usageError{fmt.Errorf("--tenant: %w", err)}
				}
				log = view.Log()
			}
			return printLog(cmd.Context(), app, log, o, p)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.application, "application", "", "the application whose log to print (default: the domain's first)")
	f.Int64Var(&o.start, "start", 1, "the first notification ID to print")
	f.IntVar(&o.limit, "limit", 0, "print at most this many notifications (0: no limit)")
	f.StringSliceVar(&o.topics, "topics", nil, "print only notifications of these topics, comma-separated")
	f.BoolVar(&o.follow, "follow", false, "keep printing new notifications until Ctrl-C")
	f.DurationVar(&o.poll, "poll", time.Second, "how often --follow looks for new notifications")
	f.StringVar(&o.format, "format", "text", "the output format: text or json")
	return cmd
}

// printLog prints the log as o asks. Following ends without error when
// ctx ends.
func printLog(ctx context.Context, app *application.Application, log *application.LocalNotificationLog, o logOptions, p *printer) error {
	var opts []application.SelectOption
	if len(o.topics) > 0 {
		opts = append(opts, application.Topics(o.topics...))
	}
	var prompts <-chan struct{}
	if l, ok := app.Factory().(system.Listener); ok && o.follow {
		// Without prompts, polling alone follows the log.
		prompts, _ = l.Listen(ctx)
	}
	start, printed := max(o.start, 1), 0
	for {
		size := application.MaxLimit
		if o.limit > 0 {
			size = min(size, o.limit-printed)
		}
		page, err := log.Select(ctx, start, size, opts...)
		if err != nil {
			if o.follow && ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("log of %s: %w", app.Name(), err)
		}
		for _, n := range page {
			rec, err := decode(app, n.ID, n.Tenant, n.StoredEvent)
			if err != nil {
				return fmt.Errorf("log of %s: notification %d: %w", app.Name(), n.ID, err)
			}
			if err := p.print(rec); err != nil {
				return err
			}
			start, printed = n.ID+1, printed+1
		}
		if o.limit > 0 && printed >= o.limit {
			return nil
		}
		if len(page) == size {
			continue
		}
		if !o.follow {
			return nil
		}
		if !wait(ctx, prompts, o.poll) {
			return nil
		}
	}
}

// wait waits for a prompt or the poll interval, and reports whether to go
// on: false when ctx has ended.
func wait(ctx context.Context, prompts <-chan struct{}, poll time.Duration) bool {
	t := time.NewTimer(poll)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-prompts:
		return ctx.Err() == nil
	case <-t.C:
		return true
	}
}

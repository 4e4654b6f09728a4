package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/health"
	"github.com/strata-go/strata/observe"
	"github.com/strata-go/strata/persistence"
)

// Thresholds are the limits of a domain's health checks (see
// [Admin.HealthChecks]). A zero limit is no limit.
type Thresholds struct {
	// MaxBehind is how many notification IDs a follower may be behind an
	// upstream log.
	MaxBehind int64
	// MaxLagAge is how long ago the oldest notification a follower has
	// still to process may have been recorded.
	MaxLagAge time.Duration
	// MaxHorizonAge is how long a transaction may hold a PostgreSQL
	// store's visibility horizon back.
	MaxHorizonAge time.Duration
}

// DefaultThresholds are the limits of the health command and of serve
// --metrics unless their flags say otherwise.
var DefaultThresholds = Thresholds{MaxBehind: 1000, MaxLagAge: time.Minute, MaxHorizonAge: 5 * time.Minute}

// Lags measures how far each follower of the domain is behind each of its
// leaders, from the tracking records in the follower's store and the
// leader's log: what a runner of the followers would report, whether or
// not one runs. A follower with no tracking table yet is at position 0.
func (a *Admin) Lags(ctx context.Context) ([]observe.Lag, error) {
	followers, err := a.followers("")
	if err != nil {
		return nil, err
	}
	var out []observe.Lag
	var errs []error
	for _, name := range followers {
		app, err := a.Application(ctx, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rec, _ := app.Recorder().(persistence.ProcessRecorder)
		for _, leader := range a.sys.Leaders(name) {
			up, err := a.Application(ctx, leader)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			var position int64
			if rec != nil {
				position, err = rec.MaxTrackingID(ctx, leader)
				if err != nil && !errors.Is(err, persistence.ErrNoTable) {
					errs = append(errs, fmt.Errorf("%s: position in %s: %w", name, leader, err))
					continue
				}
			}
			l, err := application.MeasureLag(ctx, up.AllTenants(), up.Mapper(), position)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
				continue
			}
			l.Kind, l.Reader, l.Upstream = observe.FollowerLag, name, leader
			out = append(out, l)
		}
	}
	return out, errors.Join(errs...)
}

// HealthChecks returns the checks of the domain: each application's store
// answers, each follower is within the thresholds of its leaders, and no
// transaction holds a PostgreSQL store's horizon back past the threshold
// (once per store). It opens the applications it needs.
func (a *Admin) HealthChecks(ctx context.Context, t Thresholds) ([]health.Check, error) {
	var checks []health.Check
	horizons := map[string]bool{}
	for _, name := range a.sys.Names() {
		app, err := a.Application(ctx, name)
		if err != nil {
			return nil, err
		}
		checks = append(checks, health.Recorder(name, app.Recorder()))
		if h, ok := app.Factory().(persistence.HorizonReader); ok {
			where := describeStore(app.Env())
			if !horizons[where] {
				horizons[where] = true
				checks = append(checks, health.Horizon(where, h, t.MaxHorizonAge))
			}
		}
	}
	if followers, _ := a.followers(""); len(followers) > 0 {
		checks = append(checks, health.Lag(observe.LagFunc(a.Lags), t.MaxBehind, t.MaxLagAge))
	}
	return checks, nil
}

// horizonReaders returns the factories of the domain's stores that report
// a visibility horizon, one per store.
func (a *Admin) horizonReaders(ctx context.Context) ([]persistence.HorizonReader, error) {
	var out []persistence.HorizonReader
	seen := map[string]bool{}
	for _, name := range a.sys.Names() {
		app, err := a.Application(ctx, name)
		if err != nil {
			return nil, err
		}
		if h, ok := app.Factory().(persistence.HorizonReader); ok && !seen[describeStore(app.Env())] {
			seen[describeStore(app.Env())] = true
			out = append(out, h)
		}
	}
	return out, nil
}

func thresholdFlags(cmd *cobra.Command, t *Thresholds) {
	*t = DefaultThresholds
	f := cmd.Flags()
	f.Int64Var(&t.MaxBehind, "max-behind", t.MaxBehind, "unhealthy if a follower is more notifications than this behind a leader (0: no limit)")
	f.DurationVar(&t.MaxLagAge, "max-lag-age", t.MaxLagAge, "unhealthy if the oldest notification a follower has still to process is older (0: no limit)")
	f.DurationVar(&t.MaxHorizonAge, "max-horizon-age", t.MaxHorizonAge, "unhealthy if a PostgreSQL transaction has held readers back longer (0: no limit)")
}

func (r *root) healthCommand() *cobra.Command {
	var t Thresholds
	var url, token string
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Check the domain's stores, followers and PostgreSQL horizon; exit 1 if unhealthy",
		Long: `Check that each application's store answers, that each follower is behind its
leaders by no more than --max-behind notifications and --max-lag-age, and that
no PostgreSQL transaction has held readers back longer than --max-horizon-age.
Print the report as JSON (what serve --metrics serves at /readyz) and exit 0 if
healthy, 1 if not.

With --url, ask a running "serve --metrics" instead (its /readyz), sending the
bearer token of --token or STRATA_TOKEN if one is set.`,
		Example: r.examples("health", "health --max-behind 100 --max-lag-age 30s", "health --url http://127.0.0.1:8000/readyz"),
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			var rep health.Report
			if url != "" {
				if !cmd.Flags().Changed("token") {
					token = os.Getenv("STRATA_TOKEN")
				}
				body, healthy, err := fetchHealth(ctx, url, token)
				if err != nil {
					return err
				}
				fmt.Fprintln(out, strings.TrimSpace(string(body)))
				if !healthy {
					return errors.New("unhealthy: see the report")
				}
				return nil
			}
			admin, err := r.load(reading)
			if err != nil {
				return err
			}
			defer admin.Close()
			checks, err := admin.HealthChecks(ctx, t)
			if err != nil {
				return err
			}
			rep = health.New(checks...).Report(ctx)
			fmt.Fprintln(out, string(rep.JSON()))
			if problems := rep.Problems(); len(problems) > 0 {
				var msgs []string
				for _, p := range problems {
					msgs = append(msgs, p.Name+": "+p.Problem)
				}
				return fmt.Errorf("unhealthy: %s", strings.Join(msgs, "; "))
			}
			return nil
		},
	}
	thresholdFlags(cmd, &t)
	cmd.Flags().StringVar(&url, "url", "", "ask the readiness endpoint of a running serve --metrics at this URL")
	cmd.Flags().StringVar(&token, "token", "", "the bearer token for --url (default $STRATA_TOKEN)")
	return cmd
}

// fetchHealth gets a health report from url and reports whether it is
// healthy (200) or not (503).
func fetchHealth(ctx context.Context, url, token string) ([]byte, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, false, usageError{fmt.Errorf("--url: %w", err)}
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, false, fmt.Errorf("ask %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, false, fmt.Errorf("read the answer of %s: %w", url, err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return body, true, nil
	case http.StatusServiceUnavailable:
		return body, false, nil
	}
	return nil, false, fmt.Errorf("ask %s: status %d: %s", url, resp.StatusCode, strings.TrimSpace(string(body)))
}

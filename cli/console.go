package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/console"
	"github.com/strata-go/strata/health"
	"github.com/strata-go/strata/httpapi"
	"github.com/strata-go/strata/observe"
)

// Console returns the web console of the domain's applications (see
// package console), with the lags of its followers on the readers' page
// and its health checks (with thresholds t) on the health page. The
// options come after those, so that a program adds its credentials and
// its projection runners (console.WithLags). The console's "take a
// snapshot now" writes to the stores: open the Admin for writing, or give
// console.WithReadOnly.
func (a *Admin) Console(ctx context.Context, t Thresholds, opts ...console.Option) (*console.Console, error) {
	var apps []*application.Application
	for _, name := range a.sys.Names() {
		app, err := a.Application(ctx, name)
		if err != nil {
			return nil, err
		}
		apps = append(apps, app)
	}
	checks, err := a.HealthChecks(ctx, t)
	if err != nil {
		return nil, err
	}
	var own []console.Option
	if followers, _ := a.followers(""); len(followers) > 0 {
		own = append(own, console.WithLags(observe.LagFunc(a.Lags)))
	}
	own = append(own, console.WithHealth(health.New(checks...)))
	return console.New(apps, append(own, opts...)...)
}

func (r *root) consoleCommand() *cobra.Command {
	var addr, token, user, certFile, keyFile string
	var noAuth, readOnly, secureCookies bool
	var poll time.Duration
	var thresholds Thresholds
	cmd := &cobra.Command{
		Use:   "console",
		Short: "Serve the web console of the domain's stores until Ctrl-C",
		Long: `Serve the operator's web console of the domain until Ctrl-C or SIGTERM (exit
status 0): its applications with their event counts and last notification,
each notification log with paging, a topic filter and a live tail, each
aggregate's decoded events (tenant, commit ID, headers) and snapshots with
"take a snapshot now", the followers and their lag, the health report, and
search by aggregate ID. It shows every tenant's data.

It requires a credential: the bearer token of --token (else
STRATA_CONSOLE_TOKEN), or the user of --user (else STRATA_CONSOLE_USER) with
the password of STRATA_CONSOLE_PASSWORD, or both. Browsers log in with a
form and keep a session cookie; scripts send "Authorization: Bearer TOKEN" or
basic authentication. Without a credential the command refuses to start,
unless --no-auth says that anyone who can reach the address may use the
console.

It listens on 127.0.0.1:8080 unless --addr says otherwise; serve with TLS
(--tls-cert and --tls-key) on any other network, since the login and the
pages cross it. Taking a snapshot writes to the stores (and may create the
snapshot table); --read-only opens the stores read-only and removes the
action. The first line of output gives the address (useful with --addr
127.0.0.1:0, which picks a free port). See docs/console.md.`,
		Example: r.examples("console", "console --addr 127.0.0.1:0 --read-only",
			"console --addr :8443 --tls-cert cert.pem --tls-key key.pem"),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (certFile == "") != (keyFile == "") {
				return usageError{errors.New("--tls-cert and --tls-key go together")}
			}
			if r.tenant != "" {
				return usageError{errors.New("--tenant: the console shows every tenant; choose one in its search form")}
			}
			if poll <= 0 {
				return usageError{fmt.Errorf("--poll %v is not positive", poll)}
			}
			if !cmd.Flags().Changed("token") {
				token = os.Getenv("STRATA_CONSOLE_TOKEN")
			}
			if !cmd.Flags().Changed("user") {
				user = os.Getenv("STRATA_CONSOLE_USER")
			}
			password := os.Getenv("STRATA_CONSOLE_PASSWORD")
			var opts []console.Option
			switch {
			case user != "" && password == "":
				return usageError{fmt.Errorf("--user %s: set its password in STRATA_CONSOLE_PASSWORD", user)}
			case user == "" && password != "":
				return usageError{errors.New("STRATA_CONSOLE_PASSWORD is set without a user: set --user or STRATA_CONSOLE_USER")}
			case noAuth && (token != "" || user != ""):
				return usageError{errors.New("--no-auth and a credential (--token, STRATA_CONSOLE_TOKEN, --user, STRATA_CONSOLE_USER) contradict each other")}
			case noAuth:
				opts = append(opts, console.WithoutAuth())
			case token == "" && user == "":
				return usageError{errors.New("no credential: set --token or STRATA_CONSOLE_TOKEN (or --user and STRATA_CONSOLE_PASSWORD), or give --no-auth to let anyone who can reach the address use the console")}
			}
			if token != "" {
				opts = append(opts, console.WithBearerToken(token))
			}
			if user != "" {
				opts = append(opts, console.WithBasicAuth(user, password))
			}
			mode := writing
			if readOnly {
				mode = reading
				opts = append(opts, console.WithReadOnly())
			}
			if secureCookies {
				opts = append(opts, console.WithSecureCookies())
			}
			admin, err := r.load(mode)
			if err != nil {
				return err
			}
			defer admin.Close()
			ctx := cmd.Context()
			logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			opts = append(opts, console.WithLogger(logger), console.WithPollInterval(poll))
			c, err := admin.Console(ctx, thresholds, opts...)
			if err != nil {
				return err
			}
			srv := httpapi.NewServer(addr, c, httpapi.WithServerLogger(logger))
			// Live tails end when the server shuts down, rather than hold
			// the shutdown until its timeout.
			srv.RegisterOnShutdown(c.Close)
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("serve the console: %w", err)
			}
			scheme := "http"
			if certFile != "" {
				scheme = "https"
			}
			first, _ := admin.Application(ctx, "")
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Serving the console of domain %s at %s://%s/ (%s).\n", admin.Domain().Name, scheme, ln.Addr(), describeStore(first.Env()))
			if !isLoopback(ln.Addr()) {
				switch {
				case noAuth:
					fmt.Fprintln(cmd.ErrOrStderr(), "Warning: anyone who can reach this address can read the decoded events: set --token or STRATA_CONSOLE_TOKEN.")
				case certFile == "":
					fmt.Fprintln(cmd.ErrOrStderr(), "Warning: the console is served without TLS on a non-loopback address: credentials and events cross the network in clear.")
				}
			}
			if err := httpapi.Serve(ctx, srv, ln, certFile, keyFile); err != nil {
				return err
			}
			fmt.Fprintln(out, "Stopped.")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", "127.0.0.1:8080", "the address to listen on, host:port")
	f.StringVar(&token, "token", "", "the bearer token that logs in (default $STRATA_CONSOLE_TOKEN, which keeps it\nout of process listings)")
	f.StringVar(&user, "user", "", "the user that logs in with the password of $STRATA_CONSOLE_PASSWORD\n(default $STRATA_CONSOLE_USER)")
	f.BoolVar(&noAuth, "no-auth", false, "serve without credentials: anyone who can reach the address uses the console")
	f.BoolVar(&readOnly, "read-only", false, "open the stores read-only and offer no snapshot action")
	f.BoolVar(&secureCookies, "secure-cookies", false, "mark the session cookie Secure without TLS here (behind a proxy that terminates TLS)")
	f.DurationVar(&poll, "poll", console.DefaultPollInterval, "how often a live tail looks for new notifications")
	f.StringVar(&certFile, "tls-cert", "", "a PEM certificate (chain) file, to serve HTTPS")
	f.StringVar(&keyFile, "tls-key", "", "the PEM key file of --tls-cert")
	thresholdFlags(cmd, &thresholds)
	return cmd
}

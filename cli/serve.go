package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"

	"github.com/spf13/cobra"

	"github.com/strata-go/strata/httpapi"
)

func (r *root) serveCommand() *cobra.Command {
	var application, addr, token, certFile, keyFile string
	var noAuth, metrics bool
	var thresholds Thresholds
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve an application's notification log over HTTP until Ctrl-C",
		Long: `Serve an application's notification log over HTTP as JSON, read-only, until
Ctrl-C or SIGTERM (exit status 0), so that followers in other processes can
read it (httpapi.Client, system.WithRemoteLog):

  GET /sections/{first,last}                                 a section, such as 1,10
  GET /notifications?start=N&limit=M[&topics=a,b][&stop=K]   a select

It serves every tenant's notifications (each with its tenant), as followers
need, or with --tenant one tenant's.

Requests must send "Authorization: Bearer TOKEN" with the token of --token,
else STRATA_TOKEN. Without a token the command refuses to serve, unless
--no-auth says that anyone who can reach the address may read the log.
Serve with TLS (--tls-cert and --tls-key) if the network is not trusted. The first line of output gives the address
(useful with --addr 127.0.0.1:0, which picks a free port).

With --metrics it also serves, on the same address and with the same token:

  GET /metrics   Prometheus metrics: HTTP requests, selects, followers' lag,
                 the PostgreSQL horizon age (see docs/observability.md)
  GET /readyz    the health report of "health" as JSON: 200 healthy, 503 not
  GET /livez     200 while the process answers (no token needed)`,
		Example: r.examples("serve", "serve --application "+r.application+" --addr :8443 --tls-cert cert.pem --tls-key key.pem"),
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (certFile == "") != (keyFile == "") {
				return usageError{errors.New("--tls-cert and --tls-key go together")}
			}
			if !cmd.Flags().Changed("token") {
				token = os.Getenv("STRATA_TOKEN")
			}
			switch {
			case token == "" && !noAuth:
				return usageError{errors.New("no bearer token: set --token or STRATA_TOKEN, or give --no-auth to let anyone who can reach the address read the log")}
			case token != "" && noAuth:
				return usageError{errors.New("--no-auth and a bearer token (--token or STRATA_TOKEN) contradict each other")}
			}
			admin, err := r.load(reading)
			if err != nil {
				return err
			}
			defer admin.Close()
			ctx := cmd.Context()
			app, err := admin.Application(ctx, application)
			if err != nil {
				return err
			}
			logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			opts := []httpapi.Option{httpapi.WithLogger(logger)}
			if token != "" {
				opts = append(opts, httpapi.WithBearerToken(token))
			}
			log := app.AllTenants()
			if r.tenant != "" {
				view, err := app.ForTenant(r.tenant)
				if err != nil {
					return usageError{fmt.Errorf("--tenant: %w", err)}
				}
				log = view.Log()
			}
			var handler http.Handler = httpapi.NewHandler(log, opts...)
			if metrics {
				mux, shutdown, err := metricsMux(ctx, admin, handler, token, thresholds)
				if err != nil {
					return err
				}
				defer shutdown()
				handler = mux
			}
			srv := httpapi.NewServer(addr, handler, httpapi.WithServerLogger(logger))
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("serve the notification log of %s: %w", app.Name(), err)
			}
			scheme := "http"
			if certFile != "" {
				scheme = "https"
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Serving the notification log of %s at %s://%s (%s).\n", app.Name(), scheme, ln.Addr(), describeStore(app.Env()))
			if metrics {
				fmt.Fprintf(out, "Metrics at %s://%s/metrics, readiness at /readyz, liveness at /livez.\n", scheme, ln.Addr())
			}
			if token == "" && !isLoopback(ln.Addr()) {
				fmt.Fprintln(cmd.ErrOrStderr(), "Warning: anyone who can reach this address can read the log: set --token or STRATA_TOKEN.")
			}
			if err := httpapi.Serve(ctx, srv, ln, certFile, keyFile); err != nil {
				return err
			}
			fmt.Fprintln(out, "Stopped.")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&application, "application", "", "the application whose log to serve (default: the domain's first)")
	f.StringVar(&addr, "addr", "127.0.0.1:8000", "the address to listen on, host:port")
	f.StringVar(&token, "token", "", "the bearer token requests must send (default $STRATA_TOKEN, which keeps it\nout of process listings)")
	f.BoolVar(&noAuth, "no-auth", false, "serve without a bearer token: anyone who can reach the address reads the log")
	f.StringVar(&certFile, "tls-cert", "", "a PEM certificate (chain) file, to serve HTTPS")
	f.StringVar(&keyFile, "tls-key", "", "the PEM key file of --tls-cert")
	f.BoolVar(&metrics, "metrics", false, "also serve Prometheus metrics at /metrics and health at /readyz and /livez")
	thresholdFlags(cmd, &thresholds)
	return cmd
}

func isLoopback(a net.Addr) bool {
	tcp, ok := a.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

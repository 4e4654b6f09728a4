// Package health checks whether a Strata program is fit to serve, and
// serves the answer as JSON for readiness and liveness probes.
//
// A [Checker] runs checks: [Store] and [Recorder] (the store answers),
// [Lag] (each follower of a system runner and each projection runner is
// running and behind its upstream log by less than a number of
// notifications and a time), and [Horizon] (no PostgreSQL transaction has
// held readers back too long; PostgreSQL's factory is a
// persistence.HorizonReader). As an http.Handler, the Checker is the
// readiness probe: 200 when healthy, 503 with a body that says what is
// wrong. [Checker.Live] is the liveness probe. The strata command's health
// command prints the same report and exits non-zero when it is unhealthy.
package health

// Package observe is Strata's OpenTelemetry instrumentation: the names of
// its spans, metrics and attributes (which its slog records use too), the
// [Telemetry] that applications, system runners, projection runners and the
// HTTP handler trace and measure with, the kinds of errors, and the lags of
// followers and projections and the PostgreSQL horizon age as gauges.
//
// It is off until a program sets a provider: without an explicit Telemetry,
// everything reports to OpenTelemetry's global providers, which record
// nothing until otel.SetTracerProvider and otel.SetMeterProvider are
// called. Package observe/promexport serves the metrics to Prometheus;
// package health turns lags and the horizon into readiness checks. See
// docs/observability.md for every span, metric and attribute.
package observe

// Package promexport serves Strata's metrics, and any others of the same
// OpenTelemetry meter provider, to Prometheus: a meter provider whose
// reader is OpenTelemetry's Prometheus exporter, and the /metrics handler
// of its registry. It is the only part of Strata that links the Prometheus
// client, and only programs that import it pay for it (the strata
// command's serve --metrics does).
package promexport

import (
	"context"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/otlptranslator"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// Exporter is a meter provider whose metrics are scraped over HTTP.
type Exporter struct {
	provider *sdkmetric.MeterProvider
	registry *prometheus.Registry
}

// New returns an exporter with a registry of its own, which also holds the
// Go runtime's and the process's collectors. Metric names are written the
// Prometheus way: strata.save.duration in seconds becomes
// strata_save_duration_seconds, a counter gains _total.
func New() (*Exporter, error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	exp, err := otelprom.New(otelprom.WithRegisterer(reg),
		otelprom.WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithSuffixes))
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	return &Exporter{provider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp)), registry: reg}, nil
}

// MeterProvider returns the provider to measure with: give it to
// observe.WithMeterProvider, or make it the global one
// (otel.SetMeterProvider).
func (e *Exporter) MeterProvider() *sdkmetric.MeterProvider { return e.provider }

// Registry returns the exporter's Prometheus registry, for a program's own
// collectors.
func (e *Exporter) Registry() *prometheus.Registry { return e.registry }

// Handler returns the /metrics handler: each scrape collects the metrics
// then, running the callbacks of gauges such as lags and the PostgreSQL
// horizon age.
func (e *Exporter) Handler() http.Handler {
	return promhttp.HandlerFor(e.registry, promhttp.HandlerOpts{})
}

// Shutdown stops the meter provider.
func (e *Exporter) Shutdown(ctx context.Context) error { return e.provider.Shutdown(ctx) }

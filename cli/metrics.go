package cli

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"

	"github.com/strata-go/strata/health"
	"github.com/strata-go/strata/observe"
	"github.com/strata-go/strata/observe/promexport"
)

// metricsMux serves log beside /metrics, /readyz and /livez. It makes the
// Prometheus exporter the global meter provider, so that everything the
// process measures (the log's selects and requests) is scraped, and
// observes the followers' lags and the PostgreSQL horizons of the domain
// at each scrape. shutdown stops all that.
func metricsMux(ctx context.Context, admin *Admin, log http.Handler, token string, t Thresholds) (http.Handler, func(), error) {
	exp, err := promexport.New()
	if err != nil {
		return nil, nil, err
	}
	otel.SetMeterProvider(exp.MeterProvider())
	tel := observe.Default()
	var regs []metric.Registration
	shutdown := func() {
		for _, r := range regs {
			_ = r.Unregister()
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = exp.Shutdown(sctx)
	}
	fail := func(err error) (http.Handler, func(), error) {
		shutdown()
		return nil, nil, err
	}
	if followers, _ := admin.followers(""); len(followers) > 0 {
		reg, err := tel.ObserveLags(observe.LagFunc(admin.Lags))
		if err != nil {
			return fail(err)
		}
		regs = append(regs, reg)
	}
	horizons, err := admin.horizonReaders(ctx)
	if err != nil {
		return fail(err)
	}
	for _, h := range horizons {
		reg, err := tel.ObserveHorizon(h)
		if err != nil {
			return fail(err)
		}
		regs = append(regs, reg)
	}
	checks, err := admin.HealthChecks(ctx, t)
	if err != nil {
		return fail(err)
	}
	checker := health.New(checks...)
	mux := http.NewServeMux()
	mux.Handle("/metrics", authorized(token, exp.Handler()))
	mux.Handle("/readyz", authorized(token, checker))
	mux.Handle("/livez", checker.Live())
	mux.Handle("/", log)
	return mux, shutdown, nil
}

// authorized requires "Authorization: Bearer token" if token is not empty,
// as the notification log does.
func authorized(token string, h http.Handler) http.Handler {
	if token == "" {
		return h
	}
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		sum := sha256.Sum256([]byte(strings.TrimLeft(got, " ")))
		if !ok || !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", "Bearer")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"missing or wrong bearer token"}` + "\n"))
			return
		}
		h.ServeHTTP(w, r)
	})
}

package httpapi

import (
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/strata-go/strata/observe"
)

// WithTelemetry makes the handler trace and measure its requests with t
// (default: observe.Default(), OpenTelemetry's global providers). Each
// request is a server span named by its method and route ("GET
// /sections/{id}"), a child of the caller's span if the request carries
// a W3C traceparent header, and the log's select is a child of it.
func WithTelemetry(t *observe.Telemetry) Option {
	return func(h *handler) { h.tel = t }
}

// route names the handler's route of a path, for span names and metric
// attributes whose values must stay few.
func route(path string) string {
	switch {
	case strings.HasPrefix(path, "/sections/"):
		return "/sections/{id}"
	case path == "/notifications":
		return "/notifications"
	}
	return "other"
}

// statusWriter remembers the status of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// propagator reads and writes W3C trace context and baggage headers,
// whatever the global propagator is, so that a follower's span and the
// server's span of its request are one trace.
var propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// observed serves r with serve inside the request's span and timing.
func (h *handler) observed(w http.ResponseWriter, r *http.Request, serve func(http.ResponseWriter, *http.Request)) {
	tel := observe.Or(h.tel)
	ctx := propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	rt := route(r.URL.Path)
	method := r.Method
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions:
	default:
		method = "_OTHER" // as the semantic conventions say, to keep values few
	}
	attrs := []attribute.KeyValue{attribute.String(observe.KeyHTTPMethod, method), attribute.String(observe.KeyHTTPRoute, rt)}
	ctx, span := tel.Tracer().Start(ctx, method+" "+rt, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
	defer span.End()
	timed := tel.HTTPEnabled(ctx)
	var start time.Time
	if timed {
		start = time.Now()
	}
	sw := &statusWriter{ResponseWriter: w}
	serve(sw, r.WithContext(ctx))
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	status := attribute.Int(observe.KeyHTTPStatus, sw.status)
	span.SetAttributes(status)
	if sw.status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(sw.status))
	}
	if timed {
		tel.HTTP(ctx, time.Since(start), append(attrs, status)...)
	}
}

// inject adds the trace context of the request's span to its headers.
func inject(r *http.Request) {
	if trace.SpanContextFromContext(r.Context()).IsValid() {
		propagator.Inject(r.Context(), propagation.HeaderCarrier(r.Header))
	}
}

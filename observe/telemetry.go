package observe

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// ScopeName is the instrumentation scope of Strata's tracer and meter.
const ScopeName = "github.com/strata-go/strata"

// The names of Strata's spans.
const (
	SpanSave            = "strata.save"
	SpanGet             = "strata.get"
	SpanSelect          = "strata.select"
	SpanFollowerBatch   = "strata.follower.batch"
	SpanProjectionBatch = "strata.projection.batch"
	// HTTP requests are spans named "METHOD ROUTE", as OpenTelemetry's
	// semantic conventions name server spans: "GET /sections/{id}".
)

// The names of Strata's metrics, as OpenTelemetry names them; the
// Prometheus exporter writes them with underscores and unit suffixes
// (strata.save.duration is strata_save_duration_seconds).
const (
	MetricSaves              = "strata.saves"
	MetricEvents             = "strata.events"
	MetricConflicts          = "strata.conflicts"
	MetricRetries            = "strata.retries"
	MetricErrors             = "strata.errors"
	MetricProcessed          = "strata.notifications.processed"
	MetricSaveDuration       = "strata.save.duration"
	MetricGetDuration        = "strata.get.duration"
	MetricSelectDuration     = "strata.select.duration"
	MetricFollowerBatch      = "strata.follower.batch.duration"
	MetricProjectionBatch    = "strata.projection.batch.duration"
	MetricHTTPDuration       = "http.server.request.duration"
	MetricFollowerLag        = "strata.follower.lag"
	MetricFollowerLagAge     = "strata.follower.lag.age"
	MetricProjectionLag      = "strata.projection.lag"
	MetricProjectionLagAge   = "strata.projection.lag.age"
	MetricPostgresHorizonAge = "strata.postgres.horizon.age"
)

// Option configures a [Telemetry].
type Option func(*options)

type options struct {
	tp trace.TracerProvider
	mp metric.MeterProvider
}

// WithTracerProvider makes the telemetry trace to tp instead of the
// global tracer provider (otel.GetTracerProvider).
func WithTracerProvider(tp trace.TracerProvider) Option { return func(o *options) { o.tp = tp } }

// WithMeterProvider makes the telemetry measure to mp instead of the
// global meter provider (otel.GetMeterProvider).
func WithMeterProvider(mp metric.MeterProvider) Option { return func(o *options) { o.mp = mp } }

// Telemetry is Strata's tracer and instruments from one tracer provider and
// one meter provider. Applications, runners, projections and HTTP handlers
// take one as an option; without it they use [Default], which reports to
// OpenTelemetry's global providers: nothing is recorded until a program
// sets them (otel.SetTracerProvider, otel.SetMeterProvider), and until
// then each instrumented call costs a few nanoseconds (see
// docs/observability.md for the figures). A Telemetry is safe for
// concurrent use.
type Telemetry struct {
	tracer trace.Tracer
	meter  metric.Meter

	saves, events, conflicts, retries, errors, processed metric.Int64Counter
	durations                                            map[string]metric.Float64Histogram
	http                                                 metric.Float64Histogram

	lagGauges     [4]metric.Int64ObservableGauge
	ageGauges     [4]metric.Float64ObservableGauge
	horizonGauge  metric.Float64ObservableGauge
	off           bool
	gaugeErr      error
	gaugesCreated sync.Once
}

// New returns the telemetry of the given providers (the global ones for
// those not given).
func New(opts ...Option) *Telemetry {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.tp == nil {
		o.tp = otel.GetTracerProvider()
	}
	if o.mp == nil {
		o.mp = otel.GetMeterProvider()
	}
	t := &Telemetry{tracer: o.tp.Tracer(ScopeName), meter: o.mp.Meter(ScopeName), durations: map[string]metric.Float64Histogram{}}
	// Instrument constructors fail only on invalid names, which these are
	// not; they return working no-op instruments all the same, so the
	// errors are dropped.
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, _ := t.meter.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		return c
	}
	t.saves = counter(MetricSaves, "{save}", "Saves that recorded their events, by application.")
	t.events = counter(MetricEvents, "{event}", "Events recorded by saves, by application and aggregate type.")
	t.conflicts = counter(MetricConflicts, "{conflict}", "Saves refused because another writer recorded a version first, by application.")
	t.retries = counter(MetricRetries, "{retry}", "Operations run again after a conflict or a temporary failure, by operation.")
	t.errors = counter(MetricErrors, "{error}", "Failed operations, by operation and error kind.")
	t.processed = counter(MetricProcessed, "{notification}", "Notifications processed by followers and projections.")
	buckets := metric.WithExplicitBucketBoundaries(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
	for name, desc := range map[string]string{
		MetricSaveDuration:    "How long saves take, conflicts resolved included.",
		MetricGetDuration:     "How long loading an aggregate takes.",
		MetricSelectDuration:  "How long selecting notifications from a local log takes.",
		MetricFollowerBatch:   "How long a follower takes to process what it pulled from one upstream log.",
		MetricProjectionBatch: "How long a projection takes to read and apply one batch in one transaction.",
	} {
		h, _ := t.meter.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc), buckets)
		t.durations[name] = h
	}
	t.http, _ = t.meter.Float64Histogram(MetricHTTPDuration, metric.WithUnit("s"), metric.WithDescription("How long the notification log's HTTP requests take."), buckets)
	return t
}

// Disabled returns a telemetry that records nothing and costs nothing,
// whatever providers the program sets: its operations return at once.
// Benchmarks use it as the baseline of instrumented code.
func Disabled() *Telemetry {
	t := New(WithTracerProvider(tracenoop.NewTracerProvider()), WithMeterProvider(metricnoop.NewMeterProvider()))
	t.off = true
	return t
}

var (
	defaultOnce sync.Once
	defaultTel  *Telemetry
)

// Default returns the telemetry of OpenTelemetry's global providers. Made
// once, it follows providers set later: the global ones delegate to them.
func Default() *Telemetry {
	defaultOnce.Do(func() { defaultTel = New() })
	return defaultTel
}

// Or returns t, or [Default] if t is nil.
func Or(t *Telemetry) *Telemetry {
	if t == nil {
		return Default()
	}
	return t
}

// Tracer returns the telemetry's tracer.
func (t *Telemetry) Tracer() trace.Tracer { return t.tracer }

// Meter returns the telemetry's meter, for a program's own instruments
// under Strata's scope.
func (t *Telemetry) Meter() metric.Meter { return t.meter }

// Op is an operation in flight: its span and its start, ended by
// [Op.End].
type Op struct {
	t        *Telemetry
	span     trace.Span
	start    time.Time
	op       string
	duration metric.Float64Histogram
	set      attribute.Set
}

// Begin starts the span name of operation op (one of the Op constants)
// with attrs, and times it into the duration metric (one of the
// Metric...Duration constants, or "" for none) with the metric attributes
// set. Call End on the result.
func (t *Telemetry) Begin(ctx context.Context, name, op, duration string, set attribute.Set, attrs ...attribute.KeyValue) (context.Context, Op) {
	if t.off {
		return ctx, Op{t: t, span: noopSpan}
	}
	ctx, span := t.tracer.Start(ctx, name, trace.WithAttributes(attrs...))
	o := Op{t: t, span: span, op: op, set: set}
	if h := t.durations[duration]; h != nil && h.Enabled(ctx) {
		o.duration, o.start = h, time.Now()
	}
	return ctx, o
}

// Span returns the operation's span.
func (o Op) Span() trace.Span { return o.span }

// End ends the operation: it records its duration, adds attrs to its span
// and, if err is not nil, marks the span as failed with err's kind (not
// its message, which may quote data) and counts the error.
func (o Op) End(ctx context.Context, err error, attrs ...attribute.KeyValue) {
	if o.t.off {
		return
	}
	if o.duration != nil {
		o.duration.Record(ctx, time.Since(o.start).Seconds(), metric.WithAttributeSet(o.set))
	}
	if len(attrs) > 0 && o.span.IsRecording() {
		o.span.SetAttributes(attrs...)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		kind := ErrorKind(err)
		o.span.SetStatus(codes.Error, kind)
		o.span.SetAttributes(attribute.String(KeyErrorKind, kind))
		o.t.Error(ctx, o.op, kind, metric.WithAttributeSet(o.set))
	}
	o.span.End()
}

// Error counts a failure of operation op of the given kind.
func (t *Telemetry) Error(ctx context.Context, op, kind string, set metric.MeasurementOption) {
	if t.errors.Enabled(ctx) {
		t.errors.Add(ctx, 1, set, metric.WithAttributes(attribute.String(KeyOperation, op), attribute.String(KeyErrorKind, kind)))
	}
}

// Saved counts a save that recorded events of the aggregate types given
// (one entry per event).
func (t *Telemetry) Saved(ctx context.Context, set attribute.Set, aggregateTypes []string) {
	if t.off {
		return
	}
	if !t.saves.Enabled(ctx) {
		return
	}
	attrs := metric.WithAttributeSet(set)
	t.saves.Add(ctx, 1, attrs)
	if !t.events.Enabled(ctx) {
		return
	}
	for i := 0; i < len(aggregateTypes); {
		j := i + 1
		for j < len(aggregateTypes) && aggregateTypes[j] == aggregateTypes[i] {
			j++
		}
		t.events.Add(ctx, int64(j-i), attrs, metric.WithAttributes(attribute.String(KeyAggregateType, aggregateTypes[i])))
		i = j
	}
}

// EventsEnabled reports whether the events counter records, so that
// callers can skip naming aggregate types when it does not.
func (t *Telemetry) EventsEnabled(ctx context.Context) bool { return !t.off && t.events.Enabled(ctx) }

// Conflict counts a save refused for a conflict.
func (t *Telemetry) Conflict(ctx context.Context, set attribute.Set) {
	if !t.off {
		t.conflicts.Add(ctx, 1, metric.WithAttributeSet(set))
	}
}

// Retry counts a retry of operation op.
func (t *Telemetry) Retry(ctx context.Context, op string, set attribute.Set) {
	if t.retries.Enabled(ctx) {
		t.retries.Add(ctx, 1, metric.WithAttributeSet(set), metric.WithAttributes(attribute.String(KeyOperation, op)))
	}
}

// Processed counts n notifications processed by a follower or projection
// (set names which).
func (t *Telemetry) Processed(ctx context.Context, n int, set attribute.Set) {
	if n > 0 && !t.off {
		t.processed.Add(ctx, int64(n), metric.WithAttributeSet(set))
	}
}

// HTTP records the duration of an HTTP request.
func (t *Telemetry) HTTP(ctx context.Context, d time.Duration, attrs ...attribute.KeyValue) {
	if t.http.Enabled(ctx) {
		t.http.Record(ctx, d.Seconds(), metric.WithAttributes(attrs...))
	}
}

// HTTPEnabled reports whether HTTP durations are recorded.
func (t *Telemetry) HTTPEnabled(ctx context.Context) bool { return !t.off && t.http.Enabled(ctx) }

var noopSpan = trace.SpanFromContext(context.Background()) // records nothing

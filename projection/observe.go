package projection

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/observe"
)

// WithTelemetry makes the runner trace and measure its batches with t
// (default: observe.Default(), OpenTelemetry's global providers).
func WithTelemetry(t *observe.Telemetry) Option { return func(c *runnerConfig) { c.tel = t } }

// observeBatch starts the span and timing of a batch of events that
// reaches the positions reached, and returns the function that ends them
// with the batch transaction's error. An empty batch, as most polls at the
// head are, has no span.
func (r *Runner[Tx]) observeBatch(ctx context.Context, events []Event, reached map[string]int64) (context.Context, func(error)) {
	tel := observe.Or(r.cfg.tel)
	attrs := []attribute.KeyValue{attribute.String(observe.KeyProjection, r.model.Name), attribute.Int(observe.KeyProjectionVersion, r.model.Version)}
	set := attribute.NewSet(attrs...)
	record := func(err error) {
		if err == nil {
			r.set(func() { r.reached = reached })
			tel.Processed(ctx, len(events), set)
		}
	}
	if len(events) == 0 {
		return ctx, record
	}
	first, last := events[0].Notification, events[len(events)-1].Notification
	ctx, op := tel.Begin(ctx, observe.SpanProjectionBatch, observe.OpProjection, observe.MetricProjectionBatch, set,
		append(attrs, attribute.Int(observe.KeyEventCount, len(events)),
			attribute.String(observe.KeyUpstream, events[0].Upstream),
			attribute.Int64(observe.KeyFirstNotificationID, first.ID), attribute.Int64(observe.KeyLastNotificationID, last.ID))...)
	return ctx, func(err error) {
		record(err)
		if errors.Is(err, ErrMoved) || errors.Is(err, ErrSuperseded) {
			// Another runner's progress, not a failure.
			op.End(ctx, nil, attribute.String(observe.KeyErrorKind, "moved"))
			return
		}
		op.End(ctx, err)
	}
}

// Lags measures how far the runner is behind each source, from the
// positions its last recorded batch reached (see
// application.MeasureLag), so that a runner is an observe.LagSource for
// metrics (observe.Telemetry.ObserveLags) and health checks. A runner
// that has recorded no batch yet has none.
func (r *Runner[Tx]) Lags(ctx context.Context) ([]observe.Lag, error) {
	var reached map[string]int64
	var stopped error
	r.set(func() { reached = r.reached })
	if reached == nil {
		return nil, nil
	}
	if r.done != nil {
		select {
		case <-r.done:
			stopped = r.Err()
		default:
		}
	}
	var out []observe.Lag
	var errs []error
	for _, s := range r.sources {
		var opts []application.SelectOption
		if len(s.Topics) > 0 {
			opts = append(opts, application.Topics(s.Topics...))
		}
		l, err := application.MeasureLag(ctx, s.Log, s.Mapper, reached[s.Name], opts...)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		l.Kind, l.Reader, l.Version, l.Upstream, l.Stopped = observe.ProjectionLag, r.model.Name, r.model.Version, s.Name, stopped
		out = append(out, l)
	}
	return out, errors.Join(errs...)
}

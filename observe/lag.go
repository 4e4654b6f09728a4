package observe

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/strata-go/strata/persistence"
)

// LagKind says what kind of reader a [Lag] is about.
type LagKind string

// The kinds of readers.
const (
	FollowerLag   LagKind = "follower"
	ProjectionLag LagKind = "projection"
)

// Lag is how far a reader of a notification log (a follower, a projection)
// is behind the log's head.
type Lag struct {
	Kind LagKind
	// Reader names the follower or projection.
	Reader string
	// Version is the projection's version (0 for a follower).
	Version int
	// Upstream names the application whose log is read.
	Upstream string
	// Position is the last notification ID the reader processed.
	Position int64
	// Head is the log's last notification ID (or, for a log that cannot
	// say, the last of the next page after Position).
	Head int64
	// Behind is Head−Position: how many notification IDs are still to
	// process (IDs may be sparse, so at most that many notifications).
	Behind int64
	// Age is how long ago the oldest notification still to process was
	// recorded (its event's timestamp); 0 when Behind is 0.
	Age time.Duration
	// Stopped, if not nil, is the error that stopped the reader (a poison
	// notification): it processes nothing until an operator acts.
	Stopped error
}

// String describes the lag for logs and health reports.
func (l Lag) String() string {
	name := string(l.Kind) + " " + l.Reader
	if l.Version > 0 {
		name += " version " + strconv.Itoa(l.Version)
	}
	return fmt.Sprintf("%s reading %s is at notification %d of %d: %d behind, the oldest recorded %v ago",
		name, l.Upstream, l.Position, l.Head, l.Behind, l.Age.Round(time.Millisecond))
}

// LagSource reports the lags of its readers: system runners and projection
// runners are lag sources.
type LagSource interface {
	Lags(ctx context.Context) ([]Lag, error)
}

// LagFunc makes a function a LagSource.
type LagFunc func(ctx context.Context) ([]Lag, error)

// Lags calls f.
func (f LagFunc) Lags(ctx context.Context) ([]Lag, error) { return f(ctx) }

// gaugeTimeout bounds a callback that asks a store at collection time.
const gaugeTimeout = 5 * time.Second

func (t *Telemetry) gauges() error {
	t.gaugesCreated.Do(func() {
		var errs [5]error
		t.lagGauges[0], errs[0] = t.meter.Int64ObservableGauge(MetricFollowerLag, metric.WithUnit("{notification}"),
			metric.WithDescription("How many notification IDs a follower has still to process in an upstream log."))
		t.ageGauges[0], errs[1] = t.meter.Float64ObservableGauge(MetricFollowerLagAge, metric.WithUnit("s"),
			metric.WithDescription("How long ago the oldest notification a follower has still to process was recorded."))
		t.lagGauges[1], errs[2] = t.meter.Int64ObservableGauge(MetricProjectionLag, metric.WithUnit("{notification}"),
			metric.WithDescription("How many notification IDs a projection has still to process in an upstream log."))
		t.ageGauges[1], errs[3] = t.meter.Float64ObservableGauge(MetricProjectionLagAge, metric.WithUnit("s"),
			metric.WithDescription("How long ago the oldest notification a projection has still to process was recorded."))
		t.horizonGauge, errs[4] = t.meter.Float64ObservableGauge(MetricPostgresHorizonAge, metric.WithUnit("s"),
			metric.WithDescription("How long the oldest running PostgreSQL transaction has held the visibility horizon back, by holder."))
		for _, err := range errs {
			if err != nil && t.gaugeErr == nil {
				t.gaugeErr = err
			}
		}
	})
	return t.gaugeErr
}

// LagAttributes returns the attributes of a lag's metrics and spans.
func LagAttributes(l Lag) []attribute.KeyValue {
	if l.Kind == ProjectionLag {
		return []attribute.KeyValue{attribute.String(KeyProjection, l.Reader), attribute.Int(KeyProjectionVersion, l.Version), attribute.String(KeyUpstream, l.Upstream)}
	}
	return []attribute.KeyValue{attribute.String(KeyFollower, l.Reader), attribute.String(KeyUpstream, l.Upstream)}
}

// ObserveLags reports the lags of src as the follower and projection lag
// gauges, asking src at each collection. Unregister the result when src
// stops.
func (t *Telemetry) ObserveLags(src LagSource) (metric.Registration, error) {
	if err := t.gauges(); err != nil {
		return nil, err
	}
	return t.meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, gaugeTimeout)
		defer cancel()
		lags, err := src.Lags(ctx)
		for _, l := range lags {
			i := 0
			if l.Kind == ProjectionLag {
				i = 1
			}
			attrs := metric.WithAttributes(LagAttributes(l)...)
			o.ObserveInt64(t.lagGauges[i], l.Behind, attrs)
			o.ObserveFloat64(t.ageGauges[i], l.Age.Seconds(), attrs)
		}
		return err
	}, t.lagGauges[0], t.ageGauges[0], t.lagGauges[1], t.ageGauges[1])
}

// HorizonAttributes returns the attributes that name a horizon's holder.
func HorizonAttributes(h persistence.Horizon) []attribute.KeyValue {
	return []attribute.KeyValue{attribute.Int(KeyHolderPID, h.PID), attribute.String(KeyHolderApplication, h.ApplicationName), attribute.String(KeyHolderDatabase, h.Database)}
}

// ObserveHorizon reports src's visibility horizon as the horizon age
// gauge, asking src at each collection: the age of the oldest running
// transaction, labelled with the backend that runs it (0 and no holder
// when none holds the horizon back).
func (t *Telemetry) ObserveHorizon(src persistence.HorizonReader) (metric.Registration, error) {
	if err := t.gauges(); err != nil {
		return nil, err
	}
	return t.meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, gaugeTimeout)
		defer cancel()
		h, err := src.Horizon(ctx)
		if err != nil {
			return err
		}
		o.ObserveFloat64(t.horizonGauge, h.Age.Seconds(), metric.WithAttributes(HorizonAttributes(h)...))
		return nil
	}, t.horizonGauge)
}

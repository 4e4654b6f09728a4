package observe_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/examples/counters"
	"github.com/strata-go/strata/examples/worlds"
	"github.com/strata-go/strata/httpapi"
	"github.com/strata-go/strata/observe"
	"github.com/strata-go/strata/persistence"
	_ "github.com/strata-go/strata/persistence/memory"
	"github.com/strata-go/strata/system"
)

// telemetry returns a Telemetry that records spans in memory and metrics
// in a manual reader.
func telemetry(t *testing.T) (*observe.Telemetry, *tracetest.InMemoryExporter, *sdkmetric.ManualReader) {
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()); _ = mp.Shutdown(context.Background()) })
	return observe.New(observe.WithTracerProvider(tp), observe.WithMeterProvider(mp)), spans, reader
}

func attrsOf(s tracetest.SpanStub) map[string]attribute.Value {
	m := map[string]attribute.Value{}
	for _, kv := range s.Attributes {
		m[string(kv.Key)] = kv.Value
	}
	return m
}

func find(t *testing.T, spans tracetest.SpanStubs, name string, match func(map[string]attribute.Value) bool) tracetest.SpanStub {
	t.Helper()
	var names []string
	for _, s := range spans {
		if s.Name == name && (match == nil || match(attrsOf(s))) {
			return s
		}
		names = append(names, s.Name)
	}
	t.Fatalf("no span %s among %v", name, names)
	return tracetest.SpanStub{}
}

// The spans of saves, gets, selects, follower batches and HTTP requests
// carry application names, aggregate types and notification IDs, and
// never what the events say.
func TestSpansFromAnInMemoryExporter(t *testing.T) {
	ctx := context.Background()
	tel, exported, reader := telemetry(t)
	sys, err := system.New([]system.Def{
		system.Define(worlds.Name, worlds.Types, worlds.New),
		system.Define(counters.Name, counters.Types, counters.New),
	}, []string{worlds.Name, counters.Name})
	if err != nil {
		t.Fatal(err)
	}
	runner := system.NewSingleThreadedRunner(sys, system.WithEnv(map[string]string{"PERSISTENCE_MODULE": "memory"}), system.WithTelemetry(tel))
	if err := runner.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer runner.Stop(ctx)
	w, _ := system.Get[*worlds.Worlds](runner, worlds.Name)
	id, err := w.CreateWorld(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.MakeItSo(ctx, id, "dinosaurs"); err != nil {
		t.Fatal(err)
	}

	srv := httptest.NewServer(httpapi.NewHandler(w.Log(), httpapi.WithTelemetry(tel)))
	defer srv.Close()
	client, err := httpapi.NewClient(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if items, err := client.Select(ctx, 1, 10); err != nil || len(items) != 2 {
		t.Fatalf("select over HTTP: %d items, %v", len(items), err)
	}

	spans := exported.GetSpans()
	save := find(t, spans, observe.SpanSave, func(a map[string]attribute.Value) bool {
		return a[observe.KeyApplication].AsString() == worlds.Name && a[observe.KeyLastNotificationID].AsInt64() == 2
	})
	a := attrsOf(save)
	if got := a[observe.KeyAggregateType].AsStringSlice(); len(got) != 1 || got[0] != "World" {
		t.Errorf("save's aggregate types: %v", got)
	}
	if a[observe.KeyEventCount].AsInt64() != 1 || a[observe.KeyFirstNotificationID].AsInt64() != 2 {
		t.Errorf("save's attributes: %v", save.Attributes)
	}
	get := find(t, spans, observe.SpanGet, nil)
	if attrsOf(get)[observe.KeyAggregateID].AsString() != id.String() || attrsOf(get)[observe.KeyAggregateType].AsString() != "World" {
		t.Errorf("get's attributes: %v", get.Attributes)
	}
	batch := find(t, spans, observe.SpanFollowerBatch, func(a map[string]attribute.Value) bool {
		return a[observe.KeyFirstNotificationID].AsInt64() == 2
	})
	if a := attrsOf(batch); a[observe.KeyFollower].AsString() != counters.Name || a[observe.KeyUpstream].AsString() != worlds.Name || a[observe.KeyEventCount].AsInt64() != 1 {
		t.Errorf("follower batch's attributes: %v", batch.Attributes)
	}
	// The follower's save of its counter is a child of its batch.
	childOf := func(parent tracetest.SpanStub, name string) bool {
		for _, s := range spans {
			if s.Name == name && s.Parent.SpanID() == parent.SpanContext.SpanID() {
				return true
			}
		}
		return false
	}
	if !childOf(batch, observe.SpanSave) {
		t.Error("the follower's save is not a child of its batch")
	}
	request := find(t, spans, "GET /notifications", nil)
	if a := attrsOf(request); a[observe.KeyHTTPStatus].AsInt64() != 200 || a[observe.KeyLastNotificationID].AsInt64() != 2 {
		t.Errorf("request's attributes: %v", request.Attributes)
	}
	if !childOf(request, observe.SpanSelect) {
		t.Error("the log's select is not a child of the request")
	}
	for _, s := range spans {
		for _, kv := range s.Attributes {
			if strings.Contains(kv.Value.Emit(), "dinosaurs") {
				t.Errorf("span %s carries an event's contents: %s", s.Name, kv.Key)
			}
		}
	}

	// Saves, events and lags are measured.
	reg, err := tel.ObserveLags(runner)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Unregister()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	if n := sum(rm, observe.MetricSaves, observe.KeyApplication, worlds.Name); n != 2 {
		t.Errorf("%s of Worlds: %d, want 2", observe.MetricSaves, n)
	}
	if n := sum(rm, observe.MetricEvents, observe.KeyAggregateType, "World"); n != 2 {
		t.Errorf("%s of World: %d, want 2", observe.MetricEvents, n)
	}
	if n, ok := gauge(rm, observe.MetricFollowerLag, observe.KeyFollower, counters.Name); !ok || n != 0 {
		t.Errorf("%s of Counters: %d (%v), want 0", observe.MetricFollowerLag, n, ok)
	}
}

// A conflicting save is counted as a conflict and as an error of kind
// integrity, and its span says so.
func TestConflictsAndErrorsByKind(t *testing.T) {
	ctx := context.Background()
	tel, exported, reader := telemetry(t)
	app, err := worlds.New(ctx, application.WithoutProcessEnv(), application.WithTelemetry(tel))
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	id, _ := app.CreateWorld(ctx)
	a, _ := app.Worlds().Get(ctx, id)
	b, _ := app.Worlds().Get(ctx, id)
	_ = a.MakeItSo("x")
	_ = b.MakeItSo("y")
	if _, err := app.Save(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Save(ctx, b); !errors.Is(err, persistence.ErrIntegrity) {
		t.Fatalf("second save: %v", err)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	if n := sum(rm, observe.MetricConflicts, observe.KeyApplication, worlds.Name); n != 1 {
		t.Errorf("conflicts: %d, want 1", n)
	}
	if n := sum(rm, observe.MetricErrors, observe.KeyErrorKind, observe.KindIntegrity); n != 1 {
		t.Errorf("integrity errors: %d, want 1", n)
	}
	failed := find(t, exported.GetSpans(), observe.SpanSave, func(a map[string]attribute.Value) bool {
		return a[observe.KeyErrorKind].AsString() == observe.KindIntegrity
	})
	if failed.Status.Description != observe.KindIntegrity {
		t.Errorf("failed save's status: %+v", failed.Status)
	}
}

func TestErrorKind(t *testing.T) {
	for err, want := range map[error]string{
		nil: "",
		persistence.Errorf(persistence.ErrIntegrity, "insert", errors.New("dup")): observe.KindIntegrity,
		persistence.ErrUnknownOutcome: observe.KindUnknownOutcome,
		persistence.ErrNoTable:        observe.KindNoTable,
		context.DeadlineExceeded:      observe.KindTimeout,
		errors.New("else"):            observe.KindOther,
	} {
		if got := observe.ErrorKind(err); got != want {
			t.Errorf("ErrorKind(%v) = %q, want %q", err, got, want)
		}
	}
}

func points(rm metricdata.ResourceMetrics, name string) any {
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				return m.Data
			}
		}
	}
	return nil
}

func sum(rm metricdata.ResourceMetrics, name, key, value string) int64 {
	s, _ := points(rm, name).(metricdata.Sum[int64])
	var n int64
	for _, p := range s.DataPoints {
		if v, ok := p.Attributes.Value(attribute.Key(key)); ok && v.AsString() == value {
			n += p.Value
		}
	}
	return n
}

func gauge(rm metricdata.ResourceMetrics, name, key, value string) (int64, bool) {
	g, _ := points(rm, name).(metricdata.Gauge[int64])
	for _, p := range g.DataPoints {
		if v, ok := p.Attributes.Value(attribute.Key(key)); ok && v.AsString() == value {
			return p.Value, true
		}
	}
	return 0, false
}

package projection_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/strata-go/strata/httpapi"
	"github.com/strata-go/strata/projection"
	"github.com/strata-go/strata/projection/projectiontest"
)

// A projection reads a log served over HTTP by another process as it reads
// a local one: with topic filters, and exactly once.
func TestAProjectionReadsALogOverHTTP(t *testing.T) {
	ctx := context.Background()
	app := projectiontest.Open(t, map[string]string{"PERSISTENCE_MODULE": "memory"})
	server := httptest.NewServer(httpapi.NewHandler(app.AllTenants(), httpapi.WithBearerToken("secret")))
	defer server.Close()
	client, err := httpapi.NewClient(server.URL, httpapi.WithClientBearerToken("secret"))
	if err != nil {
		t.Fatal(err)
	}
	store := newMemoryStore()
	r, err := projection.NewRunner(store, memoryTallies{version: 1, hook: func(projection.Event, int) error { return nil }},
		[]projection.Source{{Name: app.Name(), Log: client, Mapper: app.Mapper(), Topics: []string{projectiontest.AddedTopic}}},
		projection.BatchSize(3), projection.PollInterval(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer r.Stop(ctx)

	want, events, last := 0, 0, int64(0)
	for i := range 12 {
		n := i + 1
		recs := projectiontest.SaveTally(t, app, n, 10*n)
		last = recs[len(recs)-1].NotificationID
		want += 11 * n
		events += 2
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := r.WaitFor(wctx, map[string]int64{app.Name(): last}); err != nil {
		t.Fatal(err)
	}
	var sum, seen, rows int
	store.Read("tallies", func(v tallies, _ int) {
		for _, row := range v {
			rows++
			sum += row.Total
			seen += row.Events
		}
	})
	if rows != 12 || sum != want || seen != events {
		t.Fatalf("the model read over HTTP holds %d tallies, total %d of %d events; want 12, %d, %d", rows, sum, seen, want, events)
	}
}

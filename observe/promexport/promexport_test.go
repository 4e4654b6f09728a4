package promexport_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/examples/counters"
	"github.com/strata-go/strata/examples/worlds"
	"github.com/strata-go/strata/internal/pgtest"
	"github.com/strata-go/strata/observe"
	"github.com/strata-go/strata/observe/promexport"
	"github.com/strata-go/strata/persistence"
	_ "github.com/strata-go/strata/persistence/postgres"
	"github.com/strata-go/strata/system"
)

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("scrape: %d %v", resp.StatusCode, err)
	}
	return string(body)
}

// value returns the value of the first series of metric whose labels
// match labels (a regular expression), or -1.
func value(t *testing.T, body, metric, labels string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + metric + `\{([^}]*` + labels + `[^}]*)\} (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(m[2], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Scraping /metrics finds a follower's lag growing as events are saved
// that it does not process, and the horizon age growing while a
// transaction is held open, with the backend that holds it.
func TestScrapeFindsLagAndHorizonMoving(t *testing.T) {
	ctx := context.Background()
	env := pgtest.Env(t)
	exp, err := promexport.New()
	if err != nil {
		t.Fatal(err)
	}
	defer exp.Shutdown(ctx)
	tel := observe.New(observe.WithMeterProvider(exp.MeterProvider()))
	srv := httptest.NewServer(exp.Handler())
	defer srv.Close()

	sys, err := system.New([]system.Def{
		system.Define(worlds.Name, worlds.Types, worlds.New),
		system.Define(counters.Name, counters.Types, counters.New),
	}, []string{worlds.Name, counters.Name})
	if err != nil {
		t.Fatal(err)
	}
	// The follower is prompted by neither saves nor NOTIFY and polls
	// rarely, so that what another writer saves stays unprocessed.
	runner := system.NewConcurrentRunner(sys, system.WithEnv(env), system.WithoutListening(), system.PollInterval(time.Hour), system.WithTelemetry(tel))
	if err := runner.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer runner.Stop(ctx)
	reg, err := tel.ObserveLags(runner)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Unregister()
	writer, err := worlds.New(ctx, application.WithEnv(env), application.WithTelemetry(tel))
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	horizon, ok := writer.Factory().(persistence.HorizonReader)
	if !ok {
		t.Fatalf("%T is not a persistence.HorizonReader", writer.Factory())
	}
	hreg, err := tel.ObserveHorizon(horizon)
	if err != nil {
		t.Fatal(err)
	}
	defer hreg.Unregister()

	const lag, lagAge = "strata_follower_lag", "strata_follower_lag_age_seconds"
	labels := `strata_follower="Counters",strata_upstream="Worlds"`
	body := scrape(t, srv.URL)
	if v := value(t, body, lag, labels); v != 0 {
		t.Fatalf("%s before any save: %v\n%s", lag, v, body)
	}
	for i := 1; i <= 3; i++ {
		if _, err := writer.CreateWorld(ctx); err != nil {
			t.Fatal(err)
		}
		// A save becomes visible to readers once the cluster's older
		// transactions, perhaps another program's, have ended.
		deadline := time.Now().Add(30 * time.Second)
		for {
			body = scrape(t, srv.URL)
			v := value(t, body, lag, labels)
			if v >= float64(i) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s after %d saves: %v\n%s", lag, i, v, body)
			}
			time.Sleep(20 * time.Millisecond) // poll with a deadline
		}
		if v := value(t, body, lagAge, labels); v <= 0 {
			t.Fatalf("%s after %d saves: %v", lagAge, i, v)
		}
	}
	if v := value(t, body, "strata_saves_total", `strata_application="Worlds"`); v != 3 {
		t.Errorf("strata_saves_total of Worlds: %v", v)
	}

	// A transaction that holds a snapshot holds the horizon back.
	conn, err := pgx.Connect(ctx, pgtest.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SET application_name = 'strata-horizon-test'"); err != nil {
		t.Fatal(err)
	}
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	const age = "strata_postgres_horizon_age_seconds"
	first := value(t, scrape(t, srv.URL), age, `strata_postgres_holder_pid`)
	if first < 0 {
		t.Fatalf("no %s while a transaction is open", age)
	}
	// Another test's older transaction may be the holder; either way the
	// age is at least ours, and grows.
	deadline := time.Now().Add(30 * time.Second)
	for {
		body := scrape(t, srv.URL)
		v := value(t, body, age, `strata_postgres_holder_pid`)
		held := time.Since(began).Seconds()
		if v > first && v >= 0.2 && v >= held-0.5 {
			if value(t, body, age, `strata_postgres_holder_application="strata-horizon-test"`) < 0 && v < held {
				t.Fatalf("the horizon is held by our transaction, but another holder is named:\n%s", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not grow past %v: %v (transaction open %.1fs)", age, first, v, held)
		}
		select {
		case <-time.After(50 * time.Millisecond): // poll with a deadline
		case <-ctx.Done():
		}
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	h, err := horizon.Horizon(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if h.ApplicationName == "strata-horizon-test" {
		t.Errorf("the horizon is still held by the ended transaction: %+v", h)
	}
}

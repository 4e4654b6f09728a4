package health_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/jackc/pgx/v5"

	"github.com/strata-go/strata/health"
	"github.com/strata-go/strata/internal/pgtest"
	"github.com/strata-go/strata/observe"
	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/persistence/postgres"
	"github.com/strata-go/strata/system"
)

func get(t *testing.T, h http.Handler) (int, health.Report) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	var rep health.Report
	if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	return rec.Code, rep
}

func lags(ls ...observe.Lag) observe.LagSource {
	return observe.LagFunc(func(context.Context) ([]observe.Lag, error) { return ls, nil })
}

func TestTheHandlerSaysWhatIsWrong(t *testing.T) {
	ok := observe.Lag{Kind: observe.FollowerLag, Reader: "Counters", Upstream: "Worlds", Position: 10, Head: 12, Behind: 2, Age: time.Second}
	far := observe.Lag{Kind: observe.ProjectionLag, Reader: "balances", Version: 2, Upstream: "Accounts", Position: 1, Head: 5001, Behind: 5000, Age: time.Second}
	old := observe.Lag{Kind: observe.FollowerLag, Reader: "Counters", Upstream: "Worlds", Behind: 1, Age: 2 * time.Hour}
	poisoned := observe.Lag{Kind: observe.FollowerLag, Reader: "Counters", Upstream: "Worlds", Stopped: &system.PoisonError{Follower: "Counters", Upstream: "Worlds", NotificationID: 7, Topic: "World.Created", Err: errors.New("secret contents")}}
	up := health.Store("Worlds", func(context.Context) error { return nil })
	down := health.Store("Worlds", func(context.Context) error { return persistence.ErrOperational })
	for _, c := range []struct {
		name    string
		checks  []health.Check
		healthy bool
		problem string
	}{
		{"a reachable store and a follower within the limits are healthy", []health.Check{up, health.Lag(lags(ok), 1000, time.Minute)}, true, ""},
		{"an unreachable store is unhealthy", []health.Check{down}, false, "store unreachable: operational error"},
		{"a projection too far behind is unhealthy", []health.Check{up, health.Lag(lags(ok, far), 1000, time.Minute)}, false, "5000 notifications behind (at 1 of 5001), more than 1000"},
		{"a follower whose oldest unprocessed notification is too old is unhealthy", []health.Check{health.Lag(lags(old), 1000, time.Minute)}, false, "recorded 2h0m0s ago, more than 1m0s"},
		{"a follower stopped at a poison notification is unhealthy", []health.Check{health.Lag(lags(poisoned), 0, 0)}, false, "stopped at poison notification 7 of Worlds (topic World.Created)"},
		{"no limit is no limit", []health.Check{health.Lag(lags(far, old), 0, 0)}, true, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, rep := get(t, health.New(c.checks...))
			want := http.StatusOK
			if !c.healthy {
				want = http.StatusServiceUnavailable
			}
			if code != want || rep.Healthy != c.healthy || (rep.Status == "ok") != c.healthy {
				t.Fatalf("status %d, report %+v", code, rep)
			}
			problems := rep.Problems()
			if c.healthy != (len(problems) == 0) {
				t.Fatalf("problems %+v", problems)
			}
			if !c.healthy && !strings.Contains(problems[0].Problem, c.problem) {
				t.Errorf("problem %q, want it to say %q", problems[0].Problem, c.problem)
			}
			if strings.Contains(string(rep.JSON()), "secret contents") {
				t.Error("the report quotes a policy's error")
			}
		})
	}
	live := httptest.NewRecorder()
	health.New(down).Live().ServeHTTP(live, httptest.NewRequest(http.MethodGet, "/livez", nil))
	if live.Code != http.StatusOK {
		t.Errorf("liveness with a store down: %d", live.Code)
	}
}

// A PostgreSQL transaction held open past the threshold makes the store
// unhealthy, naming the backend that holds it; once it ends, healthy.
func TestAHeldTransactionIsUnhealthy(t *testing.T) {
	ctx := context.Background()
	env := pgtest.Env(t)
	f, err := postgres.OpenEnv(ctx, persistence.NewEnv("", env))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	conn, err := pgx.Connect(ctx, pgtest.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SET application_name = 'strata-health-test'"); err != nil {
		t.Fatal(err)
	}
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	checker := health.New(health.Horizon("postgres", f, time.Nanosecond))
	code, rep := get(t, checker)
	if code != http.StatusServiceUnavailable || rep.Healthy || rep.Checks[0].HolderPID == 0 || !strings.Contains(rep.Checks[0].Problem, "held the visibility horizon back") {
		t.Fatalf("with a transaction open: %d %+v", code, rep)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	code, rep = get(t, health.New(health.Horizon("postgres", f, time.Hour)))
	if code != http.StatusOK || !rep.Healthy {
		t.Fatalf("with a limit of an hour: %d %+v", code, rep)
	}
}

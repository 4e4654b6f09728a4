package balances_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/examples/bankaccounts"
	"github.com/strata-go/strata/examples/bankaccounts/balances"
	"github.com/strata-go/strata/internal/childtest"
	"github.com/strata-go/strata/internal/pgtest"
	"github.com/strata-go/strata/persistence/postgres"
	"github.com/strata-go/strata/persistence/sqlite"
	"github.com/strata-go/strata/projection"
	"github.com/strata-go/strata/projection/pgprojection"
	"github.com/strata-go/strata/projection/sqliteprojection"
)

// TestBalancesChild runs the balances projection until it is killed.
func TestBalancesChild(t *testing.T) {
	var env map[string]string
	childtest.Config(t, &env)
	ctx := context.Background()
	app, err := bankaccounts.New(ctx, application.WithoutProcessEnv(), application.WithEnv(env))
	if err != nil {
		t.Fatal(err)
	}
	opts := []projection.Option{projection.BatchSize(5), projection.PollInterval(10 * time.Millisecond)}
	src := []projection.Source{projection.FromApplication(ctx, app.Application)}
	var start func(context.Context) error
	if env["PERSISTENCE_MODULE"] == "postgres" {
		r, err := projection.NewRunner[pgx.Tx](pgprojection.FromFactory(app.Factory().(*postgres.Factory)), balances.Postgres{}, src, opts...)
		if err != nil {
			t.Fatal(err)
		}
		start = r.Start
	} else {
		r, err := projection.NewRunner[*sql.Tx](sqliteprojection.FromFactory(app.Factory().(*sqlite.Factory)), balances.SQLite{}, src, opts...)
		if err != nil {
			t.Fatal(err)
		}
		start = r.Start
	}
	if err := start(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Minute) // until killed
}

// A projection killed with SIGKILL again and again while deposits are
// saved, and restarted, applies every deposit exactly once: each balance
// in the model is its account's, to the cent (deposits only add, so an
// event applied twice or missed shows).
func TestBalancesSurviveKills(t *testing.T) {
	childtest.SkipInChild(t)
	for name, env := range map[string]func(t *testing.T) map[string]string{
		"sqlite": func(t *testing.T) map[string]string {
			return map[string]string{"PERSISTENCE_MODULE": "sqlite", "SQLITE_DBNAME": filepath.Join(t.TempDir(), "bank.db")}
		},
		"postgres": func(t *testing.T) map[string]string { return pgtest.Env(t) },
	} {
		t.Run(name, func(t *testing.T) { killBalances(t, env(t)) })
	}
}

func killBalances(t *testing.T, env map[string]string) {
	ctx := context.Background()
	app, err := bankaccounts.New(ctx, application.WithoutProcessEnv(), application.WithEnv(env))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	ids := make([]uuid.UUID, 8)
	for i := range ids {
		if ids[i], err = app.OpenAccount(ctx, fmt.Sprintf("Holder %d", i), fmt.Sprintf("h%d@example.com", i)); err != nil {
			t.Fatal(err)
		}
	}
	rnd, pause := rand.New(rand.NewPCG(3, 9)), rand.New(rand.NewPCG(9, 3))
	deposit := func(n int) { // in one goroutine at a time: rnd is its own
		for range n {
			if err := app.DepositFunds(ctx, ids[rnd.IntN(len(ids))], decimal.New(int64(1+rnd.IntN(999)), -2)); err != nil {
				t.Error(err)
				return
			}
		}
	}
	deposit(100)
	var largest func() ([]balances.Account, error)
	if env["PERSISTENCE_MODULE"] == "postgres" {
		store := pgprojection.FromFactory(app.Factory().(*postgres.Factory))
		largest = func() ([]balances.Account, error) { return balances.LargestPostgres(ctx, store, len(ids)) }
	} else {
		store := sqliteprojection.FromFactory(app.Factory().(*sqlite.Factory))
		largest = func() ([]balances.Account, error) { return balances.Largest(ctx, store, len(ids)) }
	}
	const kills = 6
	for range kills {
		child := childtest.Start(t, "TestBalancesChild", env)
		done := make(chan struct{})
		go func() { defer close(done); deposit(40) }()
		time.Sleep(time.Duration(200+pause.IntN(300)) * time.Millisecond)
		child.Kill()
		<-done
		if t.Failed() {
			return
		}
	}
	child := childtest.Start(t, "TestBalancesChild", env)
	defer child.Kill()

	want := map[uuid.UUID]decimal.Decimal{}
	for _, id := range ids {
		b, err := app.GetBalance(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		want[id] = b
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		rows, err := largest()
		mismatch := fmt.Sprint(err)
		if err == nil {
			mismatch = ""
			if len(rows) != len(ids) {
				mismatch = fmt.Sprintf("%d rows, want %d", len(rows), len(ids))
			}
			for _, r := range rows {
				if w := want[r.ID]; !r.Balance.Equal(w) {
					mismatch = fmt.Sprintf("account %s: the model says %s, the account %s", r.ID, r.Balance.StringFixed(2), w.StringFixed(2))
					if r.Balance.GreaterThan(w) {
						t.Fatalf("after %d kills, %s: a deposit was applied twice", kills, mismatch)
					}
					break
				}
			}
		}
		if mismatch == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %d kills and 2 minutes of the last runner: %s", kills, mismatch)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

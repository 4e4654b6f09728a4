package balances_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/examples/bankaccounts"
	"github.com/strata-go/strata/examples/bankaccounts/balances"
	"github.com/strata-go/strata/internal/pgtest"
	"github.com/strata-go/strata/persistence/postgres"
	"github.com/strata-go/strata/persistence/sqlite"
	"github.com/strata-go/strata/projection"
	"github.com/strata-go/strata/projection/pgprojection"
	"github.com/strata-go/strata/projection/sqliteprojection"
)

// dialect is one SQL store of the read model.
type dialect struct {
	name string
	env  func(t *testing.T) map[string]string
	// start starts the projection's runner on the application's store and
	// returns the largest-accounts query of its model.
	start func(t *testing.T, app *bankaccounts.BankAccounts) (wait func(last int64), largest func(n int) ([]balances.Account, error))
}

func dialects() []dialect {
	return []dialect{
		{
			name: "sqlite",
			env: func(t *testing.T) map[string]string {
				return map[string]string{"PERSISTENCE_MODULE": "sqlite", "SQLITE_DBNAME": filepath.Join(t.TempDir(), "bank.db")}
			},
			start: func(t *testing.T, app *bankaccounts.BankAccounts) (func(int64), func(int) ([]balances.Account, error)) {
				store := sqliteprojection.FromFactory(app.Factory().(*sqlite.Factory))
				wait := run(t, app, store, projection.Projection[*sql.Tx](balances.SQLite{}))
				return wait, func(n int) ([]balances.Account, error) { return balances.Largest(context.Background(), store, n) }
			},
		},
		{
			name: "postgres",
			env:  func(t *testing.T) map[string]string { return pgtest.Env(t) },
			start: func(t *testing.T, app *bankaccounts.BankAccounts) (func(int64), func(int) ([]balances.Account, error)) {
				store := pgprojection.FromFactory(app.Factory().(*postgres.Factory))
				wait := run(t, app, store, projection.Projection[pgx.Tx](balances.Postgres{}))
				return wait, func(n int) ([]balances.Account, error) {
					return balances.LargestPostgres(context.Background(), store, n)
				}
			},
		},
	}
}

// run starts a runner of proj on store, stopped when the test ends, and
// returns a function that waits until it has processed the notifications
// up to last.
func run[Tx any](t *testing.T, app *bankaccounts.BankAccounts, store projection.Store[Tx], proj projection.Projection[Tx]) func(last int64) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	runner, err := projection.NewRunner(store, proj, []projection.Source{projection.FromApplication(ctx, app.Application)},
		projection.BatchSize(50), projection.PollInterval(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if err := runner.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := runner.Stop(context.Background()); err != nil {
			t.Error(err)
		}
		cancel()
	})
	return func(last int64) {
		t.Helper()
		wctx, done := context.WithTimeout(ctx, time.Minute)
		defer done()
		if err := runner.WaitFor(wctx, map[string]int64{app.Name(): last}); err != nil {
			t.Fatalf("waiting for the balances model: %v (runner: %v)", err, runner.Err())
		}
	}
}

// TestTheModelMatchesTheAccounts moves money between accounts from
// several writers while the projection follows, closes one account, and
// requires every open account's row to match its aggregate exactly, in
// order of balance.
func TestTheModelMatchesTheAccounts(t *testing.T) {
	for _, d := range dialects() {
		t.Run(d.name, func(t *testing.T) {
			ctx := context.Background()
			app, err := bankaccounts.New(ctx, application.WithoutProcessEnv(), application.WithEnv(d.env(t)))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { app.Close() })
			wait, largest := d.start(t, app)
			// On PostgreSQL a save is visible to readers once older
			// transactions in the cluster have ended: wait for the last.
			var last atomic.Int64
			app.AddListener(func(_ context.Context, recs []application.Recording) {
				for _, r := range recs {
					for {
						old := last.Load()
						if r.NotificationID <= old || last.CompareAndSwap(old, r.NotificationID) {
							break
						}
					}
				}
			})

			const accounts, writers, moves = 12, 4, 30
			ids := make([]uuid.UUID, accounts)
			for i := range ids {
				if ids[i], err = app.OpenAccount(ctx, fmt.Sprintf("Holder %02d", i), fmt.Sprintf("h%d@example.com", i)); err != nil {
					t.Fatal(err)
				}
				if err := app.DepositFunds(ctx, ids[i], decimal.New(int64(1000+i), -2).Mul(decimal.NewFromInt(100))); err != nil {
					t.Fatal(err)
				}
			}
			var wg sync.WaitGroup
			errs := make(chan error, writers)
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := rand.New(rand.NewPCG(uint64(w), 7))
					for range moves {
						from, to := ids[r.IntN(accounts)], ids[r.IntN(accounts)]
						if from == to {
							continue
						}
						amount := decimal.New(int64(1+r.IntN(500)), -2) // 0.01 to 5.00
						if err := app.TransferFunds(ctx, from, to, amount); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			if err := app.CloseAccount(ctx, ids[0]); err != nil {
				t.Fatal(err)
			}
			wait(last.Load())

			got, err := largest(accounts)
			if err != nil {
				t.Fatal(err)
			}
			var want []balances.Account
			for _, id := range ids[1:] {
				a, err := app.GetAccount(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, balances.Account{ID: id, FullName: a.FullName, Balance: a.Balance, OverdraftLimit: a.OverdraftLimit})
			}
			slices.SortFunc(want, func(a, b balances.Account) int {
				if c := b.Balance.Cmp(a.Balance); c != 0 {
					return c
				}
				return slices.Compare(a.ID[:], b.ID[:])
			})
			if len(got) != len(want) {
				t.Fatalf("the model lists %d open accounts, want %d", len(got), len(want))
			}
			for i := range want {
				g, w := got[i], want[i]
				if g.ID != w.ID || g.FullName != w.FullName || !g.Balance.Equal(w.Balance) || !g.OverdraftLimit.Equal(w.OverdraftLimit) || g.Closed {
					t.Fatalf("row %d of the largest accounts is %+v, want %+v\ngot %v\nwant %v", i+1, g, w, got, want)
				}
			}
			top, err := largest(3)
			if err != nil {
				t.Fatal(err)
			}
			if len(top) != 3 || top[0].ID != want[0].ID || top[2].ID != want[2].ID {
				t.Fatalf("the 3 largest accounts are %v, want the first 3 of %v", top, want)
			}
			if _, err := largest(0); err == nil {
				t.Fatal("asking for the 0 largest accounts succeeded")
			}
		})
	}
}

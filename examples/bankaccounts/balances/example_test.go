package balances_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/shopspring/decimal"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/examples/bankaccounts"
	"github.com/strata-go/strata/examples/bankaccounts/balances"
	"github.com/strata-go/strata/persistence/sqlite"
	"github.com/strata-go/strata/projection"
	"github.com/strata-go/strata/projection/sqliteprojection"
)

func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "balances")
	defer os.RemoveAll(dir)
	app, err := bankaccounts.New(ctx, application.WithoutProcessEnv(), application.WithEnv(map[string]string{
		"PERSISTENCE_MODULE": "sqlite", "SQLITE_DBNAME": filepath.Join(dir, "bank.db"),
	}))
	if err != nil {
		panic(err)
	}
	defer app.Close()

	// The read model lives beside the events, in the same database file.
	store := sqliteprojection.FromFactory(app.Factory().(*sqlite.Factory))
	runner, err := projection.NewRunner(store, balances.SQLite{},
		[]projection.Source{projection.FromApplication(ctx, app.Application)})
	if err != nil {
		panic(err)
	}
	if err := runner.Start(ctx); err != nil {
		panic(err)
	}
	defer runner.Stop(ctx)

	for name, amount := range map[string]string{"Alice": "250.00", "Bob": "75.50", "Carol": "1200.10", "Dan": "3.00"} {
		id, _ := app.OpenAccount(ctx, name, name+"@example.com")
		_ = app.DepositFunds(ctx, id, decimal.RequireFromString(amount))
	}

	// Wait until the model has every event saved so far.
	if err := runner.Wait(ctx); err != nil {
		panic(err)
	}
	largest, err := balances.Largest(ctx, store, 3)
	if err != nil {
		panic(err)
	}
	for _, a := range largest {
		fmt.Println(a.FullName, a.Balance.StringFixed(2))
	}
	// Output:
	// Carol 1200.10
	// Alice 250.00
	// Bob 75.50
}

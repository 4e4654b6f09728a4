package saga_test

import (
	"context"
	"fmt"

	"github.com/shopspring/decimal"

	"github.com/strata-go/strata/examples/bankaccounts"
	_ "github.com/strata-go/strata/persistence/memory"
	"github.com/strata-go/strata/system"
)

// A transfer between two bank accounts run by a saga: Transfers records
// the debit as a command, TransferDispatch carries it out on BankAccounts,
// its outcome moves the transfer on to the credit, and so on. The
// single-threaded runner runs each step as the one before is saved.
func Example() {
	ctx := context.Background()
	sys, _ := bankaccounts.TransferSystem()
	runner := system.NewSingleThreadedRunner(sys, system.WithEnv(map[string]string{"PERSISTENCE_MODULE": "memory"}))
	if err := runner.Start(ctx); err != nil {
		panic(err)
	}
	defer runner.Stop(ctx)
	accounts, _ := system.Get[*bankaccounts.BankAccounts](runner, bankaccounts.Name)
	transfers, _ := system.Get[*bankaccounts.Transfers](runner, bankaccounts.TransfersName)

	alice, _ := accounts.OpenAccount(ctx, "Alice", "alice@example.com")
	bob, _ := accounts.OpenAccount(ctx, "Bob", "bob@example.com")
	_ = accounts.DepositFunds(ctx, alice, decimal.RequireFromString("100.00"))
	id, err := transfers.Start(ctx, alice, bob, decimal.RequireFromString("30.00"))
	if err != nil {
		panic(err)
	}
	tr, _ := transfers.Get(ctx, id)
	a, _ := accounts.GetBalance(ctx, alice)
	b, _ := accounts.GetBalance(ctx, bob)
	fmt.Println(tr.State, a, b)
	// Output:
	// completed 70 30
}

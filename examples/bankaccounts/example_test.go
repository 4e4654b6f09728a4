package bankaccounts_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/shopspring/decimal"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/examples/bankaccounts"
)

func Example() {
	ctx := context.Background()
	app, err := bankaccounts.New(ctx, application.WithoutProcessEnv())
	if err != nil {
		panic(err)
	}
	defer app.Close()

	alice, _ := app.OpenAccount(ctx, "Alice", "alice@example.com")
	bob, _ := app.OpenAccount(ctx, "Bob", "bob@example.com")
	_ = app.DepositFunds(ctx, alice, decimal.RequireFromString("200.00"))
	_ = app.TransferFunds(ctx, alice, bob, decimal.RequireFromString("75.50"))

	err = app.WithdrawFunds(ctx, bob, decimal.RequireFromString("100.00"))
	fmt.Println("Bob overdrawn:", errors.Is(err, bankaccounts.ErrInsufficientFunds))

	aliceBalance, _ := app.GetBalance(ctx, alice)
	bobBalance, _ := app.GetBalance(ctx, bob)
	// StringFixed, because decimal's String drops trailing zeros (124.5).
	fmt.Println("Alice:", aliceBalance.StringFixed(2))
	fmt.Println("Bob:", bobBalance.StringFixed(2))
	// Output:
	// Bob overdrawn: true
	// Alice: 124.50
	// Bob: 75.50
}

package bankaccounts_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/examples/bankaccounts"
	"github.com/strata-go/strata/internal/storetest"
	"github.com/strata-go/strata/persistence"
)

func newBankAccounts(t *testing.T, opts ...application.Option) *bankaccounts.BankAccounts {
	t.Helper()
	app, err := bankaccounts.New(context.Background(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	return app
}

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// fixed shows an amount with its own scale, which decimal.String trims.
func fixed(d decimal.Decimal) string { return d.StringFixed(max(-d.Exponent(), 0)) }

// checkAmount requires got to be want exactly: equal, and with want's
// scale, so that a balance of 150.00 does not come back as 150.
func checkAmount(t *testing.T, what string, got decimal.Decimal, err error, want string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	w := dec(want)
	if !got.Equal(w) || got.Exponent() != w.Exponent() {
		t.Fatalf("%s is %s, want %s", what, fixed(got), want)
	}
}

// checkErr requires err to wrap every one of wants.
func checkErr(t *testing.T, what string, err error, wants ...error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s succeeded, want an error wrapping %v", what, wants[0])
	}
	for _, want := range wants {
		if !errors.Is(err, want) {
			t.Fatalf("%s: %v, want an error wrapping %v", what, err, want)
		}
	}
}

func openAccount(t *testing.T, app *bankaccounts.BankAccounts, name string) uuid.UUID {
	t.Helper()
	id, err := app.OpenAccount(context.Background(), name, strings.ToLower(name)+"@example.com")
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestBankAccounts is the reference design's TestBankAccounts, assertion
// by assertion.
func TestBankAccounts(t *testing.T) {
	storetest.Run(t, func(t *testing.T, env map[string]string) {
		ctx := context.Background()
		app := newBankAccounts(t, application.WithEnv(env))
		balance := func(id uuid.UUID) (decimal.Decimal, error) { return app.GetBalance(ctx, id) }

		// Check account not found error.
		_, err := app.GetBalance(ctx, uuid.New())
		checkErr(t, "get the balance of an unknown account", err, bankaccounts.ErrAccountNotFound, application.ErrAggregateNotFound)

		// Create an account.
		account1, err := app.OpenAccount(ctx, "Alice", "alice@example.com")
		if err != nil {
			t.Fatal(err)
		}

		// Check balance.
		got, err := balance(account1)
		checkAmount(t, "Alice's balance after opening", got, err, "0.00")

		// Deposit funds.
		if err := app.DepositFunds(ctx, account1, dec("200.00")); err != nil {
			t.Fatal(err)
		}

		// Check balance.
		got, err = balance(account1)
		checkAmount(t, "Alice's balance after a deposit", got, err, "200.00")

		// Withdraw funds.
		if err := app.WithdrawFunds(ctx, account1, dec("50.00")); err != nil {
			t.Fatal(err)
		}

		// Check balance.
		got, err = balance(account1)
		checkAmount(t, "Alice's balance after a withdrawal", got, err, "150.00")

		// Fail to withdraw funds - insufficient funds.
		err = app.WithdrawFunds(ctx, account1, dec("151.00"))
		checkErr(t, "withdraw 151.00 of 150.00", err, bankaccounts.ErrInsufficientFunds, bankaccounts.ErrTransaction)

		// Check balance - should be unchanged.
		got, err = balance(account1)
		checkAmount(t, "Alice's balance after a refused withdrawal", got, err, "150.00")

		// Create another account.
		account2, err := app.OpenAccount(ctx, "Bob", "bob@example.com")
		if err != nil {
			t.Fatal(err)
		}

		// Transfer funds.
		if err := app.TransferFunds(ctx, account1, account2, dec("100.00")); err != nil {
			t.Fatal(err)
		}

		// Check balances.
		got, err = balance(account1)
		checkAmount(t, "Alice's balance after a transfer", got, err, "50.00")
		got, err = balance(account2)
		checkAmount(t, "Bob's balance after a transfer", got, err, "100.00")

		// Fail to transfer funds - insufficient funds.
		err = app.TransferFunds(ctx, account1, account2, dec("1000.00"))
		checkErr(t, "transfer 1000.00 of 50.00", err, bankaccounts.ErrInsufficientFunds, bankaccounts.ErrTransaction)

		// Check balances - should be unchanged.
		got, err = balance(account1)
		checkAmount(t, "Alice's balance after a refused transfer", got, err, "50.00")
		got, err = balance(account2)
		checkAmount(t, "Bob's balance after a refused transfer", got, err, "100.00")

		// Close account.
		if err := app.CloseAccount(ctx, account1); err != nil {
			t.Fatal(err)
		}

		// Fail to transfer funds - account closed.
		err = app.TransferFunds(ctx, account1, account2, dec("50.00"))
		checkErr(t, "transfer from a closed account", err, bankaccounts.ErrAccountClosed, bankaccounts.ErrTransaction)

		// Fail to transfer funds - account closed.
		err = app.TransferFunds(ctx, account2, account1, dec("50.00"))
		checkErr(t, "transfer to a closed account", err, bankaccounts.ErrAccountClosed, bankaccounts.ErrTransaction)

		// Fail to withdraw funds - account closed.
		err = app.WithdrawFunds(ctx, account1, dec("1.00"))
		checkErr(t, "withdraw from a closed account", err, bankaccounts.ErrAccountClosed, bankaccounts.ErrTransaction)

		// Fail to deposit funds - account closed.
		err = app.DepositFunds(ctx, account1, dec("1000.00"))
		checkErr(t, "deposit into a closed account", err, bankaccounts.ErrAccountClosed, bankaccounts.ErrTransaction)

		// Check balance - should be unchanged.
		got, err = balance(account1)
		checkAmount(t, "Alice's balance after refused transactions", got, err, "50.00")

		// Check overdraft limit.
		got, err = app.GetOverdraftLimit(ctx, account2)
		checkAmount(t, "Bob's overdraft limit after opening", got, err, "0.00")

		// Set overdraft limit.
		if err := app.SetOverdraftLimit(ctx, account2, dec("500.00")); err != nil {
			t.Fatal(err)
		}

		// Can't set negative overdraft limit.
		err = app.SetOverdraftLimit(ctx, account2, dec("-500.00"))
		checkErr(t, "set a negative overdraft limit", err, bankaccounts.ErrNegativeOverdraftLimit)

		// Check overdraft limit.
		got, err = app.GetOverdraftLimit(ctx, account2)
		checkAmount(t, "Bob's overdraft limit", got, err, "500.00")

		// Withdraw funds.
		if err := app.WithdrawFunds(ctx, account2, dec("500.00")); err != nil {
			t.Fatal(err)
		}

		// Check balance - should be overdrawn.
		got, err = balance(account2)
		checkAmount(t, "Bob's overdrawn balance", got, err, "-400.00")

		// Fail to withdraw funds - insufficient funds.
		err = app.WithdrawFunds(ctx, account2, dec("101.00"))
		checkErr(t, "withdraw beyond the overdraft limit", err, bankaccounts.ErrInsufficientFunds, bankaccounts.ErrTransaction)

		// Fail to set overdraft limit - account closed.
		err = app.SetOverdraftLimit(ctx, account1, dec("500.00"))
		checkErr(t, "set the overdraft limit of a closed account", err, bankaccounts.ErrAccountClosed, bankaccounts.ErrTransaction)
	})
}

func TestErrorsNameTheAccount(t *testing.T) {
	ctx := context.Background()
	app := newBankAccounts(t, application.WithoutProcessEnv())
	alice := openAccount(t, app, "Alice")
	bob := openAccount(t, app, "Bob")
	unknown := uuid.New()
	if err := app.CloseAccount(ctx, bob); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		err     error
		account uuid.UUID
		want    error
	}{
		{"an unknown account", app.DepositFunds(ctx, unknown, dec("1.00")), unknown, bankaccounts.ErrAccountNotFound},
		{"insufficient funds", app.WithdrawFunds(ctx, alice, dec("1.00")), alice, bankaccounts.ErrInsufficientFunds},
		{"a closed account", app.DepositFunds(ctx, bob, dec("1.00")), bob, bankaccounts.ErrAccountClosed},
		{"closing a closed account", app.CloseAccount(ctx, bob), bob, bankaccounts.ErrAccountClosed},
		{"a negative overdraft limit", app.SetOverdraftLimit(ctx, alice, dec("-1.00")), alice, bankaccounts.ErrNegativeOverdraftLimit},
		{"a zero amount", app.TransferFunds(ctx, alice, bob, decimal.Zero), alice, bankaccounts.ErrInvalidAmount},
		{"a negative deposit", app.DepositFunds(ctx, bob, dec("-1.00")), bob, bankaccounts.ErrInvalidAmount},
		{"a zero withdrawal", app.WithdrawFunds(ctx, alice, decimal.Zero), alice, bankaccounts.ErrInvalidAmount},
		{"a transfer to the same account", app.TransferFunds(ctx, alice, alice, dec("1.00")), alice, bankaccounts.ErrSameAccount},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkErr(t, tc.name, tc.err, tc.want)
			if !strings.Contains(tc.err.Error(), tc.account.String()) {
				t.Fatalf("the error %q does not name the account %s", tc.err, tc.account)
			}
		})
	}
}

func TestAmountsMustBePositive(t *testing.T) {
	ctx := context.Background()
	app := newBankAccounts(t, application.WithoutProcessEnv())
	alice := openAccount(t, app, "Alice")
	bob := openAccount(t, app, "Bob")
	if err := app.DepositFunds(ctx, alice, dec("10.00")); err != nil {
		t.Fatal(err)
	}
	for _, amount := range []string{"0", "0.00", "-1.00"} {
		for name, command := range map[string]func() error{
			"deposit":  func() error { return app.DepositFunds(ctx, alice, dec(amount)) },
			"withdraw": func() error { return app.WithdrawFunds(ctx, alice, dec(amount)) },
			"transfer": func() error { return app.TransferFunds(ctx, alice, bob, dec(amount)) },
		} {
			checkErr(t, name+" "+amount, command(), bankaccounts.ErrInvalidAmount)
		}
	}
	got, err := app.GetBalance(ctx, alice)
	checkAmount(t, "Alice's balance", got, err, "10.00")
	if a, _ := app.GetAccount(ctx, alice); a.Version() != 2 {
		t.Fatalf("Alice's account is at version %d after refused commands, want 2", a.Version())
	}
}

// A failed transfer records nothing for either account: the debit that
// was accepted before the credit was refused is not saved on its own.
func TestFailedTransferRecordsNothing(t *testing.T) {
	storetest.Run(t, func(t *testing.T, env map[string]string) {
		ctx := context.Background()
		app := newBankAccounts(t, application.WithEnv(env))
		open := openAccount(t, app, "Alice")
		other := openAccount(t, app, "Bob")
		closed := openAccount(t, app, "Carol")
		for _, id := range []uuid.UUID{open, other, closed} {
			if err := app.DepositFunds(ctx, id, dec("50.00")); err != nil {
				t.Fatal(err)
			}
		}
		if err := app.CloseAccount(ctx, closed); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name          string
			debit, credit uuid.UUID
			amount        string
			want          error
		}{
			{"with insufficient funds", open, other, "50.01", bankaccounts.ErrInsufficientFunds},
			{"from a closed account", closed, open, "1.00", bankaccounts.ErrAccountClosed},
			{"to a closed account", open, closed, "1.00", bankaccounts.ErrAccountClosed},
			{"to an unknown account", open, uuid.New(), "1.00", bankaccounts.ErrAccountNotFound},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := versions(t, app, tc.debit, tc.credit)
				maxBefore, err := app.Recorder().MaxNotificationID(ctx)
				if err != nil {
					t.Fatal(err)
				}
				err = app.TransferFunds(ctx, tc.debit, tc.credit, dec(tc.amount))
				checkErr(t, "transfer", err, tc.want)
				if after := versions(t, app, tc.debit, tc.credit); after != before {
					t.Fatalf("versions of the debit and credit accounts went from %v to %v", before, after)
				}
				if maxAfter, err := app.Recorder().MaxNotificationID(ctx); err != nil || maxAfter != maxBefore {
					t.Fatalf("the log went from notification %d to %d (%v)", maxBefore, maxAfter, err)
				}
			})
		}
		for _, id := range []uuid.UUID{open, other, closed} {
			got, err := app.GetBalance(ctx, id)
			checkAmount(t, "balance", got, err, "50.00")
		}
	})
}

// versions returns the versions of two accounts, 0 for an unknown one.
func versions(t *testing.T, app *bankaccounts.BankAccounts, a, b uuid.UUID) [2]int64 {
	t.Helper()
	var vs [2]int64
	for i, id := range []uuid.UUID{a, b} {
		account, err := app.GetAccount(context.Background(), id)
		switch {
		case errors.Is(err, bankaccounts.ErrAccountNotFound):
		case err != nil:
			t.Fatal(err)
		default:
			vs[i] = account.Version()
		}
	}
	return vs
}

// Concurrent deposits into one account conflict with each other; the
// commands retry, and every deposit is recorded once.
func TestConcurrentDeposits(t *testing.T) {
	storetest.Run(t, func(t *testing.T, env map[string]string) {
		ctx := context.Background()
		app := newBankAccounts(t, application.WithEnv(env))
		id := openAccount(t, app, "Alice")

		const n = 20
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{}) // released together, the deposits collide
		for i := range n {
			wg.Go(func() {
				<-start
				errs[i] = app.DepositFunds(ctx, id, dec("1.00"))
			})
		}
		close(start)
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}

		account, err := app.GetAccount(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		checkAmount(t, "balance after 20 deposits of 1.00", account.Balance, nil, "20.00")
		if account.Version() != n+1 {
			t.Fatalf("version %d, want %d: one Opened and one event per deposit", account.Version(), n+1)
		}
	})
}

// Transfers in both directions between two accounts conflict on both
// accounts; all of them go through, and no money is made or lost.
func TestConcurrentTransfers(t *testing.T) {
	storetest.Run(t, func(t *testing.T, env map[string]string) {
		ctx := context.Background()
		app := newBankAccounts(t, application.WithEnv(env))
		alice := openAccount(t, app, "Alice")
		bob := openAccount(t, app, "Bob")
		for _, id := range []uuid.UUID{alice, bob} {
			if err := app.DepositFunds(ctx, id, dec("100.00")); err != nil {
				t.Fatal(err)
			}
		}

		const n = 10 // transfers in each direction
		errs := make([]error, 2*n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				errs[2*i] = app.TransferFunds(ctx, alice, bob, dec("1.00"))
			})
			wg.Go(func() {
				<-start
				errs[2*i+1] = app.TransferFunds(ctx, bob, alice, dec("2.50"))
			})
		}
		close(start)
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}

		a, err := app.GetAccount(ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		b, err := app.GetAccount(ctx, bob)
		if err != nil {
			t.Fatal(err)
		}
		checkAmount(t, "Alice's balance", a.Balance, nil, "115.00") // 100 - 10×1.00 + 10×2.50
		checkAmount(t, "Bob's balance", b.Balance, nil, "85.00")    // 100 + 10×1.00 - 10×2.50
		checkAmount(t, "the money in both accounts", a.Balance.Add(b.Balance), nil, "200.00")
		// Opened, a deposit, and one transaction per transfer.
		if a.Version() != 2+2*n || b.Version() != 2+2*n {
			t.Fatalf("versions %d and %d, want %d", a.Version(), b.Version(), 2+2*n)
		}
	})
}

// The two transactions of a transfer share a transaction ID, and each
// deposit or withdrawal gets its own.
func TestTransactionIDs(t *testing.T) {
	ctx := context.Background()
	app := newBankAccounts(t, application.WithoutProcessEnv())
	alice := openAccount(t, app, "Alice")
	bob := openAccount(t, app, "Bob")
	if err := app.DepositFunds(ctx, alice, dec("10.00")); err != nil {
		t.Fatal(err)
	}
	if err := app.TransferFunds(ctx, alice, bob, dec("4.00")); err != nil {
		t.Fatal(err)
	}
	last := func(id uuid.UUID) bankaccounts.TransactionAppended {
		t.Helper()
		events, err := app.Events().Get(ctx, id, persistence.EventQuery{Desc: true, Limit: 1})
		if err != nil || len(events) != 1 {
			t.Fatalf("events of %s: %v %v", id, events, err)
		}
		return events[0].Data.(bankaccounts.TransactionAppended)
	}
	debit, credit := last(alice), last(bob)
	if debit.TransactionID == uuid.Nil || debit.TransactionID != credit.TransactionID {
		t.Fatalf("transfer transaction IDs %s and %s", debit.TransactionID, credit.TransactionID)
	}
	checkAmount(t, "the debit", debit.Amount, nil, "-4.00")
	checkAmount(t, "the credit", credit.Amount, nil, "4.00")
	deposit, err := app.Events().Get(ctx, alice, persistence.EventQuery{Limit: 1, Gt: ptr(int64(1))})
	if err != nil || len(deposit) != 1 {
		t.Fatalf("deposit event: %v %v", deposit, err)
	}
	if id := deposit[0].Data.(bankaccounts.TransactionAppended).TransactionID; id == uuid.Nil || id == debit.TransactionID {
		t.Fatalf("deposit transaction ID %s (transfer %s)", id, debit.TransactionID)
	}
}

func ptr[T any](v T) *T { return &v }

// Snapshots keep the scale of the money in an account.
func TestSnapshotsKeepAmounts(t *testing.T) {
	storetest.Run(t, func(t *testing.T, env map[string]string) {
		ctx := context.Background()
		app := newBankAccounts(t, application.WithEnv(env), application.SnapshotInterval[bankaccounts.BankAccount](2))
		id := openAccount(t, app, "Alice")
		if err := app.DepositFunds(ctx, id, dec("200.00")); err != nil {
			t.Fatal(err)
		}
		if err := app.SetOverdraftLimit(ctx, id, dec("25.50")); err != nil {
			t.Fatal(err)
		}
		if err := app.WithdrawFunds(ctx, id, dec("50.00")); err != nil {
			t.Fatal(err)
		}
		snaps, err := app.Snapshots().Get(ctx, id, persistence.EventQuery{})
		if err != nil || len(snaps) != 2 {
			t.Fatalf("snapshots %v %v", snaps, err)
		}
		// Loaded from the snapshot at version 4.
		account, err := app.GetAccount(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		checkAmount(t, "balance", account.Balance, nil, "150.00")
		checkAmount(t, "overdraft limit", account.OverdraftLimit, nil, "25.50")
		if account.FullName != "Alice" || account.EmailAddress != "alice@example.com" || account.IsClosed {
			t.Fatalf("account %+v", account)
		}
	})
}

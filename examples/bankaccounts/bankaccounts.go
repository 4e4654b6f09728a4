package bankaccounts

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/strata-go/strata/application"
)

// Errors of the application's arguments; test for them with errors.Is.
var (
	// ErrInvalidAmount means an amount to deposit, withdraw or transfer
	// that is zero or negative: the direction of a transaction is given by
	// the command, not by the amount's sign.
	ErrInvalidAmount = errors.New("amount is not positive")
	// ErrSameAccount means a transfer from an account to itself, which
	// would record two versions of one account in one save.
	ErrSameAccount = errors.New("debit and credit accounts are the same")
)

// Name is the application's name, which prefixes its environment
// variables (BANKACCOUNTS_...) and names its tables.
const Name = "BankAccounts"

// retryPolicy bounds how long a command runs again when other writers keep
// saving the same account first: for half a minute, then it gives up with
// application.ErrConflict. A time limit rather than a count of attempts,
// since a few dozen concurrent commands on one account take a few rounds of
// saves on a store whose saves take a millisecond and many more seconds on
// one whose saves take tens of milliseconds (DynamoDB, MongoDB's protocol on
// FerretDB, a loaded machine). The first retries come soon; waits grow to
// half a second, so that the commands spread out enough for each to get its
// turn.
var retryPolicy = []application.RetryOption{
	application.RetryFor(30 * time.Second),
	application.Backoff(time.Millisecond, 500*time.Millisecond),
}

// BankAccounts is the application of bank accounts. It is safe for
// concurrent use.
type BankAccounts struct {
	*application.Application
	accounts *application.Repository[*BankAccount]
}

// New returns the BankAccounts application, configured by the options and
// the environment.
func New(ctx context.Context, opts ...application.Option) (*BankAccounts, error) {
	app, err := application.New(ctx, Name, append([]application.Option{application.WithTypes(Types)}, opts...)...)
	if err != nil {
		return nil, err
	}
	repo, err := application.NewRepository[BankAccount](app)
	if err != nil {
		app.Close()
		return nil, err
	}
	return &BankAccounts{Application: app, accounts: repo}, nil
}

// OpenAccount opens an account and returns its ID.
func (a *BankAccounts) OpenAccount(ctx context.Context, fullName, emailAddress string) (uuid.UUID, error) {
	account, err := Open(fullName, emailAddress)
	if err != nil {
		return uuid.Nil, fmt.Errorf("open account: %w", err)
	}
	if _, err := a.Save(ctx, account); err != nil {
		return uuid.Nil, fmt.Errorf("open account: %w", err)
	}
	return account.ID(), nil
}

// GetAccount loads the account with the given ID. An unknown ID is an
// error wrapping [ErrAccountNotFound].
func (a *BankAccounts) GetAccount(ctx context.Context, id uuid.UUID) (*BankAccount, error) {
	account, err := a.accounts.Get(ctx, id)
	if errors.Is(err, application.ErrAggregateNotFound) {
		return nil, fmt.Errorf("account %s: %w", id, ErrAccountNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("account %s: %w", id, err)
	}
	return account, nil
}

// Accounts returns the repository of accounts, for reading an account as
// it was at an earlier version.
func (a *BankAccounts) Accounts() *application.Repository[*BankAccount] { return a.accounts }

// GetBalance returns the account's balance.
func (a *BankAccounts) GetBalance(ctx context.Context, id uuid.UUID) (decimal.Decimal, error) {
	account, err := a.GetAccount(ctx, id)
	if err != nil {
		return decimal.Decimal{}, err
	}
	return account.Balance, nil
}

// GetOverdraftLimit returns how far below zero the account's balance may go.
func (a *BankAccounts) GetOverdraftLimit(ctx context.Context, id uuid.UUID) (decimal.Decimal, error) {
	account, err := a.GetAccount(ctx, id)
	if err != nil {
		return decimal.Decimal{}, err
	}
	return account.OverdraftLimit, nil
}

// DepositFunds credits a positive amount to the account.
func (a *BankAccounts) DepositFunds(ctx context.Context, creditAccountID uuid.UUID, amount decimal.Decimal) error {
	if err := checkAmount(amount); err != nil {
		return fmt.Errorf("deposit %s into account %s: %w", money(amount), creditAccountID, err)
	}
	// One transaction, however often the command has to run.
	tx := uuid.New()
	err := a.update(ctx, creditAccountID, func(account *BankAccount) error {
		return account.AppendTransaction(amount, tx)
	})
	if err != nil {
		return fmt.Errorf("deposit %s: %w", money(amount), err)
	}
	return nil
}

// WithdrawFunds debits a positive amount from the account, if its balance
// and overdraft limit allow.
func (a *BankAccounts) WithdrawFunds(ctx context.Context, debitAccountID uuid.UUID, amount decimal.Decimal) error {
	if err := checkAmount(amount); err != nil {
		return fmt.Errorf("withdraw %s from account %s: %w", money(amount), debitAccountID, err)
	}
	tx := uuid.New()
	err := a.update(ctx, debitAccountID, func(account *BankAccount) error {
		return account.AppendTransaction(amount.Neg(), tx)
	})
	if err != nil {
		return fmt.Errorf("withdraw %s: %w", money(amount), err)
	}
	return nil
}

// TransferFunds moves a positive amount from one account to another. Both
// transactions are recorded in one atomic save, with the same transaction
// ID: if either account refuses its transaction, or another writer saves
// either account first and the retries run out, neither is recorded.
func (a *BankAccounts) TransferFunds(ctx context.Context, debitAccountID, creditAccountID uuid.UUID, amount decimal.Decimal) error {
	what := fmt.Sprintf("transfer %s from account %s to account %s", money(amount), debitAccountID, creditAccountID)
	if err := checkAmount(amount); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if debitAccountID == creditAccountID {
		return fmt.Errorf("%s: %w", what, ErrSameAccount)
	}
	tx := uuid.New()
	err := application.Retry(ctx, func(ctx context.Context) error {
		debit, err := a.GetAccount(ctx, debitAccountID)
		if err != nil {
			return err
		}
		credit, err := a.GetAccount(ctx, creditAccountID)
		if err != nil {
			return err
		}
		if err := debit.AppendTransaction(amount.Neg(), tx); err != nil {
			return err
		}
		if err := credit.AppendTransaction(amount, tx); err != nil {
			return err
		}
		_, err = a.Save(ctx, debit, credit)
		return err
	}, retryPolicy...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// SetOverdraftLimit sets how far below zero the account's balance may go.
// A negative limit is an error wrapping [ErrNegativeOverdraftLimit].
func (a *BankAccounts) SetOverdraftLimit(ctx context.Context, accountID uuid.UUID, overdraftLimit decimal.Decimal) error {
	err := a.update(ctx, accountID, func(account *BankAccount) error {
		return account.SetOverdraftLimit(overdraftLimit)
	})
	if err != nil {
		return fmt.Errorf("set overdraft limit %s: %w", money(overdraftLimit), err)
	}
	return nil
}

// CloseAccount closes the account, after which it takes no transactions.
func (a *BankAccounts) CloseAccount(ctx context.Context, accountID uuid.UUID) error {
	if err := a.update(ctx, accountID, (*BankAccount).Close); err != nil {
		return fmt.Errorf("close account: %w", err)
	}
	return nil
}

// update loads the account, runs the command on it and saves it, again
// with a fresh load if another writer saved the account first.
func (a *BankAccounts) update(ctx context.Context, id uuid.UUID, command func(*BankAccount) error) error {
	return application.Retry(ctx, func(ctx context.Context) error {
		account, err := a.GetAccount(ctx, id)
		if err != nil {
			return err
		}
		if err := command(account); err != nil {
			return err
		}
		_, err = a.Save(ctx, account)
		return err
	}, retryPolicy...)
}

func checkAmount(amount decimal.Decimal) error {
	if !amount.IsPositive() {
		return ErrInvalidAmount
	}
	return nil
}

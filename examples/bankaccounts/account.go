package bankaccounts

import (
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/domain"
)

// kind is a sentinel error that belongs to a broader kind, so that
// errors.Is(err, ErrTransaction) holds for insufficient funds, as the
// reference design's exception classes inherit from TransactionError.
type kind struct {
	msg    string
	parent error
}

func (k *kind) Error() string { return k.msg }
func (k *kind) Unwrap() error { return k.parent }

// Errors of the bank accounts domain; test for them with errors.Is. The
// errors that wrap them name the account.
var (
	// ErrAccountNotFound means no account has the ID. It wraps
	// application.ErrAggregateNotFound.
	ErrAccountNotFound error = &kind{"account not found", application.ErrAggregateNotFound}
	// ErrTransaction is the kind of the errors that refuse a transaction
	// because of the state of an account.
	ErrTransaction = errors.New("transaction refused")
	// ErrAccountClosed means the account is closed: it takes no more
	// transactions or changes. It wraps ErrTransaction.
	ErrAccountClosed error = &kind{"account is closed", ErrTransaction}
	// ErrInsufficientFunds means a debit would take the balance below the
	// overdraft limit. It wraps ErrTransaction.
	ErrInsufficientFunds error = &kind{"insufficient funds", ErrTransaction}
	// ErrNegativeOverdraftLimit means an overdraft limit below zero, which
	// would oblige the account to stay in credit by some amount. (The
	// reference design asserts it; here it is an error callers can test.)
	ErrNegativeOverdraftLimit = errors.New("overdraft limit is negative")
)

// zero is the zero amount with the scale of money, so that a new account
// shows a balance of 0.00 rather than 0.
var zero = decimal.New(0, -2)

// BankAccount is an account whose balance is the sum of its transactions.
//
// Its fields are exported so that snapshots can keep them; change them only
// through the commands, which record why they changed.
type BankAccount struct {
	domain.Aggregate
	FullName       string          `json:"full_name"`
	EmailAddress   string          `json:"email_address"`
	Balance        decimal.Decimal `json:"balance"`
	OverdraftLimit decimal.Decimal `json:"overdraft_limit"`
	IsClosed       bool            `json:"is_closed"`
}

// Opened is the event that creates an account.
type Opened struct {
	FullName     string `json:"full_name"`
	EmailAddress string `json:"email_address"`
}

// TransactionAppended records money moving into the account (a positive
// amount) or out of it (a negative amount). The two transactions of a
// transfer share their TransactionID, which ties them together.
type TransactionAppended struct {
	Amount        decimal.Decimal `json:"amount"`
	TransactionID uuid.UUID       `json:"transaction_id"`
}

// OverdraftLimitSet records how far below zero the balance may go.
type OverdraftLimitSet struct {
	OverdraftLimit decimal.Decimal `json:"overdraft_limit"`
}

// Closed records that the account was closed.
type Closed struct{}

// Types are the persisted types of the bank accounts domain. Their topics
// are explicit so that renaming a Go type or moving the package does not
// orphan recorded events.
var Types = domain.Types(
	domain.AggregateType[BankAccount](domain.Named("BankAccount"), domain.CreatedBy(Opened{})),
	domain.EventType[Opened](domain.Named("BankAccount.Opened")),
	domain.EventType[TransactionAppended](domain.Named("BankAccount.TransactionAppended")),
	domain.EventType[OverdraftLimitSet](domain.Named("BankAccount.OverdraftLimitSet")),
	domain.EventType[Closed](domain.Named("BankAccount.Closed")),
)

// Open opens a new account with a balance and an overdraft limit of 0.00.
func Open(fullName, emailAddress string) (*BankAccount, error) {
	return domain.New[BankAccount](domain.NewID(), Opened{FullName: fullName, EmailAddress: emailAddress})
}

// AppendTransaction records a credit (a positive amount) or a debit (a
// negative amount), unless the account is closed or a debit would take the
// balance below the overdraft limit.
func (a *BankAccount) AppendTransaction(amount decimal.Decimal, transactionID uuid.UUID) error {
	if err := a.checkNotClosed(); err != nil {
		return err
	}
	if a.Balance.Add(amount).LessThan(a.OverdraftLimit.Neg()) {
		return fmt.Errorf("account %s: %w for %s (balance %s, overdraft limit %s)",
			a.ID(), ErrInsufficientFunds, money(amount), money(a.Balance), money(a.OverdraftLimit))
	}
	return domain.Trigger(a, TransactionAppended{Amount: amount, TransactionID: transactionID})
}

// SetOverdraftLimit sets how far below zero the balance may go. Zero
// removes the overdraft; a negative limit is refused.
func (a *BankAccount) SetOverdraftLimit(limit decimal.Decimal) error {
	if limit.IsNegative() {
		return fmt.Errorf("account %s: %w: %s", a.ID(), ErrNegativeOverdraftLimit, money(limit))
	}
	if err := a.checkNotClosed(); err != nil {
		return err
	}
	return domain.Trigger(a, OverdraftLimitSet{OverdraftLimit: limit})
}

// Close closes the account. Closing a closed account is refused with
// [ErrAccountClosed], so that the account's history holds one Closed event.
func (a *BankAccount) Close() error {
	if err := a.checkNotClosed(); err != nil {
		return err
	}
	return domain.Trigger(a, Closed{})
}

func (a *BankAccount) checkNotClosed() error {
	if a.IsClosed {
		return fmt.Errorf("account %s: %w", a.ID(), ErrAccountClosed)
	}
	return nil
}

// Apply changes the account's state by one of its events. It decides
// nothing: the commands have checked the rules before triggering.
func (a *BankAccount) Apply(event any) error {
	switch e := event.(type) {
	case Opened:
		a.FullName, a.EmailAddress = e.FullName, e.EmailAddress
		a.Balance, a.OverdraftLimit = zero, zero
	case TransactionAppended:
		a.Balance = a.Balance.Add(e.Amount)
	case OverdraftLimitSet:
		a.OverdraftLimit = e.OverdraftLimit
	case Closed:
		a.IsClosed = true
	default:
		return fmt.Errorf("%w: a bank account has no event %T", domain.ErrUnknownEvent, event)
	}
	return nil
}

// money formats an amount with its own scale, which decimal.String would
// trim: 150.00, not 150.
func money(d decimal.Decimal) string {
	return d.StringFixed(max(-d.Exponent(), 0))
}

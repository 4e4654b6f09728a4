package bankaccounts

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/domain"
	"github.com/strata-go/strata/system"
)

// LedgerName is the name of the Ledger application, which prefixes its
// environment variables (LEDGER_...) and names its tables.
const LedgerName = "Ledger"

// Statement is the statement of one bank account, kept by the Ledger from
// the account's events: who holds the account, each of its transactions
// with the balance after it, and the totals in and out.
//
// Its fields are exported so that snapshots can keep them; they change
// only through the Ledger's policy.
type Statement struct {
	domain.Aggregate
	AccountID uuid.UUID       `json:"account_id"`
	FullName  string          `json:"full_name"`
	Lines     []Line          `json:"lines"`
	Balance   decimal.Decimal `json:"balance"`
	// TotalIn and TotalOut add up the credits and (as positive amounts) the
	// debits, so that Balance = TotalIn - TotalOut.
	TotalIn  decimal.Decimal `json:"total_in"`
	TotalOut decimal.Decimal `json:"total_out"`
	IsClosed bool            `json:"is_closed"`
}

// Line is one transaction on a statement.
type Line struct {
	TransactionID uuid.UUID       `json:"transaction_id"`
	Amount        decimal.Decimal `json:"amount"`
	Balance       decimal.Decimal `json:"balance"`
	// NotificationID is the transaction's position in the log of the
	// BankAccounts application.
	NotificationID int64 `json:"notification_id"`
}

// StatementOpened starts the statement of an account that was opened.
type StatementOpened struct {
	AccountID uuid.UUID `json:"account_id"`
	FullName  string    `json:"full_name"`
}

// LineAdded records a transaction of the account on its statement.
type LineAdded struct {
	TransactionID  uuid.UUID       `json:"transaction_id"`
	Amount         decimal.Decimal `json:"amount"`
	NotificationID int64           `json:"notification_id"`
}

// StatementClosed records that the account was closed.
type StatementClosed struct{}

// LedgerTypes are the persisted types of the Ledger.
var LedgerTypes = domain.Types(
	domain.AggregateType[Statement](domain.Named("Statement"), domain.CreatedBy(StatementOpened{})),
	domain.EventType[StatementOpened](domain.Named("Statement.Opened")),
	domain.EventType[LineAdded](domain.Named("Statement.LineAdded")),
	domain.EventType[StatementClosed](domain.Named("Statement.Closed")),
)

// Apply changes the statement by one of its events.
func (s *Statement) Apply(event any) error {
	switch e := event.(type) {
	case StatementOpened:
		s.AccountID, s.FullName = e.AccountID, e.FullName
		s.Balance, s.TotalIn, s.TotalOut = zero, zero, zero
	case LineAdded:
		s.Balance = s.Balance.Add(e.Amount)
		if e.Amount.IsNegative() {
			s.TotalOut = s.TotalOut.Sub(e.Amount)
		} else {
			s.TotalIn = s.TotalIn.Add(e.Amount)
		}
		s.Lines = append(s.Lines, Line{TransactionID: e.TransactionID, Amount: e.Amount, Balance: s.Balance, NotificationID: e.NotificationID})
	case StatementClosed:
		s.IsClosed = true
	default:
		return fmt.Errorf("%w: a statement has no event %T", domain.ErrUnknownEvent, event)
	}
	return nil
}

// StatementID returns the ID of the statement of the account: statements
// are found by account, without an index.
func StatementID(accountID uuid.UUID) uuid.UUID {
	return domain.NameID(domain.NamespaceURL, "/statements/"+accountID.String()+"/")
}

// Ledger is a process application that follows BankAccounts and keeps a
// statement of each account. Each event of BankAccounts is processed
// exactly once, however often the Ledger is stopped, crashes or is
// restarted: a statement is saved atomically with the position of the
// event that changed it, and a Ledger resumes after the last position it
// saved.
type Ledger struct {
	*application.Application
	statements *application.Repository[*Statement]
}

// NewLedger returns the Ledger application. In a system, the runner adds
// the options that make it follow BankAccounts (see [System]).
func NewLedger(ctx context.Context, opts ...application.Option) (*Ledger, error) {
	app, err := application.New(ctx, LedgerName, append([]application.Option{application.WithTypes(LedgerTypes)}, opts...)...)
	if err != nil {
		return nil, err
	}
	repo, err := application.NewRepository[Statement](app)
	if err != nil {
		app.Close()
		return nil, err
	}
	return &Ledger{Application: app, statements: repo}, nil
}

// Policy opens, writes and closes statements as accounts are opened,
// credited or debited, and closed. Overdraft limits are not on
// statements.
func (l *Ledger) Policy(ctx context.Context, event domain.Event, p *system.Processing) error {
	id := StatementID(event.OriginatorID)
	switch e := event.Data.(type) {
	case Opened:
		s, err := domain.New[Statement](id, StatementOpened{AccountID: event.OriginatorID, FullName: e.FullName})
		if err != nil {
			return err
		}
		p.Save(s)
	case TransactionAppended:
		return l.update(ctx, p, event.OriginatorID, LineAdded{TransactionID: e.TransactionID, Amount: e.Amount, NotificationID: p.Tracking.NotificationID})
	case Closed:
		return l.update(ctx, p, event.OriginatorID, StatementClosed{})
	}
	return nil
}

func (l *Ledger) update(ctx context.Context, p *system.Processing, accountID uuid.UUID, change any) error {
	s, err := l.statements.Get(ctx, StatementID(accountID))
	if err != nil {
		return fmt.Errorf("statement of account %s: %w", accountID, err)
	}
	if err := domain.Trigger(s, change); err != nil {
		return err
	}
	p.Save(s)
	return nil
}

// Statement returns the statement of the account. An account the Ledger
// has not seen opened is an error wrapping [ErrAccountNotFound].
func (l *Ledger) Statement(ctx context.Context, accountID uuid.UUID) (*Statement, error) {
	s, err := l.statements.Get(ctx, StatementID(accountID))
	if errors.Is(err, application.ErrAggregateNotFound) {
		return nil, fmt.Errorf("statement of account %s: %w", accountID, ErrAccountNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("statement of account %s: %w", accountID, err)
	}
	return s, nil
}

// System returns the system of BankAccounts followed by the Ledger.
//
//	sys, _ := bankaccounts.System()
//	runner := system.NewConcurrentRunner(sys, system.WithEnv(env))
//	_ = runner.Start(ctx)
//	accounts, _ := system.Get[*bankaccounts.BankAccounts](runner, bankaccounts.Name)
//	ledger, _ := system.Get[*bankaccounts.Ledger](runner, bankaccounts.LedgerName)
func System() (*system.System, error) {
	return system.New([]system.Def{
		system.Define(Name, Types, New),
		system.Define(LedgerName, LedgerTypes, NewLedger),
	}, []string{Name, LedgerName})
}

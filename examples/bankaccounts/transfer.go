package bankaccounts

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/domain"
	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/saga"
	"github.com/strata-go/strata/system"
)

// The names of the transfer saga's applications.
const (
	// TransfersName is the application of transfer sagas.
	TransfersName = "Transfers"
	// TransferDispatchName is the dispatcher of the transfers' commands.
	TransferDispatchName = "TransferDispatch"
)

// The states of a transfer.
const (
	TransferDebiting    = "debiting"
	TransferCrediting   = "crediting"
	TransferRefunding   = "refunding"
	TransferCompleted   = "completed"
	TransferCompensated = "compensated"
	TransferFailed      = "failed"
)

// Transfer is a saga that moves money between two accounts step by step,
// where the accounts may not be saved together (a bank of its own for
// each, say): it debits the source, then credits the target; if the
// credit is refused, it refunds the source (the compensating step). Each
// step is a command dispatched by TransferDispatch, whose outcome moves
// the transfer on. The account transactions of a transfer carry its ID.
type Transfer struct {
	domain.Aggregate
	From   uuid.UUID       `json:"from"`
	To     uuid.UUID       `json:"to"`
	Amount decimal.Decimal `json:"amount"`
	State  string          `json:"state"`
	Reason string          `json:"reason,omitempty"`
}

// TransferStarted creates a transfer.
type TransferStarted struct {
	From   uuid.UUID       `json:"from"`
	To     uuid.UUID       `json:"to"`
	Amount decimal.Decimal `json:"amount"`
}

// DebitRequested is the command to take the amount from the source.
type DebitRequested struct{}

// CreditRequested is the command to give the amount to the target.
type CreditRequested struct{}

// RefundRequested is the command to give the amount back to the source.
type RefundRequested struct{ Reason string }

// TransferEnded records the transfer's final state.
type TransferEnded struct {
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
}

// Apply moves the transfer through its states.
func (t *Transfer) Apply(event any) error {
	switch e := event.(type) {
	case TransferStarted:
		t.From, t.To, t.Amount = e.From, e.To, e.Amount
	case DebitRequested:
		t.State = TransferDebiting
	case CreditRequested:
		t.State = TransferCrediting
	case RefundRequested:
		t.State, t.Reason = TransferRefunding, e.Reason
	case TransferEnded:
		t.State = e.State
		if e.Reason != "" {
			t.Reason = e.Reason
		}
	default:
		return fmt.Errorf("%w: a transfer has no event %T", domain.ErrUnknownEvent, event)
	}
	return nil
}

// Ended reports whether the transfer is over: completed, compensated or
// failed.
func (t *Transfer) Ended() bool {
	return t.State == TransferCompleted || t.State == TransferCompensated || t.State == TransferFailed
}

// TransferTypes are the persisted types of transfers.
var TransferTypes = domain.Types(
	domain.AggregateType[Transfer](domain.Named("Transfer"), domain.CreatedBy(TransferStarted{}),
		domain.Events(DebitRequested{}, CreditRequested{}, RefundRequested{}, TransferEnded{})),
	domain.EventType[TransferStarted](domain.Named("Transfer.Started")),
	domain.EventType[DebitRequested](domain.Named("Transfer.DebitRequested")),
	domain.EventType[CreditRequested](domain.Named("Transfer.CreditRequested")),
	domain.EventType[RefundRequested](domain.Named("Transfer.RefundRequested")),
	domain.EventType[TransferEnded](domain.Named("Transfer.Ended")),
)

// Transfers is the saga application of transfers.
type Transfers struct {
	*application.Application
	transfers *application.Repository[*Transfer]
}

// NewTransfers builds the Transfers application.
func NewTransfers(ctx context.Context, opts ...application.Option) (*Transfers, error) {
	app, err := application.New(ctx, TransfersName, append([]application.Option{application.WithTypes(TransferTypes)}, opts...)...)
	if err != nil {
		return nil, err
	}
	repo, err := application.NewRepository[Transfer](app)
	if err != nil {
		app.Close()
		return nil, err
	}
	return &Transfers{Application: app, transfers: repo}, nil
}

// Start starts a transfer of a positive amount and returns its ID: the
// transfer and its first command, the debit, are saved together.
func (t *Transfers) Start(ctx context.Context, from, to uuid.UUID, amount decimal.Decimal) (uuid.UUID, error) {
	if err := checkAmount(amount); err != nil {
		return uuid.Nil, fmt.Errorf("start a transfer of %s: %w", money(amount), err)
	}
	if from == to {
		return uuid.Nil, fmt.Errorf("start a transfer of %s: %w", money(amount), ErrSameAccount)
	}
	tr, err := domain.New[Transfer](domain.NewID(), TransferStarted{From: from, To: to, Amount: amount})
	if err != nil {
		return uuid.Nil, err
	}
	if err := domain.Trigger(tr, DebitRequested{}); err != nil {
		return uuid.Nil, err
	}
	if _, err := t.Save(ctx, tr); err != nil {
		return uuid.Nil, err
	}
	return tr.ID(), nil
}

// Get returns a transfer.
func (t *Transfers) Get(ctx context.Context, id uuid.UUID) (*Transfer, error) {
	return t.transfers.Get(ctx, id)
}

// Policy moves a transfer on when the outcome of its command arrives from
// the dispatcher: from the debit to the credit, from the credit to its end,
// or, if the credit was refused, to the refund.
func (t *Transfers) Policy(ctx context.Context, e domain.Event, p *system.Processing) error {
	var topic, failure string
	var id uuid.UUID
	switch o := e.Data.(type) {
	case saga.CommandDone:
		id, topic = o.Saga, o.Topic
	case saga.CommandFailed:
		id, topic, failure = o.Saga, o.Topic, o.Failure
	default:
		return nil
	}
	repo, err := application.NewRepository[Transfer](p.App)
	if err != nil {
		return err
	}
	tr, err := repo.Get(ctx, id)
	if err != nil {
		return err
	}
	var next any
	switch {
	case topic == "Transfer.DebitRequested" && tr.State == TransferDebiting && failure == "":
		next = CreditRequested{}
	case topic == "Transfer.DebitRequested" && tr.State == TransferDebiting:
		next = TransferEnded{State: TransferFailed, Reason: failure}
	case topic == "Transfer.CreditRequested" && tr.State == TransferCrediting && failure == "":
		next = TransferEnded{State: TransferCompleted}
	case topic == "Transfer.CreditRequested" && tr.State == TransferCrediting:
		next = RefundRequested{Reason: failure}
	case topic == "Transfer.RefundRequested" && tr.State == TransferRefunding && failure == "":
		next = TransferEnded{State: TransferCompensated}
	case topic == "Transfer.RefundRequested" && tr.State == TransferRefunding:
		// The source refuses its own money back (it was closed meanwhile):
		// an operator must settle it.
		return fmt.Errorf("transfer %s: refund refused: %s", tr.ID(), failure)
	default:
		return nil // an outcome the transfer has moved past
	}
	if err := domain.Trigger(tr, next); err != nil {
		return err
	}
	p.Save(tr)
	return nil
}

// NewTransferDispatch builds the dispatcher of transfers' commands, whose
// handlers act on the BankAccounts application of the process, each
// command's transaction saved with the command's ID as its commit ID, so
// that a command dispatched again records nothing twice.
func NewTransferDispatch(ctx context.Context, opts ...application.Option) (*saga.Dispatcher, error) {
	d, err := saga.NewDispatcher(ctx, TransferDispatchName, opts...)
	if err != nil {
		return nil, err
	}
	saga.Handle(d, func(ctx context.Context, dp saga.Dispatch, _ DebitRequested) error {
		return transact(ctx, dp, func(tr *Transfer) (uuid.UUID, decimal.Decimal) { return tr.From, tr.Amount.Neg() })
	})
	saga.Handle(d, func(ctx context.Context, dp saga.Dispatch, _ CreditRequested) error {
		return transact(ctx, dp, func(tr *Transfer) (uuid.UUID, decimal.Decimal) { return tr.To, tr.Amount })
	})
	saga.Handle(d, func(ctx context.Context, dp saga.Dispatch, _ RefundRequested) error {
		return transact(ctx, dp, func(tr *Transfer) (uuid.UUID, decimal.Decimal) { return tr.From, tr.Amount })
	})
	return d, nil
}

// transact appends the transfer's transaction to one account as the
// command dp: the account and amount come from the transfer.
func transact(ctx context.Context, dp saga.Dispatch, which func(*Transfer) (uuid.UUID, decimal.Decimal)) error {
	transfers, err := system.NodeAs[*Transfers](dp.Processing, TransfersName)
	if err != nil {
		return err
	}
	accounts, err := system.NodeAs[*BankAccounts](dp.Processing, Name)
	if err != nil {
		return err
	}
	tr, err := transfers.Get(ctx, dp.Saga)
	if err != nil {
		return err
	}
	account, amount := which(tr)
	err = accounts.AppendTransaction(ctx, application.Commit{ID: dp.ID}, account, amount, tr.ID())
	switch {
	case err == nil, errors.Is(err, application.ErrAlreadyCommitted):
		return nil // done now, or done before this dispatch
	case errors.Is(err, ErrTransaction), errors.Is(err, ErrAccountNotFound):
		return saga.Refused(err)
	case errors.Is(err, persistence.ErrOperational), errors.Is(err, application.ErrConflict):
		return system.Temporary(err)
	}
	return err
}

// AppendTransaction appends a transaction to an account as the commit c:
// saved again with c's ID, it records nothing twice, and the error wraps
// application.ErrAlreadyCommitted.
func (a *BankAccounts) AppendTransaction(ctx context.Context, c application.Commit, accountID uuid.UUID, amount decimal.Decimal, transactionID uuid.UUID) error {
	if c.ID != uuid.Nil {
		// A command dispatched again (its first dispatch was recorded, its
		// outcome was not) finds its commit before the account's rules
		// judge it again: a debit that took the funds must not be refused
		// for want of them the second time.
		if recorded, err := a.Recorded(ctx, accountID); err == nil {
			for _, r := range recorded {
				if r.CommitID == c.ID {
					return fmt.Errorf("transaction of %s on account %s: %w", money(amount), accountID, application.ErrAlreadyCommitted)
				}
			}
		}
	}
	err := application.Retry(ctx, func(ctx context.Context) error {
		account, err := a.GetAccount(ctx, accountID)
		if err != nil {
			return err
		}
		if err := account.AppendTransaction(amount, transactionID); err != nil {
			return err
		}
		_, err = a.SaveCommit(ctx, c, account)
		return err
	}, retryPolicy...)
	if err != nil {
		return fmt.Errorf("transaction of %s on account %s: %w", money(amount), accountID, err)
	}
	return nil
}

// TransferSystem returns the system of bank accounts with transfers run by
// sagas: Transfers and TransferDispatch follow each other, and the Ledger
// follows BankAccounts.
func TransferSystem() (*system.System, error) {
	return system.New([]system.Def{
		system.Define(Name, Types, New),
		system.Define(LedgerName, LedgerTypes, NewLedger),
		system.Define(TransfersName, TransferTypes, NewTransfers),
		system.Define(TransferDispatchName, saga.Types, NewTransferDispatch),
	}, []string{Name, LedgerName}, []string{TransfersName, TransferDispatchName, TransfersName})
}

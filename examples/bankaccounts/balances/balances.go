package balances

import (
	"fmt"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/strata-go/strata/examples/bankaccounts"
	"github.com/strata-go/strata/projection"
)

// Name is the projection's name, which prefixes its tables and views.
const Name = "balances"

// table is the logical name of the model's one table; readers query the
// view projection.View(Name, table), "balances_accounts".
const table = "accounts"

// Account is one row of the read model.
type Account struct {
	ID             uuid.UUID
	FullName       string
	Balance        decimal.Decimal
	OverdraftLimit decimal.Decimal
	Closed         bool
}

// change is what one event does to the model, whatever the dialect.
type change struct {
	open     *bankaccounts.Opened
	amount   *decimal.Decimal
	overdraw *decimal.Decimal
	close    bool
}

// changeOf returns what e does to the model, or false if it does nothing
// (a later version of the domain may add events this model ignores).
func changeOf(e projection.Event) (change, bool) {
	switch ev := e.Data.(type) {
	case bankaccounts.Opened:
		return change{open: &ev}, true
	case bankaccounts.TransactionAppended:
		return change{amount: &ev.Amount}, true
	case bankaccounts.OverdraftLimitSet:
		return change{overdraw: &ev.OverdraftLimit}, true
	case bankaccounts.Closed:
		return change{close: true}, true
	}
	return change{}, false
}

// missing is the error of an event of an account the model has no row
// for: its Opened event was not seen, which means the model was built from
// a log that lost events. It is not temporary, so the runner stops (or
// parks the event) rather than guess.
func missing(e projection.Event) error {
	return fmt.Errorf("balances: %T at version %d of account %s, which the model has not seen opened (notification %d of %s)",
		e.Data, e.OriginatorVersion, e.OriginatorID, e.Notification.ID, e.Upstream)
}

// limit checks the n of a largest-accounts query.
func limit(n int) error {
	if n < 1 || n > 1000 {
		return fmt.Errorf("balances: largest accounts: n is %d; ask for 1 to 1000", n)
	}
	return nil
}

package bankaccounts_test

import (
	"context"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/domain"
	"github.com/strata-go/strata/examples/bankaccounts"
	"github.com/strata-go/strata/internal/childtest"
	"github.com/strata-go/strata/internal/pgtest"
	"github.com/strata-go/strata/internal/storetest"
	"github.com/strata-go/strata/saga"
	"github.com/strata-go/strata/system"
)

// waitEnded waits until every transfer has ended, and returns them.
func waitEnded(t *testing.T, transfers *bankaccounts.Transfers, ids []uuid.UUID, within time.Duration) []*bankaccounts.Transfer {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		var out []*bankaccounts.Transfer
		for _, id := range ids {
			tr, err := transfers.Get(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			if !tr.Ended() {
				break
			}
			out = append(out, tr)
		}
		if len(out) == len(ids) {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d transfers ended after %v", len(out), len(ids), within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A transfer run by a saga completes, is compensated when the credit is
// refused, and fails when the debit is refused.
func TestTransfersRunBySagas(t *testing.T) {
	storetest.Run(t, func(t *testing.T, env map[string]string) {
		ctx := context.Background()
		sys, err := bankaccounts.TransferSystem()
		if err != nil {
			t.Fatal(err)
		}
		r := system.NewSingleThreadedRunner(sys, system.WithEnv(env))
		if err := r.Start(ctx); err != nil {
			t.Fatal(err)
		}
		defer r.Stop(ctx)
		accounts, _ := system.Get[*bankaccounts.BankAccounts](r, bankaccounts.Name)
		transfers, _ := system.Get[*bankaccounts.Transfers](r, bankaccounts.TransfersName)
		alice, bob, carol := openAccount(t, accounts, "Alice"), openAccount(t, accounts, "Bob"), openAccount(t, accounts, "Carol")
		if err := accounts.DepositFunds(ctx, alice, dec("100.00")); err != nil {
			t.Fatal(err)
		}
		if err := accounts.CloseAccount(ctx, carol); err != nil {
			t.Fatal(err)
		}
		var ids []uuid.UUID
		for _, tt := range []struct {
			to     uuid.UUID
			amount string
		}{{bob, "30.00"}, {carol, "20.00"}, {bob, "1000.00"}} {
			id, err := transfers.Start(ctx, alice, tt.to, dec(tt.amount))
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		ended := waitEnded(t, transfers, ids, 30*time.Second)
		for i, want := range []string{bankaccounts.TransferCompleted, bankaccounts.TransferCompensated, bankaccounts.TransferFailed} {
			if ended[i].State != want {
				t.Fatalf("transfer %d ended %s (%s), want %s", i, ended[i].State, ended[i].Reason, want)
			}
		}
		for id, want := range map[uuid.UUID]string{alice: "70.00", bob: "30.00", carol: "0.00"} {
			if got, _ := accounts.GetBalance(ctx, id); !got.Equal(dec(want)) {
				t.Fatalf("balance %s, want %s", got, want)
			}
		}
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
	})
}

// slowDispatch takes a moment over each command, so that kills land
// between the steps of transfers.
type slowDispatch struct{ *saga.Dispatcher }

func (s slowDispatch) Policy(ctx context.Context, e domain.Event, p *system.Processing) error {
	time.Sleep(time.Duration(5+rand.IntN(10)) * time.Millisecond)
	return s.Dispatcher.Policy(ctx, e, p)
}

func transferSystem(t testing.TB) *system.System {
	sys, err := system.New([]system.Def{
		system.Define(bankaccounts.Name, bankaccounts.Types, bankaccounts.New),
		system.Define(bankaccounts.TransfersName, bankaccounts.TransferTypes, bankaccounts.NewTransfers),
		system.Define(bankaccounts.TransferDispatchName, saga.Types, func(ctx context.Context, opts ...application.Option) (slowDispatch, error) {
			d, err := bankaccounts.NewTransferDispatch(ctx, opts...)
			return slowDispatch{d}, err
		}),
	}, []string{bankaccounts.TransfersName, bankaccounts.TransferDispatchName, bankaccounts.TransfersName})
	if err != nil {
		t.Fatal(err)
	}
	return sys
}

// TestSagaChild runs the transfer system until it is killed.
func TestSagaChild(t *testing.T) {
	var env map[string]string
	childtest.Config(t, &env)
	r := system.NewConcurrentRunner(transferSystem(t), system.WithEnv(env), system.PollInterval(20*time.Millisecond))
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Minute) // until killed
}

// A process running transfers, killed with SIGKILL between their steps
// again and again, leaves every transfer completed, compensated or failed,
// each account transaction recorded once, and the money conserved.
func TestTransfersSurviveKills(t *testing.T) {
	childtest.SkipInChild(t)
	for name, env := range map[string]func(t *testing.T) map[string]string{
		"sqlite":   func(t *testing.T) map[string]string { return storetest.Stores()[1].Env(t) },
		"postgres": func(t *testing.T) map[string]string { return pgtest.Env(t) },
	} {
		t.Run(name, func(t *testing.T) { killTransfers(t, env(t)) })
	}
}

func killTransfers(t *testing.T, env map[string]string) {
	ctx := context.Background()
	accounts := newBankAccounts(t, application.WithEnv(env))
	transfers, err := bankaccounts.NewTransfers(ctx, application.WithEnv(env), application.WithTracking())
	if err != nil {
		t.Fatal(err)
	}
	defer transfers.Close()
	rnd := rand.New(rand.NewPCG(7, 7))
	var ids []uuid.UUID
	var open []uuid.UUID
	for i := range 6 {
		id := openAccount(t, accounts, "Holder"+strconv.Itoa(i))
		if err := accounts.DepositFunds(ctx, id, dec("100.00")); err != nil {
			t.Fatal(err)
		}
		open = append(open, id)
	}
	closed := openAccount(t, accounts, "Closed")
	if err := accounts.CloseAccount(ctx, closed); err != nil {
		t.Fatal(err)
	}
	all := append(append([]uuid.UUID{}, open...), closed)
	const n = 40
	for range n {
		from, to := open[rnd.IntN(len(open))], all[rnd.IntN(len(all))]
		if from == to {
			to = closed
		}
		id, err := transfers.Start(ctx, from, to, decimal.New(int64(1+rnd.IntN(6000)), -2))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}

	endedSoFar := func() int {
		n := 0
		for _, id := range ids {
			if tr, err := transfers.Get(ctx, id); err == nil && tr.Ended() {
				n++
			}
		}
		return n
	}
	var progress []int
	for range 5 {
		child := childtest.Start(t, "TestSagaChild", env)
		time.Sleep(time.Duration(300+rnd.IntN(300)) * time.Millisecond)
		child.Kill()
		progress = append(progress, endedSoFar())
	}
	t.Logf("transfers ended after each kill: %v of %d", progress, n)
	if progress[0] == n {
		t.Fatalf("every transfer ended before the first kill (%v): the kills test nothing", progress)
	}
	child := childtest.Start(t, "TestSagaChild", env)
	ended := waitEnded(t, transfers, ids, 2*time.Minute)
	child.Kill()

	// Every transfer ended; its transactions are as its end says, once.
	type leg struct {
		account uuid.UUID
		amount  string
	}
	got := map[uuid.UUID][]leg{}
	total := decimal.Zero
	for _, id := range all {
		recorded, err := accounts.Accounts().Recorded(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		acc, _ := accounts.GetAccount(ctx, id)
		total = total.Add(acc.Balance)
		for _, r := range recorded {
			if tx, ok := r.Event.Data.(bankaccounts.TransactionAppended); ok {
				got[tx.TransactionID] = append(got[tx.TransactionID], leg{id, tx.Amount.StringFixed(2)})
			}
		}
	}
	counts := map[string]int{}
	for _, tr := range ended {
		counts[tr.State]++
		amount := tr.Amount.StringFixed(2)
		var want []leg
		switch tr.State {
		case bankaccounts.TransferCompleted:
			want = []leg{{tr.From, "-" + amount}, {tr.To, amount}}
		case bankaccounts.TransferCompensated:
			want = []leg{{tr.From, "-" + amount}, {tr.From, amount}}
		case bankaccounts.TransferFailed:
		default:
			t.Fatalf("transfer %s ended %s", tr.ID(), tr.State)
		}
		legs := got[tr.ID()]
		if len(legs) != len(want) {
			t.Fatalf("transfer %s (%s) has transactions %v, want %v", tr.ID(), tr.State, legs, want)
		}
		for _, w := range want {
			found := false
			for _, l := range legs {
				found = found || l == w
			}
			if !found {
				t.Fatalf("transfer %s (%s) has transactions %v, want %v", tr.ID(), tr.State, legs, want)
			}
		}
	}
	if !total.Equal(dec("600.00")) {
		t.Fatalf("the accounts hold %s after the transfers, want 600.00", total)
	}
	if counts[bankaccounts.TransferCompensated] == 0 || counts[bankaccounts.TransferCompleted] == 0 {
		t.Fatalf("the run ended %v: every kind of end should have happened", counts)
	}
	t.Logf("transfers: %v", counts)
}

package bankaccounts_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/examples/bankaccounts"
	"github.com/strata-go/strata/internal/storetest"
	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/system"
)

// poll is the poll interval of the concurrent runners: saves prompt the
// Ledger at once, polls are the safety net.
const poll = 20 * time.Millisecond

// bank is a workload of bank accounts and what it expects of them.
type bank struct {
	accounts []uuid.UUID
	rnd      *rand.Rand
}

func newBank(seed uint64) *bank { return &bank{rnd: rand.New(rand.NewPCG(seed, 1))} }

// open opens n accounts.
func (b *bank) open(t *testing.T, app *bankaccounts.BankAccounts, n int) {
	t.Helper()
	for range n {
		b.accounts = append(b.accounts, openAccount(t, app, fmt.Sprintf("Holder%d", len(b.accounts))))
	}
}

// transact runs n random deposits, withdrawals and transfers among the
// accounts; withdrawals and transfers may be refused for insufficient
// funds, which records nothing.
func (b *bank) transact(t *testing.T, app *bankaccounts.BankAccounts, n int) {
	t.Helper()
	if err := b.try(app, n); err != nil {
		t.Fatal(err)
	}
}

// try is transact for goroutines other than the test's.
func (b *bank) try(app *bankaccounts.BankAccounts, n int) error {
	ctx := context.Background()
	for range n {
		from, to := b.pick(), b.pick()
		amount := decimal.New(int64(1+b.rnd.IntN(20_000)), -2) // 0.01 to 200.00
		var err error
		switch b.rnd.IntN(3) {
		case 0:
			err = app.DepositFunds(ctx, to, amount)
		case 1:
			err = app.WithdrawFunds(ctx, from, amount)
		default:
			if from == to {
				continue
			}
			err = app.TransferFunds(ctx, from, to, amount)
		}
		if err != nil && !errors.Is(err, bankaccounts.ErrInsufficientFunds) {
			return err
		}
	}
	return nil
}

func (b *bank) pick() uuid.UUID { return b.accounts[b.rnd.IntN(len(b.accounts))] }

// checkLedger requires the ledger's statements to match the accounts
// exactly: each transaction of each account once, in order, with the same
// amounts and balances. It returns the number of transactions and their
// total.
func checkLedger(t *testing.T, app *bankaccounts.BankAccounts, ledger *bankaccounts.Ledger, accounts []uuid.UUID) (int, decimal.Decimal) {
	t.Helper()
	ctx := context.Background()
	lines, total := 0, decimal.Zero
	for _, id := range accounts {
		account, err := app.GetAccount(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		events, err := app.Events().Get(ctx, id, persistence.EventQuery{})
		if err != nil {
			t.Fatal(err)
		}
		var want []bankaccounts.TransactionAppended
		for _, e := range events {
			if tx, ok := e.Data.(bankaccounts.TransactionAppended); ok {
				want = append(want, tx)
			}
		}
		s, err := ledger.Statement(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if s.AccountID != id || s.FullName != account.FullName || s.IsClosed != account.IsClosed {
			t.Fatalf("statement of %s: %s %q closed %v, want %q closed %v", id, s.AccountID, s.FullName, s.IsClosed, account.FullName, account.IsClosed)
		}
		if len(s.Lines) != len(want) {
			t.Fatalf("statement of %s has %d lines, the account %d transactions", account.FullName, len(s.Lines), len(want))
		}
		seen := map[uuid.UUID]bool{}
		in, out := decimal.Zero, decimal.Zero
		for i, l := range s.Lines {
			if l.TransactionID != want[i].TransactionID || !l.Amount.Equal(want[i].Amount) {
				t.Fatalf("line %d of %s: %s %s, want %s %s", i, account.FullName, l.TransactionID, l.Amount, want[i].TransactionID, want[i].Amount)
			}
			if seen[l.TransactionID] {
				t.Fatalf("transaction %s twice on the statement of %s", l.TransactionID, account.FullName)
			}
			seen[l.TransactionID] = true
			if l.Amount.IsNegative() {
				out = out.Sub(l.Amount)
			} else {
				in = in.Add(l.Amount)
			}
			total = total.Add(l.Amount)
		}
		checkAmount(t, "statement balance of "+account.FullName, s.Balance, nil, fixed(account.Balance))
		if !s.TotalIn.Equal(in) || !s.TotalOut.Equal(out) || !s.TotalIn.Sub(s.TotalOut).Equal(s.Balance) {
			t.Fatalf("statement of %s: in %s out %s balance %s, lines add up to in %s out %s", account.FullName, s.TotalIn, s.TotalOut, s.Balance, in, out)
		}
		if n := len(s.Lines); n > 0 && !s.Lines[n-1].Balance.Equal(s.Balance) {
			t.Fatalf("last line of %s shows %s, the statement %s", account.FullName, s.Lines[n-1].Balance, s.Balance)
		}
		lines += len(s.Lines)
	}
	return lines, total
}

// watch makes last follow the highest notification ID that app's saves
// recorded.
func watch(app *bankaccounts.BankAccounts, last *atomic.Int64) {
	app.AddListener(func(_ context.Context, recorded []application.Recording) {
		id := recorded[len(recorded)-1].NotificationID
		for {
			cur := last.Load()
			if id <= cur || last.CompareAndSwap(cur, id) {
				return
			}
		}
	})
}

// caughtUp waits until the ledger has processed the notifications of
// BankAccounts up to last. (The highest notification ID that BankAccounts
// shows readers would not do on PostgreSQL, where a save is visible only
// once the transactions older than it have ended.)
func caughtUp(t *testing.T, ledger *bankaccounts.Ledger, last int64) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(time.Minute) // slow stores (FerretDB) on a loaded machine
	for {
		n, err := ledger.Recorder().(persistence.ProcessRecorder).MaxTrackingID(ctx, bankaccounts.Name)
		if err != nil {
			t.Fatal(err)
		}
		if n >= last {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the ledger is at notification %d of BankAccounts, which saved up to %d", n, last)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func mustLedgerSystem(t *testing.T) *system.System {
	t.Helper()
	sys, err := bankaccounts.System()
	if err != nil {
		t.Fatal(err)
	}
	return sys
}

func startSystem(t *testing.T, r system.Runner) (*bankaccounts.BankAccounts, *bankaccounts.Ledger) {
	t.Helper()
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Stop(context.Background()) })
	app, err := system.Get[*bankaccounts.BankAccounts](r, bankaccounts.Name)
	if err != nil {
		t.Fatal(err)
	}
	ledger, err := system.Get[*bankaccounts.Ledger](r, bankaccounts.LedgerName)
	if err != nil {
		t.Fatal(err)
	}
	return app, ledger
}

// The Ledger's statements match the accounts exactly, on either runner.
func TestLedgerFollowsBankAccounts(t *testing.T) {
	for _, kind := range []string{"single-threaded", "concurrent"} {
		t.Run(kind, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T, env map[string]string) {
				ctx := context.Background()
				var r system.Runner = system.NewSingleThreadedRunner(mustLedgerSystem(t), system.WithEnv(env))
				if kind == "concurrent" {
					r = system.NewConcurrentRunner(mustLedgerSystem(t), system.WithEnv(env), system.PollInterval(poll))
				}
				app, ledger := startSystem(t, r)
				var last atomic.Int64
				watch(app, &last)

				alice, bob := openAccount(t, app, "Alice"), openAccount(t, app, "Bob")
				must := func(err error) {
					t.Helper()
					if err != nil {
						t.Fatal(err)
					}
				}
				must(app.DepositFunds(ctx, alice, dec("200.00")))
				must(app.WithdrawFunds(ctx, alice, dec("50.00")))
				must(app.TransferFunds(ctx, alice, bob, dec("100.00")))
				must(app.SetOverdraftLimit(ctx, bob, dec("25.00")))
				must(app.WithdrawFunds(ctx, bob, dec("120.50")))
				checkErr(t, "an overdrawn withdrawal", app.WithdrawFunds(ctx, bob, dec("10.00")), bankaccounts.ErrInsufficientFunds)
				must(app.CloseAccount(ctx, alice))
				caughtUp(t, ledger, last.Load())

				lines, total := checkLedger(t, app, ledger, []uuid.UUID{alice, bob})
				if lines != 5 || !total.Equal(dec("29.50")) {
					t.Fatalf("%d lines adding up to %s, want 5 adding up to 29.50", lines, total)
				}
				s, err := ledger.Statement(ctx, bob)
				if err != nil {
					t.Fatal(err)
				}
				checkAmount(t, "Bob's statement balance", s.Balance, nil, "-20.50")
				checkAmount(t, "Bob's money in", s.TotalIn, nil, "100.00")
				checkAmount(t, "Bob's money out", s.TotalOut, nil, "120.50")
				if s, _ := ledger.Statement(ctx, alice); !s.IsClosed {
					t.Error("Alice's statement is not closed")
				}
				_, err = ledger.Statement(ctx, uuid.New())
				checkErr(t, "the statement of an unknown account", err, bankaccounts.ErrAccountNotFound)
				if err := r.Err(); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

// The Ledger survives a restart: transactions made while no runner runs
// are processed by the next runner, every one exactly once, and so are
// transactions made concurrently while it runs.
func TestLedgerCatchesUpAfterARestart(t *testing.T) {
	storetest.Run(t, func(t *testing.T, env map[string]string) {
		ctx := context.Background()
		b := newBank(7)
		r1 := system.NewConcurrentRunner(mustLedgerSystem(t), system.WithEnv(env), system.PollInterval(poll))
		app, ledger := startSystem(t, r1)
		var last atomic.Int64
		watch(app, &last)
		b.open(t, app, 5)
		b.transact(t, app, 60)
		caughtUp(t, ledger, last.Load())
		checkLedger(t, app, ledger, b.accounts)
		if err := r1.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		if env["PERSISTENCE_MODULE"] == "memory" {
			t.Skip("a memory store does not outlive its applications")
		}

		// The bank goes on without the Ledger.
		alone := newBankAccounts(t, application.WithEnv(env))
		watch(alone, &last)
		b.open(t, alone, 2)
		b.transact(t, alone, 60)
		stopped, err := bankaccounts.NewLedger(ctx, application.WithEnv(env), application.WithTracking())
		if err != nil {
			t.Fatal(err)
		}
		defer stopped.Close()
		behind, _ := stopped.Recorder().(persistence.ProcessRecorder).MaxTrackingID(ctx, bankaccounts.Name)
		if behind >= last.Load() {
			t.Fatalf("the stopped ledger is at %d of %d", behind, last.Load())
		}
		wantLines, wantTotal := checkBank(t, alone, b.accounts)
		alone.Close()

		// A new runner catches up, then keeps up with concurrent
		// transactions.
		r2 := system.NewConcurrentRunner(mustLedgerSystem(t), system.WithEnv(env), system.PollInterval(poll))
		app, ledger = startSystem(t, r2)
		watch(app, &last)
		caughtUp(t, ledger, last.Load())
		lines, total := checkLedger(t, app, ledger, b.accounts)
		if lines != wantLines || !total.Equal(wantTotal) {
			t.Fatalf("after the restart the ledger has %d lines adding up to %s, the accounts %d transactions adding up to %s", lines, total, wantLines, wantTotal)
		}
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				w := newBank(uint64(100 + i))
				w.accounts = b.accounts
				errs[i] = w.try(app, 15)
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		caughtUp(t, ledger, last.Load())
		checkLedger(t, app, ledger, b.accounts)
		if err := r2.Err(); err != nil {
			t.Fatal(err)
		}
		if err := r2.Stop(ctx); err != nil {
			t.Fatal(err)
		}

		// A third runner finds nothing left to do: the Ledger's log holds
		// one event per account opened and per transaction, no more.
		r3 := system.NewSingleThreadedRunner(mustLedgerSystem(t), system.WithEnv(env))
		app, ledger = startSystem(t, r3)
		caughtUp(t, ledger, last.Load())
		lines, _ = checkLedger(t, app, ledger, b.accounts)
		want := len(b.accounts) + lines
		deadline := time.Now().Add(30 * time.Second)
		for n := countEvents(t, ledger); n != want; n = countEvents(t, ledger) {
			if n > want || time.Now().After(deadline) {
				t.Fatalf("the Ledger recorded %d events, want %d", n, want)
			}
			time.Sleep(2 * time.Millisecond)
		}
		if err := r3.Err(); err != nil {
			t.Fatal(err)
		}
	})
}

// countEvents returns how many notifications the ledger's log shows.
func countEvents(t *testing.T, ledger *bankaccounts.Ledger) int {
	t.Helper()
	n := 0
	for _, err := range system.NewNotificationLogReader(ledger.Log()).Select(context.Background(), 1) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	return n
}

// checkBank returns the number of transactions of the accounts and their
// total.
func checkBank(t *testing.T, app *bankaccounts.BankAccounts, accounts []uuid.UUID) (int, decimal.Decimal) {
	t.Helper()
	n, total := 0, decimal.Zero
	for _, id := range accounts {
		events, err := app.Events().Get(context.Background(), id, persistence.EventQuery{})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			if tx, ok := e.Data.(bankaccounts.TransactionAppended); ok {
				n++
				total = total.Add(tx.Amount)
			}
		}
	}
	return n, total
}

// The Ledger keeps a statement of each account as the accounts change.
func ExampleLedger() {
	ctx := context.Background()
	sys, err := bankaccounts.System()
	if err != nil {
		panic(err)
	}
	runner := system.NewSingleThreadedRunner(sys, system.WithEnv(map[string]string{"PERSISTENCE_MODULE": "memory"}))
	if err := runner.Start(ctx); err != nil {
		panic(err)
	}
	defer runner.Stop(ctx)
	accounts, _ := system.Get[*bankaccounts.BankAccounts](runner, bankaccounts.Name)
	ledger, _ := system.Get[*bankaccounts.Ledger](runner, bankaccounts.LedgerName)

	alice, _ := accounts.OpenAccount(ctx, "Alice", "alice@example.com")
	bob, _ := accounts.OpenAccount(ctx, "Bob", "bob@example.com")
	_ = accounts.DepositFunds(ctx, alice, decimal.RequireFromString("200.00"))
	_ = accounts.TransferFunds(ctx, alice, bob, decimal.RequireFromString("75.50"))

	s, _ := ledger.Statement(ctx, alice)
	fmt.Println(s.FullName)
	for _, l := range s.Lines {
		fmt.Printf("%8s %8s\n", l.Amount.StringFixed(2), l.Balance.StringFixed(2))
	}
	fmt.Println("in", s.TotalIn.StringFixed(2), "out", s.TotalOut.StringFixed(2))
	// Output:
	// Alice
	//   200.00   200.00
	//   -75.50   124.50
	// in 200.00 out 75.50
}

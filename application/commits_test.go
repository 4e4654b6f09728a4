package application_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/domain"
	"github.com/strata-go/strata/internal/storetest"
	"github.com/strata-go/strata/persistence"
)

// Account is the domain of the conflict tests: deposits and a close.
type Account struct {
	domain.Aggregate
	Balance int
	Closed  bool
}

type AccountOpened struct{}
type Deposited struct{ Amount int }
type Closed struct{}

var errClosedAccount = errors.New("the account is closed")

func (a *Account) Apply(event any) error {
	switch e := event.(type) {
	case AccountOpened:
	case Deposited:
		if a.Closed {
			return errClosedAccount
		}
		a.Balance += e.Amount
	case Closed:
		a.Closed = true
	default:
		return fmt.Errorf("%w: %T", domain.ErrUnknownEvent, event)
	}
	return nil
}

var accountTypes = domain.Types(
	domain.AggregateType[Account](domain.Named("Account"), domain.CreatedBy(AccountOpened{}), domain.Events(Deposited{}, Closed{})),
)

func newAccounts(t *testing.T, env map[string]string, opts ...application.Option) (*application.Application, *application.Repository[*Account]) {
	t.Helper()
	app, err := application.New(context.Background(), "Accounts", append([]application.Option{application.WithTypes(accountTypes), application.WithoutProcessEnv(), application.WithEnv(env)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	repo, err := application.NewRepository[Account](app)
	if err != nil {
		t.Fatal(err)
	}
	return app, repo
}

func openAccount(t *testing.T, app *application.Application) uuid.UUID {
	t.Helper()
	a, err := domain.New[Account](domain.NewID(), AccountOpened{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := app.Save(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	return a.ID()
}

func TestASaveWithACommitIDIsRecordedOnce(t *testing.T) {
	storetest.Run(t, func(t *testing.T, env map[string]string) {
		ctx := application.ContextWithHeaders(context.Background(), persistence.Headers{"user": "ada", "request": "r1"})
		app, accounts := newAccounts(t, env)
		id := openAccount(t, app)
		commit := application.Commit{ID: uuid.New(), Headers: persistence.Headers{"request": "r2", persistence.HeaderCorrelationID: "transfer-9"}}
		deposit := func() *Account {
			a, err := accounts.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if err := domain.Trigger(a, Deposited{Amount: 10}); err != nil {
				t.Fatal(err)
			}
			return a
		}
		a := deposit()
		recs, err := app.SaveCommit(ctx, commit, a)
		if err != nil {
			t.Fatal(err)
		}
		want := persistence.Headers{"user": "ada", "request": "r2", persistence.HeaderCorrelationID: "transfer-9"}
		if recs[0].CommitID != commit.ID || !maps.Equal(recs[0].Headers, want) {
			t.Fatalf("recording: commit %s headers %v", recs[0].CommitID, recs[0].Headers)
		}
		// The same save again, as after an unknown outcome.
		if err := domain.Trigger(a, Deposited{Amount: 10}); err != nil {
			t.Fatal(err)
		}
		again := *a
		again.CollectEvents()
		if _, err := app.SaveCommit(ctx, commit, a); !errors.Is(err, application.ErrAlreadyCommitted) || errors.Is(err, application.ErrConflict) {
			t.Fatalf("a commit saved again: %v, want ErrAlreadyCommitted and no conflict", err)
		}
		if len(a.PendingEvents()) != 0 {
			t.Fatal("an already committed save left its events pending")
		}
		// The command run again on the reloaded account with the same ID.
		if _, err := app.SaveCommit(ctx, commit, deposit()); !errors.Is(err, application.ErrAlreadyCommitted) {
			t.Fatalf("the command run again with the same commit ID: %v, want ErrAlreadyCommitted", err)
		}
		got, err := accounts.Get(ctx, id)
		if err != nil || got.Balance != 10 || got.Version() != 2 {
			t.Fatalf("after the repeated saves: balance %d version %d (%v), want one deposit", got.Balance, got.Version(), err)
		}
		recorded, err := accounts.Recorded(ctx, id)
		if err != nil || len(recorded) != 2 || recorded[1].CommitID != commit.ID || !maps.Equal(recorded[1].Headers, want) ||
			recorded[0].CommitID == uuid.Nil || recorded[0].CommitID == commit.ID || len(recorded[0].Headers) != 0 {
			t.Fatalf("recorded events: %+v %v (commit %s)", recorded, err, commit.ID)
		}
		storetest.WaitForLog(t, app.Recorder(), 2)
		items, err := app.Log().Select(ctx, 1, 10)
		if err != nil || len(items) != 2 || items[1].CommitID != commit.ID || !maps.Equal(items[1].Headers, want) {
			t.Fatalf("the log: %+v %v", items, err)
		}
	})
}

// Concurrent writers of one account: two deposits both commit when
// deposits do not conflict with deposits; a deposit and a close conflict.
func TestConflictsAreResolvedUnderConcurrency(t *testing.T) {
	storetest.Run(t, func(t *testing.T, env map[string]string) {
		ctx := context.Background()
		// Many writers, each holding the account as it was: every deposit
		// commits, rebasing as often as it takes.
		const writers = 8
		d := application.NewConflictDetector(application.ConflictUnlessRegistered).SetAttempts(writers)
		application.NeverConflict[Deposited, Deposited](d)
		app, accounts := newAccounts(t, env, application.WithConflictDetector(d))
		id := openAccount(t, app)

		loaded := make([]*Account, writers)
		for i := range loaded {
			a, err := accounts.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			_ = domain.Trigger(a, Deposited{Amount: 1 << i})
			loaded[i] = a
		}
		var wg sync.WaitGroup
		errs := make([]error, writers)
		for i, a := range loaded {
			wg.Add(1)
			go func() { defer wg.Done(); _, errs[i] = app.Save(ctx, a) }()
		}
		wg.Wait()
		var failed []error
		for _, err := range errs {
			if err != nil {
				failed = append(failed, err)
			}
		}
		if len(failed) > 0 {
			t.Fatalf("%d of %d concurrent deposits failed: %v", len(failed), writers, failed[0])
		}
		got, _ := accounts.Get(ctx, id)
		if got.Balance != 1<<writers-1 || got.Version() != writers+1 {
			t.Fatalf("balance %d at version %d after %d deposits, want %d at %d", got.Balance, got.Version(), writers, 1<<writers-1, writers+1)
		}
		for _, a := range loaded {
			if a.Version() < 2 || len(a.PendingEvents()) != 0 {
				t.Fatalf("a writer's account is at version %d with %d pending events after its save", a.Version(), len(a.PendingEvents()))
			}
		}

		// A deposit and a close of one account: the later one conflicts.
		first, _ := accounts.Get(ctx, id)
		second, _ := accounts.Get(ctx, id)
		_ = domain.Trigger(first, Closed{})
		_ = domain.Trigger(second, Deposited{Amount: 5})
		if _, err := app.Save(ctx, first); err != nil {
			t.Fatal(err)
		}
		_, err := app.Save(ctx, second)
		var ce *application.ConflictError
		if !errors.As(err, &ce) || !errors.Is(err, application.ErrConflict) || ce.Attempted != "application_test.Deposited" || ce.Committed != "application_test.Closed" {
			t.Fatalf("a deposit after a close: %v, want a conflict naming the pair", err)
		}
		if len(second.PendingEvents()) != 1 {
			t.Fatal("a save that conflicts lost its pending event")
		}
	})
}

func TestTheConflictDefaults(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		d    func() *application.ConflictDetector
		// whether a deposit conflicts with a committed deposit, and with a
		// committed close
		depositDeposit, depositClose bool
	}{
		{"Strata's: everything unregistered conflicts", func() *application.ConflictDetector {
			return application.NewConflictDetector(application.ConflictUnlessRegistered)
		}, true, true},
		{"NEventStore's: events of the same type conflict", func() *application.ConflictDetector {
			return application.NewConflictDetector(application.ConflictSameType)
		}, true, false},
		{"aett's: nothing unregistered conflicts", func() *application.ConflictDetector {
			return application.NewConflictDetector(application.ConflictNever)
		}, false, false},
		{"a registered pair decides", func() *application.ConflictDetector {
			d := application.NewConflictDetector(application.ConflictNever)
			application.Conflicts(d, func(a Deposited, c Deposited) bool { return a.Amount == c.Amount })
			return d
		}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, committed := range []any{Deposited{Amount: 1}, Closed{}} {
				app, accounts := newAccounts(t, map[string]string{"PERSISTENCE_MODULE": "memory"}, application.WithConflictDetector(tt.d()))
				id := openAccount(t, app)
				winner, _ := accounts.Get(ctx, id)
				loser, _ := accounts.Get(ctx, id)
				_ = domain.Trigger(winner, committed)
				_ = domain.Trigger(loser, Deposited{Amount: 2})
				if _, err := app.Save(ctx, winner); err != nil {
					t.Fatal(err)
				}
				_, err := app.Save(ctx, loser)
				want := tt.depositDeposit
				if _, ok := committed.(Closed); ok {
					want = tt.depositClose
				}
				var ce *application.ConflictError
				switch {
				case want && !errors.As(err, &ce):
					t.Errorf("a deposit after a committed %T: %v, want a conflict", committed, err)
				case !want && errors.As(err, &ce) && ce.Committed != "":
					t.Errorf("a deposit after a committed %T: %v, want no conflict", committed, err)
				case !want && err != nil && errors.As(err, &ce) && ce.Committed == "" && !errors.Is(err, errClosedAccount):
					t.Errorf("a deposit after a committed %T: %v", committed, err)
				}
				if _, ok := committed.(Closed); ok && !want && !errors.Is(err, errClosedAccount) {
					// The rules let it through; the account refuses it.
					t.Errorf("a deposit rebased onto a closed account: %v, want the account's refusal", err)
				}
			}
		})
	}
	// A registered pair's function gets the events.
	d := application.NewConflictDetector(application.ConflictNever)
	application.Conflicts(d, func(a Deposited, c Deposited) bool { return a.Amount == c.Amount })
	if !d.Conflict(Deposited{Amount: 3}, Deposited{Amount: 3}) || d.Conflict(Deposited{Amount: 3}, Deposited{Amount: 4}) {
		t.Fatal("the registered function does not decide")
	}
}

func TestTenantsOfAnApplication(t *testing.T) {
	storetest.Run(t, func(t *testing.T, env map[string]string) {
		ctx := context.Background()
		app, _ := newAccounts(t, env)
		acme, err := app.ForTenant("acme")
		if err != nil {
			t.Fatal(err)
		}
		globex, _ := app.ForTenant("globex")
		if again, _ := app.ForTenant("acme"); again != acme {
			t.Fatal("ForTenant makes a new view each time")
		}
		acmeAccounts, _ := application.NewRepository[Account](acme)
		globexAccounts, _ := application.NewRepository[Account](globex)
		// The same ID in two tenants is two accounts.
		id := domain.NewID()
		for i, tenant := range []*application.Application{acme, globex} {
			a, _ := domain.New[Account](id, AccountOpened{})
			_ = domain.Trigger(a, Deposited{Amount: 100 * (i + 1)})
			if _, err := tenant.Save(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
		a, err := acmeAccounts.Get(ctx, id)
		g, err2 := globexAccounts.Get(ctx, id)
		if err != nil || err2 != nil || a.Balance != 100 || g.Balance != 200 {
			t.Fatalf("balances %d and %d (%v, %v)", a.Balance, g.Balance, err, err2)
		}
		defaultAccounts, _ := application.NewRepository[Account](app)
		if _, err := defaultAccounts.Get(ctx, id); !errors.Is(err, application.ErrAggregateNotFound) {
			t.Fatalf("the default tenant finds a tenant's account: %v", err)
		}
		if ok, _ := defaultAccounts.Contains(ctx, id); ok {
			t.Fatal("the default tenant detects a tenant's account")
		}
		storetest.WaitForLog(t, globex.Recorder(), 2)
		for _, tt := range []struct {
			log  application.NotificationLog
			want []string
		}{{acme.Log(), []string{"acme", "acme"}}, {globex.Log(), []string{"globex", "globex"}}, {app.Log(), nil},
			{app.AllTenants(), []string{"acme", "acme", "globex", "globex"}}} {
			items, err := tt.log.Select(ctx, 1, 10)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, n := range items {
				got = append(got, n.Tenant)
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("log tenants %v, want %v", got, tt.want)
			}
			// The head that lag is measured from is the last
			// notification of the log read.
			var want int64
			if len(items) > 0 {
				want = items[len(items)-1].ID
			}
			if head, err := tt.log.(*application.LocalNotificationLog).MaxNotificationID(ctx); err != nil || head != want {
				t.Fatalf("the head of the log of tenants %v is %d, want %d (%v)", tt.want, head, want, err)
			}
		}
		if _, err := app.ForTenant(strings.Repeat("x", persistence.MaxTenantLength+1)); !errors.Is(err, persistence.ErrConfig) {
			t.Fatalf("a tenant ID too long: %v", err)
		}

		if _, erasable := app.Factory().(persistence.Eraser); !erasable {
			// A store without the Erase feature (Message DB) refuses both,
			// and keeps everything.
			if err := acme.PurgeTenant(ctx); !errors.Is(err, application.ErrNotErasable) {
				t.Fatalf("purge on a store that cannot delete: %v", err)
			}
			if _, err := globex.DeleteAggregate(ctx, id); !errors.Is(err, application.ErrNotErasable) {
				t.Fatalf("delete on a store that cannot delete: %v", err)
			}
			if _, err := acmeAccounts.Get(ctx, id); err != nil {
				t.Fatalf("a refused purge lost the account: %v", err)
			}
			return
		}
		if err := acme.PurgeTenant(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := acmeAccounts.Get(ctx, id); !errors.Is(err, application.ErrAggregateNotFound) {
			t.Fatalf("a purged tenant's account: %v", err)
		}
		if g, err := globexAccounts.Get(ctx, id); err != nil || g.Balance != 200 {
			t.Fatalf("another tenant's account after the purge: %v", err)
		}
		if had, err := globex.DeleteAggregate(ctx, id); err != nil || !had {
			t.Fatalf("delete: %v %v", had, err)
		}
		if _, err := globexAccounts.Get(ctx, id); !errors.Is(err, application.ErrAggregateNotFound) {
			t.Fatalf("a deleted account: %v", err)
		}
		if err := app.PurgeTenant(ctx); !errors.Is(err, persistence.ErrProgramming) {
			t.Fatalf("purge the default tenant: %v", err)
		}
	})
}

package cli

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-go/strata/internal/pgtest"
	"github.com/strata-go/strata/persistence"
)

// A resumed copy reads back what an interrupted one wrote: it first waits
// for the transactions that began before it to end (on PostgreSQL they
// hide later commits from the log), and only for those.
func TestACopyWaitsOnlyForOlderTransactions(t *testing.T) {
	ctx := context.Background()
	f, err := persistence.OpenFactory(ctx, persistence.NewEnv("Waits", pgtest.Env(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	conn, err := pgx.Connect(ctx, pgtest.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	var pid int
	var xid string
	if err := tx.QueryRow(ctx, "SELECT pg_backend_pid(), pg_current_xact_id()::text").Scan(&pid, &xid); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)

	// Begun before it: the holder's transaction is not waited for.
	if held, err := awaitOlderTransactions(ctx, f, time.Now().Add(-time.Hour), time.Minute); err != nil || held != nil {
		t.Fatalf("with a holder younger than since: %v, %v", held, err)
	}
	// Past within, it says what holds the log back: this transaction, or
	// an even older one of another program on the same server.
	held, err := awaitOlderTransactions(ctx, f, time.Now(), 200*time.Millisecond)
	if err != nil || held == nil || !strings.Contains(held.Error(), "a transaction of backend ") {
		t.Fatalf("held by backend %d past within: %v, %v", pid, held, err)
	}
	// It returns once the holder has ended.
	done := make(chan error, 1)
	go func() {
		held, err := awaitOlderTransactions(ctx, f, time.Now(), time.Minute)
		if held != nil {
			err = fmt.Errorf("held: %v", held)
		}
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("returned while an older transaction ran: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("still waiting 30 s after the older transaction ended")
	}
}

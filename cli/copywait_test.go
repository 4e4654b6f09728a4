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
// for the transactions running when it starts to end, since on PostgreSQL
// they hide later commits from the log. The usual holder is a session
// idle in a transaction that wrote: it has a transaction ID and no
// snapshot, and it is waited for, and named past the limit.
func TestACopyWaitsForTheTransactionsRunningWhenItStarts(t *testing.T) {
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
	// Exec without arguments is one simple query: once it has run, the
	// session holds a transaction ID and no snapshot.
	if _, err := tx.Exec(ctx, "SELECT pg_current_xact_id()"); err != nil {
		t.Fatal(err)
	}
	pid := int(conn.PgConn().PID())
	var xid, snapshot bool
	check, err := pgx.Connect(ctx, pgtest.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer check.Close(ctx)
	if err := check.QueryRow(ctx, "SELECT backend_xid IS NOT NULL, backend_xmin IS NOT NULL FROM pg_stat_activity WHERE pid = $1", pid).Scan(&xid, &snapshot); err != nil || !xid || snapshot {
		t.Fatalf("the holder has a transaction ID %v and a snapshot %v (%v), want an ID and no snapshot", xid, snapshot, err)
	}
	time.Sleep(100 * time.Millisecond)
	if h, err := f.(persistence.HorizonReader).Horizon(ctx); err != nil || h.Age < 100*time.Millisecond {
		t.Fatalf("the horizon with backend %d idle in a transaction for 100 ms: %+v, %v", pid, h, err)
	}

	// Past within, it says what holds the log back: this transaction, or
	// an even older one of another program on the same server.
	held, err := awaitVisibility(ctx, f, 200*time.Millisecond)
	if err != nil || held == nil || !strings.Contains(held.Error(), "a transaction of backend ") {
		t.Fatalf("held by backend %d past within: %v, %v", pid, held, err)
	}
	// It returns once the holder has ended.
	done := make(chan error, 1)
	go func() {
		held, err := awaitVisibility(ctx, f, time.Minute)
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

package mysql_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	drv "github.com/go-sql-driver/mysql"
	"github.com/google/uuid"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/examples/worlds"
	"github.com/strata-go/strata/internal/faultproxy"
	"github.com/strata-go/strata/internal/mytest"
	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/persistence/mysql"
)

func TestServerErrorsHaveTheirKinds(t *testing.T) {
	for number, want := range map[uint16]error{
		1062: persistence.ErrIntegrity, 1586: persistence.ErrIntegrity,
		1213: persistence.ErrOperational, 1205: persistence.ErrOperational, 1040: persistence.ErrOperational, 1927: persistence.ErrOperational,
		1146: persistence.ErrNoTable, 1406: persistence.ErrData, 1064: persistence.ErrProgramming, 1792: persistence.ErrReadOnly,
		9999: persistence.ErrDatabase,
	} {
		err := &drv.MySQLError{Number: number, Message: "x"}
		if got := mysql.Classify(fmt.Errorf("wrapped: %w", err)); got != want {
			t.Errorf("server error %d: %v, want %v", number, got, want)
		}
	}
	for _, err := range []error{drv.ErrInvalidConn, fmt.Errorf("read: %w", drv.ErrInvalidConn)} {
		if got := mysql.Classify(err); got != persistence.ErrOperational {
			t.Errorf("%v: %v, want an operational error", err, got)
		}
	}
	if got := mysql.Classify(errors.New("other")); got != nil {
		t.Errorf("an error of no driver: %v, want nil", got)
	}
}

// waitFor polls cond until it holds, or fails the test after a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen within a minute", what)
		}
	}
}

// waiting counts the sessions of the connection's database that run a
// statement that begins with prefix. (INNODB_TRX, which says which
// transactions wait for a lock, is refreshed too lazily to poll.)
func waiting(t *testing.T, pool *sql.DB, prefix string) int {
	t.Helper()
	var n int
	err := pool.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND INFO LIKE CONCAT(?, '%')", prefix).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func deadlocks(t *testing.T, pool *sql.DB) int64 {
	t.Helper()
	var name, value string
	if err := pool.QueryRow("SHOW GLOBAL STATUS LIKE 'Innodb_deadlocks'").Scan(&name, &value); err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.ParseInt(value, 10, 64)
	return n
}

// A save that InnoDB picks as the victim of a deadlock was rolled back
// whole; the recorder runs it again, and it is recorded once.
func TestASaveThatLosesADeadlockIsRunAgain(t *testing.T) {
	ctx := context.Background()
	f := open(t)
	r, err := f.ApplicationRecorder(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pool := f.DB()
	tables := f.Tables()
	conn, err := pool.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The other transaction changes many rows, so that InnoDB rolls back
	// the save, which has changed fewer.
	if _, err := conn.ExecContext(ctx, "CREATE TABLE ballast (n INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "INSERT INTO ballast SELECT seq FROM seq_1_to_200"); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, "UPDATE "+tables.Sequence+" SET last_id = last_id WHERE name = ?", tables.Events); err != nil {
		t.Fatal(err)
	}
	before := deadlocks(t, pool)
	id, commit := uuid.New(), uuid.New()
	saved := make(chan error, 1)
	go func() {
		_, err := r.InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: id, OriginatorVersion: 1, Topic: "t", State: []byte("x"), CommitID: commit}})
		saved <- err
	}()
	// The save has recorded its commit and waits for the counter.
	waitFor(t, "the save waiting for the counter", func() bool {
		select {
		case err := <-saved:
			t.Fatalf("the save did not wait for the counter: %v", err)
		default:
		}
		return waiting(t, pool, "UPDATE "+tables.Sequence) == 1
	})
	// The other transaction now waits for the save's commit row: a cycle.
	if _, err := tx.ExecContext(ctx, "INSERT INTO "+tables.Commits+" (tenant, originator_id, commit_id) VALUES ('', ?, ?)", id[:], commit[:]); err != nil {
		t.Fatalf("the other transaction lost the deadlock: %v", err)
	}
	if got := deadlocks(t, pool); got <= before {
		t.Fatalf("no deadlock was detected (%d before, %d after)", before, got)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := <-saved; err != nil {
		t.Fatalf("the save that lost a deadlock: %v, want it run again and recorded", err)
	}
	if events, err := r.SelectEvents(ctx, id, persistence.EventQuery{}); err != nil || len(events) != 1 {
		t.Fatalf("%d events recorded: %v", len(events), err)
	}
}

// A save that waits for a lock for longer than MYSQL_LOCK_WAIT_TIMEOUT
// fails with an operational error and records nothing.
func TestALockWaitTimeoutIsOperationalAndRecordsNothing(t *testing.T) {
	ctx := context.Background()
	f := open(t, "MYSQL_LOCK_WAIT_TIMEOUT=1")
	r, err := f.ProcessRecorder(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tables := f.Tables()
	tx, err := f.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "UPDATE "+tables.Sequence+" SET last_id = last_id WHERE name = ?", tables.Events); err != nil {
		t.Fatal(err)
	}
	id := uuid.New()
	start := time.Now()
	_, err = r.InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: id, OriginatorVersion: 1, Topic: "t"}},
		persistence.WithTracking(persistence.Tracking{ApplicationName: "up", NotificationID: 1}))
	if !errors.Is(err, persistence.ErrOperational) || errors.Is(err, persistence.ErrUnknownOutcome) {
		t.Fatalf("a save that waited too long for a lock: %v, want an operational error with a known outcome", err)
	}
	if waited := time.Since(start); waited < 900*time.Millisecond {
		t.Fatalf("the save gave up after %v, before the lock wait timeout", waited)
	}
	tx.Rollback()
	if events, _ := r.SelectEvents(ctx, id, persistence.EventQuery{}); len(events) != 0 {
		t.Fatalf("a save that timed out recorded %d events", len(events))
	}
	if ok, _ := r.HasTrackingID(ctx, "up", 1); ok {
		t.Fatal("a save that timed out recorded its tracking record")
	}
}

func newProxy(t *testing.T) *faultproxy.Proxy {
	t.Helper()
	mytest.Require(t)
	p, err := faultproxy.New(mytest.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// A save whose COMMIT reached the server, which committed it, but whose
// answer was lost with the connection, has an unknown outcome; saving the
// same events again is refused as a conflict, since they are recorded.
func TestASaveWhoseCommitAnswerIsLostHasAnUnknownOutcome(t *testing.T) {
	ctx := context.Background()
	p := newProxy(t)
	db := mytest.Database(t)
	f, err := mysql.OpenEnv(ctx, persistence.NewEnv("Lost", map[string]string{"MYSQL_DSN": mytest.DSNFor(db, p.Addr())}))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := f.ProcessRecorder(ctx)
	if err != nil {
		t.Fatal(err)
	}
	events := []persistence.StoredEvent{{OriginatorID: uuid.New(), OriginatorVersion: 1, Topic: "t", State: []byte("x")}}
	p.CutAnswerTo([]byte("COMMIT"))
	_, err = r.InsertEvents(ctx, events, persistence.WithTracking(persistence.Tracking{ApplicationName: "up", NotificationID: 1}))
	if !errors.Is(err, persistence.ErrUnknownOutcome) || !errors.Is(err, persistence.ErrOperational) {
		t.Fatalf("a save whose commit's answer was lost: %v, want an error wrapping ErrUnknownOutcome", err)
	}
	select {
	case <-p.Cuts():
	case <-time.After(10 * time.Second):
		t.Fatal("the proxy did not cut the commit's answer")
	}
	var got []persistence.StoredEvent
	for deadline := time.Now().Add(30 * time.Second); len(got) == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if got, err = r.SelectEvents(ctx, events[0].OriginatorID, persistence.EventQuery{}); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 1 {
		t.Fatalf("the save with an unknown outcome was not recorded: %d events", len(got))
	}
	_, err = r.InsertEvents(ctx, events, persistence.WithTracking(persistence.Tracking{ApplicationName: "up", NotificationID: 1}))
	if !errors.Is(err, persistence.ErrIntegrity) {
		t.Fatalf("saving the same events again: %v, want an integrity error", err)
	}
}

// Retrying a save with an unknown outcome with its commit ID, even with
// the command run again on the reloaded aggregate, records nothing more.
func TestRetryingAnUnknownOutcomeWithTheCommitIDIsSafe(t *testing.T) {
	ctx := context.Background()
	p := newProxy(t)
	env := map[string]string{"PERSISTENCE_MODULE": "mysql", "MYSQL_DSN": mytest.DSNFor(mytest.Database(t), p.Addr())}
	w, err := worlds.New(ctx, application.WithEnv(env), application.WithoutProcessEnv())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	repo, err := application.NewRepository[worlds.World](w.App())
	if err != nil {
		t.Fatal(err)
	}
	world, _ := worlds.NewWorld()
	if _, err := w.Save(ctx, world); err != nil {
		t.Fatal(err)
	}
	commit := application.Commit{ID: uuid.New()}
	if err := world.MakeItSo("lost answer"); err != nil {
		t.Fatal(err)
	}
	p.CutAnswerTo([]byte("COMMIT"))
	if _, err := w.SaveCommit(ctx, commit, world); !errors.Is(err, persistence.ErrUnknownOutcome) {
		t.Fatalf("a save whose answer was lost: %v, want ErrUnknownOutcome", err)
	}
	<-p.Cuts()
	if _, err := w.SaveCommit(ctx, commit, world); !errors.Is(err, application.ErrAlreadyCommitted) {
		t.Fatalf("the same save again: %v, want ErrAlreadyCommitted", err)
	}
	again, err := repo.Get(ctx, world.ID())
	if err != nil {
		t.Fatal(err)
	}
	if err := again.MakeItSo("lost answer"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.SaveCommit(ctx, commit, again); !errors.Is(err, application.ErrAlreadyCommitted) {
		t.Fatalf("the command run again with the same commit ID: %v, want ErrAlreadyCommitted", err)
	}
	stored, err := repo.Get(ctx, world.ID())
	if err != nil || len(stored.History) != 1 {
		t.Fatalf("the world's history after the retries: %v (%v)", stored.History, err)
	}
}

package mysql_test

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-go/strata/persistence"
)

// outOfOrder makes two saves commit in the other order than they began:
// the first is slowed by a trigger after its rows are inserted, the second
// is made while the first sleeps. A reader rereads the log throughout. It
// returns the first read that showed a notification at or below the
// highest one an earlier read had shown, or "".
func outOfOrder(t *testing.T, pool *sql.DB, table string, save func(ctx context.Context, topic string) error, read func(ctx context.Context) ([]int64, error)) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	trigger := table + "_slow"
	if _, err := pool.ExecContext(ctx, "CREATE TRIGGER "+trigger+" AFTER INSERT ON "+table+
		" FOR EACH ROW IF NEW.topic = 'slow' THEN DO SLEEP(1); END IF"); err != nil {
		t.Fatal(err)
	}
	defer pool.ExecContext(context.Background(), "DROP TRIGGER IF EXISTS "+trigger)
	slow, fast := make(chan error, 1), make(chan error, 1)
	go func() { slow <- save(ctx, "slow") }()
	waitFor(t, "the slow save sleeping in its trigger", func() bool {
		var n int
		if err := pool.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND STATE = 'User sleep'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	})
	go func() { fast <- save(ctx, "fast") }()
	var seen []int64
	var high int64
	pending := 2
	for pending > 0 {
		select {
		case err := <-slow:
			pending--
			if err != nil {
				t.Fatalf("slow save: %v", err)
			}
		case err := <-fast:
			pending--
			if err != nil {
				t.Fatalf("fast save: %v", err)
			}
		default:
		}
		ids, err := read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			if !slices.Contains(seen, id) && id <= high {
				return fmt.Sprintf("a read after one that showed up to notification %d shows notification %d, which it did not show (reads: %v then %v)", high, id, seen, ids)
			}
		}
		seen = ids
		if len(ids) > 0 {
			high = ids[len(ids)-1]
		}
	}
	if len(seen) != 2 {
		t.Fatalf("the last read shows %v, want both saves", seen)
	}
	return ""
}

// Transactions that commit in another order than they took their
// notification IDs never make a reader miss an event: the counter row
// makes the second save wait for the first.
func TestSavesCommittedOutOfOrderAreNotPassed(t *testing.T) {
	f := open(t)
	r, err := f.ApplicationRecorder(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	save := func(ctx context.Context, topic string) error {
		_, err := r.InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: uuid.New(), OriginatorVersion: 1, Topic: topic}})
		return err
	}
	read := func(ctx context.Context) ([]int64, error) {
		ns, err := r.SelectNotifications(ctx, persistence.NotificationQuery{Start: 1, Limit: 10})
		ids := make([]int64, len(ns))
		for i, n := range ns {
			ids[i] = n.ID
		}
		return ids, err
	}
	if msg := outOfOrder(t, f.DB(), f.Tables().Events, save, read); msg != "" {
		t.Fatal(msg)
	}
}

// The same test fails on a table whose notification IDs come from
// AUTO_INCREMENT: it can see what it is there to see.
func TestSavesCommittedOutOfOrderArePassedWithAutoIncrement(t *testing.T) {
	f := open(t)
	pool := f.DB()
	if _, err := pool.Exec("CREATE TABLE raw_events (notification_id BIGINT AUTO_INCREMENT PRIMARY KEY, topic VARCHAR(16) NOT NULL) ENGINE=InnoDB"); err != nil {
		t.Fatal(err)
	}
	save := func(ctx context.Context, topic string) error {
		tx, err := pool.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, "INSERT INTO raw_events (topic) VALUES (?)", topic); err != nil {
			return err
		}
		return tx.Commit()
	}
	read := func(ctx context.Context) ([]int64, error) {
		rows, err := pool.QueryContext(ctx, "SELECT notification_id FROM raw_events ORDER BY notification_id")
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var ids []int64
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return nil, err
			}
			ids = append(ids, id)
		}
		return ids, rows.Err()
	}
	msg := outOfOrder(t, pool, "raw_events", save, read)
	if msg == "" {
		t.Fatal("AUTO_INCREMENT IDs committed out of order passed the test, which must fail them")
	}
	t.Logf("as expected with AUTO_INCREMENT: %s", msg)
}

// A read shows no notification above the committed counter, so that a
// save whose IDs are taken but not yet visible is never passed, even when
// a statement can see a later save without it. InnoDB can show a
// statement that state: it takes a read view by walking its table of
// running transactions while they go on committing, so a view can miss a
// save that committed during the walk and show the next one, which waited
// for it. The test makes the state by hand: a transaction has taken IDs 2
// and 3 and inserted notification 2 without committing, while
// notification 3 is committed apart.
func TestAReadShowsNothingAboveTheCommittedCounter(t *testing.T) {
	ctx := context.Background()
	f := open(t)
	r, err := f.ApplicationRecorder(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: uuid.New(), OriginatorVersion: 1, Topic: "first"}}); err != nil {
		t.Fatal(err)
	}
	pool, tables := f.DB(), f.Tables()
	insert := "INSERT INTO " + tables.Events + " (notification_id, tenant, originator_id, originator_version, topic, state, commit_id, headers) VALUES (?, '', ?, 1, ?, '', ?, '')"
	nilCommit := make([]byte, 16)
	tx, err := pool.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "UPDATE "+tables.Sequence+" SET last_id = last_id + 2 WHERE name = ?", tables.Events); err != nil {
		t.Fatal(err)
	}
	early, late := uuid.New(), uuid.New()
	if _, err := tx.ExecContext(ctx, insert, 2, early[:], "early", nilCommit); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.ExecContext(ctx, insert, 3, late[:], "late", nilCommit); err != nil {
		t.Fatal(err)
	}
	read := func() []int64 {
		t.Helper()
		ns, err := r.SelectNotifications(ctx, persistence.NotificationQuery{Start: 1, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		ids := make([]int64, len(ns))
		for i, n := range ns {
			ids[i] = n.ID
		}
		return ids
	}
	if got := read(); !slices.Equal(got, []int64{1}) {
		t.Fatalf("while notification 2 was taken but not visible, a read showed %v, want [1]: a reader that moved past 2 would never see it", got)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := read(); !slices.Equal(got, []int64{1, 2, 3}) {
		t.Fatalf("once notification 2 was committed, a read showed %v, want [1 2 3]", got)
	}
}

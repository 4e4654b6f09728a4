package dynamodb_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"github.com/strata-go/strata/internal/awstest"
	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/persistence/dynamodb"
	"github.com/strata-go/strata/persistence/recordertest"
)

var apps atomic.Int64

// open returns the factory of a new application in a fresh table.
func open(t testing.TB, vars ...string) *dynamodb.Factory {
	t.Helper()
	env := awstest.DynamoDBEnv(t)
	for _, kv := range vars {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	f, err := dynamodb.OpenEnv(context.Background(), persistence.NewEnv(fmt.Sprintf("App%d", apps.Add(1)), env))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// features are what the DynamoDB module offers beyond the contract. No
// Stream: a read is a query, page by page, either way.
var features = recordertest.Features{Replace: true, Erase: true, List: true}

func TestFactoryConforms(t *testing.T) {
	recordertest.TestFactory(t, features, func(t *testing.T) persistence.Factory {
		f, err := dynamodb.OpenEnv(context.Background(), persistence.NewEnv(fmt.Sprintf("App%d", apps.Add(1)), awstest.DynamoDBEnv(t)))
		if err != nil {
			t.Fatal(err)
		}
		return f
	})
}

// TestStress runs 16 writers against one table. It is sized down: the
// emulator serves one request at a time, so that 16 writers and a reader
// take turns at it (see docs/dynamodb.md).
func TestStress(t *testing.T) {
	r, err := open(t).ApplicationRecorder(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	res := recordertest.Stress(t, r, recordertest.StressConfig{Writers: 16, SavesPerWriter: 8})
	t.Logf("%d saves, %d events, %d conflicts in %v (%.0f saves/s)", res.Saves, res.Events, res.Conflicts, res.Elapsed, float64(res.Saves)/res.Elapsed.Seconds())
}

func ev(id uuid.UUID, v int64, state []byte) persistence.StoredEvent {
	return persistence.StoredEvent{OriginatorID: id, OriginatorVersion: v, Topic: "t", State: state}
}

func TestSavesBeyondOneTransactionAreRefusedWhole(t *testing.T) {
	ctx := context.Background()
	f := open(t)
	r, err := f.ProcessRecorder(ctx)
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := f.AggregateRecorder(ctx, "snapshots")
	if err != nil {
		t.Fatal(err)
	}
	many := func(n int) []persistence.StoredEvent {
		var evs []persistence.StoredEvent
		for range n {
			evs = append(evs, ev(uuid.New(), 1, []byte("x")))
		}
		return evs
	}
	big := bytes.Repeat([]byte("b"), 300<<10)
	cases := []struct {
		name   string
		r      persistence.AggregateRecorder
		events []persistence.StoredEvent
		want   string
	}{
		{"too many aggregates", r, many(49), "at most 47 aggregates"},
		{"too many aggregates with a commit ID", r, commit(many(33)), "at most 31 aggregates"},
		{"too many bytes in the log item", r, []persistence.StoredEvent{ev(uuid.New(), 1, big), ev(uuid.New(), 1, big)}, "one DynamoDB item"},
		{"too many bytes for one aggregate", r, []persistence.StoredEvent{ev(uuid.New(), 1, append(big, big...))}, "one DynamoDB item"},
		{"too many snapshots", snaps, many(51), "at most 50 aggregates"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.r.InsertEvents(ctx, c.events)
			if !errors.Is(err, persistence.ErrNotSupported) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error wrapping ErrNotSupported that says %q", err, c.want)
			}
			for _, e := range c.events {
				if got, err := c.r.SelectEvents(ctx, e.OriginatorID, persistence.EventQuery{}); err != nil || len(got) != 0 {
					t.Fatalf("a refused save recorded %s: %d events, %v", e.OriginatorID, len(got), err)
				}
			}
		})
	}
	if n, err := r.MaxNotificationID(ctx); err != nil || n != 0 {
		t.Fatalf("refused saves gave notification IDs: %d %v", n, err)
	}
	// The largest saves that fit are recorded.
	if _, err := r.InsertEvents(ctx, many(47)); err != nil {
		t.Fatalf("a save of 47 aggregates: %v", err)
	}
	if _, err := r.InsertEvents(ctx, commit(many(31))); err != nil {
		t.Fatalf("a save of 31 aggregates with a commit ID: %v", err)
	}
}

func commit(evs []persistence.StoredEvent) []persistence.StoredEvent {
	c := uuid.New()
	for i := range evs {
		evs[i].CommitID = c
	}
	return evs
}

// TestReadsFollowEveryPage reads an aggregate and a log larger than one
// page of a DynamoDB query (1 MB): aett's DynamoDB store reads the first
// page only and silently loses the rest.
func TestReadsFollowEveryPage(t *testing.T) {
	ctx := context.Background()
	r, err := open(t).ProcessRecorder(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.New()
	state := bytes.Repeat([]byte("s"), 100<<10)
	const saves = 25 // 2.5 MB: three pages at least
	for v := int64(1); v <= saves; v++ {
		if _, err := r.InsertEvents(ctx, []persistence.StoredEvent{ev(id, v, state)}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := r.SelectEvents(ctx, id, persistence.EventQuery{})
	if err != nil || len(got) != saves {
		t.Fatalf("selected %d of %d events: %v", len(got), saves, err)
	}
	desc, err := r.SelectEvents(ctx, id, persistence.EventQuery{Desc: true, Gt: ptr(2)})
	if err != nil || len(desc) != saves-2 || desc[0].OriginatorVersion != saves || desc[len(desc)-1].OriginatorVersion != 3 {
		t.Fatalf("selected %d events in descending order: %v", len(desc), err)
	}
	ns, err := r.SelectNotifications(ctx, persistence.NotificationQuery{Start: 1, Limit: 100})
	if err != nil || len(ns) != saves {
		t.Fatalf("selected %d of %d notifications: %v", len(ns), saves, err)
	}
	for i, n := range ns {
		if n.ID != int64(i+1) || !bytes.Equal(n.State, state) {
			t.Fatalf("notification %d has ID %d", i, n.ID)
		}
	}
}

func ptr(v int64) *int64 { return &v }

// TestDeletingTooLargeAnAggregateDeletesNothing shows the limit of an
// atomic deletion: one transaction.
func TestDeletingTooLargeAnAggregateDeletesNothing(t *testing.T) {
	ctx := context.Background()
	f := open(t)
	tf, err := f.Tenant("a")
	if err != nil {
		t.Fatal(err)
	}
	r, err := tf.ProcessRecorder(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.New()
	for v := int64(1); v <= 60; v++ { // a chunk and a log item each: 120 items
		if _, err := r.InsertEvents(ctx, []persistence.StoredEvent{ev(id, v, nil)}); err != nil {
			t.Fatal(err)
		}
	}
	eraser := tf.(persistence.Eraser)
	if _, err := eraser.DeleteAggregate(ctx, id); !errors.Is(err, persistence.ErrNotSupported) {
		t.Fatalf("delete an aggregate of 60 saves: %v, want ErrNotSupported", err)
	}
	if err := eraser.PurgeTenant(ctx); !errors.Is(err, persistence.ErrNotSupported) {
		t.Fatalf("purge a tenant of 60 saves: %v, want ErrNotSupported", err)
	}
	if got, err := r.SelectEvents(ctx, id, persistence.EventQuery{}); err != nil || len(got) != 60 {
		t.Fatalf("after refused deletions: %d events, %v", len(got), err)
	}
}

func TestConfiguration(t *testing.T) {
	ctx := context.Background()
	for vars, want := range map[string]string{
		"DYNAMODB_TABLE=ab":                             `table name "ab"`,
		"DYNAMODB_TABLE_PREFIX=b@d":                     `DYNAMODB_TABLE_PREFIX`,
		"AWS_ENDPOINT_URL=localhost:8000":               `AWS_ENDPOINT_URL="localhost:8000"`,
		"AWS_ENDPOINT_URL_DYNAMODB=ftp://x":             `AWS_ENDPOINT_URL_DYNAMODB="ftp://x"`,
		"CREATE_TABLE=maybe":                            `CREATE_TABLE="maybe"`,
		"AWS_ACCESS_KEY_ID=x":                           "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
		"APP_DYNAMODB_TABLE=x DYNAMODB_TABLE=fine_name": `APP_DYNAMODB_TABLE: table name "x"`,
	} {
		env := map[string]string{"PERSISTENCE_MODULE": "dynamodb", "AWS_REGION": "us-east-1"}
		for _, kv := range strings.Fields(vars) {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		_, err := persistence.OpenFactory(ctx, persistence.NewEnv("App", env))
		if !errors.Is(err, persistence.ErrConfig) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an ErrConfig naming %s", vars, err, want)
		}
	}
}

func TestMissingTableWithoutCreateTable(t *testing.T) {
	env := awstest.DynamoDBEnv(t)
	env["CREATE_TABLE"] = "false"
	_, err := persistence.OpenFactory(context.Background(), persistence.NewEnv("App", env))
	if !errors.Is(err, persistence.ErrNoTable) || !strings.Contains(err.Error(), env["DYNAMODB_TABLE_PREFIX"]+"app") {
		t.Fatalf("open a missing table with CREATE_TABLE=false: %v, want ErrNoTable naming it", err)
	}
}

func TestReadOnlyRefusesWrites(t *testing.T) {
	env := awstest.DynamoDBEnv(t)
	ctx := context.Background()
	f, err := persistence.OpenFactory(ctx, persistence.NewEnv("App", env))
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	env["READ_ONLY"] = "true"
	ro, err := persistence.OpenFactory(ctx, persistence.NewEnv("App", env))
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	r, err := ro.ApplicationRecorder(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.InsertEvents(ctx, []persistence.StoredEvent{ev(uuid.New(), 1, nil)}); !errors.Is(err, persistence.ErrReadOnly) {
		t.Fatalf("insert into a read-only store: %v", err)
	}
	if n, err := r.MaxNotificationID(ctx); err != nil || n != 0 {
		t.Fatalf("read a read-only store: %d %v", n, err)
	}
}

package messagedb_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/domain"
	"github.com/strata-go/strata/internal/mdbtest"
	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/persistence/messagedb"
)

// Account is an aggregate whose JSON fields are those of a Protean
// aggregate of the same shape.
type Account struct {
	domain.Aggregate
	Owner   string `json:"owner"`
	Balance int    `json:"balance"`
}

type Opened struct {
	Owner string `json:"owner"`
}

type Deposited struct {
	Amount int `json:"amount"`
}

func (a *Account) Apply(event any) error {
	switch e := event.(type) {
	case Opened:
		a.Owner = e.Owner
	case Deposited:
		a.Balance += e.Amount
	}
	return nil
}

// accountTypes name the events as Protean's domain "Bank" types them,
// and keep Protean's full type names as aliases.
var accountTypes = domain.Types(
	domain.EventType[Opened](domain.Named("Opened"), domain.Aliases("Bank.Opened.v1")),
	domain.EventType[Deposited](domain.Named("Deposited"), domain.Aliases("Bank.Deposited.v1")),
	domain.AggregateType[Account](domain.Named("Account"), domain.CreatedBy(Opened{}), domain.Events(Deposited{})),
)

// bank opens an application whose aggregates are in Protean's category
// "bank::account" (domain Bank, aggregate Account) of
// the Message DB at url.
func bank(t *testing.T, url string, vars map[string]string) *application.Application {
	t.Helper()
	env := map[string]string{"PERSISTENCE_MODULE": "messagedb", "MESSAGEDB_URL": url, "MESSAGEDB_CATEGORY": "bank::account"}
	for k, v := range vars {
		env[k] = v
	}
	app, err := application.New(context.Background(), "Bank", application.WithTypes(accountTypes), application.WithoutProcessEnv(), application.WithEnv(env))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	return app
}

// raw connects as a Message DB client does, to call its functions.
func raw(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	pc.ConnConfig.RuntimeParams["search_path"] = "message_store, public"
	pool, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// row is a message as Message DB's read functions return it.
type row struct {
	id, stream, typ  string
	position, global int64
	data, metadata   map[string]any
}

func query(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) []row {
	t.Helper()
	rows, err := pool.Query(context.Background(), "SELECT id, stream_name, type, position, global_position, data, metadata FROM "+sql, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []row
	for rows.Next() {
		var r row
		var data, meta *string
		if err := rows.Scan(&r.id, &r.stream, &r.typ, &r.position, &r.global, &data, &meta); err != nil {
			t.Fatal(err)
		}
		if data != nil {
			json.Unmarshal([]byte(*data), &r.data)
		}
		if meta != nil {
			json.Unmarshal([]byte(*meta), &r.metadata)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func writeMessage(t *testing.T, pool *pgxpool.Pool, stream, typ string, data, metadata any, expected *int64) int64 {
	t.Helper()
	d, _ := json.Marshal(data)
	var m []byte
	if metadata != nil {
		m, _ = json.Marshal(metadata)
	}
	var pos int64
	if err := pool.QueryRow(context.Background(), "SELECT write_message($1, $2, $3, $4, $5, $6)",
		uuid.NewString(), stream, typ, string(d), nilIfEmpty(m), expected).Scan(&pos); err != nil {
		t.Fatalf("write_message to %s: %v", stream, err)
	}
	return pos
}

func nilIfEmpty(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return string(b)
}

func ptr(v int64) *int64 { return &v }

// proteanMetadata is the metadata Protean writes with an event of an
// event-sourced aggregate (the parts Strata reads, and a few others).
func proteanMetadata(stream, typ string, position int64) map[string]any {
	return map[string]any{
		"headers":  map[string]any{"id": fmt.Sprintf("%s-%d", stream, position), "type": typ, "stream": stream},
		"envelope": map[string]any{"specversion": "1.0"},
		"domain": map[string]any{"fqn": "bank." + typ, "kind": "EVENT", "stream_category": "bank::account", "version": 1,
			"sequence_id": fmt.Sprint(position), "expected_version": position - 1, "correlation_id": "corr-1", "causation_id": nil},
		"event_store": nil,
	}
}

func TestStrataWritesAreReadByMessageDBsFunctions(t *testing.T) {
	url := mdbtest.Database(t)
	app := bank(t, url, nil)
	ctx := context.Background()
	acc, err := domain.New[Account](domain.NewID(), Opened{Owner: "ada"})
	if err != nil {
		t.Fatal(err)
	}
	if err := domain.Trigger(acc, Deposited{Amount: 5}); err != nil {
		t.Fatal(err)
	}
	recorded, err := app.SaveCommit(ctx, application.Commit{Headers: map[string]string{"correlation_id": "order-7"}}, acc)
	if err != nil {
		t.Fatal(err)
	}
	pool := raw(t, url)
	stream := "bank::account-" + acc.ID().String()
	got := query(t, pool, "get_stream_messages($1)", stream)
	if len(got) != 2 {
		t.Fatalf("get_stream_messages returned %d messages, want 2", len(got))
	}
	wantTypes, wantData := []string{"Opened", "Deposited"}, []string{`{"owner":"ada"}`, `{"amount":5}`}
	for i, m := range got {
		data, _ := json.Marshal(m.data)
		if m.position != int64(i) || m.typ != wantTypes[i] || string(data) != wantData[i] || m.stream != stream {
			t.Fatalf("message %d: position %d type %q data %s stream %s", i, m.position, m.typ, data, m.stream)
		}
		domainMeta, _ := m.metadata["domain"].(map[string]any)
		strata, _ := m.metadata["strata"].(map[string]any)
		if domainMeta["stream_category"] != "bank::account" || domainMeta["kind"] != "EVENT" || domainMeta["correlation_id"] != "order-7" || domainMeta["version"] != 1.0 {
			t.Fatalf("message %d: domain metadata %v", i, domainMeta)
		}
		if strata["version"] != float64(i+1) || strata["commit_id"] == nil {
			t.Fatalf("message %d: Strata's metadata %v", i, strata)
		}
	}
	// The notification IDs are global positions, as the category read
	// returns them.
	cat := query(t, pool, "get_category_messages('bank::account')")
	if len(cat) != 2 || cat[0].global != recorded[0].NotificationID || cat[1].global != recorded[1].NotificationID {
		t.Fatalf("get_category_messages: %+v; recorded %+v", cat, recorded)
	}
	last := query(t, pool, "get_last_stream_message($1)", stream)
	if len(last) != 1 || last[0].position != 1 {
		t.Fatalf("get_last_stream_message: %+v", last)
	}
	var version int64
	if err := pool.QueryRow(ctx, "SELECT stream_version($1)", stream).Scan(&version); err != nil || version != 1 {
		t.Fatalf("stream_version %d %v", version, err)
	}
}

func TestMessagesWrittenInProteansLayoutLoadIntoStrataAggregates(t *testing.T) {
	url := mdbtest.Database(t)
	pool := raw(t, url)
	id := uuid.New()
	stream := "bank::account-" + id.String()
	writeMessage(t, pool, stream, "Bank.Opened.v1", map[string]any{"owner": "bob"}, proteanMetadata(stream, "Bank.Opened.v1", 0), ptr(-1))
	writeMessage(t, pool, stream, "Bank.Deposited.v1", map[string]any{"amount": 7}, proteanMetadata(stream, "Bank.Deposited.v1", 1), ptr(0))
	// Eventide writes without metadata.
	writeMessage(t, pool, stream, "Deposited", map[string]any{"amount": 3}, nil, ptr(1))

	app := bank(t, url, nil)
	repo, err := application.NewRepository[Account](app)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	acc, err := repo.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if acc.Owner != "bob" || acc.Balance != 10 || acc.Version() != 3 {
		t.Fatalf("loaded %q with balance %d at version %d, want bob, 10, 3", acc.Owner, acc.Balance, acc.Version())
	}
	// Strata extends the stream at the position after Protean's, with
	// Message DB checking the expected version, and Protean goes on.
	if err := domain.Trigger(acc, Deposited{Amount: 100}); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Save(ctx, acc); err != nil {
		t.Fatal(err)
	}
	writeMessage(t, pool, stream, "Bank.Deposited.v1", map[string]any{"amount": 1000}, proteanMetadata(stream, "Bank.Deposited.v1", 4), ptr(3))
	acc, err = repo.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if acc.Balance != 1110 || acc.Version() != 5 {
		t.Fatalf("balance %d at version %d after Strata's and Protean's deposits, want 1110 at 5", acc.Balance, acc.Version())
	}
	// A stale Strata aggregate conflicts with Protean's write.
	stale, _ := repo.Get(ctx, id, application.AtVersion(4))
	_ = domain.Trigger(stale, Deposited{Amount: 1})
	if _, err := app.Save(ctx, stale); err == nil {
		t.Fatal("a save at a version Protean wrote succeeded")
	}
	// The notification log shows Protean's correlation.
	ns, err := app.Recorder().SelectNotifications(ctx, persistenceQuery())
	if err != nil {
		t.Fatal(err)
	}
	if len(ns) != 5 || ns[0].OriginatorID != id || ns[0].OriginatorVersion != 1 || ns[0].Headers["correlation_id"] != "corr-1" {
		t.Fatalf("notifications: %d, first %+v", len(ns), ns[0])
	}
}

func TestSnapshotsAreSharedInProteansLayout(t *testing.T) {
	url := mdbtest.Database(t)
	pool := raw(t, url)
	ctx := context.Background()
	id := uuid.New()
	stream, snapshots := "bank::account-"+id.String(), "bank::account:snapshot-"+id.String()
	writeMessage(t, pool, stream, "Bank.Opened.v1", map[string]any{"owner": "carl"}, proteanMetadata(stream, "Bank.Opened.v1", 0), ptr(-1))
	writeMessage(t, pool, stream, "Bank.Deposited.v1", map[string]any{"amount": 1}, proteanMetadata(stream, "Bank.Deposited.v1", 1), ptr(0))
	writeMessage(t, pool, stream, "Bank.Deposited.v1", map[string]any{"amount": 2}, proteanMetadata(stream, "Bank.Deposited.v1", 2), ptr(1))
	// Protean's snapshot after position 1, with a balance the events do
	// not give, so that a load shows whether it used the snapshot.
	writeMessage(t, pool, snapshots, messagedb.SnapshotType, map[string]any{"owner": "carl", "balance": 500, "_version": 1}, nil, nil)

	vars := map[string]string{"IS_SNAPSHOTTING_ENABLED": "yes"}
	withoutTopic := bank(t, url, vars)
	acc, err := application.NewRepository[Account](withoutTopic)
	if err != nil {
		t.Fatal(err)
	}
	got, err := acc.Get(ctx, id)
	if err != nil || got.Balance != 3 {
		t.Fatalf("without MESSAGEDB_SNAPSHOT_TOPIC: balance %d (%v), want 3 from the events", got.Balance, err)
	}

	vars["MESSAGEDB_SNAPSHOT_TOPIC"] = "Account"
	app := bank(t, url, vars)
	repo, _ := application.NewRepository[Account](app)
	got, err = repo.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got.Balance != 502 || got.Version() != 3 || got.Owner != "carl" || got.CreatedOn().IsZero() {
		t.Fatalf("with Protean's snapshot: balance %d at version %d, owner %q, created %v; want 502 at 3", got.Balance, got.Version(), got.Owner, got.CreatedOn())
	}

	// Strata's snapshot is the newest message of the snapshot stream, in
	// Protean's layout: type SNAPSHOT, the aggregate's fields and
	// _version, the position of its last event.
	snap, err := repo.TakeSnapshot(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if snap.OriginatorVersion != 3 {
		t.Fatalf("snapshot at version %d", snap.OriginatorVersion)
	}
	last := query(t, pool, "get_last_stream_message($1)", snapshots)
	if len(last) != 1 || last[0].typ != messagedb.SnapshotType || last[0].data["_version"] != 2.0 || last[0].data["owner"] != "carl" || last[0].data["balance"] != 3.0 {
		t.Fatalf("Strata's snapshot as Message DB returns it: %+v", last)
	}
	got, err = repo.Get(ctx, id)
	if err != nil || got.Balance != 3 || got.Version() != 3 {
		t.Fatalf("from Strata's snapshot: balance %d at version %d (%v)", got.Balance, got.Version(), err)
	}
}

func persistenceQuery() persistence.NotificationQuery {
	return persistence.NotificationQuery{Start: 1, Limit: 100}
}

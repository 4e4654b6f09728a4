package benchsuite

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/persistence/messagedb"
)

// DefaultMessageDBURL is the server that the strata bench command
// measures Message DB on unless told otherwise: each run clones a new
// database from MessageDBTemplate, where scripts/messagedb-install put
// Message DB, and drops it afterwards.
const DefaultMessageDBURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// MessageDBTemplate is the database that holds an installed Message DB.
const MessageDBTemplate = "strata_messagedb_template"

// MessageDB returns the cases of the Message DB adapter in a new database
// cloned from MessageDBTemplate on the server at serverURL, and a function
// that drops it. Strata's recorders and the baselines share one pool of
// 16 connections; the baselines call Message DB's functions directly, as
// Protean's and Eventide's clients do: write_message with the expected
// version, get_category_messages and get_stream_messages.
func MessageDB(ctx context.Context, serverURL string) ([]Case, func(), error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return nil, nil, fmt.Errorf("parse the Message DB server URL: %w", err)
	}
	db := "strata_messagedb_bench_" + strings.ReplaceAll(uuid.NewString()[:13], "-", "")
	admin, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return nil, nil, err
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+db+" TEMPLATE "+MessageDBTemplate); err != nil {
		admin.Close(ctx)
		return nil, nil, fmt.Errorf("clone %s (run scripts/messagedb-install): %w", MessageDBTemplate, err)
	}
	var closers []func()
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	closers = append(closers, func() {
		admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)")
		admin.Close(context.Background())
	})
	u.Path = "/" + db
	pair := func(category string) (Pair, error) {
		f, err := messagedb.Open(ctx, messagedb.Config{URL: u.String(), Category: category, PoolSize: ManyWriters, InitialVersion: 1, CreateTables: true})
		if err != nil {
			return Pair{}, err
		}
		closers = append(closers, func() { f.Close() })
		rec, err := f.ApplicationRecorder(ctx)
		if err != nil {
			return Pair{}, err
		}
		return Pair{rec, &rawMessageDB{pool: f.Pool(), category: "raw_" + category}}, nil
	}
	writes, err := pair("writes")
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	reads, err := pair("reads")
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	cases := RecorderCases(writes, reads, 1/0.80, 1/0.80)
	for i, c := range cases {
		switch {
		case strings.HasPrefix(c.Name, "save"):
			cases[i].Baseline = "raw write_message"
		case strings.HasPrefix(c.Name, "catch up"):
			cases[i].Baseline = "raw get_category_messages"
		case strings.HasPrefix(c.Name, "get aggregate"):
			cases[i].Baseline = "raw get_stream_messages"
		}
	}
	return cases, closeAll, nil
}

// rawMessageDB is the baseline on Message DB: its own functions, called
// with pgx on the same pool, with the same data Strata writes for the
// benchmark's opaque states ({"base64": ...}) and no metadata.
type rawMessageDB struct {
	pool     *pgxpool.Pool
	category string
}

// Insert writes the events of one save in one batch, one implicit
// transaction, each with its expected version (the version's position
// minus one; versions start at 1).
func (r *rawMessageDB) Insert(ctx context.Context, events []persistence.StoredEvent) error {
	b := &pgx.Batch{}
	for _, e := range events {
		data, _ := json.Marshal(map[string]string{"base64": base64.StdEncoding.EncodeToString(e.State)})
		b.Queue("SELECT message_store.write_message($1, $2, $3, $4, NULL, $5)",
			uuid.NewString(), r.category+"-"+e.OriginatorID.String(), e.Topic, string(data), e.OriginatorVersion-2)
	}
	br := r.pool.SendBatch(ctx, b)
	for range events {
		var pos int64
		if err := br.QueryRow().Scan(&pos); err != nil {
			br.Close()
			return err
		}
	}
	return br.Close()
}

// Scan reads the whole category with one get_category_messages call.
func (r *rawMessageDB) Scan(ctx context.Context) (int, error) {
	rows, err := r.pool.Query(ctx, "SELECT global_position, stream_name, position, type, data, metadata, time FROM message_store.get_category_messages($1, 1, -1)", r.category)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	page := make([]persistence.Notification, 0, CatchUpPage)
	n := 0
	for rows.Next() {
		var row persistence.Notification
		var stream string
		var data, meta *string
		var pos int64
		var at any
		if err := rows.Scan(&row.ID, &stream, &pos, &row.Topic, &data, &meta, &at); err != nil {
			return n, err
		}
		if data != nil {
			row.State = []byte(*data)
		}
		if page = append(page, row); len(page) == CatchUpPage {
			page = make([]persistence.Notification, 0, CatchUpPage)
		}
		n++
	}
	return n, rows.Err()
}

// SelectAggregate reads one stream with one get_stream_messages call.
func (r *rawMessageDB) SelectAggregate(ctx context.Context, id uuid.UUID) (int, error) {
	rows, err := r.pool.Query(ctx, "SELECT position, type, data, metadata FROM message_store.get_stream_messages($1, 0, -1)", r.category+"-"+id.String())
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var events []persistence.StoredEvent
	for rows.Next() {
		e := persistence.StoredEvent{OriginatorID: id}
		var data, meta *string
		if err := rows.Scan(&e.OriginatorVersion, &e.Topic, &data, &meta); err != nil {
			return len(events), err
		}
		if data != nil {
			e.State = []byte(*data)
		}
		events = append(events, e)
	}
	return len(events), rows.Err()
}

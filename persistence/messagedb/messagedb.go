package messagedb

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-go/strata/internal/sqlstore"
	"github.com/strata-go/strata/persistence"
)

func init() {
	persistence.RegisterModule(persistence.Module{
		Name:      "messagedb",
		Aliases:   []string{"message_db", "message-db"},
		Open:      func(ctx context.Context, env persistence.Env) (persistence.Factory, error) { return OpenEnv(ctx, env) },
		Variables: Variables,
	})
}

// Version is the version of Message DB the module is written and tested
// against (the npm package @eventide/message-db 1.3.1 installs it).
const Version = "1.3.0"

// OpenEnv opens a factory configured by the environment.
func OpenEnv(ctx context.Context, env persistence.Env) (*Factory, error) {
	c, err := ConfigFromEnv(env)
	if err != nil {
		return nil, err
	}
	return Open(ctx, c)
}

// Factory makes the Message DB recorders of one application: its
// aggregates' streams are in one category (see [Config.Category]).
type Factory struct {
	cfg      Config
	pool     *pgxpool.Pool
	tracking string // the qualified tracking table
	types    map[string]string
	topics   map[string]string
	closed   *atomic.Bool
	created  *createOnce
	tenant   string
}

// createOnce creates the tracking table once per factory and its tenants.
type createOnce struct {
	mu   sync.Mutex
	done bool
}

// Open connects to the database, checks that Message DB is installed, and
// returns the application's factory.
func Open(ctx context.Context, c Config) (*Factory, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	pc, err := c.poolConfig()
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, errorf("connect to Message DB", err)
	}
	var version string
	if err := pool.QueryRow(ctx, "SELECT message_store.message_store_version()").Scan(&version); err != nil {
		pool.Close()
		var pe *pgconn.PgError
		if errors.As(err, &pe) && (pe.Code == "42883" || pe.Code == "3F000") {
			return nil, &persistence.Error{Op: "open Message DB", Kind: persistence.ErrNoTable,
				Err: fmt.Errorf("Message DB is not installed in database %q (install the npm package @eventide/message-db and run its database/install.sh; see docs/messagedb.md): %w", pc.ConnConfig.Database, err)}
		}
		return nil, errorf("open Message DB", err)
	}
	if !strings.HasPrefix(version, "1.") {
		pool.Close()
		return nil, &persistence.Error{Op: "open Message DB", Kind: persistence.ErrNotSupported, Err: fmt.Errorf("Message DB version %s; this module supports 1.x (tested with %s)", version, Version)}
	}
	f := &Factory{cfg: c, pool: pool, tracking: c.Schema + ".messagedb_tracking", closed: new(atomic.Bool), created: new(createOnce),
		types: map[string]string{}, topics: map[string]string{}}
	for topic, typ := range c.TypeNames {
		f.types[topic], f.topics[typ] = typ, topic
	}
	return f, nil
}

// Pool returns the factory's connection pool.
func (f *Factory) Pool() *pgxpool.Pool { return f.pool }

// Category returns the category of the application's event streams.
func (f *Factory) Category() string { return f.cfg.Category }

// group names the factory's consumer group member in tracking records, or
// is "" when the application is no member of one.
func (f *Factory) group() string {
	if f.cfg.GroupSize == 0 {
		return ""
	}
	return fmt.Sprintf("%d/%d", f.cfg.GroupMember, f.cfg.GroupSize)
}

// typeOf returns the message type of events of topic.
func (f *Factory) typeOf(topic string) string {
	if t, ok := f.types[topic]; ok {
		return t
	}
	return topic
}

// topicOf returns the topic of messages of type typ.
func (f *Factory) topicOf(typ string) string {
	if t, ok := f.topics[typ]; ok {
		return t
	}
	return typ
}

func (f *Factory) base(category string, events bool) recorder {
	return recorder{f: f, category: category, tenant: f.tenant, events: events}
}

// AggregateRecorder returns the recorder of purpose: snapshots are in
// Protean's streams <category>:snapshot-<ID>, other purposes in
// <category>:<purpose>-<ID>.
func (f *Factory) AggregateRecorder(ctx context.Context, purpose string) (persistence.AggregateRecorder, error) {
	op := "open aggregate recorder " + purpose
	if f.closed.Load() {
		return nil, &persistence.Error{Op: op, Kind: persistence.ErrInterface, Err: errors.New("factory is closed")}
	}
	if purpose == "" || strings.ContainsFunc(purpose, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.')
	}) {
		return nil, &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: fmt.Errorf("purpose %q is not made of letters, digits, '_' and '.'", purpose)}
	}
	return &AggregateRecorder{recorder: f.base(SnapshotCategory(f.cfg.Category, purpose), false), snapshots: purpose == "snapshots"}, nil
}

// ApplicationRecorder returns the recorder of the application's events.
func (f *Factory) ApplicationRecorder(ctx context.Context) (persistence.ApplicationRecorder, error) {
	if f.closed.Load() {
		return nil, &persistence.Error{Op: "open application recorder", Kind: persistence.ErrInterface, Err: errors.New("factory is closed")}
	}
	return &Recorder{recorder: f.base(f.cfg.Category, true)}, nil
}

// ProcessRecorder returns the recorder of the application's events and
// tracking records, creating the tracking table if need be.
func (f *Factory) ProcessRecorder(ctx context.Context) (persistence.ProcessRecorder, error) {
	op := "open process recorder"
	if f.closed.Load() {
		return nil, &persistence.Error{Op: op, Kind: persistence.ErrInterface, Err: errors.New("factory is closed")}
	}
	if err := f.createTracking(ctx); err != nil {
		return nil, err
	}
	return &Recorder{recorder: f.base(f.cfg.Category, true), tracking: true}, nil
}

func (f *Factory) createTracking(ctx context.Context) error {
	if !f.cfg.CreateTables || f.cfg.ReadOnly {
		return nil
	}
	f.created.mu.Lock()
	defer f.created.mu.Unlock()
	if f.created.done {
		return nil
	}
	for _, stmt := range []string{
		"CREATE SCHEMA IF NOT EXISTS " + f.cfg.Schema,
		`CREATE TABLE IF NOT EXISTS ` + f.tracking + ` (
  category text NOT NULL,
  application_name text NOT NULL,
  notification_id bigint NOT NULL,
  tenant text NOT NULL,
  consumer_group text NOT NULL DEFAULT '',
  PRIMARY KEY (category, application_name, notification_id))`,
	} {
		if _, err := f.pool.Exec(ctx, stmt); err != nil && !isDuplicateObject(err) {
			// Concurrent creators race in the catalog; the loser's error is
			// harmless.
			return errorf("create table "+f.tracking, err)
		}
	}
	f.created.done = true
	return nil
}

func isDuplicateObject(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "42P07" || pe.Code == "42P06" || pe.Code == "23505")
}

// Tenant returns the factory of tenant id: its aggregates' streams are
// <category>-<ID>+<tenant>, in the application's category.
func (f *Factory) Tenant(id string) (persistence.Factory, error) {
	if err := persistence.CheckTenant(id); err != nil {
		return nil, err
	}
	t := *f
	t.tenant = id
	return &t, nil
}

// Close closes the pool; closing a tenant's factory does nothing.
func (f *Factory) Close() error {
	if f.tenant != "" {
		return nil
	}
	if f.closed.Swap(true) {
		return nil
	}
	f.pool.Close()
	return nil
}

// recorder is what the recorders share.
type recorder struct {
	f        *Factory
	category string
	tenant   string
	events   bool // event streams, with notification IDs
}

// begin checks, before a call of op, that the factory is open and ctx has
// not ended, so that neither reaches the server.
func (r *recorder) begin(ctx context.Context, op string) error {
	if r.f.closed.Load() {
		return &persistence.Error{Op: op, Kind: persistence.ErrInterface, Err: errors.New("recorder is closed")}
	}
	if err := ctx.Err(); err != nil {
		return &persistence.Error{Op: op, Kind: persistence.ErrOperational, Err: err}
	}
	return nil
}

func (r *recorder) beginWrite(ctx context.Context, op string) error {
	if err := r.begin(ctx, op); err != nil {
		return err
	}
	if r.f.cfg.ReadOnly {
		return &persistence.Error{Op: op, Kind: persistence.ErrReadOnly, Err: errors.New("the store was opened with READ_ONLY")}
	}
	return nil
}

// initial is the SQL of the Strata version of position 0 of the stream
// that the SQL expression stream names: the version Strata recorded there,
// or the configured initial version for a stream another program began.
// It is the one place where positions become versions:
//
//	version = position + initial
func (r *recorder) initial(stream string) string {
	return `coalesce((SELECT (f.metadata->'strata'->>'version')::bigint FROM message_store.messages f WHERE f.stream_name = ` + stream +
		` AND f.position = 0), ` + strconv.FormatInt(r.f.cfg.InitialVersion, 10) + `)`
}

// eventVersion is the SQL of the version of the event message m.
func (r *recorder) eventVersion() string {
	return `coalesce((m.metadata->'strata'->>'version')::bigint, m.position + ` + r.initial("m.stream_name") + `)`
}

// AggregateRecorder records snapshots (and the records of other
// purposes), one message each, in Protean's layout.
type AggregateRecorder struct {
	recorder
	snapshots bool
}

// Recorder is the application and process recorder of one category.
type Recorder struct {
	recorder
	tracking bool
}

var (
	_ persistence.ProcessRecorder   = (*Recorder)(nil)
	_ persistence.AggregateRecorder = (*AggregateRecorder)(nil)
	_ persistence.Replacer          = (*AggregateRecorder)(nil)
	_ persistence.Lister            = (*AggregateRecorder)(nil)
)

// errorf classifies a pgx error.
func errorf(op string, err error) error {
	return persistence.Errorf(classify(err), op, err)
}

// wrongVersion is the start of the message of write_message's optimistic
// concurrency error.
const wrongVersion = "Wrong expected version"

// classify maps PostgreSQL's SQLSTATE classes, Message DB's errors and
// connection failures to persistence kinds.
func classify(err error) error {
	if k := sqlstore.ContextKind(err); k != nil {
		return k
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "P0001" && strings.HasPrefix(pe.Message, wrongVersion):
			return persistence.ErrIntegrity
		case pe.Code == "P0001":
			// Message DB's other RAISEs refuse arguments.
			return persistence.ErrProgramming
		case pe.Code == "25006":
			return persistence.ErrReadOnly
		case strings.HasPrefix(pe.Code, "23"):
			return persistence.ErrIntegrity
		case strings.HasPrefix(pe.Code, "22"):
			return persistence.ErrData
		case strings.HasPrefix(pe.Code, "08"), strings.HasPrefix(pe.Code, "53"), strings.HasPrefix(pe.Code, "57"),
			strings.HasPrefix(pe.Code, "40"), pe.Code == "55P03", pe.Code == "55006", pe.Code == "25P03":
			return persistence.ErrOperational
		case pe.Code == "42P01", pe.Code == "3F000", pe.Code == "42883":
			return persistence.ErrNoTable
		case strings.HasPrefix(pe.Code, "42"), strings.HasPrefix(pe.Code, "0A"), strings.HasPrefix(pe.Code, "25"):
			return persistence.ErrProgramming
		case strings.HasPrefix(pe.Code, "XX"):
			return persistence.ErrInternal
		}
		return persistence.ErrDatabase
	}
	return persistence.ErrOperational
}

// writeError classifies the error of a write. A write that failed on the
// way to or from the server, after it may have reached it, has an unknown
// outcome: the batch may have committed before the connection broke.
func writeError(op string, err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) && !pgconn.SafeToRetry(err) && sqlstore.ContextKind(err) == nil && err.Error() != "closed pool" {
		return persistence.Errorf(persistence.ErrUnknownOutcome, op, err)
	}
	if errors.As(err, &pe) && sqlstore.ContextKind(err) == nil && (pe.Code == "57014" || pe.Code == "08006") {
		// Cancelled by the client after the batch was sent.
		return persistence.Errorf(persistence.ErrUnknownOutcome, op, err)
	}
	return errorf(op, err)
}

// write is one queued statement of a save, and what to say if it fails.
type write struct {
	sql    string
	args   []any
	event  int  // index of the event, or -1 for the tracking record
	ids    bool // the statement returns a position and a global position
	stream string
}

// run sends the writes as one batch: pgx sends it with a single Sync, so
// PostgreSQL runs it as one implicit transaction, and Message DB's
// category lock is held until the whole save commits. It returns the
// global positions of the writes that return them.
func (r *recorder) run(ctx context.Context, op string, writes []write, events []persistence.StoredEvent) ([]int64, error) {
	b := &pgx.Batch{}
	for _, w := range writes {
		b.Queue(w.sql, w.args...)
	}
	br := r.f.pool.SendBatch(ctx, b)
	var out []int64
	var failed error
	for _, w := range writes {
		var err error
		if w.ids {
			var pos, gp int64
			err = br.QueryRow().Scan(&pos, &gp)
			out = append(out, gp)
		} else {
			_, err = br.Exec()
		}
		if err != nil {
			failed = r.describe(op, w, events, err)
			break
		}
	}
	if cerr := br.Close(); failed == nil && cerr != nil {
		failed = writeError(op, cerr)
	}
	if failed != nil {
		return nil, failed
	}
	return out, nil
}

// describe says which record of a save failed, and how.
func (r *recorder) describe(op string, w write, events []persistence.StoredEvent, err error) error {
	kind := writeError(op, err)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return kind
	}
	switch {
	case w.event < 0:
		if pe.Code == "23505" {
			return &persistence.Error{Op: op, Kind: persistence.ErrIntegrity, Err: fmt.Errorf("tracking record already recorded: %w", err)}
		}
	case pe.Code == "P0001" && strings.HasPrefix(pe.Message, wrongVersion):
		e := events[w.event]
		what := "the event before it is not recorded"
		if strings.HasPrefix(pe.Message, wrongVersion+": -2 ") || !r.events {
			what = "it is already recorded"
		}
		if r.events && strings.HasPrefix(pe.Message, wrongVersion+": -1 ") {
			what = "the stream already has events"
		}
		return &persistence.Error{Op: op, Kind: persistence.ErrIntegrity,
			Err: fmt.Errorf("aggregate %s version %d (stream %s): %s: %w", e.OriginatorID, e.OriginatorVersion, w.stream, what, err)}
	case pe.Code == "23505" && pe.ConstraintName == "messages_id":
		e := events[w.event]
		return &persistence.Error{Op: op, Kind: persistence.ErrIntegrity,
			Err: fmt.Errorf("aggregate %s version %d (stream %s): commit %s already wrote a message to the stream: %w", e.OriginatorID, e.OriginatorVersion, w.stream, e.CommitID, err)}
	}
	return kind
}

// InsertEvents writes the events with write_message, each with the
// expected version that its Strata version maps to, and the tracking
// record, all in one transaction.
func (r *Recorder) InsertEvents(ctx context.Context, events []persistence.StoredEvent, opts ...persistence.InsertOption) ([]int64, error) {
	op := "insert events into Message DB category " + r.category
	if err := r.beginWrite(ctx, op); err != nil {
		return nil, err
	}
	cfg := persistence.NewInsertConfig(opts)
	if cfg.Tracking != nil && !r.tracking {
		return nil, &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: errors.New("this recorder does not record tracking records")}
	}
	if len(events) == 0 && cfg.Tracking == nil {
		return nil, nil
	}
	if err := sqlstore.CheckBatch(op, events); err != nil {
		return nil, err
	}
	if err := persistence.CheckCommit(op, events); err != nil {
		return nil, err
	}
	var writes []write
	if t := cfg.Tracking; t != nil {
		writes = append(writes, write{event: -1,
			sql:  "INSERT INTO " + r.f.tracking + " (category, application_name, notification_id, tenant, consumer_group) VALUES ($1, $2, $3, $4, $5)",
			args: []any{r.category, t.ApplicationName, t.NotificationID, r.tenant, r.f.group()}})
	}
	// The expected version of an event at version v is the position of
	// the event before it: v - 1 - initial, or -1 (no stream yet) for the
	// first event of a new stream, which then starts at v.
	insert := `SELECT p, currval('message_store.messages_global_position_seq') FROM (
SELECT message_store.write_message($1::text, $2::text, $3::text, $4::jsonb, $5::jsonb,
  $6::bigint - 1 - coalesce((SELECT coalesce((f.metadata->'strata'->>'version')::bigint, ` + strconv.FormatInt(r.f.cfg.InitialVersion, 10) + `)
    FROM message_store.messages f WHERE f.stream_name = $2::text AND f.position = 0), $6::bigint)) AS p OFFSET 0) w`
	perStream := map[string]int{}
	for i, e := range events {
		w, err := r.eventWrite(e, perStream)
		if err != nil {
			return nil, &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: err}
		}
		w.sql, w.event, w.ids = insert, i, true
		writes = append(writes, w)
	}
	ids, err := r.run(ctx, op, writes, events)
	if err != nil && errors.Is(err, persistence.ErrIntegrity) && len(events) > 0 && events[0].CommitID != uuid.Nil {
		if cerr := r.commitError(ctx, op, events); cerr != nil {
			return nil, cerr
		}
	}
	return ids, err
}

// eventWrite returns the arguments of the write of e, counting the
// messages each stream gets from the save.
func (r *recorder) eventWrite(e persistence.StoredEvent, perStream map[string]int) (write, error) {
	if e.OriginatorID == uuid.Nil {
		return write{}, fmt.Errorf("event version %d (%s) has the nil originator ID", e.OriginatorVersion, e.Topic)
	}
	stream := StreamName(r.category, r.tenant, e.OriginatorID)
	typ := r.f.typeOf(e.Topic)
	meta := &strataMeta{Version: e.OriginatorVersion, Headers: e.Headers}
	if r.events {
		if e.CommitID != uuid.Nil {
			c := e.CommitID
			meta.CommitID = &c
		}
	} else {
		meta.Headers = nil
		if r.snapshotsLayout() {
			typ = SnapshotType
		}
	}
	if typ != e.Topic {
		meta.Topic = e.Topic
	}
	if typ == "" {
		return write{}, fmt.Errorf("event %s version %d has an empty topic", e.OriginatorID, e.OriginatorVersion)
	}
	data := splitState(e.State, meta)
	kind := "EVENT"
	if !r.events {
		kind = "SNAPSHOT"
	}
	md := eventMetadata(stream, r.category, typ, meta, kind)
	k := perStream[stream]
	perStream[stream] = k + 1
	id := messageID(e.CommitID, stream, k)
	if !r.events {
		id = uuid.New()
	}
	return write{stream: stream, args: []any{id.String(), stream, typ, string(data), string(md), e.OriginatorVersion}}, nil
}

func (r *recorder) snapshotsLayout() bool {
	return strings.HasSuffix(r.category, ":snapshot")
}

// commitError tells, after a save failed on a conflict, whether its commit
// was recorded before: whether the first message the commit writes to
// each stream, whose ID derives from the commit, is in the store.
func (r *Recorder) commitError(ctx context.Context, op string, events []persistence.StoredEvent) error {
	c := events[0].CommitID
	byStream := map[string]uuid.UUID{}
	var ids []string
	for _, id := range sqlstore.Aggregates(events) {
		stream := StreamName(r.category, r.tenant, id)
		byStream[stream] = id
		ids = append(ids, messageID(c, stream, 0).String())
	}
	rows, err := r.f.pool.Query(ctx, "SELECT stream_name FROM message_store.messages WHERE id = ANY($1::uuid[])", ids)
	if err != nil {
		return nil // the save's own error says enough
	}
	defer rows.Close()
	var committed []uuid.UUID
	for rows.Next() {
		var s string
		if rows.Scan(&s) != nil {
			return nil
		}
		if id, ok := byStream[s]; ok {
			committed = append(committed, id)
		}
	}
	if rows.Err() != nil {
		return nil
	}
	return sqlstore.CommitError(op, events, committed)
}

// eventColumns are the columns recorders read, with m the messages table.
func (r *recorder) eventColumns() string {
	return "m.global_position, m.stream_name, m.position, " + r.eventVersion() + ", m.type, m.data::text, m.metadata::text, m.time"
}

func scanMessage(rows pgx.Rows) (message, error) {
	var m message
	var data, meta *string
	if err := rows.Scan(&m.globalPosition, &m.stream, &m.position, &m.version, &m.typ, &data, &meta, &m.time); err != nil {
		return m, err
	}
	if data != nil {
		m.data = []byte(*data)
	}
	if meta != nil {
		m.metadata = []byte(*meta)
	}
	m.time = m.time.UTC()
	return m, nil
}

// SelectEvents reads one aggregate's stream.
func (r *Recorder) SelectEvents(ctx context.Context, id uuid.UUID, eq persistence.EventQuery) ([]persistence.StoredEvent, error) {
	op := "select events of " + id.String() + " from Message DB category " + r.category
	if err := r.begin(ctx, op); err != nil {
		return nil, err
	}
	stream := StreamName(r.category, r.tenant, id)
	q := "SELECT " + r.eventColumns() + " FROM message_store.messages m WHERE m.stream_name = $1"
	args := []any{stream}
	// Versions are positions plus the stream's initial version, so
	// version bounds are position bounds, on the stream's unique index.
	if eq.Gt != nil {
		args = append(args, *eq.Gt)
		q += fmt.Sprintf(" AND m.position + %s > $%d", r.initial("$1"), len(args))
	}
	if eq.Lte != nil {
		args = append(args, *eq.Lte)
		q += fmt.Sprintf(" AND m.position + %s <= $%d", r.initial("$1"), len(args))
	}
	q += " ORDER BY m.position"
	if eq.Desc {
		q += " DESC"
	}
	if eq.Limit > 0 {
		q += " LIMIT " + strconv.Itoa(eq.Limit)
	}
	rows, err := r.f.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, errorf(op, err)
	}
	defer rows.Close()
	out := []persistence.StoredEvent{}
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, errorf(op, err)
		}
		e, err := m.stored(r.f.topicOf, "")
		if err != nil {
			return nil, &persistence.Error{Op: op, Kind: persistence.ErrCorrupt, Err: err}
		}
		e.OriginatorID = id
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, errorf(op, err)
	}
	return out, nil
}

// filter returns the SQL conditions and arguments that select the
// notifications of q, after args.
func (r *Recorder) filter(q persistence.NotificationQuery, args []any) (string, []any) {
	args = append(args, r.category)
	cond := fmt.Sprintf("message_store.category(m.stream_name) = $%d", len(args))
	if !q.AllTenants {
		if r.tenant == "" {
			// The default tenant's streams are <category>-<UUID>: a tenant's
			// are longer, and so are Protean's fact event streams.
			args = append(args, len([]rune(r.category))+1+uuidLen)
			cond += fmt.Sprintf(" AND char_length(m.stream_name) = $%d", len(args))
		} else {
			suffix, at := tenantSuffix(r.category, r.tenant)
			args = append(args, at, suffix)
			cond += fmt.Sprintf(" AND substr(m.stream_name, $%d) = $%d", len(args)-1, len(args))
		}
	}
	return cond, args
}

// SelectNotifications reads the application's category in global order,
// with Message DB's get_category_messages: the notification ID is the
// global position. The tenant, topic and stop filters are applied to what
// it returns, and a select reads on until it has q.Limit notifications or
// the category ends. (A query of the table with the filters in SQL is
// planned badly: PostgreSQL underestimates the filtered rows and sorts
// the whole rest of the category for every page.)
func (r *Recorder) SelectNotifications(ctx context.Context, q persistence.NotificationQuery) ([]persistence.Notification, error) {
	op := "select notifications of Message DB category " + r.category
	if err := r.begin(ctx, op); err != nil {
		return nil, err
	}
	if q.Limit <= 0 {
		return nil, &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: fmt.Errorf("limit %d is not positive", q.Limit)}
	}
	return r.readCategory(ctx, op, q, nil, nil, func(n persistence.Notification) bool {
		return q.AllTenants || n.Tenant == r.tenant && n.OriginatorID != uuid.Nil
	})
}

// readCategory pages through the category with get_category_messages
// (for a consumer group member if member is not nil), keeping the
// notifications that keep accepts and q's topics and stop allow.
func (r *recorder) readCategory(ctx context.Context, op string, q persistence.NotificationQuery, member, size *int, keep func(persistence.Notification) bool) ([]persistence.Notification, error) {
	topics := map[string]bool{}
	for _, t := range q.Topics {
		topics[t] = true
	}
	sql := `SELECT m.global_position, m.stream_name, m.position, ` + r.eventVersion() + `, m.type, m.data, m.metadata::text, m.time
FROM (SELECT g.global_position, g.stream_name, g.position, g.type, g.data, g.metadata::jsonb AS metadata, g.time
  FROM message_store.get_category_messages($1::text, $2::bigint, $3::bigint, NULL, $4::bigint, $5::bigint) g) m
ORDER BY m.global_position`
	out := []persistence.Notification{}
	start := max(q.Start, 1)
	batch := max(q.Limit, 100)
	for q.Stop <= 0 || start <= q.Stop {
		got, err := r.notifications(ctx, op, sql, []any{r.category, start, batch, member, size})
		if err != nil {
			return nil, err
		}
		for _, n := range got {
			if q.Stop > 0 && n.ID > q.Stop {
				return out, nil
			}
			if keep(n) && (len(topics) == 0 || topics[n.Topic]) {
				out = append(out, n)
				if len(out) == q.Limit {
					return out, nil
				}
			}
		}
		if len(got) < batch {
			break
		}
		start = got[len(got)-1].ID + 1
	}
	return out, nil
}

func (r *recorder) notifications(ctx context.Context, op, sql string, args []any) ([]persistence.Notification, error) {
	rows, err := r.f.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, errorf(op, err)
	}
	defer rows.Close()
	out := []persistence.Notification{}
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, errorf(op, err)
		}
		n, err := r.notification(m)
		if err != nil {
			return nil, &persistence.Error{Op: op, Kind: persistence.ErrCorrupt, Err: err}
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, errorf(op, err)
	}
	return out, nil
}

// notification makes a notification of a message of the category. A
// stream that Strata did not name gives the nil originator ID, which
// decoding refuses, so that one such stream does not hide the rest.
func (r *recorder) notification(m message) (persistence.Notification, error) {
	e, err := m.stored(r.f.topicOf, "")
	if err != nil {
		return persistence.Notification{}, err
	}
	id, tenant, _ := ParseStreamName(r.category, m.stream)
	e.OriginatorID = id
	return persistence.Notification{ID: m.globalPosition, Tenant: tenant, StoredEvent: e}, nil
}

// MaxNotificationID returns the highest global position of the tenant's
// streams in the category.
func (r *Recorder) MaxNotificationID(ctx context.Context) (int64, error) {
	op := "select max notification ID of Message DB category " + r.category
	if err := r.begin(ctx, op); err != nil {
		return 0, err
	}
	cond, args := r.filter(persistence.NotificationQuery{}, nil)
	var n int64
	if err := r.f.pool.QueryRow(ctx, "SELECT coalesce(max(m.global_position), 0) FROM message_store.messages m WHERE "+cond, args...).Scan(&n); err != nil {
		return 0, errorf(op, err)
	}
	return n, nil
}

// MaxTrackingID returns the highest notification ID of app recorded by
// the category's process application.
func (r *Recorder) MaxTrackingID(ctx context.Context, app string) (int64, error) {
	op := "select max tracking ID of " + app + " in " + r.f.tracking
	if err := r.begin(ctx, op); err != nil {
		return 0, err
	}
	if !r.tracking {
		return 0, &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: errors.New("this recorder does not record tracking records")}
	}
	var n int64
	err := r.f.pool.QueryRow(ctx, "SELECT coalesce(max(notification_id), 0) FROM "+r.f.tracking+" WHERE category = $1 AND application_name = $2 AND consumer_group = $3", r.category, app, r.f.group()).Scan(&n)
	if err != nil {
		return 0, errorf(op, err)
	}
	return n, nil
}

// HasTrackingID reports whether the notification ID of app is recorded.
func (r *Recorder) HasTrackingID(ctx context.Context, app string, id int64) (bool, error) {
	op := "select tracking ID of " + app + " in " + r.f.tracking
	if err := r.begin(ctx, op); err != nil {
		return false, err
	}
	if !r.tracking {
		return false, &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: errors.New("this recorder does not record tracking records")}
	}
	var ok bool
	err := r.f.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+r.f.tracking+" WHERE category = $1 AND application_name = $2 AND notification_id = $3)", r.category, app, id).Scan(&ok)
	if err != nil {
		return false, errorf(op, err)
	}
	return ok, nil
}

// snapshotVersion is the SQL of the Strata version of the snapshot message
// m whose aggregate's event stream is the SQL expression events: Strata's
// recorded version, or Protean's _version (the position of the last event
// it holds) mapped like the event's position.
func (r *AggregateRecorder) snapshotVersion(events string) string {
	return `coalesce((m.metadata->'strata'->>'version')::bigint,
  CASE WHEN m.type = '` + SnapshotType + `' AND jsonb_typeof(m.data->'_version') = 'number' THEN (m.data->>'_version')::numeric::bigint + ` + r.initial(events) + ` END)`
}

// foreign is the SQL condition that m is a snapshot another program wrote
// and the recorder can use (see Config.SnapshotTopic).
func (r *AggregateRecorder) foreign() string {
	if !r.snapshots || r.f.cfg.SnapshotTopic == "" {
		return "false"
	}
	return "(m.metadata IS NULL OR NOT m.metadata ? 'strata') AND m.type = '" + SnapshotType + "'"
}

// InsertEvents writes each record as a message of its aggregate's stream,
// refused (by write_message's expected version) if the stream has one at
// its version.
func (r *AggregateRecorder) InsertEvents(ctx context.Context, events []persistence.StoredEvent, opts ...persistence.InsertOption) ([]int64, error) {
	op := "insert into Message DB category " + r.category
	if err := r.beginWrite(ctx, op); err != nil {
		return nil, err
	}
	if persistence.NewInsertConfig(opts).Tracking != nil {
		return nil, &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: errors.New("this recorder does not record tracking records")}
	}
	if err := sqlstore.CheckBatch(op, events); err != nil {
		return nil, err
	}
	_, err := r.write(ctx, op, events, false)
	return nil, err
}

// ReplaceEvents writes each record as a newer message of its stream: the
// newest message at a version is the one in force, as the newest snapshot
// is in Protean.
func (r *AggregateRecorder) ReplaceEvents(ctx context.Context, events []persistence.StoredEvent) error {
	op := "replace in Message DB category " + r.category
	if err := r.beginWrite(ctx, op); err != nil {
		return err
	}
	_, err := r.write(ctx, op, events, true)
	return err
}

func (r *AggregateRecorder) write(ctx context.Context, op string, events []persistence.StoredEvent, replace bool) ([]int64, error) {
	if len(events) == 0 {
		return nil, nil
	}
	// The expected version is the stream's version when no message has
	// the record's version, and -2, which no stream has, when one has:
	// write_message then refuses it. The check and the write see the same
	// stream, or the stream changed and the expected version is wrong.
	events0 := "$7::text" // the aggregate's event stream
	expected := "coalesce(message_store.stream_version($2::text), -1)"
	if !replace {
		expected = "CASE WHEN EXISTS (SELECT 1 FROM message_store.messages m WHERE m.stream_name = $2::text AND " + r.snapshotVersion(events0) + " = $6::bigint) THEN -2 ELSE " + expected + " END"
	}
	data := "$4::jsonb"
	if r.snapshots {
		// Protean reads _version, the position of the snapshot's last event.
		data = "CASE WHEN jsonb_typeof($4::jsonb) = 'object' AND NOT (($5::jsonb->'strata') ? 'encoding') THEN $4::jsonb || jsonb_build_object('_version', $6::bigint - " + r.initial(events0) + ") ELSE $4::jsonb END"
	}
	// The WHERE names every parameter, which PostgreSQL must type even
	// where the statement does not use them; they are never NULL.
	sql := "SELECT p, 0::bigint FROM (SELECT message_store.write_message($1::text, $2::text, $3::text, " + data + ", $5::jsonb, " + expected + ") AS p OFFSET 0) w WHERE $6::bigint IS NOT NULL AND $7::text IS NOT NULL"
	var writes []write
	perStream := map[string]int{}
	for i, e := range events {
		w, err := r.eventWrite(e, perStream)
		if err != nil {
			return nil, &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: err}
		}
		w.sql, w.event, w.ids = sql, i, true
		w.args = append(w.args, StreamName(r.f.cfg.Category, r.tenant, e.OriginatorID))
		writes = append(writes, w)
	}
	return r.run(ctx, op, writes, events)
}

// SelectEvents reads one aggregate's records: per version the newest
// message, in version order.
func (r *AggregateRecorder) SelectEvents(ctx context.Context, id uuid.UUID, eq persistence.EventQuery) ([]persistence.StoredEvent, error) {
	op := "select " + id.String() + " from Message DB category " + r.category
	if err := r.begin(ctx, op); err != nil {
		return nil, err
	}
	stream := StreamName(r.category, r.tenant, id)
	events := StreamName(r.f.cfg.Category, r.tenant, id)
	data := "m.data"
	if r.snapshots {
		data = "CASE WHEN m.metadata ? 'strata' AND jsonb_typeof(m.data) = 'object' THEN m.data - '_version' ELSE m.data END"
	}
	q := `SELECT global_position, stream_name, position, ver, type, data::text, metadata::text, time, created FROM (
  SELECT DISTINCT ON (ver) m.global_position, m.stream_name, m.position, ` + r.snapshotVersion("$2::text") + ` AS ver, m.type, ` + data + ` AS data, m.metadata, m.time,
    (SELECT f.time FROM message_store.messages f WHERE f.stream_name = $2::text AND f.position = 0) AS created
  FROM message_store.messages m
  WHERE m.stream_name = $1::text AND (m.metadata ? 'strata' OR ` + r.foreign() + `)
  ORDER BY ver, m.position DESC) s WHERE ver IS NOT NULL`
	args := []any{stream, events}
	if eq.Gt != nil {
		args = append(args, *eq.Gt)
		q += fmt.Sprintf(" AND ver > $%d", len(args))
	}
	if eq.Lte != nil {
		args = append(args, *eq.Lte)
		q += fmt.Sprintf(" AND ver <= $%d", len(args))
	}
	q += " ORDER BY ver"
	if eq.Desc {
		q += " DESC"
	}
	if eq.Limit > 0 {
		q += " LIMIT " + strconv.Itoa(eq.Limit)
	}
	rows, err := r.f.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, errorf(op, err)
	}
	defer rows.Close()
	out := []persistence.StoredEvent{}
	for rows.Next() {
		var m message
		var data, meta *string
		var created *time.Time
		if err := rows.Scan(&m.globalPosition, &m.stream, &m.position, &m.version, &m.typ, &data, &meta, &m.time, &created); err != nil {
			return nil, errorf(op, err)
		}
		if data != nil {
			m.data = []byte(*data)
		}
		if meta != nil {
			m.metadata = []byte(*meta)
		}
		m.time = m.time.UTC()
		if created != nil {
			c := created.UTC()
			m.createdOn = &c
		}
		e, err := m.stored(r.f.topicOf, r.f.cfg.SnapshotTopic)
		if err != nil {
			return nil, &persistence.Error{Op: op, Kind: persistence.ErrCorrupt, Err: err}
		}
		e.OriginatorID = id
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, errorf(op, err)
	}
	return out, nil
}

// Originators yields the aggregates that have records in the recorder's
// category, for the recorder's tenant.
func (r *AggregateRecorder) Originators(ctx context.Context) iter.Seq2[uuid.UUID, error] {
	return func(yield func(uuid.UUID, error) bool) {
		op := "list aggregates of Message DB category " + r.category
		if err := r.begin(ctx, op); err != nil {
			yield(uuid.Nil, err)
			return
		}
		rows, err := r.f.pool.Query(ctx, "SELECT DISTINCT m.stream_name FROM message_store.messages m WHERE message_store.category(m.stream_name) = $1", r.category)
		if err != nil {
			yield(uuid.Nil, errorf(op, err))
			return
		}
		var ids []uuid.UUID
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				rows.Close()
				yield(uuid.Nil, errorf(op, err))
				return
			}
			if id, tenant, ok := ParseStreamName(r.category, s); ok && tenant == r.tenant {
				ids = append(ids, id)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			yield(uuid.Nil, errorf(op, err))
			return
		}
		for _, id := range ids {
			if !yield(id, nil) {
				return
			}
		}
	}
}

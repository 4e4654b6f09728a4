package jetstream

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strata-go/strata/persistence"
)

func init() {
	persistence.RegisterModule(persistence.Module{
		Name:      "jetstream",
		Aliases:   []string{"nats"},
		Open:      func(ctx context.Context, env persistence.Env) (persistence.Factory, error) { return OpenEnv(ctx, env) },
		Variables: Variables,
	})
}

// MinServerVersion is the oldest nats-server Strata works with: atomic
// batch publish, which makes a save all or nothing, arrived in 2.12.
const MinServerVersion = "2.12.0"

// Factory is the JetStream module's factory: the recorders of one
// application's stream. A tenant's factory shares the connection of the
// factory it came from.
type Factory struct {
	cfg     Config
	client  *client // of the events stream
	records *client // of the records stream
	shared  *shared
	tenant  string
}

// shared is what the factories of every tenant share.
type shared struct {
	closed    atomic.Bool
	closeOnce sync.Once
	nc        *nats.Conn
	heads     heads
	mu        sync.Mutex
	marks     map[string]uint64 // subject filter → the last sequence written
}

func (s *shared) mark(filter string, seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.marks == nil {
		s.marks = map[string]uint64{}
	}
	s.marks[filter] = max(s.marks[filter], seq)
}

// forget drops what the factory knows of subjects after a deletion.
func (s *shared) forget() {
	s.heads.mu.Lock()
	s.heads.m = nil
	s.heads.mu.Unlock()
	s.mu.Lock()
	s.marks = nil
	s.mu.Unlock()
}

func (s *shared) marked(filter string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.marks[filter]
}

var (
	_ persistence.Factory = (*Factory)(nil)
	_ persistence.Eraser  = (*Factory)(nil)
)

// DeleteAggregate deletes the events and the records of every purpose
// (snapshots, data keys) of the aggregate in the factory's tenant, by one
// purge of each stream by subject, and reports whether there were any.
// The records go first: if the second purge fails, the aggregate is left
// with its events and without its records, which loads as it did, and
// calling again finishes the deletion. Stream sequences are never given
// again, so the notification IDs of the deleted events are not either.
func (f *Factory) DeleteAggregate(ctx context.Context, id uuid.UUID) (bool, error) {
	op := "delete aggregate " + id.String()
	if err := f.begin(ctx, op); err != nil {
		return false, err
	}
	defer f.shared.forget()
	tail := "." + tenantToken(f.tenant) + "." + id.String()
	records, err := f.records.purge(ctx, f.cfg.SubjectPrefix+".a.*"+tail)
	if err != nil {
		return false, classify(op+": its records", err, true)
	}
	events, err := f.client.purge(ctx, f.cfg.SubjectPrefix+".e.*"+tail)
	if err != nil {
		return false, classify(op+": its events", err, true)
	}
	return records+events > 0, nil
}

// PurgeTenant deletes the events, tracking records and records of every
// purpose of the factory's tenant, by one purge of each stream by subject,
// the records first (see [Factory.DeleteAggregate]).
func (f *Factory) PurgeTenant(ctx context.Context) error {
	op := "purge tenant"
	if err := f.begin(ctx, op); err != nil {
		return err
	}
	if f.tenant == "" {
		return &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: errors.New("the default tenant cannot be purged")}
	}
	op = fmt.Sprintf("purge tenant %q", f.tenant)
	defer f.shared.forget()
	tail := "." + tenantToken(f.tenant) + ".*"
	if _, err := f.records.purge(ctx, f.cfg.SubjectPrefix+".a.*"+tail); err != nil {
		return classify(op+": its records", err, true)
	}
	if _, err := f.client.purge(ctx, f.cfg.SubjectPrefix+".*.*"+tail); err != nil {
		return classify(op+": its events and tracking records", err, true)
	}
	return nil
}

func (f *Factory) begin(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return &persistence.Error{Op: op, Kind: persistence.ErrOperational, Err: err}
	}
	return f.open(op)
}

// OpenEnv opens the factory the environment configures (see
// [ConfigFromEnv]).
func OpenEnv(ctx context.Context, env persistence.Env) (*Factory, error) {
	cfg, err := ConfigFromEnv(env)
	if err != nil {
		return nil, err
	}
	return Open(ctx, cfg)
}

// Open connects to the servers, checks that they are recent enough, and
// creates the application's stream if it does not exist and
// cfg.CreateStreams is set.
func Open(ctx context.Context, cfg Config) (*Factory, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	opts := []nats.Option{
		nats.Name("strata " + cfg.AppName),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(100 * time.Millisecond),
		nats.Timeout(cfg.Timeout),
		nats.RetryOnFailedConnect(false),
	}
	if cfg.Credentials != "" {
		opts = append(opts, nats.UserCredentials(cfg.Credentials))
	}
	op := "connect to " + cfg.URL
	if err := ctx.Err(); err != nil {
		return nil, &persistence.Error{Op: op, Kind: persistence.ErrOperational, Err: err}
	}
	nc, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		return nil, &persistence.Error{Op: op, Kind: persistence.ErrOperational, Err: err}
	}
	if err := CheckServerVersion(nc.ConnectedServerVersion()); err != nil {
		nc.Close()
		return nil, fmt.Errorf("%s (server %s): %w", op, nc.ConnectedAddr(), err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, &persistence.Error{Op: op, Kind: persistence.ErrOperational, Err: err}
	}
	f := &Factory{
		cfg:     cfg,
		client:  &client{nc: nc, js: js, stream: cfg.Stream, timeout: cfg.Timeout},
		records: &client{nc: nc, js: js, stream: cfg.RecordsStream, timeout: cfg.Timeout},
		shared:  &shared{nc: nc},
	}
	for _, sc := range []jetstream.StreamConfig{StreamConfig(cfg), RecordsStreamConfig(cfg)} {
		if err := f.ensureStream(ctx, sc); err != nil {
			nc.Close()
			return nil, err
		}
	}
	return f, nil
}

// CheckServerVersion returns an error wrapping persistence.ErrNotSupported
// if version (as a server reports it, "2.15.2") is older than
// [MinServerVersion].
func CheckServerVersion(version string) error {
	have, ok := parseVersion(version)
	want, _ := parseVersion(MinServerVersion)
	if !ok {
		return fmt.Errorf("%w: nats-server version %q cannot be read; Strata needs %s or later", persistence.ErrNotSupported, version, MinServerVersion)
	}
	for i := range want {
		if have[i] != want[i] {
			if have[i] < want[i] {
				return fmt.Errorf("%w: nats-server %s is too old: Strata needs %s or later (atomic batch publish)", persistence.ErrNotSupported, version, MinServerVersion)
			}
			return nil
		}
	}
	return nil
}

func parseVersion(v string) ([3]int, bool) {
	var out [3]int
	v = strings.TrimPrefix(strings.TrimSpace(v), "v")
	v, _, _ = strings.Cut(v, "-")
	parts := strings.Split(v, ".")
	if len(parts) < 2 {
		return out, false
	}
	for i := 0; i < 3 && i < len(parts); i++ {
		n, err := strconv.Atoi(parts[i])
		if err != nil {
			return out, false
		}
		out[i] = n
	}
	return out, true
}

// StreamConfig returns the configuration of the stream that cfg's
// application keeps its events and tracking records in.
func StreamConfig(cfg Config) jetstream.StreamConfig {
	_ = cfg.check() // fills in the defaults; Open reports its errors
	storage := jetstream.FileStorage
	if cfg.Memory {
		storage = jetstream.MemoryStorage
	}
	// The servers cannot remember a commit ID longer than they keep its
	// message.
	dup := cfg.DuplicateWindow
	if cfg.MaxAge > 0 && dup > cfg.MaxAge {
		dup = cfg.MaxAge
	}
	return jetstream.StreamConfig{
		Name:               cfg.Stream,
		Description:        "Strata event store of " + cfg.AppName + ": events and tracking records",
		Subjects:           []string{cfg.SubjectPrefix + ".e.>", cfg.SubjectPrefix + ".k.>"},
		Retention:          jetstream.LimitsPolicy,
		Storage:            storage,
		Replicas:           cfg.Replicas,
		MaxAge:             cfg.MaxAge,
		Duplicates:         dup,
		Discard:            jetstream.DiscardOld,
		AllowDirect:        true,
		AllowAtomicPublish: true,
		DenyDelete:         true,
	}
}

// RecordsStreamConfig returns the configuration of the stream that cfg's
// application keeps the records of its aggregate recorders in: snapshots
// and data keys. It keeps them for ever: NATS_MAX_AGE, which truncates
// the events, does not apply, and snapshots carry their own time to live
// (NATS_SNAPSHOT_MAX_AGE), which is why the stream allows one.
func RecordsStreamConfig(cfg Config) jetstream.StreamConfig {
	sc := StreamConfig(cfg)
	sc.Name = cfg.RecordsStream
	sc.Description = "Strata event store of " + cfg.AppName + ": snapshots and data keys"
	sc.Subjects = []string{cfg.SubjectPrefix + ".a.>"}
	sc.MaxAge = 0
	sc.Duplicates = cfg.DuplicateWindow
	if sc.Duplicates == 0 {
		sc.Duplicates = DefaultDuplicateWindow
	}
	sc.AllowRollup = true // ReplaceEvents of snapshots and data keys
	sc.AllowMsgTTL = true
	return sc
}

// ensureStream checks a stream, creating it if allowed.
func (f *Factory) ensureStream(ctx context.Context, want jetstream.StreamConfig) error {
	op := "open stream " + want.Name
	ctx, cancel := f.client.withTimeout(ctx)
	defer cancel()
	s, err := f.client.js.Stream(ctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if !f.cfg.CreateStreams {
			return nil // calls fail with ErrNoTable (see client.notFound)
		}
		s, err = f.client.js.CreateStream(ctx, want)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			s, err = f.client.js.Stream(ctx, want.Name)
		}
	}
	if err != nil {
		return classify(op, err, false)
	}
	info := s.CachedInfo()
	if !info.Config.AllowAtomicPublish {
		return &persistence.Error{Op: op, Kind: persistence.ErrNotSupported,
			Err: fmt.Errorf("the stream does not allow atomic publish (allow_atomic): a server older than %s ignores it; update the stream or the servers", MinServerVersion)}
	}
	if !info.Config.AllowDirect {
		return &persistence.Error{Op: op, Kind: persistence.ErrNotSupported, Err: errors.New("the stream does not allow direct gets (allow_direct)")}
	}
	if want.AllowRollup && !info.Config.AllowRollup {
		return &persistence.Error{Op: op, Kind: persistence.ErrConfig, Err: errors.New("the stream does not allow roll-ups (allow_rollup_hdrs), which replacing records needs")}
	}
	if want.AllowMsgTTL && !info.Config.AllowMsgTTL && f.cfg.SnapshotMaxAge > 0 {
		return &persistence.Error{Op: op, Kind: persistence.ErrConfig,
			Err: errors.New("NATS_SNAPSHOT_MAX_AGE is set, and the stream does not allow a message time to live (allow_msg_ttl)")}
	}
	if !slices.Equal(info.Config.Subjects, want.Subjects) {
		hint := ""
		if slices.Equal(info.Config.Subjects, []string{f.cfg.SubjectPrefix + ".>"}) {
			hint = "; the stream is of the layout before snapshots and data keys moved to a stream of their own, which is not converted in place: set NATS_STREAM and NATS_SUBJECT_PREFIX for a new store"
		}
		return &persistence.Error{Op: op, Kind: persistence.ErrConfig,
			Err: fmt.Errorf("the stream holds subjects %q, not %q (NATS_SUBJECT_PREFIX)%s", info.Config.Subjects, want.Subjects, hint)}
	}
	return nil
}

func (f *Factory) open(op string) error {
	if f.shared.closed.Load() {
		return &persistence.Error{Op: op, Kind: persistence.ErrInterface, Err: errors.New("factory is closed")}
	}
	return nil
}

// snapshotPurpose is the purpose of the aggregate recorder an application
// keeps its snapshots in: its records get NATS_SNAPSHOT_MAX_AGE as their
// time to live.
const snapshotPurpose = "snapshots"

// AggregateRecorder returns the recorder for the purpose ("snapshots",
// "keys"), in the records stream.
func (f *Factory) AggregateRecorder(_ context.Context, purpose string) (persistence.AggregateRecorder, error) {
	if err := f.open("open the " + purpose + " recorder"); err != nil {
		return nil, err
	}
	r := &recorder{f: f, c: f.records, kind: "a." + nameToken(purpose)}
	if purpose == snapshotPurpose {
		r.ttl = f.cfg.SnapshotMaxAge
	}
	return &AggregateRecorder{r: r}, nil
}

// ApplicationRecorder returns the recorder of the application's events.
func (f *Factory) ApplicationRecorder(context.Context) (persistence.ApplicationRecorder, error) {
	if err := f.open("open the application recorder"); err != nil {
		return nil, err
	}
	return &ApplicationRecorder{r: &recorder{f: f, c: f.client, kind: "e.ev", ids: true}}, nil
}

// ProcessRecorder returns the recorder of the application's events and
// tracking records.
func (f *Factory) ProcessRecorder(context.Context) (persistence.ProcessRecorder, error) {
	if err := f.open("open the process recorder"); err != nil {
		return nil, err
	}
	return &ProcessRecorder{ApplicationRecorder{r: &recorder{f: f, c: f.client, kind: "e.ev", ids: true, tracking: true}}}, nil
}

// Tenant returns the factory of tenant id, on the same stream and
// connection.
func (f *Factory) Tenant(id string) (persistence.Factory, error) {
	if err := persistence.CheckTenant(id); err != nil {
		return nil, err
	}
	g := *f
	g.tenant = id
	return &g, nil
}

// Conn returns the factory's connection, for operations of its own.
func (f *Factory) Conn() *nats.Conn { return f.shared.nc }

// StreamName returns the name of the factory's stream of events and
// tracking records.
func (f *Factory) StreamName() string { return f.cfg.Stream }

// RecordsStreamName returns the name of the factory's stream of
// snapshots and data keys.
func (f *Factory) RecordsStreamName() string { return f.cfg.RecordsStream }

// Close closes the connection; calls of every tenant's recorders fail with
// an error wrapping persistence.ErrInterface after it. Closing a tenant's
// factory does nothing.
func (f *Factory) Close() error {
	if f.tenant != "" {
		return nil
	}
	f.shared.closeOnce.Do(func() {
		f.shared.closed.Store(true)
		f.shared.nc.Close()
	})
	return nil
}

// AggregateRecorder records the aggregates of one purpose (snapshots).
type AggregateRecorder struct{ r *recorder }

// InsertEvents records the events as one atomic batch.
func (a *AggregateRecorder) InsertEvents(ctx context.Context, events []persistence.StoredEvent, opts ...persistence.InsertOption) ([]int64, error) {
	return a.r.InsertEvents(ctx, events, opts...)
}

// SelectEvents returns one aggregate's records as the query asks.
func (a *AggregateRecorder) SelectEvents(ctx context.Context, id uuid.UUID, q persistence.EventQuery) ([]persistence.StoredEvent, error) {
	return a.r.SelectEvents(ctx, id, q)
}

var (
	_ persistence.Replacer = (*AggregateRecorder)(nil)
	_ persistence.Lister   = (*AggregateRecorder)(nil)
)

// ReplaceEvents records the events, replacing the records at the same
// versions: for each aggregate, one atomic batch rewrites its records,
// the first message rolling up (deleting) the ones before, and expecting
// the aggregate's last sequence so that a concurrent write is not lost.
func (a *AggregateRecorder) ReplaceEvents(ctx context.Context, events []persistence.StoredEvent) error {
	return a.r.replaceEvents(ctx, events)
}

// Originators yields the IDs of the aggregates the recorder's tenant
// has, from the stream's index of subjects.
func (a *AggregateRecorder) Originators(ctx context.Context) iter.Seq2[uuid.UUID, error] {
	return func(yield func(uuid.UUID, error) bool) {
		const op = "list aggregates"
		if err := a.r.begin(ctx, op); err != nil {
			yield(uuid.Nil, err)
			return
		}
		s, err := a.r.c.js.Stream(ctx, a.r.c.stream)
		if err != nil {
			yield(uuid.Nil, classify(op, err, false))
			return
		}
		filter := a.r.tenantFilter(false)
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
		if err != nil {
			yield(uuid.Nil, classify(op, err, false))
			return
		}
		prefix := strings.TrimSuffix(filter, "*")
		for subj := range info.State.Subjects {
			id, err := uuid.Parse(strings.TrimPrefix(subj, prefix))
			if err != nil {
				if !yield(uuid.Nil, &persistence.Error{Op: op, Kind: persistence.ErrCorrupt, Err: fmt.Errorf("subject %q", subj)}) {
					return
				}
				continue
			}
			if !yield(id, nil) {
				return
			}
		}
	}
}

// ApplicationRecorder records the application's events and gives them
// notification IDs: their stream sequences.
type ApplicationRecorder struct{ r *recorder }

// InsertEvents records the events as one atomic batch and returns their
// stream sequences.
func (a *ApplicationRecorder) InsertEvents(ctx context.Context, events []persistence.StoredEvent, opts ...persistence.InsertOption) ([]int64, error) {
	return a.r.InsertEvents(ctx, events, opts...)
}

// SelectEvents returns one aggregate's events as the query asks.
func (a *ApplicationRecorder) SelectEvents(ctx context.Context, id uuid.UUID, q persistence.EventQuery) ([]persistence.StoredEvent, error) {
	return a.r.SelectEvents(ctx, id, q)
}

// SelectNotifications returns notifications from q.Start in order.
func (a *ApplicationRecorder) SelectNotifications(ctx context.Context, q persistence.NotificationQuery) ([]persistence.Notification, error) {
	return a.r.SelectNotifications(ctx, q)
}

// MaxNotificationID returns the highest notification ID of the tenant.
func (a *ApplicationRecorder) MaxNotificationID(ctx context.Context) (int64, error) {
	return a.r.MaxNotificationID(ctx)
}

// ProcessRecorder records events and tracking records atomically.
type ProcessRecorder struct{ ApplicationRecorder }

// MaxTrackingID returns the highest notification ID recorded for the
// upstream application, or 0.
func (p *ProcessRecorder) MaxTrackingID(ctx context.Context, app string) (int64, error) {
	return p.r.MaxTrackingID(ctx, app)
}

// HasTrackingID reports whether the notification ID was recorded for the
// upstream application.
func (p *ProcessRecorder) HasTrackingID(ctx context.Context, app string, id int64) (bool, error) {
	return p.r.HasTrackingID(ctx, app, id)
}

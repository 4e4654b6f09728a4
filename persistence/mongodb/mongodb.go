package mongodb

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/google/uuid"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readconcern"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/strata-go/strata/internal/sqlstore"
	"github.com/strata-go/strata/persistence"
)

func init() {
	persistence.RegisterModule(persistence.Module{
		Name:      "mongodb",
		Aliases:   []string{"mongo"},
		Open:      func(ctx context.Context, env persistence.Env) (persistence.Factory, error) { return OpenEnv(ctx, env) },
		Variables: Variables,
	})
}

// MaxDocumentBytes is the most bytes of state, topics and headers one save
// may carry: a save is one document, and MongoDB refuses documents over
// 16 MiB. The margin leaves room for the document's other fields.
const MaxDocumentBytes = 16<<20 - 64<<10

// OpenEnv opens a factory configured by the environment.
func OpenEnv(ctx context.Context, env persistence.Env) (*Factory, error) {
	c, err := ConfigFromEnv(env)
	if err != nil {
		return nil, err
	}
	return Open(ctx, c)
}

// Factory makes the MongoDB recorders of one application. All of them
// keep their documents in one collection, the application's log.
type Factory struct {
	cfg    Config
	client *mongo.Client
	coll   *mongo.Collection
	log    *log
	ready  *atomic.Bool // the collection was checked (and its indexes made)
	closed *atomic.Bool // shared with the recorders and the tenants' factories
	tenant string
}

// Open connects to the server and returns the application's factory.
func Open(ctx context.Context, c Config) (*Factory, error) {
	if c.URI == "" {
		c.URI = DefaultURI
	}
	if c.Database == "" {
		c.Database = "strata"
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	tables, err := sqlstore.TablesFor(c.AppName, 0)
	if err != nil {
		return nil, err
	}
	name := c.CollectionPrefix + tables.Purpose("log")
	// Majority reads and writes are what make the order safe on a replica
	// set (see docs/mongodb.md); options in the URI come after and win.
	opts := options.Client().SetReadConcern(readconcern.Majority()).SetWriteConcern(writeconcern.Majority()).
		SetServerSelectionTimeout(c.Timeout).SetConnectTimeout(c.Timeout).SetAppName("strata")
	opts.ApplyURI(c.URI)
	if err := opts.Validate(); err != nil {
		// The error may quote the URI with its password.
		return nil, fmt.Errorf("%w: MONGODB_URI cannot be parsed", persistence.ErrConfig)
	}
	client, err := mongo.Connect(opts)
	if err != nil {
		return nil, fmt.Errorf("%w: MONGODB_URI: %v", persistence.ErrConfig, err)
	}
	if err := client.Ping(ctx, nil); err != nil {
		_ = client.Disconnect(context.Background())
		return nil, errorf("connect to MongoDB at "+hosts(opts), err)
	}
	coll := client.Database(c.Database).Collection(name)
	cl := &claims{coll: client.Database(c.Database).Collection(c.CollectionPrefix + tables.Purpose("claims")), log: coll}
	return &Factory{cfg: c, client: client, coll: coll, log: &log{coll: coll, claims: cl}, ready: new(atomic.Bool), closed: new(atomic.Bool)}, nil
}

func hosts(o *options.ClientOptions) string { return strings.Join(o.Hosts, ",") }

// Client returns the factory's client.
func (f *Factory) Client() *mongo.Client { return f.client }

// Collection returns the application's collection.
func (f *Factory) Collection() *mongo.Collection { return f.coll }

// indexes serve the reads of the recorders on MongoDB. None is unique:
// the order and every conflict are decided by _id alone (see log.go), so
// they are a matter of speed, not of correctness, and a server that
// ignores them (FerretDB scans) still gives the same answers.
var indexes = []struct {
	name string
	keys bson.D
}{
	{"strata_aggregate", bson.D{{Key: fTenant, Value: 1}, {Key: fPurpose, Value: 1}, {Key: fEvents + ".o", Value: 1}, {Key: fEvents + ".v", Value: 1}}},
	{"strata_log", bson.D{{Key: fPurpose, Value: 1}, {Key: "e", Value: 1}}},
	{"strata_tenant_log", bson.D{{Key: fTenant, Value: 1}, {Key: fPurpose, Value: 1}, {Key: "e", Value: 1}}},
	{"strata_tracking", bson.D{{Key: fTracking + ".a", Value: 1}, {Key: fTracking + ".n", Value: 1}}},
	{"strata_commits", bson.D{{Key: fTenant, Value: 1}, {Key: fCommit, Value: 1}}},
	{"strata_markers", bson.D{{Key: fMarker, Value: 1}, {Key: fTenant, Value: 1}, {Key: "_id", Value: 1}}},
	{"strata_deleted", bson.D{{Key: fTenant, Value: 1}, {Key: fDeleted, Value: 1}}},
}

// prepare checks the collection once per factory: with CREATE_TABLE it
// makes the indexes; without it (or with READ_ONLY) a missing collection
// is an ErrNoTable error. A collection of other documents is refused.
func (f *Factory) prepare(ctx context.Context) error {
	op := "open collection " + f.coll.Name()
	if err := begin(ctx, f.closed, op); err != nil {
		return err
	}
	if f.ready.Load() {
		return nil
	}
	names, err := f.coll.Database().ListCollectionNames(ctx, bson.D{{Key: "name", Value: f.coll.Name()}})
	if err != nil {
		return errorf(op, err)
	}
	if len(names) == 0 && (!f.cfg.CreateTables || f.cfg.ReadOnly) {
		return &persistence.Error{Op: op, Kind: persistence.ErrNoTable, Err: fmt.Errorf("database %s has no collection %s (and CREATE_TABLE is off or READ_ONLY on)", f.cfg.Database, f.coll.Name())}
	}
	if len(names) > 0 {
		raw, err := f.coll.FindOne(ctx, bson.D{}).Raw()
		if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
			return errorf(op, err)
		}
		if err == nil {
			if id := raw.Lookup("_id"); id.Type != bson.TypeInt64 {
				return &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: fmt.Errorf("collection %s.%s holds documents that are not Strata's (an _id of type %s, not a 64-bit position)", f.cfg.Database, f.coll.Name(), id.Type)}
			}
			// Every document of the log is inserted after its claims, so
			// a log without a collection of claims was written by an
			// earlier layout, whose conflicts the claims would not see.
			claims, err := f.coll.Database().ListCollectionNames(ctx, bson.D{{Key: "name", Value: f.log.claims.coll.Name()}})
			if err != nil {
				return errorf(op, err)
			}
			if len(claims) == 0 {
				return &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: fmt.Errorf("collection %s.%s has documents but no collection of claims %s: it was written by a version of Strata without claims; copy its events into a new store", f.cfg.Database, f.coll.Name(), f.log.claims.coll.Name())}
			}
		}
	}
	if f.cfg.CreateTables && !f.cfg.ReadOnly {
		// Only the missing ones: FerretDB v1 fails on a createIndexes of
		// indexes that exist.
		var specs []mongo.IndexSpecification
		if len(names) > 0 {
			var err error
			if specs, err = f.coll.Indexes().ListSpecifications(ctx); err != nil {
				return errorf(op+": list indexes", err)
			}
		}
		var missing []mongo.IndexModel
		for _, ix := range indexes {
			if !slices.ContainsFunc(specs, func(s mongo.IndexSpecification) bool { return s.Name == ix.name }) {
				missing = append(missing, mongo.IndexModel{Keys: ix.keys, Options: options.Index().SetName(ix.name)})
			}
		}
		if len(missing) > 0 {
			if _, err := f.coll.Indexes().CreateMany(ctx, missing); err != nil {
				return errorf(op+": create indexes", err)
			}
		}
	}
	f.ready.Store(true)
	return nil
}

// AggregateRecorder returns the recorder of the purpose ("snapshots"),
// whose documents are in the application's collection.
func (f *Factory) AggregateRecorder(ctx context.Context, purpose string) (persistence.AggregateRecorder, error) {
	if err := f.prepare(ctx); err != nil {
		return nil, err
	}
	if purpose == "" || strings.ContainsRune(purpose, 0) {
		return nil, &persistence.Error{Op: "open aggregate recorder", Kind: persistence.ErrProgramming, Err: fmt.Errorf("purpose %q", purpose)}
	}
	return &AggregateRecorder{f.recorder(purpose)}, nil
}

// ApplicationRecorder returns the recorder of the application's events.
func (f *Factory) ApplicationRecorder(ctx context.Context) (persistence.ApplicationRecorder, error) {
	if err := f.prepare(ctx); err != nil {
		return nil, err
	}
	return &Recorder{recorder: f.recorder("")}, nil
}

// ProcessRecorder returns the recorder of the application's events and
// tracking records.
func (f *Factory) ProcessRecorder(ctx context.Context) (persistence.ProcessRecorder, error) {
	if err := f.prepare(ctx); err != nil {
		return nil, err
	}
	return &Recorder{recorder: f.recorder(""), tracking: true}, nil
}

func (f *Factory) recorder(purpose string) recorder {
	return recorder{log: f.log, tenant: f.tenant, purpose: purpose, closed: f.closed, readOnly: f.cfg.ReadOnly}
}

// Tenant returns the factory of tenant id, on the same client and
// collection.
func (f *Factory) Tenant(id string) (persistence.Factory, error) {
	if err := persistence.CheckTenant(id); err != nil {
		return nil, err
	}
	t := *f
	t.tenant = id
	return &t, nil
}

// Close disconnects the client; closing a tenant's factory does nothing.
func (f *Factory) Close() error {
	if f.tenant != "" || f.closed.Swap(true) {
		return nil
	}
	_ = f.client.Disconnect(context.Background())
	return nil
}

// DeleteAggregate deletes the aggregate's events, commits and recorded
// aggregates of every purpose in the factory's tenant. One marker
// document at the next position of the log deletes them all at once;
// the documents it deletes are then removed.
func (f *Factory) DeleteAggregate(ctx context.Context, id uuid.UUID) (bool, error) {
	op := "delete aggregate " + id.String() + " of " + f.coll.Name()
	r := f.recorder("")
	if err := r.beginWrite(ctx, op); err != nil {
		return false, err
	}
	if err := f.prepare(ctx); err != nil {
		return false, err
	}
	bin := binUUID(id)
	pos, err := f.log.append(ctx, op, func(pos int64) *logDoc {
		return &logDoc{ID: pos, Tenant: f.tenant, Marker: markerDelete, Deleted: &bin}
	}, f.claimEpoch(op, deletionKey(f.tenant, id)))
	if err != nil {
		return false, err
	}
	// What the marker deleted: the aggregate's events before it, less
	// those that earlier markers had deleted.
	docs, err := all(ctx, f.coll, bson.D{{Key: fTenant, Value: f.tenant}, {Key: "_id", Value: bson.D{{Key: "$lt", Value: pos}}},
		{Key: "$or", Value: bson.A{bson.D{{Key: fEvents + ".o", Value: bin}}, bson.D{{Key: fDeleted, Value: bin}}, bson.D{{Key: fMarker, Value: markerPurge}}}}}, ascending())
	if err != nil {
		return true, errorf(op+": the aggregate is deleted, but reading its documents to remove them failed (deleting it again removes them)", err)
	}
	had := false
	for _, d := range docs {
		if d.isMarker() {
			had = false
			continue
		}
		if d.Purpose != nil && *d.Purpose == "" && slices.ContainsFunc(d.Events, func(e eventDoc) bool { return readUUID(e.Originator) == id }) {
			had = true
		}
	}
	if err := f.cleanUp(ctx, docs, id); err != nil {
		return had, errorf(op+": the aggregate is deleted, but removing its documents failed (deleting it again removes them)", err)
	}
	return had, nil
}

// cleanUp removes the aggregate's events from the documents. Readers no
// longer see them already: this only frees the space. The documents
// themselves stay, with their positions and nonces, since the log must
// stay dense and claims name the documents at their positions.
//
// Each document is updated on the condition that its events are still
// those read: another deletion or a purge may have removed some since,
// and writing back the events read would bring what they removed back
// into the database (readers would still hide it, but erased data must
// go). A document changed meanwhile is read again.
func (f *Factory) cleanUp(ctx context.Context, docs []logDoc, id uuid.UUID) error {
	for _, d := range docs {
		if d.isMarker() {
			continue
		}
		for attempt := 1; ; attempt++ {
			kept := slices.DeleteFunc(slices.Clone(d.Events), func(e eventDoc) bool { return readUUID(e.Originator) == id })
			if len(kept) == len(d.Events) {
				break
			}
			update := bson.D{{Key: "$set", Value: bson.D{{Key: fEvents, Value: kept}}}}
			if len(kept) == 0 {
				update = bson.D{{Key: "$unset", Value: bson.D{{Key: fEvents, Value: ""}}}}
			}
			res, err := f.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: d.ID}, {Key: fEvents, Value: d.Events}}, update)
			if err != nil {
				return err
			}
			if res.MatchedCount == 1 {
				break
			}
			if attempt == maxCleanUpAttempts {
				return fmt.Errorf("document %d changed under each of %d attempts to remove the events of aggregate %s", d.ID, attempt, id)
			}
			var fresh logDoc
			if err := f.coll.FindOne(ctx, bson.D{{Key: "_id", Value: d.ID}}).Decode(&fresh); err != nil {
				return fmt.Errorf("read document %d again: %w", d.ID, err)
			}
			d = fresh
		}
	}
	return nil
}

// maxCleanUpAttempts bounds the attempts to remove an aggregate's events
// from one document that other deletions keep changing.
const maxCleanUpAttempts = 10

// claimEpoch returns the claim of a deletion or a purge: the next number
// of its sequence, whose live claims below a writer's position make the
// epoch of the versions it claims.
func (f *Factory) claimEpoch(op, base string) func(ctx context.Context, pos, nonce int64) error {
	return func(ctx context.Context, pos, nonce int64) error {
		err := f.log.claims.take(ctx, pos, nonce, []*claim{{base: base, first: 1, stack: true}}, nil)
		if err != nil && !errors.Is(err, errStale) {
			return claimError(op, err)
		}
		return err
	}
}

// PurgeTenant deletes everything of the factory's tenant: one marker
// document deletes it all at once, then the documents are removed.
func (f *Factory) PurgeTenant(ctx context.Context) error {
	op := "purge tenant " + f.tenant + " of " + f.coll.Name()
	if f.tenant == "" {
		return &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: errors.New("the default tenant cannot be purged")}
	}
	r := f.recorder("")
	if err := r.beginWrite(ctx, op); err != nil {
		return err
	}
	if err := f.prepare(ctx); err != nil {
		return err
	}
	pos, err := f.log.append(ctx, op, func(pos int64) *logDoc {
		return &logDoc{ID: pos, Tenant: f.tenant, Marker: markerPurge}
	}, f.claimEpoch(op, purgeKey(f.tenant)))
	if err != nil {
		return err
	}
	// The documents stay (see cleanUp); what they held goes.
	if _, err := f.coll.UpdateMany(ctx, bson.D{{Key: fTenant, Value: f.tenant}, {Key: fPurpose, Value: bson.D{{Key: "$exists", Value: true}}}, {Key: "_id", Value: bson.D{{Key: "$lt", Value: pos}}}},
		bson.D{{Key: "$unset", Value: bson.D{{Key: fEvents, Value: ""}, {Key: fTracking, Value: ""}, {Key: fCommit, Value: ""}, {Key: fHeaders, Value: ""}}}}); err != nil {
		return errorf(op+": the tenant is purged, but removing its documents failed (purging it again removes them)", err)
	}
	return nil
}

// recorder is what all recorders share.
type recorder struct {
	log      *log
	tenant   string
	purpose  string // "" for the application's events
	closed   *atomic.Bool
	readOnly bool
}

func (r *recorder) coll() *mongo.Collection { return r.log.coll }

// begin checks, before a call of op, that the factory is open and ctx has
// not ended, so that neither reaches the server.
func begin(ctx context.Context, closed *atomic.Bool, op string) error {
	if closed.Load() {
		return &persistence.Error{Op: op, Kind: persistence.ErrInterface, Err: errors.New("recorder is closed")}
	}
	if err := ctx.Err(); err != nil {
		return &persistence.Error{Op: op, Kind: persistence.ErrOperational, Err: err}
	}
	return nil
}

func (r *recorder) begin(ctx context.Context, op string) error { return begin(ctx, r.closed, op) }

// beginWrite is begin for a write, which a read-only store refuses.
func (r *recorder) beginWrite(ctx context.Context, op string) error {
	if err := r.begin(ctx, op); err != nil {
		return err
	}
	if r.readOnly {
		return &persistence.Error{Op: op, Kind: persistence.ErrReadOnly, Err: errors.New("the store was opened with READ_ONLY")}
	}
	return nil
}

// AggregateRecorder records events without notification IDs, such as
// snapshots, and can replace them.
type AggregateRecorder struct{ recorder }

// Recorder is the application and process recorder.
type Recorder struct {
	recorder
	tracking bool
}

var (
	_ persistence.ProcessRecorder   = (*Recorder)(nil)
	_ persistence.AggregateRecorder = (*AggregateRecorder)(nil)
	_ persistence.Replacer          = (*AggregateRecorder)(nil)
	_ persistence.Lister            = (*AggregateRecorder)(nil)
	_ persistence.Eraser            = (*Factory)(nil)
)

// insert records events (and the tracking record) as one document at the
// next position, and returns the position.
func (r *recorder) insert(ctx context.Context, op string, events []persistence.StoredEvent, tracking *persistence.Tracking, replace bool) (int64, error) {
	if err := sqlstore.CheckBatch(op, events); err != nil {
		return 0, err
	}
	if err := persistence.CheckCommit(op, events); err != nil {
		return 0, err
	}
	size := 0
	evs := make([]eventDoc, len(events))
	for i, e := range events {
		state := e.State
		if state == nil {
			state = []byte{}
		}
		evs[i] = eventDoc{Originator: binUUID(e.OriginatorID), Version: e.OriginatorVersion, Topic: e.Topic, State: state}
		size += len(state) + len(e.Topic) + 40
	}
	purpose := r.purpose
	doc := logDoc{Tenant: r.tenant, Purpose: &purpose, Events: evs, Replace: replace}
	if tracking != nil {
		doc.Tracking = &trackingDoc{App: tracking.ApplicationName, ID: tracking.NotificationID}
	}
	if len(events) > 0 && r.purpose == "" {
		if c := events[0].CommitID; c != uuid.Nil {
			bin := binUUID(c)
			doc.Commit = &bin
		}
		if len(events[0].Headers) > 0 {
			doc.Headers = events[0].Headers
			for k, v := range doc.Headers {
				size += len(k) + len(v) + 8
			}
		}
	}
	if size > MaxDocumentBytes {
		return 0, &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: fmt.Errorf(
			"a save of %d events with %d bytes does not fit one MongoDB document (at most %d bytes), and a save is one document so that it is atomic", len(events), size, MaxDocumentBytes)}
	}
	return r.log.append(ctx, op, func(pos int64) *logDoc {
		doc.ID = pos
		return &doc
	}, func(ctx context.Context, pos, nonce int64) error {
		return r.claimSave(ctx, op, pos, nonce, events, tracking, replace)
	})
}

// InsertEvents records events and the tracking record, if any, in one
// document: atomic without a transaction.
func (r *Recorder) InsertEvents(ctx context.Context, events []persistence.StoredEvent, opts ...persistence.InsertOption) ([]int64, error) {
	op := "insert events into " + r.coll().Name()
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
	pos, err := r.insert(ctx, op, events, cfg.Tracking, false)
	if err != nil {
		return nil, err
	}
	ids := make([]int64, len(events))
	for i := range events {
		ids[i] = pos + int64(i)
	}
	return ids, nil
}

// InsertEvents records events without notification IDs.
func (r *AggregateRecorder) InsertEvents(ctx context.Context, events []persistence.StoredEvent, opts ...persistence.InsertOption) ([]int64, error) {
	op := "insert events into " + r.coll().Name() + " for " + r.purpose
	if err := r.beginWrite(ctx, op); err != nil {
		return nil, err
	}
	if persistence.NewInsertConfig(opts).Tracking != nil {
		return nil, &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: errors.New("an aggregate recorder does not record tracking records")}
	}
	if len(events) == 0 {
		return nil, nil
	}
	_, err := r.insert(ctx, op, events, nil, false)
	return nil, err
}

// ReplaceEvents records events, replacing those at the same versions: the
// later document wins.
func (r *AggregateRecorder) ReplaceEvents(ctx context.Context, events []persistence.StoredEvent) error {
	op := "replace events in " + r.coll().Name() + " for " + r.purpose
	if err := r.beginWrite(ctx, op); err != nil {
		return err
	}
	if len(events) == 0 {
		return nil
	}
	_, err := r.insert(ctx, op, events, nil, true)
	return err
}

// SelectEvents returns one aggregate's events as the query asks. It reads
// the aggregate's documents and the markers of its tenant in log order, a
// batch at a time.
func (r *recorder) SelectEvents(ctx context.Context, id uuid.UUID, q persistence.EventQuery) ([]persistence.StoredEvent, error) {
	op := "select events from " + r.coll().Name()
	if r.purpose != "" {
		op += " for " + r.purpose
	}
	if err := r.begin(ctx, op); err != nil {
		return nil, err
	}
	bin := binUUID(id)
	match := bson.D{{Key: fPurpose, Value: r.purpose}, {Key: fEvents + ".o", Value: bin}}
	var vr bson.D
	if q.Gt != nil {
		vr = append(vr, bson.E{Key: "$gt", Value: *q.Gt})
	}
	if q.Lte != nil {
		vr = append(vr, bson.E{Key: "$lte", Value: *q.Lte})
	}
	if len(vr) > 0 {
		// Without $elemMatch (see checkSave) this may match documents by
		// another aggregate's versions; the loop below filters exactly.
		match = append(match, bson.E{Key: fEvents + ".v", Value: vr})
	}
	filter := bson.D{{Key: fTenant, Value: r.tenant}, {Key: "$or", Value: bson.A{
		match,
		bson.D{{Key: fDeleted, Value: bin}},
		bson.D{{Key: fMarker, Value: markerPurge}},
	}}}
	docs, err := all(ctx, r.coll(), filter, ascending())
	if err != nil {
		return nil, errorf(op, err)
	}
	type stored struct {
		e   persistence.StoredEvent
		pos int64
	}
	byVersion := map[int64]persistence.StoredEvent{}
	for _, d := range docs {
		if d.isMarker() {
			clear(byVersion)
			continue
		}
		for _, e := range d.Events {
			if readUUID(e.Originator) != id || q.Gt != nil && e.Version <= *q.Gt || q.Lte != nil && e.Version > *q.Lte {
				continue
			}
			se := persistence.StoredEvent{OriginatorID: id, OriginatorVersion: e.Version, Topic: e.Topic, State: e.State}
			if r.purpose == "" {
				if d.Commit != nil {
					se.CommitID = readUUID(*d.Commit)
				}
				if len(d.Headers) > 0 {
					se.Headers = d.Headers
				}
			}
			byVersion[e.Version] = se
		}
	}
	out := make([]persistence.StoredEvent, 0, len(byVersion))
	for _, e := range byVersion {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b persistence.StoredEvent) int {
		if q.Desc {
			return cmpInt(b.OriginatorVersion, a.OriginatorVersion)
		}
		return cmpInt(a.OriginatorVersion, b.OriginatorVersion)
	})
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// SelectNotifications returns notifications in order from q.Start. It
// reads a page of the log's documents, then the markers after them (in
// that order, so that a deletion that a page saw partly removed is seen
// whole), and repeats until it has q.Limit notifications or the log ends.
func (r *Recorder) SelectNotifications(ctx context.Context, q persistence.NotificationQuery) ([]persistence.Notification, error) {
	op := "select notifications from " + r.coll().Name()
	if err := sqlstore.CheckLimit(op, q.Limit); err != nil {
		return nil, err
	}
	if err := r.begin(ctx, op); err != nil {
		return nil, err
	}
	from := max(q.Start, 0)
	stop := int64(math.MaxInt64)
	if q.Stop > 0 {
		stop = q.Stop
	}
	out := make([]persistence.Notification, 0, min(q.Limit, 1024))
	for len(out) < q.Limit && from <= stop {
		// A document's events are at _id to e: the documents that end at
		// or after from and start at or before stop. e grows with _id.
		filter := bson.D{{Key: fPurpose, Value: ""}, {Key: "e", Value: bson.D{{Key: "$gte", Value: from}}}, {Key: "_id", Value: bson.D{{Key: "$lte", Value: stop}}}}
		if !q.AllTenants {
			filter = append(bson.D{{Key: fTenant, Value: r.tenant}}, filter...)
		}
		if len(q.Topics) > 0 {
			filter = append(filter, bson.E{Key: fEvents + ".tp", Value: bson.D{{Key: "$in", Value: q.Topics}}})
		}
		docs, more, err := readPage(ctx, r.coll(), filter, q.Limit-len(out))
		if err != nil {
			return nil, errorf(op, err)
		}
		if len(docs) == 0 {
			break
		}
		markers, err := markersAfter(ctx, r.coll(), r.tenant, q.AllTenants, docs[0].ID)
		if err != nil {
			return nil, errorf(op, err)
		}
		for i := range docs {
			d := &docs[i]
			for j, e := range d.Events {
				nid := d.ID + int64(j)
				if nid < q.Start || q.Stop > 0 && nid > q.Stop || len(q.Topics) > 0 && !slices.Contains(q.Topics, e.Topic) {
					continue
				}
				o := readUUID(e.Originator)
				if hidden(markers, d.Tenant, o, d.ID) {
					continue
				}
				n := persistence.Notification{ID: nid, Tenant: d.Tenant, StoredEvent: persistence.StoredEvent{OriginatorID: o, OriginatorVersion: e.Version, Topic: e.Topic, State: e.State}}
				if d.Commit != nil {
					n.CommitID = readUUID(*d.Commit)
				}
				if len(d.Headers) > 0 {
					n.Headers = d.Headers
				}
				out = append(out, n)
				if len(out) == q.Limit {
					return out, nil
				}
			}
		}
		if !more {
			break
		}
		from = docs[len(docs)-1].Last + 1
	}
	return out, nil
}

// readPage reads, in log order, the documents that filter selects until
// they hold at least need events, and reports whether there may be more.
// Batches are sized by the events the documents hold, so that a page of
// large saves does not bring the rest of the log with it.
func readPage(ctx context.Context, coll *mongo.Collection, filter bson.D, need int) ([]logDoc, bool, error) {
	batch := int32(min(need, 100))
	cur, err := coll.Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "e", Value: 1}}).SetBatchSize(batch).SetLimit(int64(need)))
	if err != nil {
		return nil, false, err
	}
	defer cur.Close(ctx)
	var docs []logDoc
	events, inBatch := 0, int32(0)
	for events < need {
		if !cur.Next(ctx) {
			return docs, false, cur.Err()
		}
		var d logDoc
		if err := cur.Decode(&d); err != nil {
			return nil, false, fmt.Errorf("%w: document %v: %v", persistence.ErrCorrupt, cur.Current.Lookup("_id"), err)
		}
		docs = append(docs, d)
		events += max(len(d.Events), 1)
		if inBatch++; inBatch == batch {
			// The next batch: as many documents as the events still
			// wanted need, at the mean size so far.
			per := max(events/len(docs), 1)
			batch, inBatch = int32(min(max((need-events)/per, 1), batchSize)), 0
			cur.SetBatchSize(batch)
		}
	}
	return docs, true, nil
}

// MaxNotificationID returns the highest notification ID of the tenant's
// log, or 0.
func (r *Recorder) MaxNotificationID(ctx context.Context) (int64, error) {
	op := "max notification ID of " + r.coll().Name()
	if err := r.begin(ctx, op); err != nil {
		return 0, err
	}
	// Nothing before the tenant's last purge is seen: the walk back stops
	// there rather than going through every emptied document.
	purges, err := all(ctx, r.coll(), bson.D{{Key: fMarker, Value: markerPurge}, {Key: fTenant, Value: r.tenant}},
		options.Find().SetSort(bson.D{{Key: "_id", Value: -1}}).SetLimit(1))
	if err != nil {
		return 0, errorf(op, err)
	}
	var purged int64
	if len(purges) > 0 {
		purged = purges[0].ID
	}
	// Documents are walked back by their last positions, which grow with
	// their first: the index of the tenant's log (tenant, purpose, last)
	// serves both the bound and the order, where one by _id would read the
	// tenant's whole log or every other tenant's documents. A document
	// ends before below exactly when it starts before it, below being a
	// document's first position.
	below := int64(math.MaxInt64)
	for {
		docs, err := all(ctx, r.coll(), bson.D{{Key: fTenant, Value: r.tenant}, {Key: fPurpose, Value: ""}, {Key: "e", Value: bson.D{{Key: "$lt", Value: below}, {Key: "$gt", Value: purged}}}},
			options.Find().SetSort(bson.D{{Key: "e", Value: -1}}).SetLimit(100).SetBatchSize(100))
		if err != nil {
			return 0, errorf(op, err)
		}
		if len(docs) == 0 {
			return 0, nil
		}
		markers, err := markersAfter(ctx, r.coll(), r.tenant, false, docs[len(docs)-1].ID)
		if err != nil {
			return 0, errorf(op, err)
		}
		for _, d := range docs {
			for j := len(d.Events) - 1; j >= 0; j-- {
				if !hidden(markers, d.Tenant, readUUID(d.Events[j].Originator), d.ID) {
					return d.ID + int64(j), nil
				}
			}
		}
		below = docs[len(docs)-1].ID
	}
}

// trackingDocs reads the documents with tracking records of app that
// match, sorted by tracked notification ID, descending, and the purge
// markers that may hide them.
func (r *Recorder) trackingPage(ctx context.Context, filter bson.D, limit int64) ([]logDoc, []logDoc, error) {
	docs, err := all(ctx, r.coll(), filter, options.Find().SetSort(bson.D{{Key: fTracking + ".n", Value: -1}}).SetLimit(limit).SetBatchSize(int32(limit)).
		SetProjection(bson.D{{Key: fEvents, Value: 0}}))
	if err != nil || len(docs) == 0 {
		return docs, nil, err
	}
	purges, err := all(ctx, r.coll(), bson.D{{Key: fMarker, Value: markerPurge}}, ascending())
	return docs, purges, err
}

// MaxTrackingID returns the highest notification ID recorded for the
// upstream application in any tenant, or 0.
func (r *Recorder) MaxTrackingID(ctx context.Context, app string) (int64, error) {
	op := "max tracking ID in " + r.coll().Name()
	if !r.tracking {
		return 0, &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: errors.New("not a process recorder")}
	}
	if err := r.begin(ctx, op); err != nil {
		return 0, err
	}
	below := int64(math.MaxInt64)
	for {
		docs, purges, err := r.trackingPage(ctx, bson.D{{Key: fTracking + ".a", Value: app}, {Key: fTracking + ".n", Value: bson.D{{Key: "$lt", Value: below}}}}, 100)
		if err != nil {
			return 0, errorf(op, err)
		}
		if len(docs) == 0 {
			return 0, nil
		}
		for i := range docs {
			if !trackingHidden(purges, &docs[i]) {
				return docs[i].Tracking.ID, nil
			}
		}
		below = docs[len(docs)-1].Tracking.ID
	}
}

// HasTrackingID reports whether the notification ID was recorded for the
// upstream application in any tenant.
func (r *Recorder) HasTrackingID(ctx context.Context, app string, id int64) (bool, error) {
	op := "has tracking ID in " + r.coll().Name()
	if !r.tracking {
		return false, &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: errors.New("not a process recorder")}
	}
	if err := r.begin(ctx, op); err != nil {
		return false, err
	}
	docs, purges, err := r.trackingPage(ctx, bson.D{{Key: fTracking + ".a", Value: app}, {Key: fTracking + ".n", Value: id}}, batchSize)
	if err != nil {
		return false, errorf(op, err)
	}
	for i := range docs {
		if !trackingHidden(purges, &docs[i]) {
			return true, nil
		}
	}
	return false, nil
}

// Originators yields the IDs of the aggregates of the recorder's tenant
// and purpose, read whole before they are yielded.
func (r *AggregateRecorder) Originators(ctx context.Context) iter.Seq2[uuid.UUID, error] {
	return func(yield func(uuid.UUID, error) bool) {
		op := "list aggregates of " + r.coll().Name() + " for " + r.purpose
		if err := r.begin(ctx, op); err != nil {
			yield(uuid.Nil, err)
			return
		}
		docs, err := all(ctx, r.coll(), bson.D{{Key: fTenant, Value: r.tenant}, {Key: "$or", Value: bson.A{
			bson.D{{Key: fPurpose, Value: r.purpose}}, bson.D{{Key: fMarker, Value: anyMarker}}}}},
			ascending())
		if err != nil {
			yield(uuid.Nil, errorf(op, err))
			return
		}
		seen := map[uuid.UUID]bool{}
		var ids []uuid.UUID
		for _, d := range docs {
			switch {
			case d.Marker == markerPurge:
				clear(seen)
			case d.Marker == markerDelete && d.Deleted != nil:
				delete(seen, readUUID(*d.Deleted))
			default:
				for _, e := range d.Events {
					o := readUUID(e.Originator)
					if !seen[o] {
						seen[o] = true
						ids = append(ids, o)
					}
				}
			}
		}
		for _, id := range ids {
			if seen[id] {
				if !yield(id, nil) {
					return
				}
				delete(seen, id) // once, even if it was deleted and recorded again
			}
		}
	}
}

// errorf classifies an error of the driver or the server.
func errorf(op string, err error) error {
	return persistence.Errorf(Classify(err), op, err)
}

// Classify returns the persistence kind (ErrOperational, ErrIntegrity,
// ...) of an error of the driver or the server, or nil if err is nil.
func Classify(err error) error {
	if err == nil {
		return nil
	}
	if k := sqlstore.ContextKind(err); k != nil {
		return k
	}
	var pe *persistence.Error
	if errors.As(err, &pe) {
		return pe.Kind
	}
	if errors.Is(err, persistence.ErrCorrupt) {
		return persistence.ErrCorrupt
	}
	switch {
	case mongo.IsDuplicateKeyError(err):
		return persistence.ErrIntegrity
	case mongo.IsNetworkError(err), mongo.IsTimeout(err), errors.Is(err, mongo.ErrClientDisconnected):
		return persistence.ErrOperational
	}
	var se mongo.ServerError
	if errors.As(err, &se) {
		for _, label := range []string{"RetryableWriteError", "TransientTransactionError", "ResumableChangeStreamError"} {
			if se.HasErrorLabel(label) {
				return persistence.ErrOperational
			}
		}
		// NotWritablePrimary, NotPrimaryNoSecondaryOk, InterruptedDueToReplStateChange,
		// PrimarySteppedDown, ShutdownInProgress, HostUnreachable, NetworkTimeout,
		// ExceededTimeLimit, WriteConcernFailed.
		for _, code := range []int{10107, 13435, 11602, 189, 91, 6, 89, 50, 64, 262, 11600, 13436} {
			if se.HasErrorCode(code) {
				return persistence.ErrOperational
			}
		}
		// BadValue, FailedToParse, TypeMismatch, InvalidNamespace, Unauthorized, CommandNotFound.
		for _, code := range []int{2, 9, 14, 73, 13, 59} {
			if se.HasErrorCode(code) {
				return persistence.ErrProgramming
			}
		}
		return persistence.ErrDatabase
	}
	var ce mongo.CommandError
	if errors.As(err, &ce) {
		return persistence.ErrDatabase
	}
	// Anything else failed on the way to or from the server.
	return persistence.ErrOperational
}

// writeError classifies the error of an insert. One that failed on the way
// to or from the server, after it may have reached it, has an unknown
// outcome: the document may have been inserted before the connection
// broke. An answer of the server, or a failure before anything was sent
// (no server could be selected, the client is closed), is not one.
func writeError(op string, err error) error {
	var se mongo.ServerError
	var sel topology.ServerSelectionError
	switch {
	case errors.As(err, &se) && !mongo.IsNetworkError(err),
		errors.Is(err, mongo.ErrClientDisconnected), errors.As(err, &sel):
		return errorf(op, err)
	}
	return persistence.Errorf(persistence.ErrUnknownOutcome, op, err)
}

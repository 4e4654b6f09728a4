package benchsuite

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/persistence/mongodb"
)

// DefaultMongoDBURI is the server that the strata bench command measures
// MongoDB on unless told otherwise: the tests' server (FerretDB, started
// by .ci/run).
const DefaultMongoDBURI = "mongodb://127.0.0.1:17017"

// MongoDB returns the cases of the MongoDB adapter in a new database on
// the server at uri, and a function that drops it. Strata's recorders and
// the baselines share the factory's client. The baseline inserts the same
// document per save (the events in an array, with their commit fields)
// into a collection of its own, with an ObjectID the driver makes and no
// check at all: no ordering guarantee, no version conflicts detected.
func MongoDB(ctx context.Context, uri string) ([]Case, func(), error) {
	return mongoDBIn(ctx, uri, "strata_bench_"+uuid.NewString()[:8])
}

// dropMongoDBDatabase drops the database db of the server at uri.
func dropMongoDBDatabase(uri, db string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		return err
	}
	defer client.Disconnect(ctx)
	return client.Database(db).Drop(ctx)
}

// mongoDBIn is MongoDB in the database named db.
func mongoDBIn(ctx context.Context, uri, db string) ([]Case, func(), error) {
	// The database is dropped last, after every factory has closed, by a
	// client of its own: registered first, it also runs when a factory
	// fails to open after the first made the database.
	closers := []func(){func() {
		if err := dropMongoDBDatabase(uri, db); err != nil {
			fmt.Fprintf(os.Stderr, "benchmarks: drop database %s: %v\n", db, err)
		}
	}}
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	pair := func(app string) (Pair, error) {
		f, err := mongodb.Open(ctx, mongodb.Config{URI: uri, Database: db, AppName: app, CreateTables: true})
		if err != nil {
			return Pair{}, err
		}
		closers = append(closers, func() { f.Close() })
		rec, err := f.ApplicationRecorder(ctx)
		if err != nil {
			return Pair{}, err
		}
		raw := &rawMongoDB{coll: f.Client().Database(db).Collection("raw_" + app)}
		if _, err := raw.coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "ev.o", Value: 1}, {Key: "ev.v", Value: 1}}}); err != nil {
			return Pair{}, err
		}
		return Pair{rec, raw}, nil
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
	cases := RecorderCases(writes, reads, 1/0.5, 1/0.8)
	for i, c := range cases {
		if strings.HasPrefix(c.Name, "catch up") {
			// FerretDB, the server the tests use, filters and sorts by an
			// integer _id in memory: every page of a catch-up reads the
			// whole collection, and a log of 100,000 notifications did
			// not finish in 20 minutes. A tenth of it shows the same costs.
			cases[i] = CatchUpCase(reads, MongoDBCatchUpEvents, 1/0.8)
		}
	}
	return cases, closeAll, nil
}

// MongoDBCatchUpEvents is the size of the MongoDB catch-up case.
const MongoDBCatchUpEvents = 10_000

// rawMongoDB is the baseline on MongoDB: the driver inserting one
// document per save, in the recorder's layout, and reading them back.
type rawMongoDB struct{ coll *mongo.Collection }

type rawEvent struct {
	O  bson.Binary `bson:"o"`
	V  int64       `bson:"v"`
	Tp string      `bson:"tp"`
	S  []byte      `bson:"s"`
}

type rawDoc struct {
	ID bson.ObjectID `bson:"_id,omitempty"`
	T  string        `bson:"t"`
	P  string        `bson:"p"`
	Ev []rawEvent    `bson:"ev"`
}

func (r *rawMongoDB) Insert(ctx context.Context, events []persistence.StoredEvent) error {
	d := rawDoc{Ev: make([]rawEvent, len(events))}
	for i, e := range events {
		d.Ev[i] = rawEvent{O: bson.Binary{Subtype: bson.TypeBinaryUUID, Data: e.OriginatorID[:]}, V: e.OriginatorVersion, Tp: e.Topic, S: e.State}
	}
	res, err := r.coll.InsertOne(ctx, d)
	if err == nil && res.InsertedID == nil {
		err = fmt.Errorf("no ID")
	}
	return err
}

func (r *rawMongoDB) Scan(ctx context.Context) (int, error) {
	cur, err := r.coll.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetBatchSize(1000))
	if err != nil {
		return 0, err
	}
	defer cur.Close(ctx)
	// Like a reader of the log, hand out every event as a value of its
	// own, a page at a time.
	page := make([]persistence.Notification, 0, CatchUpPage)
	n := 0
	for cur.Next(ctx) {
		var d rawDoc
		if err := cur.Decode(&d); err != nil {
			return n, err
		}
		for i, e := range d.Ev {
			row := persistence.Notification{ID: int64(n + i), StoredEvent: persistence.StoredEvent{OriginatorID: uuid.UUID(e.O.Data), OriginatorVersion: e.V, Topic: e.Tp, State: e.S}}
			if page = append(page, row); len(page) == CatchUpPage {
				page = make([]persistence.Notification, 0, CatchUpPage)
			}
		}
		n += len(d.Ev)
	}
	return n, cur.Err()
}

func (r *rawMongoDB) SelectAggregate(ctx context.Context, id uuid.UUID) (int, error) {
	bin := bson.Binary{Subtype: bson.TypeBinaryUUID, Data: id[:]}
	cur, err := r.coll.Find(ctx, bson.D{{Key: "ev.o", Value: bin}}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return 0, err
	}
	defer cur.Close(ctx)
	// Like a repository, hand out the events as values of their own.
	var events []persistence.StoredEvent
	for cur.Next(ctx) {
		var d rawDoc
		if err := cur.Decode(&d); err != nil {
			return len(events), err
		}
		for _, e := range d.Ev {
			if uuid.UUID(e.O.Data) == id {
				events = append(events, persistence.StoredEvent{OriginatorID: id, OriginatorVersion: e.V, Topic: e.Tp, State: e.S})
			}
		}
	}
	return len(events), cur.Err()
}

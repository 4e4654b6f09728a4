package mongodb

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/strata-go/strata/persistence"
)

// The application's collection is one log of documents that take dense
// positions: a document starts (its _id) at the position after the last
// one of the document before it (its e), and takes one position per event
// it holds (at least one). Every write of the application is one document:
// the events of a save with their commit and tracking record, a snapshot,
// or a deletion. A writer inserts its document at the position after the
// last document it has seen, so a document can only be inserted right
// after one that exists: a writer that has not seen the latest document
// computes a start that the latest document already has, and the unique
// _id refuses it. One insert of one document is atomic on every server
// that speaks MongoDB's protocol, FerretDB included. The events' positions
// are their notification IDs. docs/mongodb.md gives the proof of order and
// its limits.

// Field names of the log's documents, short because every document
// carries them.
const (
	fTenant   = "t"  // tenant, "" for the default one
	fPurpose  = "p"  // "" for the application's events, else an aggregate recorder's purpose; absent on markers
	fCommit   = "c"  // commit ID (UUID), absent without one
	fHeaders  = "h"  // commit headers
	fTracking = "tr" // {a: upstream application, n: notification ID}
	fEvents   = "ev" // [{o, v, tp, s}]
	fReplace  = "r"  // true: the document's events replace earlier ones at their versions
	fMarker   = "x"  // markerDelete or markerPurge
	fDeleted  = "xo" // the aggregate a delete marker deletes
)

const (
	markerDelete = "delete"
	markerPurge  = "purge"
)

// anyMarker matches the marker field of deletions and purges. It names
// the values rather than asking $exists, which an index that holds every
// document (the field is absent from most) serves only by scanning all of
// its keys on MongoDB: values bound the scan to the markers.
var anyMarker = bson.D{{Key: "$in", Value: bson.A{markerDelete, markerPurge}}}

// logDoc is a document of the log.
type logDoc struct {
	ID       int64             `bson:"_id"`
	Last     int64             `bson:"e"` // the last position the document takes: one per event, at least one
	Tenant   string            `bson:"t"`
	Purpose  *string           `bson:"p,omitempty"`
	Commit   *bson.Binary      `bson:"c,omitempty"`
	Headers  map[string]string `bson:"h,omitempty"`
	Tracking *trackingDoc      `bson:"tr,omitempty"`
	Events   []eventDoc        `bson:"ev,omitempty"`
	Replace  bool              `bson:"r,omitempty"`
	Marker   string            `bson:"x,omitempty"`
	Deleted  *bson.Binary      `bson:"xo,omitempty"`
	// Nonce is random per attempt to insert the document, so that a
	// writer can tell its own document at a position from another's.
	Nonce int64 `bson:"w"`
}

type trackingDoc struct {
	App string `bson:"a"`
	ID  int64  `bson:"n"`
}

type eventDoc struct {
	Originator bson.Binary `bson:"o"`
	Version    int64       `bson:"v"`
	Topic      string      `bson:"tp"`
	State      []byte      `bson:"s"`
}

func binUUID(id uuid.UUID) bson.Binary {
	return bson.Binary{Subtype: bson.TypeBinaryUUID, Data: append([]byte(nil), id[:]...)}
}

// readUUID returns the UUID of a stored binary, or uuid.Nil if it is not
// one (a damaged document).
func readUUID(b bson.Binary) uuid.UUID {
	if len(b.Data) != 16 {
		return uuid.Nil
	}
	return uuid.UUID(b.Data)
}

func (d *logDoc) isMarker() bool { return d.Marker != "" }

// hides reports whether marker m deletes an event of aggregate o of
// tenant t recorded at position pos.
func (m *logDoc) hides(t string, o uuid.UUID, pos int64) bool {
	if m.ID <= pos || m.Tenant != t {
		return false
	}
	return m.Marker == markerPurge || m.Marker == markerDelete && m.Deleted != nil && readUUID(*m.Deleted) == o
}

// hidden reports whether any of the markers deletes the event.
func hidden(markers []logDoc, t string, o uuid.UUID, pos int64) bool {
	for i := range markers {
		if markers[i].hides(t, o, pos) {
			return true
		}
	}
	return false
}

// trackingHidden reports whether a purge among markers deletes the
// tracking record of a document.
func trackingHidden(markers []logDoc, d *logDoc) bool {
	for i := range markers {
		if m := &markers[i]; m.Marker == markerPurge && m.Tenant == d.Tenant && m.ID > d.ID {
			return true
		}
	}
	return false
}

// log is the writing side of one collection, shared by the recorders of
// all tenants of a factory. Its mutex makes the writers of one process
// take turns: positions are taken one at a time anyway, and turns spare
// them the failed attempts of a race.
type log struct {
	coll   *mongo.Collection
	claims *claims
	mu     sync.Mutex
	next   int64 // the position after the last document known to exist, or 0 when unknown
}

// queryNext returns the position after the last document of the
// collection: 1 for an empty one.
func (l *log) queryNext(ctx context.Context) (int64, error) {
	var d struct {
		Last int64 `bson:"e"`
	}
	err := l.coll.FindOne(ctx, bson.D{}, options.FindOne().SetSort(bson.D{{Key: "_id", Value: -1}}).SetProjection(bson.D{{Key: "e", Value: 1}})).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 1, nil
	}
	return d.Last + 1, err
}

// maxAttempts bounds the attempts of one append, so that a log that
// cannot be written (a position below its end without a document) fails
// rather than loops.
const maxAttempts = 100

// append inserts the document that build makes at the next position,
// after claim (if not nil) has taken, for the document's position and
// nonce, the claims that forbid any other save the same versions, commit
// and tracking record (see claims.go). It returns the position.
//
// Why this is safe: a document is inserted only at the position after
// one that exists, so the unique _id of the log keeps the positions dense
// and in commit order; the unique _id of the claims lets only one live
// claim take each version.
func (l *log) append(ctx context.Context, op string, build func(pos int64) *logDoc, claim func(ctx context.Context, pos, nonce int64) error) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	// last is why the last attempt failed, for the error of the final one.
	var last error
	for attempt := 0; ; attempt++ {
		if attempt == maxAttempts {
			return 0, &persistence.Error{Op: op, Kind: persistence.ErrOperational, Err: fmt.Errorf("no position taken in %d attempts; the last: %w", maxAttempts, last)}
		}
		if attempt > 2 {
			// Other processes take the positions. Wait a little, growing
			// with the attempts, so that racing processes spread out.
			wait := time.Duration(rand.Int64N(int64(time.Millisecond) << min(attempt-2, 6)))
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return 0, &persistence.Error{Op: op, Kind: persistence.ErrOperational, Err: ctx.Err()}
			case <-t.C:
			}
		}
		if l.next == 0 {
			n, err := l.queryNext(ctx)
			if err != nil {
				return 0, errorf(op+": read the log's end", err)
			}
			l.next = n
		}
		pos := l.next
		doc := build(pos)
		doc.Last = pos + int64(max(len(doc.Events), 1)) - 1
		doc.Nonce = rand.Int64()
		if claim != nil {
			if err := claim(ctx, pos, doc.Nonce); errors.Is(err, errStale) {
				l.next, last = 0, err
				continue
			} else if err != nil {
				return 0, err
			}
		}
		_, err := l.coll.InsertOne(ctx, doc)
		if err == nil {
			l.next = doc.Last + 1
			return pos, nil
		}
		l.next = 0
		if !mongo.IsDuplicateKeyError(err) {
			err = writeError(op, err)
			if !errors.Is(err, persistence.ErrUnknownOutcome) {
				return 0, err
			}
		}
		// The position is taken, or the answer was lost: by this insert
		// (the driver retried it, or it landed before the connection
		// broke) or by another writer. The nonce tells.
		switch mine, found := l.owns(pos, doc.Nonce, mongo.IsDuplicateKeyError(err)); {
		case mine:
			l.next = doc.Last + 1
			return pos, nil
		case !found:
			// Still unknown: the insert may have landed, or land later.
			if !errors.Is(err, persistence.ErrUnknownOutcome) {
				err = persistence.Errorf(persistence.ErrUnknownOutcome, op, fmt.Errorf("position %d: %w", pos, err))
			}
			return 0, err
		}
		// Another writer took the position: this attempt's claims are
		// orphans, and the next attempt claims again.
		last = fmt.Errorf("position %d was taken by another writer", pos)
	}
}

// owns reports whether the document at pos is there (found) and is the
// one inserted with nonce. It reads on a context of its own, since the
// caller's may have ended with the insert. taken says that the server
// refused the insert as a duplicate, so a document is there: a read at
// majority may not see it yet on a replica set, and is made again for a
// while before the document is taken for missing.
func (l *log) owns(pos, nonce int64, taken bool) (mine, found bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 500*time.Millisecond) {
		var d struct {
			Nonce int64 `bson:"w"`
		}
		err := l.coll.FindOne(ctx, bson.D{{Key: "_id", Value: pos}}).Decode(&d)
		if err == nil {
			return d.Nonce == nonce, true
		}
		if !taken || !errors.Is(err, mongo.ErrNoDocuments) {
			return false, false
		}
		select {
		case <-ctx.Done():
			return false, false
		case <-time.After(wait):
		}
	}
}

// all reads every document that the query selects, in batches of
// batchSize, and releases the cursor.
func all(ctx context.Context, coll *mongo.Collection, filter any, opts *options.FindOptionsBuilder) ([]logDoc, error) {
	cur, err := coll.Find(ctx, filter, opts)
	if err != nil {
		return nil, err
	}
	defer cur.Close(ctx)
	var out []logDoc
	for cur.Next(ctx) {
		var d logDoc
		if err := cur.Decode(&d); err != nil {
			return nil, fmt.Errorf("%w: document %v: %v", persistence.ErrCorrupt, cur.Current.Lookup("_id"), err)
		}
		out = append(out, d)
	}
	return out, cur.Err()
}

// batchSize is the most documents one round trip of a read brings.
const batchSize = 1000

func ascending() *options.FindOptionsBuilder {
	return options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetBatchSize(batchSize)
}

// markersAfter reads the markers after position pos, of tenant t or of
// every tenant if all.
func markersAfter(ctx context.Context, coll *mongo.Collection, t string, all_ bool, pos int64) ([]logDoc, error) {
	f := bson.D{{Key: fMarker, Value: anyMarker}, {Key: "_id", Value: bson.D{{Key: "$gt", Value: pos}}}}
	if !all_ {
		f = append(f, bson.E{Key: fTenant, Value: t})
	}
	return all(ctx, coll, f, ascending())
}

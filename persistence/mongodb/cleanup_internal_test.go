package mongodb

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/strata-go/strata/internal/mongotest"
	"github.com/strata-go/strata/persistence"
)

// A deletion removes its aggregate's events from documents it read after
// claiming its marker. If another deletion, or a purge of the tenant,
// empties the same documents between that read and its writes, it must
// not write back what they removed: erased data must stay erased in the
// database, not only hidden from readers.
func TestACleanUpFromAnOldReadKeepsWhatOthersRemoved(t *testing.T) {
	ctx := context.Background()
	for _, other := range []string{"a deletion of another aggregate", "a purge of the tenant"} {
		t.Run(other, func(t *testing.T) {
			root, err := OpenEnv(ctx, persistence.NewEnv("Cleanup", mongotest.Env(t)))
			if err != nil {
				t.Fatal(err)
			}
			defer root.Close()
			tf, err := root.Tenant("t1")
			if err != nil {
				t.Fatal(err)
			}
			f := tf.(*Factory)
			r, err := f.ApplicationRecorder(ctx)
			if err != nil {
				t.Fatal(err)
			}
			a, b := uuid.New(), uuid.New()
			if _, err := r.InsertEvents(ctx, []persistence.StoredEvent{
				{OriginatorID: a, OriginatorVersion: 1, Topic: "A", State: []byte("of a")},
				{OriginatorID: b, OriginatorVersion: 1, Topic: "B", State: []byte("of b")},
				{OriginatorID: uuid.New(), OriginatorVersion: 1, Topic: "C", State: []byte("of c")},
			}); err != nil {
				t.Fatal(err)
			}
			// What a deletion of a reads once its marker is in.
			old, err := all(ctx, f.coll, bson.D{{Key: "_id", Value: int64(1)}}, ascending())
			if err != nil || len(old) != 1 || len(old[0].Events) != 3 {
				t.Fatalf("the save's document: %+v, %v", old, err)
			}
			if other == "a purge of the tenant" {
				err = f.PurgeTenant(ctx)
			} else {
				_, err = f.DeleteAggregate(ctx, b)
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := f.cleanUp(ctx, old, a); err != nil {
				t.Fatal(err)
			}
			var now logDoc
			if err := f.coll.FindOne(ctx, bson.D{{Key: "_id", Value: int64(1)}}).Decode(&now); err != nil {
				t.Fatal(err)
			}
			for _, e := range now.Events {
				if readUUID(e.Originator) != a && (other == "a purge of the tenant" || readUUID(e.Originator) == b) {
					t.Fatalf("after %s, the document holds again the event %q it removed", other, e.State)
				}
				if readUUID(e.Originator) == a {
					t.Fatalf("the cleanup left a's event %q", e.State)
				}
			}
		})
	}
}

// Package mongotest gives tests a fresh MongoDB store: a new database on
// the test server, dropped when the test ends.
//
// The server is STRATA_TEST_MONGODB_URI, by default
// mongodb://127.0.0.1:17017, where .ci/run starts FerretDB (v1, on
// SQLite). If it cannot be reached, tests that need it are skipped with a
// message, or fail when CI=true.
package mongotest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// DefaultURI is the test server unless STRATA_TEST_MONGODB_URI is set.
const DefaultURI = "mongodb://127.0.0.1:17017"

// URI returns the URI of the test server.
func URI() string {
	if u := os.Getenv("STRATA_TEST_MONGODB_URI"); u != "" {
		return u
	}
	return DefaultURI
}

var (
	once        sync.Once
	client      *mongo.Client
	unavailable error
)

// Client returns a client of the test server, skipping the test (or
// failing it under CI=true) if the server cannot be reached.
func Client(t testing.TB) *mongo.Client {
	t.Helper()
	once.Do(func() {
		c, err := mongo.Connect(options.Client().ApplyURI(URI()).SetServerSelectionTimeout(5 * time.Second))
		if err != nil {
			unavailable = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.Ping(ctx, nil); err != nil {
			unavailable = err
			return
		}
		client = c
	})
	if unavailable == nil {
		return client
	}
	msg := fmt.Sprintf("MongoDB is not available at %s (%v): start one (.ci/run starts FerretDB on 127.0.0.1:17017) or set STRATA_TEST_MONGODB_URI", URI(), unavailable)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return nil
}

// Database returns the name of a new database, and drops the database
// when the test ends (the store creates it).
func Database(t testing.TB) string {
	t.Helper()
	c := Client(t)
	name := "strata_t_" + uuid.NewString()[:8]
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.Database(name).Drop(ctx); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	return name
}

// Env returns the environment of a fresh MongoDB store for one test.
func Env(t testing.TB) map[string]string {
	t.Helper()
	return map[string]string{"PERSISTENCE_MODULE": "mongodb", "MONGODB_URI": URI(), "MONGODB_DATABASE": Database(t)}
}

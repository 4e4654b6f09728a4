// Package storetest runs tests of applications against every datastore
// Strata supports, each test with a fresh, empty store: in memory, a SQLite
// file, a new schema in the PostgreSQL test database (see package pgtest
// for when that is available), a new database on the MySQL/MariaDB test
// server (package mytest), a new database cloned from the template where
// Message DB is installed (package mdbtest), a new database on the
// MongoDB test server (package mongotest), new tables and a new bucket on
// the AWS emulator (package awstest), and new streams on
// a JetStream cluster of three servers that the test process starts
// (package natstest).
package storetest

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/strata-go/strata/internal/awstest"
	"github.com/strata-go/strata/internal/mdbtest"
	"github.com/strata-go/strata/internal/mongotest"
	"github.com/strata-go/strata/internal/mytest"
	"github.com/strata-go/strata/internal/natstest"
	"github.com/strata-go/strata/internal/pgtest"
	"github.com/strata-go/strata/persistence"
	_ "github.com/strata-go/strata/persistence/dynamodb"  // registers "dynamodb"
	_ "github.com/strata-go/strata/persistence/jetstream" // registers "jetstream"
	_ "github.com/strata-go/strata/persistence/memory"    // registers "memory"
	_ "github.com/strata-go/strata/persistence/messagedb" // registers "messagedb"
	_ "github.com/strata-go/strata/persistence/mongodb"   // registers "mongodb"
	_ "github.com/strata-go/strata/persistence/mysql"     // registers "mysql"
	_ "github.com/strata-go/strata/persistence/postgres"  // registers "postgres"
	_ "github.com/strata-go/strata/persistence/s3"        // registers "s3"
	_ "github.com/strata-go/strata/persistence/sqlite"    // registers "sqlite"
)

// Store is a datastore that tests can run against.
type Store struct {
	// Name is the persistence module's name.
	Name string
	// Env returns the environment variables of a fresh, empty store for
	// one test; the store is removed when the test ends. It calls
	// t.Skip or t.Fatal if the store is not available.
	Env func(t testing.TB) map[string]string
}

// Stores returns the stores tests run against.
func Stores() []Store {
	return []Store{
		{Name: "memory", Env: func(testing.TB) map[string]string {
			return map[string]string{"PERSISTENCE_MODULE": "memory"}
		}},
		{Name: "sqlite", Env: func(t testing.TB) map[string]string {
			return map[string]string{"PERSISTENCE_MODULE": "sqlite", "SQLITE_DBNAME": filepath.Join(t.TempDir(), "strata.db")}
		}},
		{Name: "postgres", Env: pgtest.Env},
		{Name: "messagedb", Env: mdbtest.Env},
		{Name: "mongodb", Env: mongotest.Env},
		{Name: "mysql", Env: mytest.Env},
		// A three-server JetStream cluster that the test process starts
		// (see package natstest), one stream per application per test.
		{Name: "jetstream", Env: natstest.Env},
		// A new table on the AWS emulator (package awstest).
		{Name: "dynamodb", Env: awstest.DynamoDBEnv},
		// A new bucket on the AWS emulator (package awstest). The
		// emulator serves one request at a time; a process that knows
		// an aggregate reads it in one request and checks a save against
		// it with none (docs/s3.md), so that bankaccounts' racing
		// transfers take 4 s and system's catching up 24 s, where they
		// took 19 s and 41 s (and ran past their limits on a loaded
		// machine) at three requests and a get per chunk a read.
		{Name: "s3", Env: awstest.S3Env},
	}
}

// Run runs test once per store, as a subtest named after the store, with
// the environment of a fresh store.
func Run(t *testing.T, test func(t *testing.T, env map[string]string)) {
	t.Helper()
	for _, s := range Stores() {
		t.Run(s.Name, func(t *testing.T) { test(t, s.Env(t)) })
	}
}

// WaitForLog waits until the log of a fresh store shows n notifications.
// In PostgreSQL a commit reaches readers once older transactions of any
// program have ended, which other tests running at the same time delay.
func WaitForLog(t testing.TB, rec persistence.ApplicationRecorder, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		ns, err := rec.SelectNotifications(context.Background(), persistence.NotificationQuery{Start: 1, Limit: n})
		if err != nil {
			t.Fatal(err)
		}
		if len(ns) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d notifications are visible after a minute", len(ns), n)
		}
		time.Sleep(time.Millisecond)
	}
}

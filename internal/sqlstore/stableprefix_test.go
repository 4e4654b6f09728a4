package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-go/strata/internal/sqlstore"
	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/persistence/sqlite"
)

// A dialect's stable prefix bounds every select of notifications: rows
// above it are not shown, whatever the query asks, and a failure to read
// it fails the select.
func TestSelectsStopAtTheStablePrefix(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "stable.db")
	f, err := sqlite.Open(ctx, sqlite.Config{DBName: path, AppName: "Stable", CreateTables: true, Synchronous: "NORMAL", LockTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := f.ApplicationRecorder(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := r.InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: uuid.New(), OriginatorVersion: 1, Topic: "t"}}); err != nil {
			t.Fatal(err)
		}
	}
	pool, err := sql.Open(sqlite.DriverName, path)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var prefix int64
	var prefixErr error
	db := &sqlstore.DB{Writer: pool, Reader: pool, Dialect: sqlstore.Dialect{
		Name:  "test",
		IDArg: func(id uuid.UUID) any { return id[:] },
		StablePrefix: func(context.Context, *sql.DB, string) (int64, error) {
			return prefix, prefixErr
		},
	}}
	tables := f.Tables()
	bounded := sqlstore.NewApplicationRecorder(db, tables.Events, tables.Commits, "")
	for _, c := range []struct {
		name   string
		prefix int64
		q      persistence.NotificationQuery
		want   []int64
	}{
		{"a select shows nothing above the prefix", 3, persistence.NotificationQuery{Start: 1, Limit: 10}, []int64{1, 2, 3}},
		{"a select from above the prefix shows nothing", 3, persistence.NotificationQuery{Start: 4, Limit: 10}, []int64{}},
		{"a stop below the prefix is kept", 4, persistence.NotificationQuery{Start: 1, Stop: 2, Limit: 10}, []int64{1, 2}},
		{"the limit is kept", 5, persistence.NotificationQuery{Start: 2, Limit: 2}, []int64{2, 3}},
		{"an empty prefix shows nothing, even from 0", 0, persistence.NotificationQuery{Start: 0, Limit: 10}, []int64{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			prefix = c.prefix
			ns, err := bounded.SelectNotifications(ctx, c.q)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]int64, len(ns))
			for i, n := range ns {
				got[i] = n.ID
			}
			if !slices.Equal(got, c.want) {
				t.Fatalf("prefix %d, query %+v: read %v, want %v", c.prefix, c.q, got, c.want)
			}
		})
	}
	t.Run("a prefix that cannot be read fails the select", func(t *testing.T) {
		prefix, prefixErr = 5, errors.New("counter unreadable")
		ns, err := bounded.SelectNotifications(ctx, persistence.NotificationQuery{Start: 1, Limit: 10})
		if !errors.Is(err, persistence.ErrDatabase) || !strings.Contains(err.Error(), "stable prefix") || !strings.Contains(err.Error(), "counter unreadable") {
			t.Fatalf("read %d notifications, error %v: want a database error that says the stable prefix could not be read", len(ns), err)
		}
	})
}

package benchsuite

import (
	"context"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/strata-go/strata/internal/mongotest"
	"github.com/strata-go/strata/internal/pgtest"
)

// The function that ends a PostgreSQL run drops the schema the run made.
func TestPostgresDropsItsSchemaWhenClosed(t *testing.T) {
	pgtest.Require(t)
	ctx := context.Background()
	schema := "bench_test_" + uuid.NewString()[:8]
	exists := func() int64 {
		n, err := pgtest.QueryInt("SELECT count(*) FROM pg_namespace WHERE nspname = '" + schema + "'")
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	_, closeAll, err := postgresIn(ctx, pgtest.URL(), schema)
	if err != nil {
		t.Fatal(err)
	}
	if exists() != 1 {
		closeAll()
		t.Fatalf("schema %s was not made", schema)
	}
	closeAll()
	if exists() != 0 {
		pgtest.Exec(t, "DROP SCHEMA "+schema+" CASCADE")
		t.Fatalf("schema %s is still there after the run was closed", schema)
	}
}

// The function that ends a MongoDB run drops the database the run made.
func TestMongoDBDropsItsDatabaseWhenClosed(t *testing.T) {
	client := mongotest.Client(t)
	ctx := context.Background()
	db := "strata_bench_test_" + uuid.NewString()[:8]
	exists := func() bool {
		names, err := client.ListDatabaseNames(ctx, map[string]any{})
		if err != nil {
			t.Fatal(err)
		}
		return slices.Contains(names, db)
	}
	_, closeAll, err := mongoDBIn(ctx, mongotest.URI(), db)
	if err != nil {
		t.Fatal(err)
	}
	if !exists() {
		closeAll()
		t.Fatalf("database %s was not made", db)
	}
	closeAll()
	if exists() {
		client.Database(db).Drop(ctx)
		t.Fatalf("database %s is still there after the run was closed", db)
	}
}

package main

import (
	"context"
	"database/sql"
	"github.com/strata-go/strata/persistence/sqlite"
	"sort"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/cli"
	"github.com/strata-go/strata/internal/pgtest"
)

// BenchmarkCopySQLiteToPostgreSQL measures strata copy (Admin.CopyTo) of
// ten runs of the worlds demo, with snapshots, from SQLite to PostgreSQL,
// against the raw drivers doing the same writes in the same run: one
// transaction per commit with its rows and a checkpoint row, then one per
// tracked position after a lookup in the source. It reports the ratio
// copy/raw of each round (median, min and max):
//
//	go test ./cmd/strata -run '^$' -bench CopySQLiteToPostgreSQL -benchtime 3x
func BenchmarkCopySQLiteToPostgreSQL(b *testing.B) {
	ctx := context.Background()
	pgtest.Require(b)
	s := store{name: "sqlite", dir: b.TempDir()}
	s.env = map[string]string{"PERSISTENCE_MODULE": "sqlite", "SQLITE_DBNAME": s.dir + "/events.db"}
	for range 10 {
		if out, err := s.command(ctx, nil, "demo").CombinedOutput(); err != nil {
			b.Fatalf("demo: %v\n%s", err, out)
		}
	}
	if out, err := s.command(ctx, nil, "snapshot", "create").CombinedOutput(); err != nil {
		b.Fatalf("snapshot create: %v\n%s", err, out)
	}
	src := s.env["SQLITE_DBNAME"]
	url := pgtest.URL()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	d := domains()[0]
	var ratios []float64
	b.ResetTimer()
	for round := range b.N {
		schema := pgtest.Schema(b)
		from, err := cli.Open(d, application.WithEnv(map[string]string{"PERSISTENCE_MODULE": "sqlite", "SQLITE_DBNAME": src, "READ_ONLY": "y"}))
		must(err)
		to, err := cli.Open(d, application.WithEnv(map[string]string{"PERSISTENCE_MODULE": "postgres", "POSTGRES_URL": url, "POSTGRES_SCHEMA": schema}))
		must(err)
		t0 := time.Now()
		_, err = from.CopyTo(ctx, to)
		must(err)
		copyTime := time.Since(t0)
		from.Close()
		to.Close()

		// The raw drivers doing the same writes: one transaction per
		// commit (its rows and a checkpoint row), then one per tracked
		// position after a lookup in the source.
		rawSchema := pgtest.Schema(b)
		_, err = conn.Exec(ctx, "CREATE SCHEMA "+rawSchema+"; CREATE TABLE "+rawSchema+".ev (id bigserial primary key, tenant text, originator_id uuid, v bigint, topic text, state bytea, commit_id uuid, headers bytea, unique (tenant, originator_id, v)); CREATE TABLE "+rawSchema+".tr (tenant text, app text, n bigint, primary key (app, n))")
		must(err)
		db, err := sql.Open(sqlite.DriverName, "file:"+src+"?mode=ro")
		must(err)
		t1 := time.Now()
		for _, app := range []string{"worlds", "counters"} {
			rows, err := db.Query("SELECT notification_id, tenant, originator_id, originator_version, topic, state, commit_id, headers FROM " + app + "_events ORDER BY notification_id")
			must(err)
			type row struct {
				n            int64
				tenant       string
				id           []byte
				v            int64
				topic        string
				state, c, hd []byte
			}
			var all []row
			for rows.Next() {
				var r row
				must(rows.Scan(&r.n, &r.tenant, &r.id, &r.v, &r.topic, &r.state, &r.c, &r.hd))
				all = append(all, r)
			}
			rows.Close()
			for i := 0; i < len(all); {
				j := i + 1
				for j < len(all) && string(all[j].c) == string(all[i].c) {
					j++
				}
				tx, err := conn.Begin(ctx)
				must(err)
				for _, r := range all[i:j] {
					_, err := tx.Exec(ctx, "INSERT INTO "+rawSchema+".ev (tenant, originator_id, v, topic, state, commit_id, headers) VALUES ($1,$2,$3,$4,$5,$6,$7)", r.tenant, r.id, r.v, r.topic, r.state, r.c, r.hd)
					must(err)
				}
				_, err = tx.Exec(ctx, "INSERT INTO "+rawSchema+".tr VALUES ($1, 'copy-'||$3, $2)", all[i].tenant, all[j-1].n, app)
				must(err)
				must(tx.Commit(ctx))
				i = j
			}
		}
		rows, err := db.Query("SELECT notification_id FROM worlds_events ORDER BY notification_id")
		must(err)
		var ns []int64
		for rows.Next() {
			var n int64
			must(rows.Scan(&n))
			ns = append(ns, n)
		}
		rows.Close()
		for _, n := range ns {
			var has int
			must(db.QueryRow("SELECT count(*) FROM counters_tracking WHERE application_name = 'Worlds' AND notification_id = ?", n).Scan(&has))
			if has > 0 {
				_, err := conn.Exec(ctx, "INSERT INTO "+rawSchema+".tr VALUES ('', 'Worlds', $1)", n)
				must(err)
			}
		}
		rawTime := time.Since(t1)
		db.Close()
		ratios = append(ratios, copyTime.Seconds()/rawTime.Seconds())
		b.Logf("round %d: copy %.2fs, raw %.2fs", round, copyTime.Seconds(), rawTime.Seconds())
	}
	sort.Float64s(ratios)
	b.ReportMetric(ratios[len(ratios)/2], "copy/raw")
	b.ReportMetric(ratios[0], "min-copy/raw")
	b.ReportMetric(ratios[len(ratios)-1], "max-copy/raw")
}

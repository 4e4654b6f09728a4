package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/strata-go/strata/cli"
	"github.com/strata-go/strata/internal/benchsuite"
	"github.com/strata-go/strata/internal/natscluster"
	"github.com/strata-go/strata/system"
)

// benchEnvironment documents bench's variable in the root's help.
var benchEnvironment = cli.EnvHelp("STRATA_BENCH_POSTGRES_URL", "the database of bench --store postgres") +
	cli.EnvHelp("STRATA_BENCH_MESSAGEDB_URL", "the server of bench --store messagedb, where scripts/messagedb-install installed Message DB")

// benchMessageDBURL returns the server that bench measures Message DB on:
// STRATA_BENCH_MESSAGEDB_URL, else the default.
func benchMessageDBURL() string {
	if u := os.Getenv("STRATA_BENCH_MESSAGEDB_URL"); u != "" {
		return u
	}
	return benchsuite.DefaultMessageDBURL
}

// benchMongoEnvironment documents bench's MongoDB variable in the root's help.
var benchMongoEnvironment = cli.EnvHelp("STRATA_BENCH_MONGODB_URI", "the server of bench --store mongodb")

// benchMongoDBURI returns the server that bench measures MongoDB on:
// STRATA_BENCH_MONGODB_URI, else the default.
func benchMongoDBURI() string {
	if u := os.Getenv("STRATA_BENCH_MONGODB_URI"); u != "" {
		return u
	}
	return benchsuite.DefaultMongoDBURI
}

// benchNATSEnvironment documents bench's JetStream variable in the root's
// help.
var benchNATSEnvironment = cli.EnvHelp("STRATA_BENCH_NATS_URL", "the JetStream cluster of bench --store jetstream (default: three servers that bench starts on loopback)")

// benchJetStream is the JetStream cluster of one bench run: the one at
// STRATA_BENCH_NATS_URL, or three servers started on first use and
// stopped when the run ends.
var benchJetStream struct {
	sync.Mutex
	cluster *natscluster.Cluster
}

// benchNATSURL returns the servers that bench measures JetStream on:
// STRATA_BENCH_NATS_URL, else a cluster of three servers on loopback,
// started from the nats-server that scripts/nats-server installs (or
// $NATS_SERVER_BIN) unless this run started one already.
func benchNATSURL() (string, error) {
	if u := os.Getenv("STRATA_BENCH_NATS_URL"); u != "" {
		return u, nil
	}
	benchJetStream.Lock()
	defer benchJetStream.Unlock()
	if benchJetStream.cluster == nil {
		c, err := natscluster.Start()
		if err != nil {
			return "", fmt.Errorf("start a JetStream cluster (or set STRATA_BENCH_NATS_URL): %w", err)
		}
		benchJetStream.cluster = c
	}
	return benchJetStream.cluster.URL(), nil
}

// stopBenchCluster stops the cluster that benchNATSURL started, if any.
func stopBenchCluster() {
	benchJetStream.Lock()
	defer benchJetStream.Unlock()
	if benchJetStream.cluster != nil {
		benchJetStream.cluster.Close()
		benchJetStream.cluster = nil
	}
}

// benchMySQLEnvironment documents bench's MySQL variable in the root's help.
var benchMySQLEnvironment = cli.EnvHelp("STRATA_BENCH_MYSQL_DSN", "the server of bench --store mysql")

// benchMySQLDSN returns the server that bench measures MySQL on:
// STRATA_BENCH_MYSQL_DSN, else the default.
func benchMySQLDSN() string {
	if d := os.Getenv("STRATA_BENCH_MYSQL_DSN"); d != "" {
		return d
	}
	return benchsuite.DefaultMySQLDSN
}

// benchPostgresURL returns the database that bench measures PostgreSQL
// on: STRATA_BENCH_POSTGRES_URL, else the default.
func benchPostgresURL() string {
	if u := os.Getenv("STRATA_BENCH_POSTGRES_URL"); u != "" {
		return u
	}
	return benchsuite.DefaultPostgresURL
}

// benchStores are the stores bench measures, in the order of --store all.
var benchStores = []string{"sqlite", "postgres", "mysql", "messagedb", "mongodb"}

// benchStoresByName are the stores bench measures only when named: DynamoDB
// and S3 on an emulator that takes minutes, JetStream on three servers that
// bench may have to start.
var benchStoresByName = []string{"dynamodb", "jetstream", "s3"}

func benchCommand() *cobra.Command {
	var store, filter, jsonFile string
	var systemEvents, projectionEvents, memoryEvents int
	var cfg benchsuite.Config
	var all benchsuite.Report
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure Strata's recorders against the raw database drivers",
		Long: `Measure Strata's recorders against the raw database drivers doing the same
work on tables of the same shape, in the same run. Each round runs Strata and
the baseline for the same number of operations, one after the other, taking
turns to go first, and gives the ratio of their times (below 1 is faster than
the baseline). The table gives each case's median time per operation of each
side, the median of the rounds' ratios beside their minimum and maximum, and
the project's target with how many rounds met it; a last line describes the
machine (CPU, cores, Go). A line per finished case goes to stderr.

With --system N, it also measures a system, --rounds times on fresh stores:
the worlds example's leader saves N events while the concurrent runner's
Counters follows them, once processing each notification in a transaction of
its own (batch 1) and once in batches (the default), taking turns to go
first; a second table gives the medians of the follower's events/s, the
end-to-end lag (p50, p99 with its minimum and maximum), and the ratio of the
follower's throughput to the leader's saving alone, measured in the same
round, with its minimum and maximum.

With --projection N, it measures a projection the same way, --rounds times on
fresh stores: the leader saves N events alone, a projection counting each
world's events in a table of the same database catches up on them, then
follows N more saved as fast as the leader can; the table gives the median
events/s of each phase and the ratio of the projection's throughput while
following to the leader's alone, with its minimum and maximum over rounds.

SQLite runs on files in a temporary directory. PostgreSQL runs in a new
schema, dropped afterwards, of STRATA_BENCH_POSTGRES_URL (default
` + benchsuite.DefaultPostgresURL + `). MySQL runs in a new database,
dropped afterwards, on the server of STRATA_BENCH_MYSQL_DSN (default
` + benchsuite.DefaultMySQLDSN + `). Message DB runs in a new database,
dropped afterwards, cloned from ` + benchsuite.MessageDBTemplate + ` on the server of
STRATA_BENCH_MESSAGEDB_URL (default ` + benchsuite.DefaultMessageDBURL + `);
its baselines call write_message, get_category_messages and
get_stream_messages directly. MongoDB runs in a new database, dropped
afterwards, on the server of STRATA_BENCH_MONGODB_URI (default
` + benchsuite.DefaultMongoDBURI + `). DynamoDB (only by name, not in all)
runs on new tables, dropped afterwards, at STRATA_BENCH_AWS_ENDPOINT_URL
(default ` + benchsuite.DefaultAWSEndpoint + `, the tests' emulator); S3 (only by
name too) on a new bucket, emptied and deleted afterwards, at the same
endpoint. JetStream (only by name, not in all) runs on new streams of three
replicas, deleted afterwards, on the cluster at STRATA_BENCH_NATS_URL, or else
on a cluster of three nats-servers on loopback that bench starts and stops
(scripts/nats-server installs the server, or set NATS_SERVER_BIN); its
single-event saves run with 1, 4 and 16 writers, for the scaling figure.`,
		Example: "  strata bench\n  strata bench --store all --rounds 3 --round-time 500ms\n  strata bench --store postgres --filter catch\n  strata bench --store all --system 2000\n  strata bench --store all --filter none --projection 2000",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var stores []string
			switch store {
			case "all":
				stores = benchStores
			default:
				if !slices.Contains(benchStores, store) && !slices.Contains(benchStoresByName, store) {
					return cli.UsageError(fmt.Errorf("--store %q: want %s, %s or all", store, strings.Join(benchStores, ", "), strings.Join(benchStoresByName, ", ")))
				}
				stores = []string{store}
			}
			if cfg.Rounds < 1 || cfg.RoundTime <= 0 {
				return cli.UsageError(errors.New("--rounds and --round-time must be positive"))
			}
			ctx := cmd.Context()
			defer stopBenchCluster()
			cfg.Filter, cfg.Progress = filter, cmd.ErrOrStderr()
			var results []benchsuite.Result
			for _, s := range stores {
				var cases []benchsuite.Case
				var done func()
				var err error
				switch s {
				case "sqlite":
					dir, derr := os.MkdirTemp("", "strata-bench-")
					if derr != nil {
						return derr
					}
					defer os.RemoveAll(dir)
					cases, done, err = benchsuite.SQLite(ctx, dir)
				case "postgres":
					cases, done, err = benchsuite.Postgres(ctx, benchPostgresURL())
				case "messagedb":
					cases, done, err = benchsuite.MessageDB(ctx, benchMessageDBURL())
				case "mongodb":
					cases, done, err = benchsuite.MongoDB(ctx, benchMongoDBURI())
				case "mysql":
					cases, done, err = benchsuite.MySQL(ctx, benchMySQLDSN())
				case "dynamodb":
					endpoint := os.Getenv("STRATA_BENCH_AWS_ENDPOINT_URL")
					if endpoint == "" {
						endpoint = benchsuite.DefaultAWSEndpoint
					}
					cases, done, err = benchsuite.DynamoDB(ctx, endpoint)
				case "jetstream":
					var u string
					if u, err = benchNATSURL(); err == nil {
						cases, done, err = benchsuite.JetStream(ctx, u)
					}
				case "s3":
					endpoint := os.Getenv("STRATA_BENCH_AWS_ENDPOINT_URL")
					if endpoint == "" {
						endpoint = benchsuite.DefaultAWSEndpoint
					}
					cases, done, err = benchsuite.S3(ctx, endpoint)
				}
				if err != nil {
					return fmt.Errorf("bench %s: %w", s, err)
				}
				r, err := benchsuite.Run(ctx, s, cases, cfg)
				done()
				if err != nil {
					return fmt.Errorf("bench: %w", err)
				}
				results = append(results, r...)
			}
			if len(results) == 0 && systemEvents == 0 && projectionEvents == 0 && memoryEvents == 0 {
				return fmt.Errorf("no case of %s matches --filter %q", strings.Join(stores, " or "), filter)
			}
			out := cmd.OutOrStdout()
			all.Results = results
			if len(results) > 0 {
				benchsuite.Print(out, results)
			}
			if memoryEvents > 0 {
				var mem []benchsuite.CatchUpMemoryResult
				for _, s := range stores {
					env, done, err := freshStore(ctx, s)
					if err != nil {
						return fmt.Errorf("bench %s catch-up memory: %w", s, err)
					}
					r, err := benchsuite.CatchUpMemory(ctx, s, env, memoryEvents)
					done()
					if err != nil {
						return fmt.Errorf("bench %s catch-up memory: %w", s, err)
					}
					mem = append(mem, r)
				}
				if len(results) > 0 {
					fmt.Fprintln(out)
				}
				benchsuite.PrintCatchUpMemory(out, mem)
				all.CatchUpMemory = mem
			}
			if systemEvents > 0 {
				var sys []benchsuite.SystemResult
				for _, s := range stores {
					for i := range cfg.Rounds {
						// One by one, then in batches, taking turns to go
						// first, each on a fresh store.
						sizes := []int{1, system.DefaultBatchSize}
						if i%2 == 1 {
							slices.Reverse(sizes)
						}
						for _, size := range sizes {
							r, err := systemBench(ctx, s, systemEvents, size)
							if err != nil {
								return fmt.Errorf("bench %s system: %w", s, err)
							}
							fmt.Fprintf(cmd.ErrOrStderr(), "%s system, batches of %d: follower %.0f events/s, %.2fx the leader alone, lag p99 %v\n",
								s, size, r.Follower, r.Ratio, r.LagP99.Round(time.Millisecond))
							sys = append(sys, r)
						}
					}
				}
				if len(results) > 0 {
					fmt.Fprintln(out)
				}
				benchsuite.PrintSystemRounds(out, sys)
				all.System = sys
			}
			if projectionEvents > 0 {
				var rounds []benchsuite.ProjectionResult
				for _, s := range stores {
					if s != "sqlite" && s != "postgres" {
						fmt.Fprintf(cmd.ErrOrStderr(), "%s projection: no projection store (docs/projections.md); skipped\n", s)
						continue
					}
					for range cfg.Rounds {
						r, err := projectionBench(ctx, s, projectionEvents)
						if err != nil {
							return fmt.Errorf("bench %s projection: %w", s, err)
						}
						fmt.Fprintf(cmd.ErrOrStderr(), "%s projection: %.0f events/s, %.2fx the leader alone\n", s, r.Projection, r.Ratio)
						rounds = append(rounds, r)
					}
				}
				if len(results) > 0 || systemEvents > 0 {
					fmt.Fprintln(out)
				}
				benchsuite.PrintProjection(out, rounds)
				all.Projection = rounds
			}
			fmt.Fprintln(out, machine())
			if jsonFile != "" {
				all.Machine = machine()
				return writeBenchJSON(jsonFile, all)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&store, "store", "sqlite", "the stores to measure: "+strings.Join(benchStores, ", ")+", "+strings.Join(benchStoresByName, ", ")+", or all (all but "+strings.Join(benchStoresByName, " and ")+")")
	f.IntVar(&cfg.Rounds, "rounds", 5, "the number of rounds, each running both sides; the table gives the median ratio and its min–max")
	f.DurationVar(&cfg.RoundTime, "round-time", time.Second, "about how long one side of a round runs")
	f.StringVar(&filter, "filter", "", "run only the cases whose names contain this text")
	f.IntVar(&systemEvents, "system", 0, "also measure a system following this many events (0: no)")
	f.IntVar(&memoryEvents, "catch-up-memory", 0, "also measure how much a catch-up of this many notifications grows the process's resident memory (0: no)")
	f.IntVar(&projectionEvents, "projection", 0, "also measure a projection following this many events, --rounds times (0: no)")
	f.StringVar(&jsonFile, "json", "", "also write every result, each round's included, as JSON to this file (scripts/bench-report reads it)")
	return cmd
}

// writeBenchJSON writes v to path whole or not at all: a reader never
// finds half a run.
func writeBenchJSON(path string, v benchsuite.Report) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("bench --json: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("bench --json %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("bench --json %s: %w", path, err)
	}
	return nil
}

// systemBench measures the worlds system on a fresh store.
func systemBench(ctx context.Context, store string, events, batchSize int) (benchsuite.SystemResult, error) {
	env, done, err := freshStore(ctx, store)
	if err != nil {
		return benchsuite.SystemResult{}, err
	}
	defer done()
	return benchsuite.SystemThroughput(ctx, store, env, events, batchSize)
}

// projectionBench measures a projection of the worlds example on a fresh
// store.
func projectionBench(ctx context.Context, store string, events int) (benchsuite.ProjectionResult, error) {
	env, done, err := freshStore(ctx, store)
	if err != nil {
		return benchsuite.ProjectionResult{}, err
	}
	defer done()
	return benchsuite.ProjectionThroughput(ctx, store, env, events)
}

// freshStore returns the environment of a new, empty store, and a
// function that removes it.
func freshStore(ctx context.Context, store string) (map[string]string, func(), error) {
	switch store {
	case "sqlite":
		dir, err := os.MkdirTemp("", "strata-bench-")
		if err != nil {
			return nil, nil, err
		}
		env := map[string]string{"PERSISTENCE_MODULE": "sqlite", "SQLITE_DBNAME": filepath.Join(dir, "system.db")}
		return env, func() { os.RemoveAll(dir) }, nil
	case "postgres":
		schema := "bench_system_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
		conn, err := pgx.Connect(ctx, benchPostgresURL())
		if err != nil {
			return nil, nil, err
		}
		env := map[string]string{"PERSISTENCE_MODULE": "postgres", "POSTGRES_URL": benchPostgresURL(), "POSTGRES_SCHEMA": schema}
		return env, func() {
			conn.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
			conn.Close(context.Background())
		}, nil
	case "messagedb":
		db := "strata_messagedb_bench_" + strings.ReplaceAll(uuid.NewString()[:13], "-", "")
		conn, err := pgx.Connect(ctx, benchMessageDBURL())
		if err != nil {
			return nil, nil, err
		}
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+db+" TEMPLATE "+benchsuite.MessageDBTemplate); err != nil {
			conn.Close(ctx)
			return nil, nil, err
		}
		u := conn.Config().ConnString()
		if parsed, err := url.Parse(u); err == nil {
			parsed.Path = "/" + db
			u = parsed.String()
		}
		env := map[string]string{"PERSISTENCE_MODULE": "messagedb", "MESSAGEDB_URL": u}
		return env, func() {
			conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)")
			conn.Close(context.Background())
		}, nil
	case "mongodb":
		db := "strata_bench_system_" + uuid.NewString()[:8]
		client, err := mongo.Connect(options.Client().ApplyURI(benchMongoDBURI()))
		if err != nil {
			return nil, nil, err
		}
		env := map[string]string{"PERSISTENCE_MODULE": "mongodb", "MONGODB_URI": benchMongoDBURI(), "MONGODB_DATABASE": db}
		return env, func() {
			client.Database(db).Drop(context.Background())
			client.Disconnect(context.Background())
		}, nil
	case "mysql":
		cfg, err := mysql.ParseDSN(benchMySQLDSN())
		if err != nil {
			return nil, nil, fmt.Errorf("STRATA_BENCH_MYSQL_DSN: %w", err)
		}
		admin, err := sql.Open("mysql", cfg.FormatDSN())
		if err != nil {
			return nil, nil, err
		}
		cfg.DBName = "strata_mysql_bench_system_" + uuid.NewString()[:8]
		if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+cfg.DBName); err != nil {
			admin.Close()
			return nil, nil, err
		}
		env := map[string]string{"PERSISTENCE_MODULE": "mysql", "MYSQL_DSN": cfg.FormatDSN()}
		return env, func() {
			admin.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+cfg.DBName)
			admin.Close()
		}, nil
	case "jetstream":
		u, err := benchNATSURL()
		if err != nil {
			return nil, nil, err
		}
		tag := strings.ToUpper(strings.ReplaceAll(uuid.NewString()[:8], "-", ""))
		env := map[string]string{"PERSISTENCE_MODULE": "jetstream", "NATS_URL": u,
			"NATS_STREAM_PREFIX": "BENCH_SYSTEM_" + tag, "NATS_SUBJECT_PREFIX": "benchsystem" + strings.ToLower(tag)}
		return env, func() { benchsuite.DeleteJetStreamStreams(u, "BENCH_SYSTEM_"+tag+"_") }, nil
	}
	return nil, nil, fmt.Errorf("no fresh store of %s", store)
}

// machine describes the machine: "machine: <CPU model>, 2 cores, go1.26 linux/amd64".
func machine() string {
	cpu := "unknown CPU"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		s := bufio.NewScanner(f)
		for s.Scan() {
			if k, v, ok := strings.Cut(s.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	return fmt.Sprintf("machine: %s, %d cores, %s %s/%s", cpu, runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

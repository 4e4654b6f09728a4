package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"github.com/strata-go/strata/cli"
	"github.com/strata-go/strata/internal/benchsuite"
)

// benchEnvironment documents bench's variable in the root's help.
var benchEnvironment = cli.EnvHelp("STRATA_BENCH_POSTGRES_URL", "the database of bench --store postgres")

// benchPostgresURL returns the database that bench measures PostgreSQL
// on: STRATA_BENCH_POSTGRES_URL, else the default.
func benchPostgresURL() string {
	if u := os.Getenv("STRATA_BENCH_POSTGRES_URL"); u != "" {
		return u
	}
	return benchsuite.DefaultPostgresURL
}

func benchCommand() *cobra.Command {
	var store, filter string
	var systemEvents int
	var cfg benchsuite.Config
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

With --system N, it also measures a system: the worlds example's leader saves
N events while the concurrent runner's Counters follows them, and a second
table gives the follower's events/s, the end-to-end lag (p50, p99, max), and
the ratio of the follower's throughput to the leader's saving alone, measured
in the same run.

SQLite runs on files in a temporary directory. PostgreSQL runs in a new
schema, dropped afterwards, of STRATA_BENCH_POSTGRES_URL (default
` + benchsuite.DefaultPostgresURL + `). DynamoDB (only by name, not in all)
runs on new tables, dropped afterwards, at STRATA_BENCH_AWS_ENDPOINT_URL
(default ` + benchsuite.DefaultAWSEndpoint + `, the tests' emulator).`,
		Example: "  strata bench\n  strata bench --store all --rounds 3 --round-time 500ms\n  strata bench --store postgres --filter catch\n  strata bench --store all --system 2000",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var stores []string
			switch store {
			case "sqlite", "postgres", "dynamodb":
				stores = []string{store}
			case "all":
				stores = []string{"sqlite", "postgres"}
			default:
				return cli.UsageError(fmt.Errorf("--store %q: want sqlite, postgres, dynamodb or all", store))
			}
			if cfg.Rounds < 1 || cfg.RoundTime <= 0 {
				return cli.UsageError(errors.New("--rounds and --round-time must be positive"))
			}
			ctx := cmd.Context()
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
				case "dynamodb":
					endpoint := os.Getenv("STRATA_BENCH_AWS_ENDPOINT_URL")
					if endpoint == "" {
						endpoint = benchsuite.DefaultAWSEndpoint
					}
					cases, done, err = benchsuite.DynamoDB(ctx, endpoint)
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
			if len(results) == 0 {
				return fmt.Errorf("no case of %s matches --filter %q", strings.Join(stores, " or "), filter)
			}
			out := cmd.OutOrStdout()
			benchsuite.Print(out, results)
			if systemEvents > 0 {
				var sys []benchsuite.SystemResult
				for _, s := range stores {
					r, err := systemBench(ctx, s, systemEvents)
					if err != nil {
						return fmt.Errorf("bench %s system: %w", s, err)
					}
					fmt.Fprintf(cmd.ErrOrStderr(), "%s system: follower %.0f events/s, %.2fx the leader alone\n", s, r.Follower, r.Ratio)
					sys = append(sys, r)
				}
				fmt.Fprintln(out)
				benchsuite.PrintSystem(out, sys)
			}
			fmt.Fprintln(out, machine())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&store, "store", "sqlite", "the stores to measure: sqlite, postgres, dynamodb or all (sqlite and postgres)")
	f.IntVar(&cfg.Rounds, "rounds", 5, "the number of rounds, each running both sides; the table gives the median ratio and its min–max")
	f.DurationVar(&cfg.RoundTime, "round-time", time.Second, "about how long one side of a round runs")
	f.StringVar(&filter, "filter", "", "run only the cases whose names contain this text")
	f.IntVar(&systemEvents, "system", 0, "also measure a system following this many events (0: no)")
	return cmd
}

// systemBench measures the worlds system on a fresh store.
func systemBench(ctx context.Context, store string, events int) (benchsuite.SystemResult, error) {
	var env map[string]string
	switch store {
	case "sqlite":
		dir, err := os.MkdirTemp("", "strata-bench-")
		if err != nil {
			return benchsuite.SystemResult{}, err
		}
		defer os.RemoveAll(dir)
		env = map[string]string{"PERSISTENCE_MODULE": "sqlite", "SQLITE_DBNAME": filepath.Join(dir, "system.db")}
	case "postgres":
		schema := "bench_system_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
		conn, err := pgx.Connect(ctx, benchPostgresURL())
		if err != nil {
			return benchsuite.SystemResult{}, err
		}
		defer func() {
			conn.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
			conn.Close(context.Background())
		}()
		env = map[string]string{"PERSISTENCE_MODULE": "postgres", "POSTGRES_URL": benchPostgresURL(), "POSTGRES_SCHEMA": schema}
	}
	return benchsuite.SystemThroughput(ctx, store, env, events)
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

package benchreport_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/strata-go/strata/internal/benchreport"
	"github.com/strata-go/strata/internal/benchsuite"
)

// The figures below are made up: the report's code is tested on what a
// run would give, without running one, so nothing depends on timings.

func TestParseReadsGoTestBenchmarkLines(t *testing.T) {
	out := `goos: linux
BenchmarkSaveGet-2   	 1000	      4400 ns/op	       387.0 base-ns/op	        10.35 x-base	        35.28 x-base-max	         4.120 x-base-min	     512 B/op	       3 allocs/op
BenchmarkSaveGet-2   	 1000	      4000 ns/op	       400.0 base-ns/op	        9.00 x-base	        20.00 x-base-max	         5.000 x-base-min	     512 B/op	       3 allocs/op
BenchmarkSaveGet-2   	 1000	      5000 ns/op	       300.0 base-ns/op	        11.00 x-base	        30.00 x-base-max	         3.000 x-base-min	     512 B/op	       3 allocs/op
Benchmarking is not a result line
PASS
ok  	github.com/strata-go/strata/persistence/memory	3.1s`
	results, err := benchreport.Parse(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 3 || results[0].Name != "BenchmarkSaveGet" || results[0].Metrics["x-base-max"] != 35.28 {
		t.Fatalf("results %+v", results)
	}
	s := benchreport.Summarize(results)
	want := benchreport.Summary{Name: "BenchmarkSaveGet", Runs: 3, Ratio: 10.35, Min: 3, Max: 35.28, NsPerOp: 4400, BaseNsPerOp: 387, AllocsPerOp: 3, BytesPerOp: 512}
	if len(s) != 1 || s[0] != want {
		t.Fatalf("summary %+v, want %+v", s, want)
	}

	_, err = benchreport.Parse(strings.NewReader("BenchmarkX-2 100 fast ns/op"))
	if err == nil || !strings.Contains(err.Error(), `"fast"`) {
		t.Fatalf("a metric that is not a number: %v", err)
	}
}

func TestParseRunReadsWhatStrataBenchWrites(t *testing.T) {
	rep, err := benchreport.ParseRun(strings.NewReader(`{"results": [{"Store": "sqlite", "Case": "save 1 event", "Baseline": "raw INSERT",
		"Writers": 16, "StrataPerOp": 100400, "BasePerOp": 708300, "RoundRatios": [0.1, 0.24], "Ratio": 0.17, "RatioMin": 0.1, "RatioMax": 0.24,
		"Target": 1.1764705882352942, "SomethingNew": true}], "system": [{"Store": "postgres", "BatchSize": 100, "LagP99": 227000000}],
		"machine": "machine: AMD EPYC, 2 cores"}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 1 || rep.Results[0].Writers != 16 || rep.Results[0].StrataPerOp != 100400*time.Nanosecond ||
		len(rep.Results[0].RoundRatios) != 2 || len(rep.System) != 1 || rep.System[0].LagP99 != 227*time.Millisecond {
		t.Fatalf("report %+v", rep)
	}
	if _, err := benchreport.ParseRun(strings.NewReader(`{"results": [], "machine": "machine: x"}`)); !errors.Is(err, benchreport.ErrNoResults) {
		t.Fatalf("a run without results: %v", err)
	}
	if _, err := benchreport.ParseRun(strings.NewReader(`store  case`)); err == nil || errors.Is(err, benchreport.ErrNoResults) {
		t.Fatalf("the text tables instead of JSON: %v", err)
	}
}

func TestTargetsSayOkOrMissedAndTheRoundsThatMetThem(t *testing.T) {
	for _, c := range []struct {
		name, got, want string
	}{
		{"a median under its limit", benchreport.AtMost(1.25, 0.95, []float64{0.88, 1.02, 1.3}), "≤ 1.25: ok (2/3)"},
		{"a median over it", benchreport.AtMost(1.0/6, 0.44, []float64{0.34, 0.53, 0.1}), "≤ 0.167: MISSED (1/3)"},
		{"a median that two decimals would show at the limit", benchreport.AtMost(1.0/6, 0.1689, []float64{0.1689}), "≤ 0.167: MISSED at 0.169x (0/1)"},
		{"a round exactly at the limit meets it", benchreport.AtMost(1.25, 1.25, []float64{1.25}), "≤ 1.25: ok (1/1)"},
		{"no target", benchreport.AtMost(0, 3, []float64{3}), "–"},
		{"a median that reaches its floor", benchreport.AtLeast(0.8, 1.23, []float64{0.23, 2.23}), "≥ 0.80: ok (1/2)"},
		{"a median just under its floor", benchreport.AtLeast(0.8, 0.7982, []float64{0.09, 1.51}), "≥ 0.80: MISSED at 0.798x (1/2)"},
		{"a target as a rate", benchreport.Rate(1.0 / 1.3), "1.30x the rate"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.got != c.want {
				t.Fatalf("%q, want %q", c.got, c.want)
			}
		})
	}
}

func TestNumbersOfTheTables(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{benchreport.Number(1.25), "1.25"},
		{benchreport.Number(3), "3.00"},
		{benchreport.Number(1 / 0.9), "1.111"},
		{benchreport.Number(0.88 / 0.95), "0.926"},
		{benchreport.Thousands(1100.4), "1,100"},
		{benchreport.Thousands(999.5), "1,000"},
		{benchreport.Thousands(1234567), "1,234,567"},
		{benchreport.Thousands(-1234), "-1,234"},
		{benchreport.Lag(276 * time.Millisecond), "276 ms"},
		{benchreport.Lag(1720 * time.Millisecond), "1.72 s"},
		{benchreport.MiB(71932313), "68.6 MiB"},
		{benchreport.Duration(1182100), "1.2 ms"},
		{benchreport.Duration(472), "472 ns"},
		{benchreport.StoreName("postgres"), "PostgreSQL"},
		{benchreport.StoreName("oracle"), "oracle"},
	} {
		if c.got != c.want {
			t.Errorf("%q, want %q", c.got, c.want)
		}
	}
}

func TestResultsTable(t *testing.T) {
	got := benchreport.ResultsTable([]benchsuite.Result{
		{Store: "sqlite", Case: "save 1 event, concurrently", Baseline: "Strata, one save at a time", Writers: 16,
			StrataPerOp: 421600 * time.Nanosecond, BasePerOp: 876500 * time.Nanosecond,
			RoundRatios: []float64{0.53, 0.34, 0.15}, Ratio: 0.34, RatioMin: 0.15, RatioMax: 0.53, Target: 1.0 / 6},
		{Store: "postgres", Case: "insert 100 events of one aggregate", Baseline: "raw INSERT of the same rows, one transaction", Writers: 1,
			StrataPerOp: 11100 * time.Microsecond, BasePerOp: 10 * time.Millisecond,
			RoundRatios: []float64{0.85, 1.42}, Ratio: 1.135, RatioMin: 0.85, RatioMax: 1.42, Target: 1 / 0.9},
		{Store: "postgres", Case: "save 1 event, concurrently", Baseline: "Strata, one save at a time", Writers: 16,
			StrataPerOp: 447700 * time.Nanosecond, BasePerOp: 4700 * time.Microsecond, RoundRatios: []float64{0.07, 0.12}, Ratio: 0.095, RatioMin: 0.07, RatioMax: 0.12},
	})
	want := `| store | case | writers | baseline | Strata/op (median) | baseline/op (median) | ratio (median of rounds) | round ratios (min–max) | target: median (rounds meeting it) |
|---|---|---|---|---|---|---|---|---|
| SQLite | save 1 event, concurrently | 16 | Strata, one save at a time | 421.6 µs | 876.5 µs | 0.34x | 0.15–0.53x | ≤ 0.167: MISSED (1/3), 6.00x the rate |
| PostgreSQL | insert 100 events of one aggregate | 1 | raw INSERT of the same rows, one transaction | 11.1 ms | 10.0 ms | 1.14x | 0.85–1.42x | ≤ 1.111: MISSED (1/2) |
| PostgreSQL | save 1 event, concurrently | 16 | Strata, one save at a time | 447.7 µs | 4.7 ms | 0.10x | 0.07–0.12x | – |
`
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

func TestSystemTableSummarisesTheRoundsOfEachStoreAndBatchSize(t *testing.T) {
	round := func(store string, batch int, alone, leader, follower float64, p50, p99 time.Duration) benchsuite.SystemResult {
		return benchsuite.SystemResult{Store: store, Events: 2000, BatchSize: batch, LeaderAlone: alone, Leader: leader, Follower: follower,
			CatchUp: 4 * follower, LagP50: p50, LagP99: p99, LagMax: 2 * p99, Ratio: follower / alone}
	}
	rounds := []benchsuite.SystemResult{
		// Rounds alternate which batch size goes first, as bench runs them.
		round("sqlite", 1, 1000, 500, 250, 500*time.Millisecond, 1500*time.Millisecond),
		round("sqlite", 100, 1000, 800, 800, 40*time.Millisecond, 200*time.Millisecond),
		round("sqlite", 100, 1200, 700, 600, 30*time.Millisecond, 300*time.Millisecond),
		round("sqlite", 1, 1000, 400, 300, 600*time.Millisecond, 2500*time.Millisecond),
		round("sqlite", 1, 1100, 450, 330, 550*time.Millisecond, 2000*time.Millisecond),
		round("sqlite", 100, 1000, 900, 900, 35*time.Millisecond, 250*time.Millisecond),
	}
	got := benchreport.SystemTable(rounds, 0.8)
	want := `| store | follower | events | rounds | leader alone | leader followed | follower | catching up | lag p50 | lag p99 (min–max) | follower / leader alone (min–max) | target: median (rounds meeting it) | follower / leader followed |
|---|---|---|---|---|---|---|---|---|---|---|---|---|
| SQLite | batch 1 (a transaction per notification) | 2,000 | 3 | 1,000/s | 450/s | 300/s | 1,200/s | 550 ms | 2.00 s (1.50 s–2.50 s) | 0.30x (0.25–0.30) | ≥ 0.80: MISSED (0/3) | 0.73x |
| SQLite | batches of up to 100 | 2,000 | 3 | 1,000/s | 800/s | 800/s | 3,200/s | 35 ms | 250 ms (200 ms–300 ms) | 0.80x (0.50–0.90) | ≥ 0.80: ok (2/3) | 1.00x |
`
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

func TestMemoryTable(t *testing.T) {
	got := benchreport.MemoryTable([]benchsuite.CatchUpMemoryResult{
		{Store: "sqlite", Events: 1_000_000, Before: 41 << 20, Peak: 110 << 20, Elapsed: 5864 * time.Millisecond},
		{Store: "postgres", Events: 1_000_000, Before: 35 << 20, Peak: 48 << 20, Elapsed: 4610 * time.Millisecond},
	}, 64<<20)
	want := `| store | notifications | RSS before | RSS peak | growth | catch-up time | target |
|---|---|---|---|---|---|---|
| SQLite | 1,000,000 | 41.0 MiB | 110.0 MiB | 69.0 MiB | 5.86 s | < 64.0 MiB: MISSED |
| PostgreSQL | 1,000,000 | 35.0 MiB | 48.0 MiB | 13.0 MiB | 4.61 s | < 64.0 MiB: ok |
`
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

func TestParseLoadAverage(t *testing.T) {
	got, err := benchreport.ParseLoadAverage("12.84 4.21 1.53 23/261 16156\n")
	if err != nil || got != "12.84 4.21 1.53" {
		t.Fatalf("%q, %v", got, err)
	}
	for _, bad := range []string{"", "12.84 4.21", "high low none 1/2 3"} {
		if _, err := benchreport.ParseLoadAverage(bad); !errors.Is(err, benchreport.ErrLoadAverage) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if got := benchreport.LoadLine("1 2 3", "4 5 6"); got != "Load average (1, 5, 15 minutes) when the run began: 1 2 3; when it ended: 4 5 6." {
		t.Fatalf("%q", got)
	}
}

func TestCommandQuotesWhatAShellWouldSplit(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"strata", "bench", "--store", "sqlite", "--rounds", "7"}, "strata bench --store sqlite --rounds 7"},
		{[]string{"strata", "bench", "--filter", "save 1 event"}, `strata bench --filter "save 1 event"`},
		{[]string{"go", "test", "-run", "^$", "-bench", "Mapper/^encode$"}, `go test -run '^$' -bench 'Mapper/^encode$'`},
		{[]string{"echo", "it's $1"}, `echo 'it'\''s $1'`},
		{[]string{"echo", ""}, `echo ""`},
	} {
		if got := benchreport.Command(c.args...); got != c.want {
			t.Errorf("%q: %s, want %s", c.args, got, c.want)
		}
	}
}

func TestReplaceSectionKeepsTheRestOfTheFile(t *testing.T) {
	doc := `# Benchmarks

Prose of another suite, | with a bar.

<!-- begin bench-report: a -->
old a
<!-- end bench-report: a -->

Between.

<!-- begin bench-report: b -->
| x | y |
|---|---|
| 1 | 2 |
<!-- end bench-report: b -->

After.
`
	got := benchreport.ReplaceSection(doc, "a", "## A", "| figure | after |\n|---|---|\n| mapper | 0.98x |\n")
	want := strings.Replace(doc, "old a\n", "| figure | after |\n|---|---|\n| mapper | 0.98x |\n", 1)
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if again := benchreport.ReplaceSection(got, "a", "## A", "| figure | after |\n|---|---|\n| mapper | 0.98x |"); again != got {
		t.Fatalf("replacing a section with the same body changed the file:\n%s", again)
	}

	body, ok := benchreport.Section(got, "b")
	if !ok || body != "| x | y |\n|---|---|\n| 1 | 2 |\n" {
		t.Fatalf("section b: %q, %v", body, ok)
	}
	if _, ok := benchreport.Section(got, "c"); ok {
		t.Fatal("a section the file does not have was found")
	}
	rows := benchreport.TableRows(got)
	if len(rows) != 2 || strings.Join(rows[0], ",") != "mapper,0.98x" || strings.Join(rows[1], ",") != "1,2" {
		t.Fatalf("rows %q", rows)
	}

	appended := benchreport.ReplaceSection(got, "c", "## C", "new")
	if !strings.HasPrefix(appended, got) || !strings.HasSuffix(appended, "After.\n\n## C\n\n<!-- begin bench-report: c -->\nnew\n<!-- end bench-report: c -->\n") {
		t.Fatalf("a new section:\n%s", appended)
	}
}

// Command bench-report runs the benchmarks of docs/benchmarks.md (the
// mapper, the memory recorder, instruction counts under callgrind,
// catch-up, the write path and the followers) and rewrites their sections
// of that file; the rest of the file is kept as it is. Run it from the
// module's root, as scripts/bench-report does:
//
//	go run ./internal/benchreport/cmd/bench-report [-sections write-path,followers] [-quick]
//
// Each section gives its figures as ratios with their spread, each
// target with ok or MISSED and the rounds that met it, the command that
// measured it, and the machine's load average when the run began and
// ended. -quick runs every section with few rounds and operations, to
// check the whole pipeline in a few minutes; its figures mean nothing,
// and the sections say so.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/strata-go/strata/internal/benchreport"
	"github.com/strata-go/strata/internal/benchsuite"
)

// section is one block of docs/benchmarks.md that this command writes.
type section struct {
	name, heading string
	run           func() (string, error)
	// measures is false for a section made of other sections' figures,
	// which has no load average of its own.
	measures bool
}

var (
	doc        = flag.String("doc", "docs/benchmarks.md", "the file to rewrite")
	only       = flag.String("sections", "", "the sections to regenerate, comma-separated (default: all): "+strings.Join(sectionNames(), ", "))
	quick      = flag.Bool("quick", false, "few rounds and operations, to check the pipeline: the figures mean nothing (flags given explicitly win)")
	count      = flag.Int("count", 3, "go test -count for the go test benchmarks")
	benchtime  = flag.String("benchtime", "1s", "go test -benchtime for the go test benchmarks")
	rounds     = flag.Int("rounds", 5, "strata bench --rounds for the catch-up and follower sections")
	writeRound = flag.Int("write-rounds", 7, "strata bench --rounds for the write path section")
	roundTime  = flag.String("round-time", "", "strata bench --round-time (default: bench's own, 1s)")
	memory     = flag.Int("catch-up-memory", 1_000_000, "notifications of the resident-memory catch-up (0: not measured)")
	systemN    = flag.Int("system", 2000, "strata bench --system: events the leader saves in each round of the follower section")
	stores     = flag.String("stores", "sqlite,postgres", "the stores of the catch-up, write path and follower sections")
	callIter   = flag.Int("callgrind-iterations", 5000, "iterations per side of scripts/callgrind-bench")
)

// quickSettings are the flags' values under -quick, where not given.
var quickSettings = map[string]string{
	"count": "1", "benchtime": "100x", "rounds": "2", "write-rounds": "2", "round-time": "100ms",
	"catch-up-memory": "20000", "system": "200", "callgrind-iterations": "2000",
}

// followerTarget is the least throughput of a follower, as a share of
// its leader's saving alone.
const followerTarget = 0.8

// rssLimit is the most that a catch-up of a million notifications may grow
// the resident memory.
const rssLimit = 64 << 20

func sections() []section {
	return []section{
		{"cpu-mapper", "", mapperSection, true},
		{"cpu-memory-recorder", "", memorySection, true},
		{"cpu-instructions", "", instructionsSection, true},
		{"catch-up", "", catchUpSection, true},
		{"write-path", "## The write path, measured", writePathSection, true},
		{"followers", "## Followers, measured", followersSection, true},
		// Last: it is made of the figures the others measured.
		{"cpu-before-after", "", beforeAfterSection, false},
	}
}

func sectionNames() []string {
	return []string{"cpu-mapper", "cpu-memory-recorder", "cpu-instructions", "catch-up", "write-path", "followers", "cpu-before-after"}
}

// cleanups run before the command exits, whether it fails or not.
var cleanups []func()

func main() {
	flag.Parse()
	if *quick {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for name, v := range quickSettings {
			if !set[name] {
				if err := flag.Set(name, v); err != nil {
					fail(err)
				}
			}
		}
	}
	all := sections()
	var chosen []section
	for _, name := range strings.Split(*only, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		found := false
		for _, s := range all {
			found = found || s.name == name
		}
		if !found {
			fail(fmt.Errorf("-sections: no section %q; the sections are %s", name, strings.Join(sectionNames(), ", ")))
		}
	}
	for _, s := range all {
		if *only == "" || contains(strings.Split(*only, ","), s.name) {
			chosen = append(chosen, s)
		}
	}
	b, err := os.ReadFile(*doc)
	if err != nil {
		fail(err)
	}
	text := string(b)
	previous = text
	for _, s := range chosen {
		fmt.Fprintf(os.Stderr, "bench-report: %s\n", s.name)
		load := benchreport.LoadAverage()
		body, err := s.run()
		if err != nil {
			fail(fmt.Errorf("section %s: %w", s.name, err))
		}
		body = strings.TrimRight(body, "\n") + "\n"
		if s.measures {
			body += "\n" + benchreport.LoadLine(load, benchreport.LoadAverage()) + "\n"
		}
		if *quick {
			body = "*A quick run (`scripts/bench-report -quick`): too few rounds and operations for these figures to mean anything.*\n\n" + body
		}
		text = benchreport.ReplaceSection(text, s.name, s.heading, body)
		// Written after each section, so that a failure later keeps what
		// was measured.
		if err := os.WriteFile(*doc, []byte(text), 0o644); err != nil {
			fail(err)
		}
	}
	cleanup()
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if strings.TrimSpace(y) == x {
			return true
		}
	}
	return false
}

func cleanup() {
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	cleanups = nil
}

func fail(err error) {
	cleanup()
	fmt.Fprintln(os.Stderr, "bench-report:", err)
	os.Exit(1)
}

// run runs a command, its standard error passed through, and returns its
// standard output.
func run(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s: %w", benchreport.Command(append([]string{name}, args...)...), err)
	}
	return out.String(), nil
}

// goBench runs go test benchmarks and summarises them.
func goBench(pkg, bench string) ([]benchreport.Summary, string, error) {
	args := []string{"test", "-run", "^$", "-bench", bench, "-benchtime", *benchtime, "-count", fmt.Sprint(*count), pkg}
	out, err := run("go", args...)
	if err != nil {
		return nil, "", err
	}
	res, err := benchreport.Parse(strings.NewReader(out))
	return benchreport.Summarize(res), benchreport.Command(append([]string{"go"}, args...)...), err
}

// row is a line of a comparison table: a benchmark, how to name it, and
// its target ratio (0: none).
type row struct {
	bench, label string
	target       float64
}

func ratioTable(sums []benchreport.Summary, rows []row) (string, error) {
	var b strings.Builder
	b.WriteString("| case | Strata/op | baseline/op | ratio (median of runs) | chunk ratios (min–max) | allocs/op | target |\n|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		s, ok := benchreport.Find(sums, r.bench)
		if !ok {
			return "", fmt.Errorf("no result for %s", r.bench)
		}
		target := "–"
		if r.target > 0 {
			target = fmt.Sprintf("≤ %s: %s", benchreport.Number(r.target), map[bool]string{true: "ok", false: "MISSED"}[s.Ratio <= r.target])
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.2fx | %.2f–%.2fx | %.0f | %s |\n", r.label, benchreport.Duration(s.NsPerOp),
			benchreport.Duration(s.BaseNsPerOp), s.Ratio, s.Min, s.Max, s.AllocsPerOp, target)
	}
	return b.String(), nil
}

// figure is a figure of this run for the before/after table: its text,
// and the number a target is checked against.
type figure struct {
	text  string
	value float64
}

// after holds this run's figures for the before/after table.
var after = map[string]figure{}

// previous is the file as it was before this run, whose before/after
// table keeps the figures of sections this run did not measure.
var previous string

func ratioFigure(s benchreport.Summary) figure {
	return figure{fmt.Sprintf("%.2fx (%.2f–%.2f), %.0f allocs", s.Ratio, s.Min, s.Max, s.AllocsPerOp), s.Ratio}
}

func mapperSection() (string, error) {
	sums, cmd, err := goBench("./persistence/", "BenchmarkMapper")
	if err != nil {
		return "", err
	}
	const p = "BenchmarkMapper/"
	rows := []row{
		{p + "encode/JSON/vs_the_standard_library,_same_work", "encode, JSON, vs encoding/json doing the same work", 1.25},
		{p + "decode/JSON/vs_the_standard_library,_same_work", "decode, JSON, vs encoding/json doing the same work", 1.25},
		{p + "encode/JSON/vs_encoding-json,_data_only", "encode, JSON, vs encoding/json of the data alone", 0},
		{p + "decode/JSON/vs_encoding-json,_data_only", "decode, JSON, vs encoding/json of the data alone", 0},
		{p + "encode/JSON,_zlib_and_AES-GCM/vs_plain_JSON,_the_standard_library", "encode, JSON + zlib + AES-GCM, vs plain encoding/json", 3},
		{p + "encode/JSON,_zlib_and_AES-GCM/vs_the_standard_library,_same_work", "encode, JSON + zlib + AES-GCM, vs the standard library doing the same work", 0},
		{p + "decode/JSON,_zlib_and_AES-GCM/vs_the_standard_library,_same_work", "decode, JSON + zlib + AES-GCM, vs the standard library doing the same work", 0},
	}
	table, err := ratioTable(sums, rows)
	for _, r := range rows[:5] {
		if s, ok := benchreport.Find(sums, r.bench); ok {
			after[r.bench] = ratioFigure(s)
		}
	}
	return fmt.Sprintf("%s\n`%s`\n", table, cmd), err
}

func memorySection() (string, error) {
	sums, cmd, err := goBench("./persistence/memory/", ".")
	if err != nil {
		return "", err
	}
	rows := []row{
		{"BenchmarkInsert/100_events/vs_appending_to_a_slice", "insert 100 events of a new aggregate, vs appending them to a slice under a mutex", 3},
		{"BenchmarkInsert/1_event/vs_appending_to_a_slice", "insert 1 event of a new aggregate, vs the same", 0},
		{"BenchmarkSaveGet", "insert 1 event and select it back, vs append and index", 0},
	}
	table, err := ratioTable(sums, rows)
	for _, r := range rows {
		if s, ok := benchreport.Find(sums, r.bench); ok {
			after[r.bench] = ratioFigure(s)
			after["allocs "+r.bench] = figure{fmt.Sprintf("%.0f", s.AllocsPerOp), s.AllocsPerOp}
		}
	}
	return fmt.Sprintf("%s\n`%s`\n", table, cmd), err
}

var callgrindLine = regexp.MustCompile(`baseline (\d+) instructions/op, subject (\d+) instructions/op, ratio ([0-9.]+)x`)

func instructionsSection() (string, error) {
	if _, err := exec.LookPath("valgrind"); err != nil {
		return "valgrind is not installed on the machine of the last run: no instruction counts.", nil
	}
	cases := []struct{ pkg, bench, label string }{
		{"./persistence/", "Mapper/^encode$/^JSON$/same", "mapper encode, JSON, vs encoding/json doing the same work"},
		{"./persistence/", "Mapper/^decode$/^JSON$/same", "mapper decode, JSON, vs encoding/json doing the same work"},
		{"./persistence/", "Mapper/^encode$/zlib/plain", "mapper encode, JSON + zlib + AES-GCM, vs plain encoding/json"},
		{"./persistence/memory/", "Insert/^100_events$", "memory insert of 100 events, vs appending to a slice"},
		{"./persistence/memory/", "SaveGet", "memory insert + select of 1 event, vs append and index"},
	}
	var b strings.Builder
	b.WriteString("| case | Strata instructions/op | baseline instructions/op | ratio |\n|---|---|---|---|\n")
	for _, c := range cases {
		out, err := run("scripts/callgrind-bench", c.pkg, c.bench, fmt.Sprint(*callIter))
		if err != nil {
			return "", err
		}
		m := callgrindLine.FindStringSubmatch(out)
		if m == nil {
			return "", fmt.Errorf("callgrind-bench %s: unexpected output %q", c.bench, out)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %sx |\n", c.label, m[2], m[1], m[3])
		var v float64
		fmt.Sscanf(m[3], "%g", &v)
		after["callgrind "+c.bench] = figure{m[3] + "x", v}
	}
	fmt.Fprintf(&b, "\n`scripts/callgrind-bench PACKAGE BENCH %d`: instructions per operation, garbage collection included, each side run alone.\n", *callIter)
	return b.String(), nil
}

// strataBinary is cmd/strata built once for the run.
var strataBinary string

// strataBench runs strata bench with --json and returns what it measured,
// and the command line as a user would type it (without --json). timed
// says that the run has cases, whose rounds -round-time sets; the system
// and memory figures have none.
func strataBench(timed bool, args ...string) (benchsuite.Report, string, error) {
	if strataBinary == "" {
		dir, err := os.MkdirTemp("", "bench-report-")
		if err != nil {
			return benchsuite.Report{}, "", err
		}
		cleanups = append(cleanups, func() { os.RemoveAll(dir) })
		bin := filepath.Join(dir, "strata")
		if _, err := run("go", "build", "-o", bin, "./cmd/strata"); err != nil {
			return benchsuite.Report{}, "", err
		}
		strataBinary = bin
	}
	if *roundTime != "" && timed {
		args = append(args, "--round-time", *roundTime)
	}
	file := filepath.Join(filepath.Dir(strataBinary), "bench.json")
	os.Remove(file)
	if _, err := run(strataBinary, append(append([]string{"bench"}, args...), "--json", file)...); err != nil {
		return benchsuite.Report{}, "", err
	}
	f, err := os.Open(file)
	if err != nil {
		return benchsuite.Report{}, "", err
	}
	defer f.Close()
	rep, err := benchreport.ParseRun(f)
	cmd := benchreport.Command(append([]string{"strata", "bench"}, args...)...)
	if err != nil {
		return rep, cmd, fmt.Errorf("%s: %w", cmd, err)
	}
	return rep, cmd, nil
}

// commands formats the command lines under a table.
func commands(cmds []string) string {
	var b strings.Builder
	for _, c := range cmds {
		fmt.Fprintf(&b, "- `%s`\n", c)
	}
	return b.String()
}

// resultKey names a result of strata bench in the before/after table.
func resultKey(r benchsuite.Result) string {
	return fmt.Sprintf("bench %s|%s|%d|%s", r.Store, r.Case, r.Writers, r.Baseline)
}

func resultFigure(r benchsuite.Result) figure {
	return figure{fmt.Sprintf("%.2fx (%.2f–%.2f)", r.Ratio, r.RatioMin, r.RatioMax), r.Ratio}
}

func storeList() []string {
	var out []string
	for _, s := range strings.Split(*stores, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func catchUpSection() (string, error) {
	var results []benchsuite.Result
	var cmds []string
	for _, s := range storeList() {
		rep, cmd, err := strataBench(true, "--store", s, "--filter", "catch up", "--rounds", fmt.Sprint(*rounds))
		if err != nil {
			return "", err
		}
		cmds = append(cmds, cmd)
		for _, r := range rep.Results {
			after["catch-up "+r.Store] = resultFigure(r)
		}
		results = append(results, rep.Results...)
	}
	var b strings.Builder
	b.WriteString(benchreport.ResultsTable(results))
	b.WriteString("\n" + commands(cmds))
	if *memory > 0 {
		var mem []benchsuite.CatchUpMemoryResult
		var mcmds []string
		for _, s := range storeList() {
			rep, cmd, err := strataBench(false, "--store", s, "--filter", "none", "--catch-up-memory", fmt.Sprint(*memory))
			if err != nil {
				return "", err
			}
			mcmds = append(mcmds, cmd)
			for _, r := range rep.CatchUpMemory {
				after["catch-up memory "+r.Store] = figure{benchreport.MiB(r.Growth()), float64(r.Growth())}
			}
			mem = append(mem, rep.CatchUpMemory...)
		}
		b.WriteString("\n" + benchreport.MemoryTable(mem, rssLimit))
		b.WriteString("\n" + commands(mcmds))
	}
	return b.String(), nil
}

// writeFilters select the cases of the write path: single-event saves
// (alone, by 16 writers, grouped) and bulk inserts of 100 events.
var writeFilters = []string{"save 1 event", "insert 100"}

func writePathSection() (string, error) {
	var results []benchsuite.Result
	var cmds []string
	for _, s := range storeList() {
		for _, f := range writeFilters {
			rep, cmd, err := strataBench(true, "--store", s, "--filter", f, "--rounds", fmt.Sprint(*writeRound))
			if err != nil {
				return "", err
			}
			cmds = append(cmds, cmd)
			results = append(results, rep.Results...)
		}
	}
	for _, r := range results {
		after[resultKey(r)] = resultFigure(r)
	}
	return benchreport.ResultsTable(results) + "\n" + commands(cmds), nil
}

func followersSection() (string, error) {
	var sys []benchsuite.SystemResult
	var cmds []string
	for _, s := range storeList() {
		rep, cmd, err := strataBench(false, "--store", s, "--filter", "none", "--system", fmt.Sprint(*systemN), "--rounds", fmt.Sprint(*rounds))
		if err != nil {
			return "", err
		}
		if len(rep.System) == 0 {
			return "", fmt.Errorf("%s: no system result", cmd)
		}
		cmds = append(cmds, cmd)
		sys = append(sys, rep.System...)
	}
	for _, s := range benchreport.SummarizeSystem(sys) {
		if s.BatchSize != 1 {
			after["follower "+s.Store] = figure{fmt.Sprintf("%.2fx (%.2f–%.2f), lag p99 %s (%s–%s)", s.Ratio, s.RatioMin, s.RatioMax,
				benchreport.Lag(s.LagP99), benchreport.Lag(s.LagP99Min), benchreport.Lag(s.LagP99Max)), s.Ratio}
		}
	}
	return benchreport.SystemTable(sys, followerTarget) + "\n" + commands(cmds), nil
}

// Command bench-report runs the CPU-bound benchmarks (the mapper, the
// memory recorder, instruction counts under callgrind) and the catch-up
// benchmarks, and rewrites their sections of docs/benchmarks.md; the rest
// of the file is kept as it is. Run it from the module's root, as
// scripts/bench-report does:
//
//	go run ./internal/benchreport/cmd/bench-report [-sections cpu-mapper,catch-up] [-count 3]
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"

	"github.com/strata-go/strata/internal/benchreport"
)

// section is one block of docs/benchmarks.md that this command writes.
type section struct {
	name, heading string
	run           func() (string, error)
}

var (
	doc      = flag.String("doc", "docs/benchmarks.md", "the file to rewrite")
	only     = flag.String("sections", "", "the sections to regenerate, comma-separated (default: all)")
	count    = flag.Int("count", 3, "go test -count for the go test benchmarks")
	rounds   = flag.Int("rounds", 5, "strata bench --rounds for the catch-up cases")
	memory   = flag.Int("catch-up-memory", 1_000_000, "notifications of the resident-memory catch-up (0: not measured)")
	stores   = flag.String("stores", "sqlite,postgres", "the stores of the catch-up section")
	callIter = flag.Int("callgrind-iterations", 5000, "iterations per side of scripts/callgrind-bench")
)

func main() {
	flag.Parse()
	sections := []section{
		{"cpu-mapper", "", mapperSection},
		{"cpu-memory-recorder", "", memorySection},
		{"cpu-instructions", "", instructionsSection},
		{"catch-up", "", catchUpSection},
		{"cpu-before-after", "", beforeAfterSection},
	}
	b, err := os.ReadFile(*doc)
	if err != nil {
		fail(err)
	}
	text := string(b)
	for _, s := range sections {
		if *only != "" && !contains(strings.Split(*only, ","), s.name) {
			continue
		}
		fmt.Fprintf(os.Stderr, "bench-report: %s\n", s.name)
		body, err := s.run()
		if err != nil {
			fail(fmt.Errorf("section %s: %w", s.name, err))
		}
		text = benchreport.ReplaceSection(text, s.name, s.heading, body)
		// Written after each section, so that a failure later keeps what
		// was measured.
		if err := os.WriteFile(*doc, []byte(text), 0o644); err != nil {
			fail(err)
		}
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if strings.TrimSpace(y) == x {
			return true
		}
	}
	return false
}

func fail(err error) {
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
		return out.String(), fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return out.String(), nil
}

// goBench runs go test benchmarks and summarises them.
func goBench(pkg, bench string) ([]benchreport.Summary, string, error) {
	args := []string{"test", "-run", "^$", "-bench", bench, "-benchtime", "1s", "-count", fmt.Sprint(*count), pkg}
	out, err := run("go", args...)
	if err != nil {
		return nil, "", err
	}
	res, err := benchreport.Parse(strings.NewReader(out))
	return benchreport.Summarize(res), "go " + strings.Join(args, " "), err
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
			verdict := "ok"
			if s.Ratio > r.target {
				verdict = "MISSED"
			}
			target = fmt.Sprintf("≤ %.2f: %s", r.target, verdict)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.2fx | %.2f–%.2fx | %.0f | %s |\n", r.label, benchreport.Duration(s.NsPerOp),
			benchreport.Duration(s.BaseNsPerOp), s.Ratio, s.Min, s.Max, s.AllocsPerOp, target)
	}
	return b.String(), nil
}

// after holds this run's figures for the before/after table.
var after = map[string]string{}

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
			after[r.bench] = fmt.Sprintf("%.2fx (%.2f–%.2f), %.0f allocs", s.Ratio, s.Min, s.Max, s.AllocsPerOp)
		}
	}
	return fmt.Sprintf("`%s`, %d runs:\n\n%s", cmd, *count, table), err
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
			after[r.bench] = fmt.Sprintf("%.2fx (%.2f–%.2f), %.0f allocs", s.Ratio, s.Min, s.Max, s.AllocsPerOp)
		}
	}
	return fmt.Sprintf("`%s`, %d runs:\n\n%s", cmd, *count, table), err
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
	fmt.Fprintf(&b, "`scripts/callgrind-bench PACKAGE BENCH %d`: instructions per operation, garbage collection included, each side run alone:\n\n", *callIter)
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
		after["callgrind "+c.bench] = m[3] + "x"
	}
	return b.String(), nil
}

// strataBench runs go run ./cmd/strata bench and returns the data lines
// of its first table, split into columns.
func strataBench(args ...string) ([][]string, string, error) {
	full := append([]string{"run", "./cmd/strata", "bench"}, args...)
	out, err := run("go", full...)
	if err != nil {
		return nil, "", err
	}
	var rows [][]string
	lines := strings.Split(out, "\n")
	for _, l := range lines[min(1, len(lines)):] {
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "machine:") {
			continue
		}
		rows = append(rows, regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(l), -1))
	}
	return rows, "strata bench " + strings.Join(args, " "), nil
}

func catchUpSection() (string, error) {
	var b strings.Builder
	b.WriteString("| store | case | Strata/op (median) | baseline/op (median) | ratio (median of rounds) | round ratios (min–max) | target (rounds under it) |\n|---|---|---|---|---|---|---|\n")
	var cmds []string
	for _, s := range strings.Split(*stores, ",") {
		rows, cmd, err := strataBench("--store", s, "--filter", "catch up", "--rounds", fmt.Sprint(*rounds))
		if err != nil {
			return "", err
		}
		cmds = append(cmds, "`"+cmd+"`")
		for _, r := range rows {
			if len(r) < 8 {
				return "", fmt.Errorf("%s: unexpected line %q", cmd, strings.Join(r, "  "))
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", r[0], r[1], r[3], r[4], r[5], r[6], r[7])
			after["catch-up "+r[0]] = r[5] + " (" + r[6] + ")"
		}
	}
	fmt.Fprintf(&b, "\n%s.\n", strings.Join(cmds, ", "))
	if *memory > 0 {
		b.WriteString("\n| store | notifications | RSS before | RSS peak | growth | catch-up time | target |\n|---|---|---|---|---|---|---|\n")
		var mcmds []string
		for _, s := range strings.Split(*stores, ",") {
			rows, cmd, err := strataBench("--store", s, "--filter", "none", "--catch-up-memory", fmt.Sprint(*memory))
			if err != nil {
				return "", err
			}
			mcmds = append(mcmds, "`"+cmd+"`")
			for _, r := range rows {
				if len(r) < 7 {
					return "", fmt.Errorf("%s: unexpected line %q", cmd, strings.Join(r, "  "))
				}
				fmt.Fprintf(&b, "| %s |\n", strings.Join(r, " | "))
				after["catch-up memory "+r[0]] = r[4]
			}
		}
		fmt.Fprintf(&b, "\n%s.\n", strings.Join(mcmds, ", "))
	}
	return b.String(), nil
}

// before are the figures of the code before the work measured here
// (commit 95e6886), taken with the same commands on the same machine.
var before = []struct{ key, label, before string }{
	{"BenchmarkMapper/encode/JSON/vs_the_standard_library,_same_work", "mapper encode, JSON, vs encoding/json same work", "1.18x (0.29–4.09), 12 allocs"},
	{"BenchmarkMapper/decode/JSON/vs_the_standard_library,_same_work", "mapper decode, JSON, vs encoding/json same work", "1.03x (0.17–2.54), 16 allocs"},
	{"BenchmarkMapper/encode/JSON,_zlib_and_AES-GCM/vs_plain_JSON,_the_standard_library", "mapper encode, JSON + zlib + AES-GCM, vs plain encoding/json", "6.94x (1.03–21.0), 16 allocs"},
	{"callgrind Mapper/^encode$/^JSON$/same", "instructions, mapper encode JSON vs encoding/json", "1.07x"},
	{"callgrind Mapper/^decode$/^JSON$/same", "instructions, mapper decode JSON vs encoding/json", "0.84x"},
	{"callgrind Mapper/^encode$/zlib/plain", "instructions, encode JSON + zlib + AES-GCM vs plain encoding/json", "7.73x"},
	{"BenchmarkInsert/100_events/vs_appending_to_a_slice", "memory insert of 100 events vs slice append", "3.93x (1.36–17.7), 113 allocs"},
	{"BenchmarkSaveGet", "memory insert + select of 1 event", "8.41x (0.25–25.0), 6 allocs"},
	{"callgrind Insert/^100_events$", "instructions, memory insert of 100 events vs slice append", "2.63x"},
	{"callgrind SaveGet", "instructions, memory insert + select of 1 event", "22.6x"},
	{"catch-up sqlite", "SQLite catch-up of 100,000 vs raw scan", "1.40x (1.24x–1.68x)"},
	{"catch-up postgres", "PostgreSQL catch-up of 100,000 vs raw scan", "1.75x (1.35x–2.99x)"},
}

func beforeAfterSection() (string, error) {
	var b strings.Builder
	b.WriteString("| figure | before | after (this run) |\n|---|---|---|\n")
	for _, f := range before {
		a := after[f.key]
		if a == "" {
			a = "not measured in this run"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", f.label, f.before, a)
	}
	return b.String(), nil
}

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-go/strata/internal/benchreport"
	"github.com/strata-go/strata/internal/pgtest"
)

// A before/after table regenerated after only some sections keeps the
// others' figures from the file, marked as from an earlier run, with
// their targets checked again.
func TestBeforeAfterKeepsTheFiguresOfSectionsNotRun(t *testing.T) {
	t.Cleanup(func() { after, previous = map[string]figure{}, "" })
	previous = "<!-- begin bench-report: cpu-before-after -->\n| figure | before | after | target (after) |\n|---|---|---|---|\n" +
		"| SQLite catch-up of 100,000 vs raw scan | 1.40x (1.24–1.68) | 1.41x (0.85–1.77) (earlier run) | ≤ 1.00 (the raw scan's speed): MISSED |\n" +
		"<!-- end bench-report: cpu-before-after -->\n"
	after = map[string]figure{"allocs BenchmarkSaveGet": {"3", 3}, "follower sqlite": {"0.79x (0.35–0.90)", 0.7982}}
	body, err := beforeAfterSection()
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string][]string{}
	for _, r := range benchreport.TableRows(body) {
		rows[r[0]] = r
	}
	for label, want := range map[string][2]string{
		"allocs/op, memory insert + select of 1 event":    {"3", "≤ 3.00 (half of before): ok"},
		"SQLite follower / leader alone, default batches": {"0.79x (0.35–0.90)", "≥ 0.80: MISSED at 0.798x"},
		"SQLite catch-up of 100,000 vs raw scan":          {"1.41x (0.85–1.77) (earlier run)", "≤ 1.00 (the raw scan's speed): MISSED"},
		"PostgreSQL catch-up of 100,000 vs raw scan":      {"not measured", "≤ 1.00 (the raw scan's speed)"},
	} {
		if r := rows[label]; len(r) != 4 || r[2] != want[0] || r[3] != want[1] {
			t.Errorf("%s: %q, want after %q, target %q", label, r, want[0], want[1])
		}
	}
	if len(rows) != len(before) {
		t.Fatalf("%d rows, want %d", len(rows), len(before))
	}
}

// The whole pipeline at -quick, on a copy of docs/benchmarks.md: every
// section is filled with a table, its command lines and the load average,
// and the prose around the markers is kept. It takes minutes (about four
// on the 2-core CI machine), so -short leaves it out.
func TestQuickRunFillsEverySection(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every benchmark of the report, if briefly: minutes")
	}
	pgtest.Require(t)
	root, err := filepath.Abs("../../../..")
	if err != nil {
		t.Fatal(err)
	}
	orig, err := os.ReadFile(filepath.Join(root, "docs/benchmarks.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := filepath.Join(t.TempDir(), "benchmarks.md")
	if err := os.WriteFile(doc, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "run", "./internal/benchreport/cmd/bench-report", "-quick", "-doc", doc)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("bench-report -quick: %v\n%s", err, out)
	}
	b, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, name := range sectionNames() {
		body, ok := benchreport.Section(got, name)
		if !ok || !strings.Contains(body, "scripts/bench-report -quick") || len(benchreport.TableRows(body)) == 0 {
			t.Errorf("section %s:\n%s", name, body)
			continue
		}
		if name != "cpu-before-after" && (!strings.Contains(body, "Load average (1, 5, 15 minutes) when the run began: ") ||
			!(strings.Contains(body, "`strata bench ") || strings.Contains(body, "`go test ") || strings.Contains(body, "`scripts/callgrind-bench "))) {
			t.Errorf("section %s has no command line or load average:\n%s", name, body)
		}
		// What lies outside the markers is the file's own.
		got = benchreport.ReplaceSection(got, name, "", "x")
		orig = []byte(benchreport.ReplaceSection(string(orig), name, "", "x"))
	}
	if got != string(orig) {
		t.Fatal("bench-report changed the file outside its sections")
	}
}

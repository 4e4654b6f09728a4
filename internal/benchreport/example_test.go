package benchreport_test

import (
	"fmt"
	"strings"

	"github.com/strata-go/strata/internal/benchreport"
)

func Example() {
	out := `BenchmarkMapper/encode/JSON-2  500000  3900 ns/op  4800 base-ns/op  1.07 x-base  2.77 x-base-max  0.14 x-base-min  480 B/op  6 allocs/op
BenchmarkMapper/encode/JSON-2  500000  4100 ns/op  4700 base-ns/op  0.95 x-base  1.90 x-base-max  0.60 x-base-min  480 B/op  6 allocs/op
PASS`
	results, _ := benchreport.Parse(strings.NewReader(out))
	s := benchreport.Summarize(results)[0]
	fmt.Printf("%s: %.2fx (chunks %.2f–%.2fx) over %d runs, %.0f allocs/op\n", s.Name, s.Ratio, s.Min, s.Max, s.Runs, s.AllocsPerOp)

	doc := "# Benchmarks\n\nText of another suite.\n"
	doc = benchreport.ReplaceSection(doc, "mapper", "## The mapper", "old table")
	doc = benchreport.ReplaceSection(doc, "mapper", "## The mapper", "new table")
	fmt.Print(doc)
	// Output:
	// BenchmarkMapper/encode/JSON: 1.01x (chunks 0.14–2.77x) over 2 runs, 6 allocs/op
	// # Benchmarks
	//
	// Text of another suite.
	//
	// ## The mapper
	//
	// <!-- begin bench-report: mapper -->
	// new table
	// <!-- end bench-report: mapper -->
}

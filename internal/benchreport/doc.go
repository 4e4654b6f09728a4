// Package benchreport regenerates docs/benchmarks.md from benchmark
// output: it reads the lines of go test benchmarks measured with
// internal/benchcmp (ratio to a baseline and the spread of chunks) and what
// `strata bench --json` writes (every round of every case and system),
// renders them as Markdown tables with each target's verdict and the
// rounds that met it, and replaces sections of a Markdown file between
// markers, leaving the rest of the file as it is.
//
// A section is delimited by two HTML comments, which Markdown does not
// show:
//
//	<!-- begin bench-report: NAME -->
//	...
//	<!-- end bench-report: NAME -->
//
// Each benchmark suite owns its sections by name: a generator replaces only
// the sections it writes, so suites can add theirs to the same file, each
// a block of its own that merges without conflict. scripts/bench-report
// runs the benchmarks and writes the sections of this package's command.
package benchreport

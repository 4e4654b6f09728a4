package benchreport

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// Result is one line of go test benchmark output: the benchmark's name
// (without the -GOMAXPROCS suffix) and its metrics by unit ("ns/op",
// "allocs/op", and benchcmp's "x-base", "x-base-min", "x-base-max",
// "base-ns/op").
type Result struct {
	Name    string
	Metrics map[string]float64
}

// Parse reads go test benchmark output and returns its result lines, in
// order; other lines are ignored.
func Parse(r io.Reader) ([]Result, error) {
	var out []Result
	s := bufio.NewScanner(r)
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		res := Result{Name: name, Metrics: map[string]float64{}}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("benchmark %s: metric %q is not a number", name, f[i])
			}
			res.Metrics[f[i+1]] = v
		}
		out = append(out, res)
	}
	return out, s.Err()
}

// Summary is what several runs of one benchcmp benchmark say: the median
// over runs of the median chunk ratio, and the lowest and highest chunk
// ratio of any run, with the median times and allocations.
type Summary struct {
	Name                    string
	Runs                    int
	Ratio, Min, Max         float64
	NsPerOp, BaseNsPerOp    float64
	AllocsPerOp, BytesPerOp float64
}

// Summarize groups results by name, in the order names first appear.
func Summarize(results []Result) []Summary {
	var names []string
	by := map[string][]Result{}
	for _, r := range results {
		if _, ok := by[r.Name]; !ok {
			names = append(names, r.Name)
		}
		by[r.Name] = append(by[r.Name], r)
	}
	out := make([]Summary, 0, len(names))
	for _, n := range names {
		rs := by[n]
		metric := func(unit string) []float64 {
			var v []float64
			for _, r := range rs {
				if x, ok := r.Metrics[unit]; ok {
					v = append(v, x)
				}
			}
			return v
		}
		s := Summary{Name: n, Runs: len(rs), Ratio: median(metric("x-base")), NsPerOp: median(metric("ns/op")),
			BaseNsPerOp: median(metric("base-ns/op")), AllocsPerOp: median(metric("allocs/op")), BytesPerOp: median(metric("B/op"))}
		if v := metric("x-base-min"); len(v) > 0 {
			s.Min = slices.Min(v)
		}
		if v := metric("x-base-max"); len(v) > 0 {
			s.Max = slices.Max(v)
		}
		out = append(out, s)
	}
	return out
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}

// Find returns the summary whose name is name.
func Find(summaries []Summary, name string) (Summary, bool) {
	for _, s := range summaries {
		if s.Name == name {
			return s, true
		}
	}
	return Summary{}, false
}

// Duration formats nanoseconds as a short time ("4.2 µs").
func Duration(ns float64) string {
	switch {
	case ns >= 1e9:
		return fmt.Sprintf("%.2f s", ns/1e9)
	case ns >= 1e6:
		return fmt.Sprintf("%.1f ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	}
	return fmt.Sprintf("%.0f ns", ns)
}

// ReplaceSection returns doc with the section called name replaced by
// body, between its markers. A section the document does not have yet is
// appended at its end, under heading if heading is not empty.
func ReplaceSection(doc, name, heading, body string) string {
	begin, end := "<!-- begin bench-report: "+name+" -->", "<!-- end bench-report: "+name+" -->"
	body = strings.TrimRight(body, "\n") + "\n"
	i := strings.Index(doc, begin)
	j := strings.Index(doc, end)
	if i >= 0 && j > i {
		return doc[:i+len(begin)] + "\n" + body + doc[j:]
	}
	doc = strings.TrimRight(doc, "\n") + "\n\n"
	if heading != "" {
		doc += heading + "\n\n"
	}
	return doc + begin + "\n" + body + end + "\n"
}

package benchreport

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/strata-go/strata/internal/benchsuite"
)

// ErrNoResults is returned by ParseRun when a run of strata bench wrote
// no figure at all: a report made from it would be a table of nothing.
var ErrNoResults = errors.New("strata bench wrote no results")

// ParseRun reads what `strata bench --json` wrote.
func ParseRun(r io.Reader) (benchsuite.Report, error) {
	var rep benchsuite.Report
	if err := json.NewDecoder(r).Decode(&rep); err != nil {
		return rep, fmt.Errorf("read strata bench --json: %w", err)
	}
	if len(rep.Results)+len(rep.CatchUpMemory)+len(rep.System)+len(rep.Projection) == 0 {
		return rep, ErrNoResults
	}
	return rep, nil
}

// StoreName is how the report names a store of strata bench ("sqlite" is
// "SQLite"); a store it does not know keeps bench's name.
func StoreName(store string) string {
	switch store {
	case "sqlite":
		return "SQLite"
	case "postgres":
		return "PostgreSQL"
	case "mysql":
		return "MySQL"
	case "messagedb":
		return "Message DB"
	case "mongodb":
		return "MongoDB"
	case "jetstream":
		return "JetStream"
	case "dynamodb":
		return "DynamoDB"
	case "s3":
		return "S3"
	}
	return store
}

// Number formats a target or a limit with two decimals, or three where
// two would round it (1/6 is 0.167, not 0.17), so that a ratio shown with
// two decimals is never read as meeting a target it misses.
func Number(x float64) string {
	s := strconv.FormatFloat(x, 'f', 2, 64)
	if v, _ := strconv.ParseFloat(s, 64); v != x {
		return strconv.FormatFloat(x, 'f', 3, 64)
	}
	return s
}

// AtMost says whether a median ratio of time meets a target it must not
// exceed, and how many of the rounds' ratios did: "≤ 1.18: ok (3/5)".
// A target of 0 is none ("–").
func AtMost(target, median float64, rounds []float64) string {
	if target <= 0 {
		return "–"
	}
	n := 0
	for _, x := range rounds {
		if x <= target {
			n++
		}
	}
	return fmt.Sprintf("≤ %s: %s (%d/%d)", Number(target), verdict(median <= target)+closeTo(median, target), n, len(rounds))
}

// AtLeast is AtMost for a target that a ratio must reach: "≥ 0.80:
// MISSED (1/5)".
func AtLeast(target, median float64, rounds []float64) string {
	if target <= 0 {
		return "–"
	}
	n := 0
	for _, x := range rounds {
		if x >= target {
			n++
		}
	}
	return fmt.Sprintf("≥ %s: %s (%d/%d)", Number(target), verdict(median >= target)+closeTo(median, target), n, len(rounds))
}

// Close gives a median that the table's two decimals would show equal
// to its target with three, so that "0.80x, ≥ 0.80: MISSED" reads
// "MISSED at 0.798x"; it is empty otherwise.
func Close(median, target float64) string { return closeTo(median, target) }

func closeTo(median, target float64) string {
	if median != target && fmt.Sprintf("%.2f", median) == fmt.Sprintf("%.2f", target) {
		return fmt.Sprintf(" at %.3fx", median)
	}
	return ""
}

func verdict(ok bool) string {
	if ok {
		return "ok"
	}
	return "MISSED"
}

// Rate is the target of a ratio of time as a ratio of rates, for the
// reader who thinks in throughput: a time ratio of at most 1/6 is at least
// 6x the rate.
func Rate(target float64) string {
	if target <= 0 {
		return ""
	}
	return fmt.Sprintf("%.2fx the rate", 1/target)
}

// ResultsTable renders results of strata bench as a Markdown table: a row
// per case with each side's median time per operation, the median of the
// rounds' ratios and their extremes, and the target with the rounds that
// met it.
func ResultsTable(results []benchsuite.Result) string {
	var b strings.Builder
	b.WriteString("| store | case | writers | baseline | Strata/op (median) | baseline/op (median) | ratio (median of rounds) | round ratios (min–max) | target: median (rounds meeting it) |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		target := AtMost(r.Target, r.Ratio, r.RoundRatios)
		if r.Target > 0 && r.Target < 1 {
			// The issue states these as rates: 16 writers at 6x the rate of one.
			target += ", " + Rate(r.Target)
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %s | %.2fx | %.2f–%.2fx | %s |\n", StoreName(r.Store), r.Case, r.Writers, r.Baseline,
			Duration(float64(r.StrataPerOp)), Duration(float64(r.BasePerOp)), r.Ratio, r.RatioMin, r.RatioMax, target)
	}
	return b.String()
}

// System is the summary of the rounds of strata bench --system of one
// store and one batch size: medians of the rounds, with the extremes of
// the lag p99 and of the ratio of the follower to the leader alone.
type System struct {
	Store                                    string
	BatchSize, Events                        int
	LeaderAlone, Leader, Follower, CatchUp   float64
	LagP50, LagP99, LagP99Min, LagP99Max     time.Duration
	Ratios                                   []float64
	Ratio, RatioMin, RatioMax, KeepingUpWith float64
}

// SummarizeSystem groups rounds by store and batch size, in the order
// they first appear.
func SummarizeSystem(rounds []benchsuite.SystemResult) []System {
	type key struct {
		store string
		batch int
	}
	var keys []key
	by := map[key][]benchsuite.SystemResult{}
	for _, r := range rounds {
		k := key{r.Store, r.BatchSize}
		if _, ok := by[k]; !ok {
			keys = append(keys, k)
		}
		by[k] = append(by[k], r)
	}
	out := make([]System, 0, len(keys))
	for _, k := range keys {
		rs := by[k]
		field := func(f func(benchsuite.SystemResult) float64) []float64 {
			v := make([]float64, len(rs))
			for i, r := range rs {
				v[i] = f(r)
			}
			return v
		}
		p99 := field(func(r benchsuite.SystemResult) float64 { return float64(r.LagP99) })
		ratios := field(func(r benchsuite.SystemResult) float64 { return r.Ratio })
		out = append(out, System{
			Store: k.store, BatchSize: k.batch, Events: rs[0].Events,
			LeaderAlone: median(field(func(r benchsuite.SystemResult) float64 { return r.LeaderAlone })),
			Leader:      median(field(func(r benchsuite.SystemResult) float64 { return r.Leader })),
			Follower:    median(field(func(r benchsuite.SystemResult) float64 { return r.Follower })),
			CatchUp:     median(field(func(r benchsuite.SystemResult) float64 { return r.CatchUp })),
			LagP50:      time.Duration(median(field(func(r benchsuite.SystemResult) float64 { return float64(r.LagP50) }))),
			LagP99:      time.Duration(median(p99)), LagP99Min: time.Duration(slices.Min(p99)), LagP99Max: time.Duration(slices.Max(p99)),
			Ratios: ratios, Ratio: median(ratios), RatioMin: slices.Min(ratios), RatioMax: slices.Max(ratios),
			KeepingUpWith: median(field(func(r benchsuite.SystemResult) float64 { return r.Follower / r.Leader })),
		})
	}
	return out
}

// SystemTable renders the rounds of strata bench --system as a Markdown
// table, a row per store and batch size, with target the least that the
// follower's throughput may be as a share of the leader's alone.
func SystemTable(rounds []benchsuite.SystemResult, target float64) string {
	var b strings.Builder
	b.WriteString("| store | follower | events | rounds | leader alone | leader followed | follower | catching up | lag p50 | lag p99 (min–max) | follower / leader alone (min–max) | target: median (rounds meeting it) | follower / leader followed |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range SummarizeSystem(rounds) {
		follower := fmt.Sprintf("batches of up to %d", s.BatchSize)
		if s.BatchSize == 1 {
			follower = "batch 1 (a transaction per notification)"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %s/s | %s/s | %s/s | %s/s | %s | %s (%s–%s) | %.2fx (%.2f–%.2f) | %s | %.2fx |\n",
			StoreName(s.Store), follower, Thousands(float64(s.Events)), len(s.Ratios), Thousands(s.LeaderAlone), Thousands(s.Leader), Thousands(s.Follower), Thousands(s.CatchUp),
			Lag(s.LagP50), Lag(s.LagP99), Lag(s.LagP99Min), Lag(s.LagP99Max), s.Ratio, s.RatioMin, s.RatioMax,
			AtLeast(target, s.Ratio, s.Ratios), s.KeepingUpWith)
	}
	return b.String()
}

// MemoryTable renders strata bench --catch-up-memory results as a
// Markdown table, with limit the growth of the resident memory to stay
// under, in bytes.
func MemoryTable(results []benchsuite.CatchUpMemoryResult, limit int64) string {
	var b strings.Builder
	b.WriteString("| store | notifications | RSS before | RSS peak | growth | catch-up time | target |\n|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | < %s: %s |\n", StoreName(r.Store), Thousands(float64(r.Events)), MiB(r.Before), MiB(r.Peak),
			MiB(r.Growth()), Duration(float64(r.Elapsed)), MiB(limit), verdict(r.Growth() < limit))
	}
	return b.String()
}

// MiB formats bytes in mebibytes: "68.6 MiB".
func MiB(bytes int64) string {
	return fmt.Sprintf("%.1f MiB", float64(bytes)/(1<<20))
}

// Lag formats a lag: milliseconds below a second ("276 ms", "1.72 s").
func Lag(d time.Duration) string {
	if d >= time.Second {
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
}

// Thousands formats x rounded to an integer with commas between
// thousands: "1,100".
func Thousands(x float64) string { return benchsuite.Thousands(int64(math.Round(x))) }

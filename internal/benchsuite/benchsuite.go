// Package benchsuite measures Strata's recorders against the raw database
// drivers doing the same work on tables of the same shape, in the same run,
// and reports ratios. The strata bench command prints its table; the
// adapters' go test benchmarks run the same cases through package
// benchtest.
package benchsuite

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/strata-go/strata/domain"
	"github.com/strata-go/strata/persistence"
)

// Op is one operation of a case; i numbers the operations of a run.
type Op func(ctx context.Context, i int) error

// Case is a measurement: Strata's operation against a baseline doing the
// same work.
type Case struct {
	Name     string
	Baseline string // what the baseline is, e.g. "raw INSERT"
	// Writers is how many goroutines share the operations (default 1).
	Writers int
	// Setup prepares the case and returns the two operations. It runs
	// once, before the rounds.
	Setup func(ctx context.Context) (strata, base Op, err error)
	// Events is the number of events one operation moves, for events/s.
	Events int
	// Target is the ratio of Strata's time to the baseline's that the
	// project aims to stay under (0: none).
	Target float64
}

// Result is the outcome of a case.
type Result struct {
	Store, Case, Baseline string
	Writers               int
	// StrataPerOp and BasePerOp are the medians over the rounds of each
	// side's time per operation.
	StrataPerOp, BasePerOp time.Duration
	Events                 int
	// RoundRatios are Strata's time over the baseline's in each round, in
	// the order run: below 1 is faster.
	RoundRatios []float64
	// Ratio is the median of RoundRatios; RatioMin and RatioMax are their
	// extremes, the spread to read Ratio with.
	Ratio, RatioMin, RatioMax float64
	Target                    float64
}

// UnderTarget returns how many rounds' ratios are at most the target.
func (r Result) UnderTarget() int {
	n := 0
	for _, x := range r.RoundRatios {
		if x <= r.Target {
			n++
		}
	}
	return n
}

// Config sizes a run.
type Config struct {
	// Rounds is the number of rounds, each of which runs the baseline and
	// Strata once, one after the other (default 5).
	Rounds int
	// RoundTime is about how long one side of a round runs (default 1s).
	RoundTime time.Duration
	// Filter, if not empty, runs only cases whose names contain it.
	Filter string
	// Progress, if not nil, receives a line per finished case.
	Progress io.Writer
}

func (c *Config) defaults() {
	if c.Rounds <= 0 {
		c.Rounds = 5
	}
	if c.RoundTime <= 0 {
		c.RoundTime = time.Second
	}
}

// Run measures the cases of a store.
func Run(ctx context.Context, store string, cases []Case, cfg Config) ([]Result, error) {
	cfg.defaults()
	var out []Result
	for _, c := range cases {
		if cfg.Filter != "" && !strings.Contains(strings.ToLower(c.Name), strings.ToLower(cfg.Filter)) {
			continue
		}
		r, err := measure(ctx, store, c, cfg)
		if err != nil {
			return out, fmt.Errorf("%s %s: %w", store, c.Name, err)
		}
		if cfg.Progress != nil {
			name := c.Name
			if r.Writers > 1 {
				name += fmt.Sprintf(", %d writers", r.Writers)
			}
			fmt.Fprintf(cfg.Progress, "%s %s: %.2fx (rounds %.2fx–%.2fx) %s\n", store, name, r.Ratio, r.RatioMin, r.RatioMax, c.Baseline)
		}
		out = append(out, r)
	}
	return out, nil
}

// measure runs a case's rounds. Each round runs both sides for the same
// number of operations, one after the other, and its ratio comes from
// that pair alone, so that a machine busy with other work for a while
// slows one round's pair rather than one side's median. Which side goes
// first alternates from round to round, so that neither always runs on
// caches warmed, or a disk queue filled, by the other.
func measure(ctx context.Context, store string, c Case, cfg Config) (Result, error) {
	writers := max(c.Writers, 1)
	strata, base, err := c.Setup(ctx)
	if err != nil {
		return Result{}, err
	}
	// Calibrate on both sides, which also warms both: how many operations
	// make a round of each side last about RoundTime.
	n, offset := writers, 0
	for {
		var d time.Duration
		for _, op := range []Op{strata, base} {
			t, err := timeOps(ctx, op, offset, n, writers)
			if err != nil {
				return Result{}, err
			}
			offset += n
			d += t / 2
		}
		if d >= cfg.RoundTime/4 || n >= 1<<20 {
			n = max(writers, int(float64(n)*float64(cfg.RoundTime)/float64(max(d, time.Microsecond))))
			break
		}
		n *= 4
	}
	var strataTimes, baseTimes []time.Duration
	var ratios []float64
	for r := range cfg.Rounds {
		var pair [2]time.Duration // Strata's, the baseline's
		order := []int{1, 0}
		if r%2 == 1 {
			order = []int{0, 1}
		}
		for _, side := range order {
			op := strata
			if side == 1 {
				op = base
			}
			d, err := timeOps(ctx, op, offset, n, writers)
			if err != nil {
				return Result{}, err
			}
			offset += n
			pair[side] = d
		}
		strataTimes = append(strataTimes, pair[0]/time.Duration(n))
		baseTimes = append(baseTimes, pair[1]/time.Duration(n))
		ratios = append(ratios, float64(pair[0])/float64(max(pair[1], 1)))
	}
	return Result{Store: store, Case: c.Name, Baseline: c.Baseline, Writers: writers,
		StrataPerOp: medianDuration(strataTimes), BasePerOp: medianDuration(baseTimes), Events: c.Events,
		RoundRatios: ratios, Ratio: median(ratios), RatioMin: slices.Min(ratios), RatioMax: slices.Max(ratios), Target: c.Target}, nil
}

// timeOps runs ops [from, from+n) on writers goroutines and returns the
// wall time.
func timeOps(ctx context.Context, op Op, from, n, writers int) (time.Duration, error) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	next := make(chan int, n)
	for i := range n {
		next <- from + i
	}
	close(next)
	start := time.Now()
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := op(ctx, i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(start), first
}

// median returns the median of xs: the middle value, or the mean of the
// two middle values of an even count.
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}

func medianDuration(ds []time.Duration) time.Duration {
	xs := make([]float64, len(ds))
	for i, d := range ds {
		xs[i] = float64(d)
	}
	return time.Duration(median(xs))
}

// Print writes results as a table. The times are the medians of the
// rounds; the ratio is the median of the rounds' ratios, beside their
// minimum and maximum; the target column says whether the median meets
// the target, and in how many rounds the ratio did.
func Print(w io.Writer, results []Result) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "store\tcase\twriters\tStrata/op (median)\tbaseline/op (median)\tratio (median of rounds)\tround ratios (min–max)\ttarget (rounds under it)\tbaseline")
	for _, r := range results {
		target := "-"
		if r.Target > 0 {
			mark := "ok"
			if r.Ratio > r.Target {
				mark = "MISSED"
			}
			target = fmt.Sprintf("<= %.2f %s (%d/%d)", r.Target, mark, r.UnderTarget(), len(r.RoundRatios))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%v\t%v\t%.2fx\t%.2fx–%.2fx\t%s\t%s\n", r.Store, r.Case, r.Writers,
			r.StrataPerOp.Round(time.Microsecond/10), r.BasePerOp.Round(time.Microsecond/10), r.Ratio, r.RatioMin, r.RatioMax, target, r.Baseline)
	}
	tw.Flush()
}

// Events returns n stored events of new aggregates (one each) with
// state of the given size.
func Events(n, stateSize int) []persistence.StoredEvent {
	out := make([]persistence.StoredEvent, n)
	for i := range out {
		state := make([]byte, stateSize)
		rand.Read(state)
		// New aggregates get their IDs as an application's do.
		out[i] = persistence.StoredEvent{OriginatorID: domain.NewID(), OriginatorVersion: 1, Topic: "bench.Happened", State: state}
	}
	return out
}

// History returns the n events of one aggregate.
func History(n, stateSize int) []persistence.StoredEvent {
	id := domain.NewID()
	out := Events(n, stateSize)
	for i := range out {
		out[i].OriginatorID, out[i].OriginatorVersion = id, int64(i+1)
	}
	return out
}

// StateSize is the size of the state of benchmark events, about that of a
// small JSON event.
const StateSize = 200

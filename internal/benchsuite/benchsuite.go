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
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

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
	Store, Case, Baseline  string
	Writers                int
	StrataPerOp, BasePerOp time.Duration
	Events                 int
	// Ratio is Strata's time over the baseline's: below 1 is faster.
	Ratio  float64
	Target float64
}

// Config sizes a run.
type Config struct {
	// Rounds is the number of alternating baseline/Strata rounds; the
	// medians are reported (default 5).
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
			fmt.Fprintf(cfg.Progress, "%s %s: %.2fx %s\n", store, c.Name, r.Ratio, c.Baseline)
		}
		out = append(out, r)
	}
	return out, nil
}

func measure(ctx context.Context, store string, c Case, cfg Config) (Result, error) {
	writers := max(c.Writers, 1)
	strata, base, err := c.Setup(ctx)
	if err != nil {
		return Result{}, err
	}
	// Calibrate: how many operations fit in a round.
	n := writers
	for {
		d, err := timeOps(ctx, strata, 0, n, writers)
		if err != nil {
			return Result{}, err
		}
		if d >= cfg.RoundTime/4 || n >= 1<<20 {
			n = max(writers, int(float64(n)*float64(cfg.RoundTime)/float64(max(d, time.Microsecond))))
			break
		}
		n *= 4
	}
	var strataTimes, baseTimes []time.Duration
	offset := 1 << 24
	for r := range cfg.Rounds {
		// Alternate which side goes first, so drift hurts neither.
		sides := []struct {
			op    Op
			times *[]time.Duration
		}{{base, &baseTimes}, {strata, &strataTimes}}
		if r%2 == 1 {
			sides[0], sides[1] = sides[1], sides[0]
		}
		for _, s := range sides {
			d, err := timeOps(ctx, s.op, offset, n, writers)
			if err != nil {
				return Result{}, err
			}
			offset += n
			*s.times = append(*s.times, d/time.Duration(n))
		}
	}
	sp, bp := median(strataTimes), median(baseTimes)
	return Result{Store: store, Case: c.Name, Baseline: c.Baseline, Writers: writers, StrataPerOp: sp, BasePerOp: bp,
		Events: c.Events, Ratio: float64(sp) / float64(bp), Target: c.Target}, nil
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

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// Print writes results as a table.
func Print(w io.Writer, results []Result) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "store\tcase\twriters\tStrata/op\tbaseline/op\tratio\ttarget\tbaseline")
	for _, r := range results {
		target := "-"
		if r.Target > 0 {
			mark := "ok"
			if r.Ratio > r.Target {
				mark = "MISSED"
			}
			target = fmt.Sprintf("<= %.2f %s", r.Target, mark)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%v\t%v\t%.2fx\t%s\t%s\n", r.Store, r.Case, r.Writers,
			r.StrataPerOp.Round(time.Microsecond/10), r.BasePerOp.Round(time.Microsecond/10), r.Ratio, target, r.Baseline)
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
		out[i] = persistence.StoredEvent{OriginatorID: uuid.New(), OriginatorVersion: 1, Topic: "bench.Happened", State: state}
	}
	return out
}

// History returns the n events of one aggregate.
func History(n, stateSize int) []persistence.StoredEvent {
	id := uuid.New()
	out := Events(n, stateSize)
	for i := range out {
		out[i].OriginatorID, out[i].OriginatorVersion = id, int64(i+1)
	}
	return out
}

// StateSize is the size of the state of benchmark events, about that of a
// small JSON event.
const StateSize = 200

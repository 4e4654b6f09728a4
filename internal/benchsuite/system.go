package benchsuite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/domain"
	"github.com/strata-go/strata/examples/counters"
	"github.com/strata-go/strata/examples/worlds"
	"github.com/strata-go/strata/system"
)

// SystemResult is the throughput of a system of two applications run by
// the concurrent runner: the leader (the Worlds example) saving one event
// per save, and the follower (the Counters example) processing each of
// them into a save of its own.
type SystemResult struct {
	Store  string
	Events int
	// BatchSize is the follower's system.BatchSize: 1 records each
	// notification in a transaction of its own.
	BatchSize int
	// LeaderAlone is the leader's raw save throughput in events/s, with no
	// follower: the baseline.
	LeaderAlone float64
	// Leader is the leader's save throughput while the follower runs.
	Leader float64
	// Follower is the follower's throughput while the leader saves: the
	// events over the time from the first save to the follower having
	// recorded the last.
	Follower float64
	// CatchUp is the follower's throughput on a backlog (the baseline's
	// events, processed when the runner starts).
	CatchUp float64
	// Lag is the time from a save's return to the follower having recorded
	// what it made of the event (0 if the follower was quicker than the
	// save's return).
	LagP50, LagP99, LagMax time.Duration
	// Ratio is Follower over LeaderAlone: 1 means the follower keeps up
	// with a leader saving as fast as it can alone.
	Ratio float64
}

// SystemTimeout bounds how long SystemThroughput waits for the follower.
const SystemTimeout = 5 * time.Minute

// probe records when the follower recorded what it made of each upstream
// notification. A follower processes notifications in one goroutine: its
// policy notes each notification in hand, and the listener of its saves,
// called in the same goroutine after the transaction commits (once per
// notification's commit, after the whole batch), notes the time for every
// notification noted since.
type probe struct {
	mu       sync.Mutex
	inHand   []int64
	recorded map[int64]time.Time
	signal   chan struct{}
}

func newProbe() *probe {
	return &probe{recorded: map[int64]time.Time{}, signal: make(chan struct{}, 1)}
}

func (p *probe) processing(id int64) {
	p.mu.Lock()
	p.inHand = append(p.inHand, id)
	p.mu.Unlock()
}

func (p *probe) saved(context.Context, []application.Recording) {
	now := time.Now()
	p.mu.Lock()
	for _, id := range p.inHand {
		if _, ok := p.recorded[id]; !ok {
			p.recorded[id] = now
		}
	}
	p.inHand = p.inHand[:0]
	p.mu.Unlock()
	select {
	case p.signal <- struct{}{}:
	default:
	}
}

func (p *probe) at(id int64) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.recorded[id]
	return t, ok
}

// wait waits until the follower has recorded notification id (and so all
// before it) and returns when.
func (p *probe) wait(ctx context.Context, id int64) (time.Time, error) {
	timeout := time.NewTimer(SystemTimeout)
	defer timeout.Stop()
	for {
		if t, ok := p.at(id); ok {
			return t, nil
		}
		select {
		case <-p.signal:
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-timeout.C:
			return time.Time{}, fmt.Errorf("the follower did not process notification %d within %v", id, SystemTimeout)
		}
	}
}

// probedCounters is the Counters example with its policy noting the
// notification in hand.
type probedCounters struct {
	*counters.Counters
	probe *probe
}

func (c probedCounters) Policy(ctx context.Context, e domain.Event, p *system.Processing) error {
	c.probe.processing(p.Tracking.NotificationID)
	return c.Counters.Policy(ctx, e, p)
}

// things is how many different things happen: the follower keeps a
// counter of each, so that no counter grows long.
const things = 50

// saveEvents saves n events of one new world with app, one event per save,
// calling saved with each event's notification ID after its save returned.
func saveEvents(ctx context.Context, app *worlds.Worlds, n int, prefix string, saved func(id int64)) error {
	w, err := worlds.NewWorld()
	if err != nil {
		return err
	}
	if _, err := app.Save(ctx, w); err != nil {
		return err
	}
	for i := range n {
		if err := w.MakeItSo(fmt.Sprintf("%s %d", prefix, i%things)); err != nil {
			return err
		}
		recs, err := app.Save(ctx, w)
		if err != nil {
			return err
		}
		if saved != nil {
			saved(recs[0].NotificationID)
		}
	}
	return nil
}

// SystemThroughput measures a system in a fresh store (env) in three
// phases: the leader alone saves n events (the baseline); a concurrent
// runner starts and the follower, processing up to batchSize
// notifications per transaction (see system.BatchSize; with 1, without
// system.BatchWait either, as followers were before batches), catches up on
// them; then the leader saves n more while the follower processes them,
// and the lag of each is measured.
func SystemThroughput(ctx context.Context, store string, env map[string]string, n, batchSize int) (SystemResult, error) {
	res := SystemResult{Store: store, Events: n, BatchSize: batchSize}
	if n < 1 {
		return res, errors.New("system throughput: no events to measure")
	}

	// The leader alone.
	leader, err := worlds.New(ctx, application.WithoutProcessEnv(), application.WithEnv(env))
	if err != nil {
		return res, err
	}
	var backlog int64 // the last notification of the backlog
	start := time.Now()
	err = saveEvents(ctx, leader, n, "backlog", func(id int64) { backlog = id })
	elapsed := time.Since(start)
	if err == nil {
		res.LeaderAlone = float64(n) / elapsed.Seconds()
	}
	leader.Close()
	if err != nil {
		return res, fmt.Errorf("leader alone: %w", err)
	}

	// The follower catches up.
	p := newProbe()
	sys, err := system.New([]system.Def{
		system.Define(worlds.Name, worlds.Types, worlds.New),
		system.Define(counters.Name, counters.Types, func(ctx context.Context, opts ...application.Option) (probedCounters, error) {
			c, err := counters.New(ctx, opts...)
			if err != nil {
				return probedCounters{}, err
			}
			c.AddListener(p.saved)
			return probedCounters{c, p}, nil
		}),
	}, []string{worlds.Name, counters.Name})
	if err != nil {
		return res, err
	}
	opts := []system.Option{system.WithEnv(env), system.BatchSize(batchSize)}
	if batchSize == 1 {
		opts = append(opts, system.BatchWait(0)) // the follower as it was before batches
	}
	r := system.NewConcurrentRunner(sys, opts...)
	if err := r.Start(ctx); err != nil {
		return res, err
	}
	defer r.Stop(context.WithoutCancel(ctx))
	start = time.Now()
	end, err := p.wait(ctx, backlog)
	if err != nil {
		return res, fmt.Errorf("catch up: %w (%v)", err, r.Err())
	}
	res.CatchUp = float64(n) / end.Sub(start).Seconds()

	// The leader saves while the follower processes.
	followed, err := system.Get[*worlds.Worlds](r, worlds.Name)
	if err != nil {
		return res, err
	}
	ids := make([]int64, 0, n)
	savedAt := make([]time.Time, 0, n)
	start = time.Now()
	err = saveEvents(ctx, followed, n, "thing", func(id int64) {
		savedAt = append(savedAt, time.Now())
		ids = append(ids, id)
	})
	if err != nil {
		return res, fmt.Errorf("leader followed: %w", err)
	}
	res.Leader = float64(n) / savedAt[n-1].Sub(start).Seconds()
	end, err = p.wait(ctx, ids[n-1])
	if err != nil {
		return res, fmt.Errorf("follow: %w (%v)", err, r.Err())
	}
	res.Follower = float64(n) / end.Sub(start).Seconds()
	res.Ratio = res.Follower / res.LeaderAlone
	lags := make([]time.Duration, n)
	for i, id := range ids {
		at, ok := p.at(id)
		if !ok {
			return res, fmt.Errorf("the follower did not record notification %d", id)
		}
		lags[i] = max(at.Sub(savedAt[i]), 0)
	}
	slices.Sort(lags)
	res.LagP50, res.LagP99, res.LagMax = percentile(lags, 50), percentile(lags, 99), lags[n-1]
	if err := r.Err(); err != nil {
		return res, err
	}
	return res, r.Stop(ctx)
}

// percentile returns the p-th percentile of sorted durations.
func percentile(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p+99)/100 - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// PrintSystemRounds writes rounds of results as a table: a row per store
// and batch size, with the medians of the rounds and, for the ratio and the
// lag p99, their minimum and maximum. The last column, the follower's
// throughput over the leader's while followed, says whether the follower
// keeps up (1.00x) with the leader it slows down.
func PrintSystemRounds(w io.Writer, rounds []SystemResult) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "store\tbatch\tevents\trounds\tleader alone/s\tleader followed/s\tfollower/s\tcatch-up/s\tlag p50\tlag p99 (min–max)\tfollower/leader alone (min–max)\tfollower/leader followed")
	type key struct {
		store string
		batch int
	}
	var keys []key
	for _, r := range rounds {
		if k := (key{r.Store, r.BatchSize}); !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	round := func(d time.Duration) time.Duration { return d.Round(100 * time.Microsecond) }
	for _, k := range keys {
		var alone, followed, follower, catchUp, ratio, keep []float64
		var p50, p99 []time.Duration
		n := 0
		for _, r := range rounds {
			if r.Store != k.store || r.BatchSize != k.batch {
				continue
			}
			alone, followed, follower = append(alone, r.LeaderAlone), append(followed, r.Leader), append(follower, r.Follower)
			catchUp, ratio = append(catchUp, r.CatchUp), append(ratio, r.Ratio)
			keep = append(keep, r.Follower/r.Leader)
			p50, p99 = append(p50, r.LagP50), append(p99, r.LagP99)
			n = r.Events
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.0f\t%.0f\t%.0f\t%.0f\t%v\t%v (%v–%v)\t%.2fx (%.2f–%.2f)\t%.2fx\n", k.store, k.batch, n, len(ratio),
			median(alone), median(followed), median(follower), median(catchUp), round(medianDuration(p50)),
			round(medianDuration(p99)), round(slices.Min(p99)), round(slices.Max(p99)), median(ratio), slices.Min(ratio), slices.Max(ratio), median(keep))
	}
	tw.Flush()
}

// PrintSystem writes results as a table.
func PrintSystem(w io.Writer, results []SystemResult) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "store\tbatch\tevents\tleader alone/s\tleader followed/s\tfollower/s\tcatch-up/s\tlag p50\tlag p99\tlag max\tfollower/leader alone")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%.0f\t%.0f\t%.0f\t%v\t%v\t%v\t%.2fx\n", r.Store, r.BatchSize, r.Events, r.LeaderAlone, r.Leader, r.Follower, r.CatchUp,
			r.LagP50.Round(10*time.Microsecond), r.LagP99.Round(10*time.Microsecond), r.LagMax.Round(10*time.Microsecond), r.Ratio)
	}
	tw.Flush()
}

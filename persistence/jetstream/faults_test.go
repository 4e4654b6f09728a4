package jetstream_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	njs "github.com/nats-io/nats.go/jetstream"

	"github.com/strata-go/strata/internal/natstest"
	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/persistence/jetstream"
)

type evKey struct {
	id      uuid.UUID
	version int64
}

// ledger is what the writers of a fault test were told: the saves the
// store acknowledged.
type ledger struct {
	mu    sync.Mutex
	acked map[evKey]string // event → state
	saves int
	retry int           // attempts that failed with an operational error
	worst time.Duration // the longest save, retries included
}

// save records batch, saving it again with the same commit while the
// store fails operationally, as a caller of an unknown outcome should.
func (l *ledger) save(ctx context.Context, r persistence.AggregateRecorder, batch []persistence.StoredEvent) error {
	start := time.Now()
	for {
		_, err := r.InsertEvents(ctx, batch)
		switch {
		case err == nil, errors.Is(err, persistence.ErrAlreadyCommitted):
			l.mu.Lock()
			defer l.mu.Unlock()
			for _, e := range batch {
				l.acked[evKey{e.OriginatorID, e.OriginatorVersion}] = string(e.State)
			}
			l.saves++
			l.worst = max(l.worst, time.Since(start))
			return nil
		case errors.Is(err, persistence.ErrOperational) && ctx.Err() == nil:
			l.mu.Lock()
			l.retry++
			l.mu.Unlock()
			time.Sleep(20 * time.Millisecond)
		default:
			return err
		}
	}
}

func newBatch(w, s int) []persistence.StoredEvent {
	id, c := uuid.New(), uuid.New()
	return []persistence.StoredEvent{
		{OriginatorID: id, OriginatorVersion: 1, Topic: "Created", State: fmt.Appendf(nil, "w%d-s%d-1", w, s), CommitID: c},
		{OriginatorID: id, OriginatorVersion: 2, Topic: "Changed", State: fmt.Appendf(nil, "w%d-s%d-2", w, s), CommitID: c},
	}
}

// follow tails the log from the start until stop is closed and it has
// read up to the highest ID, checking that IDs increase and no event comes
// twice.
func follow(ctx context.Context, r persistence.ApplicationRecorder, read map[evKey]int64, stop <-chan struct{}, target func() int64) error {
	var last int64
	for {
		ns, err := r.SelectNotifications(ctx, persistence.NotificationQuery{Start: last + 1, Limit: 200})
		if err != nil {
			if errors.Is(err, persistence.ErrOperational) && ctx.Err() == nil {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			return err
		}
		for _, n := range ns {
			if n.ID <= last {
				return fmt.Errorf("notification %d after %d", n.ID, last)
			}
			k := evKey{n.OriginatorID, n.OriginatorVersion}
			if prev, dup := read[k]; dup {
				return fmt.Errorf("%s version %d read twice, as notifications %d and %d", k.id, k.version, prev, n.ID)
			}
			read[k] = n.ID
			last = n.ID
		}
		if len(ns) > 0 {
			continue
		}
		select {
		case <-stop:
			if last >= target() {
				return nil
			}
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (l *ledger) check(t *testing.T, r persistence.ApplicationRecorder, read map[evKey]int64) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	ctx := context.Background()
	all := map[evKey]bool{}
	var last int64
	// Right after an election the servers may take longer than the
	// client's timeout to place the read's consumer: an operational error,
	// on which a reader reads again, as follow does.
	deadline := time.Now().Add(2 * time.Minute)
	for again := true; again; {
		again = false
		for n, err := range persistence.ReadNotifications(ctx, r, persistence.NotificationQuery{Start: last + 1}, 500) {
			if err != nil {
				if errors.Is(err, persistence.ErrOperational) && time.Now().Before(deadline) {
					t.Logf("reading the log again from %d after %v", last+1, err)
					time.Sleep(100 * time.Millisecond)
					again = true
					break
				}
				t.Fatal(err)
			}
			k := evKey{n.OriginatorID, n.OriginatorVersion}
			if all[k] || n.ID <= last {
				t.Fatalf("%s version %d is in the log twice or out of order (notification %d after %d)", k.id, k.version, n.ID, last)
			}
			all[k], last = true, n.ID
			if want, ok := l.acked[k]; ok && want != string(n.State) {
				t.Fatalf("%s version %d has state %q, the acknowledged save had %q", k.id, k.version, n.State, want)
			}
		}
	}
	for k := range l.acked {
		if !all[k] {
			t.Fatalf("acknowledged event %s version %d is lost", k.id, k.version)
		}
		if read != nil {
			if _, ok := read[k]; !ok {
				t.Fatalf("the follower did not read acknowledged event %s version %d", k.id, k.version)
			}
		}
	}
	if read != nil && len(read) != len(all) {
		t.Fatalf("the follower read %d events, the log has %d", len(read), len(all))
	}
}

// streamLeader returns the index of the server that leads the stream.
func streamLeader(t *testing.T, c *natstest.Cluster, f *jetstream.Factory) int {
	t.Helper()
	info, err := jsInfo(f)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range c.Servers {
		if s.Name == info {
			return i
		}
	}
	t.Fatalf("leader %q is none of the servers", info)
	return -1
}

func TestFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("fault tests start their own cluster")
	}
	c := natstest.Require(t)
	vars := []string{"NATS_TIMEOUT", "3s"}
	e := env(t, c, vars...)
	f := openEnv(t, e)
	w, err := f.ApplicationRecorder(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	followerFactory := openEnv(t, e)
	fr, err := followerFactory.ApplicationRecorder(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	l := &ledger{acked: map[evKey]string{}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	t.Run("one of three servers killed while 8 writers save and a follower tails", func(t *testing.T) {
		const writers, saves = 8, 150
		var done atomic.Int64
		killed := make(chan int, 1)
		var wg sync.WaitGroup
		errs := make(chan error, writers+1)
		for i := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for s := range saves {
					if err := l.save(ctx, w, newBatch(i, s)); err != nil {
						errs <- fmt.Errorf("writer %d save %d: %w", i, s, err)
						return
					}
					if done.Add(1) == writers*saves/3 {
						victim := streamLeader(t, c, f)
						c.Kill(victim)
						killed <- victim
					}
				}
			}()
		}
		stop := make(chan struct{})
		read := map[evKey]int64{}
		followed := make(chan error, 1)
		var maxID atomic.Int64
		go func() {
			followed <- follow(ctx, fr, read, stop, func() int64 { return maxID.Load() })
		}()
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		max, err := w.MaxNotificationID(ctx)
		if err != nil {
			t.Fatal(err)
		}
		maxID.Store(max)
		close(stop)
		if err := <-followed; err != nil {
			t.Fatalf("follower: %v", err)
		}
		l.check(t, w, read)
		victim := <-killed
		t.Logf("killed the stream leader %s after %d saves: %d saves (%d events) acknowledged, %d attempts failed operationally and were retried, longest save %v; the follower read all %d once, in order",
			c.Servers[victim].Name, writers*saves/3, l.saves, len(l.acked), l.retry, l.worst.Round(time.Millisecond), len(read))

		start := time.Now()
		if err := c.StartServer(victim); err != nil {
			t.Fatal(err)
		}
		if err := waitCurrent(ctx, f, c.Servers[victim].Name); err != nil {
			t.Fatal(err)
		}
		t.Logf("restarted %s: caught up in %v", c.Servers[victim].Name, time.Since(start).Round(time.Millisecond))
	})

	t.Run("a minority of one fails writes operationally and loses nothing acknowledged", func(t *testing.T) {
		// Two servers stopped: the one left cannot commit alone.
		left := 0
		c.Stop(1)
		c.Stop(2)
		start := time.Now()
		_, err := w.InsertEvents(ctx, newBatch(99, 0))
		if !errors.Is(err, persistence.ErrOperational) {
			t.Fatalf("a save without a quorum: %v, want an operational error", err)
		}
		t.Logf("a save with %s alone failed after %v: %v (unknown outcome: %v)", c.Servers[left].Name,
			time.Since(start).Round(time.Millisecond), err, errors.Is(err, persistence.ErrUnknownOutcome))
		for _, i := range []int{1, 2} {
			if err := c.StartServer(i); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.WaitReady(time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := l.save(ctx, w, newBatch(99, 1)); err != nil {
			t.Fatalf("a save once the quorum is back: %v", err)
		}
		l.check(t, w, nil)
	})

	t.Run("a full cluster restart keeps every acknowledged save", func(t *testing.T) {
		start := time.Now()
		if err := c.Restart(); err != nil {
			t.Fatal(err)
		}
		// The stream elects its leader after the servers are up: a
		// factory opens, and reads answer, once it has.
		var g *jetstream.Factory
		for {
			var err error
			if g, err = jetstream.OpenEnv(ctx, e); err == nil {
				break
			}
			if !errors.Is(err, persistence.ErrOperational) || time.Since(start) > 2*time.Minute {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Cleanup(func() { g.Close() })
		r, err := g.ApplicationRecorder(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for {
			if _, err := r.MaxNotificationID(ctx); err == nil {
				break
			} else if time.Since(start) > 2*time.Minute {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		l.check(t, r, nil)
		t.Logf("restarted all three servers in %v; all %d acknowledged events are there", time.Since(start).Round(time.Millisecond), len(l.acked))
	})
}

func openEnv(t *testing.T, e persistence.Env) *jetstream.Factory {
	t.Helper()
	f, err := jetstream.OpenEnv(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// jsInfo returns the name of the stream's leader.
func jsInfo(f *jetstream.Factory) (string, error) {
	js, err := njs.New(f.Conn())
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, f.StreamName())
	if err != nil {
		return "", err
	}
	info := s.CachedInfo()
	if info.Cluster == nil {
		return "", errors.New("the stream has no cluster information")
	}
	return info.Cluster.Leader, nil
}

// waitCurrent waits until server is a current replica of the stream.
func waitCurrent(ctx context.Context, f *jetstream.Factory, server string) error {
	js, err := njs.New(f.Conn())
	if err != nil {
		return err
	}
	for {
		if s, err := js.Stream(ctx, f.StreamName()); err == nil {
			if info := s.CachedInfo(); info.Cluster != nil {
				if info.Cluster.Leader == server {
					return nil
				}
				for _, p := range info.Cluster.Replicas {
					if p.Name == server && p.Current && p.Lag == 0 {
						return nil
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s is not a current replica: %w", server, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

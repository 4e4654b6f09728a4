package recordertest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-go/strata/persistence"
)

// StressConfig sizes a [Stress] run.
type StressConfig struct {
	// Writers is the number of concurrent writers (default 16).
	Writers int
	// SavesPerWriter is the number of saves each writer makes (default 100).
	SavesPerWriter int
	// Contended is the number of aggregates that every writer tries to
	// extend at the same versions (default 4).
	Contended int
	// ReadLimit is the limit of each select of the tailing reader
	// (default 50).
	ReadLimit int
	// Timeout bounds the whole run (default 5 minutes).
	Timeout time.Duration
}

func (c *StressConfig) defaults() {
	if c.Writers <= 0 {
		c.Writers = 16
	}
	if c.SavesPerWriter <= 0 {
		c.SavesPerWriter = 100
	}
	if c.Contended <= 0 {
		c.Contended = 4
	}
	if c.ReadLimit <= 0 {
		c.ReadLimit = 50
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Minute
	}
}

// StressResult reports what a [Stress] run did.
type StressResult struct {
	Saves, Events, Conflicts, Reads int
	Elapsed                         time.Duration
}

// Stress runs concurrent writers against an empty application recorder
// while a reader tails its notifications, then checks that:
//
//   - the reader read every committed event exactly once, in increasing
//     notification ID order, and nothing that was not committed;
//   - each version of each contended aggregate has exactly one winner, and
//     the stored event is the winner's;
//   - the notification IDs returned by inserts are the ones read.
//
// Writers mix saves of one new aggregate, saves of several new aggregates
// with several events each, and saves that race for the next version of a
// few shared aggregates. Any error other than an integrity error on a
// contended version fails the test.
func Stress(t testing.TB, r persistence.ApplicationRecorder, cfg StressConfig) StressResult {
	t.Helper()
	cfg.defaults()
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout)
	defer cancel()

	type key struct {
		id      uuid.UUID
		version int64
	}
	type committed struct {
		state string
		nid   int64
	}
	contended := make([]uuid.UUID, cfg.Contended)
	for i := range contended {
		contended[i] = uuid.New()
	}

	var (
		mu        sync.Mutex
		commits   = map[key]committed{}
		winners   = map[key]int{} // contended (id, version) → number of successful writers
		conflicts int
		saves     int
		failure   error
	)
	fail := func(err error) {
		mu.Lock()
		if failure == nil {
			failure = err
		}
		mu.Unlock()
		cancel()
	}
	record := func(batch []persistence.StoredEvent, ids []int64) error {
		if len(ids) != len(batch) {
			return fmt.Errorf("insert of %d events returned %d notification IDs", len(batch), len(ids))
		}
		mu.Lock()
		defer mu.Unlock()
		saves++
		for i, e := range batch {
			commits[key{e.OriginatorID, e.OriginatorVersion}] = committed{string(e.State), ids[i]}
		}
		return nil
	}

	start := time.Now()
	var writers sync.WaitGroup
	for w := range cfg.Writers {
		writers.Add(1)
		go func() {
			defer writers.Done()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(start.UnixNano())))
			next := make([]int64, len(contended)) // the next version this writer tries per contended aggregate
			for i := range next {
				next[i] = 1
			}
			for s := 0; s < cfg.SavesPerWriter && ctx.Err() == nil; s++ {
				var batch []persistence.StoredEvent
				state := func(v int64) []byte { return fmt.Appendf(nil, "w%d-s%d-v%d", w, s, v) }
				kind := rng.IntN(3)
				switch kind {
				case 0: // one new aggregate
					batch = append(batch, persistence.StoredEvent{OriginatorID: uuid.New(), OriginatorVersion: 1, Topic: "Created", State: state(1)})
				case 1: // several new aggregates, several events each
					for range 1 + rng.IntN(3) {
						id := uuid.New()
						for v := int64(1); v <= int64(1+rng.IntN(3)); v++ {
							batch = append(batch, persistence.StoredEvent{OriginatorID: id, OriginatorVersion: v, Topic: "Changed", State: state(v)})
						}
					}
				case 2: // the next version of a shared aggregate
					c := rng.IntN(len(contended))
					v := next[c]
					batch = append(batch, persistence.StoredEvent{OriginatorID: contended[c], OriginatorVersion: v, Topic: "Contended", State: state(v)})
					ids, err := r.InsertEvents(ctx, batch)
					switch {
					case err == nil:
						if err := record(batch, ids); err != nil {
							fail(err)
							return
						}
						mu.Lock()
						winners[key{contended[c], v}]++
						mu.Unlock()
					case errors.Is(err, persistence.ErrIntegrity):
						mu.Lock()
						conflicts++
						mu.Unlock()
					default:
						fail(fmt.Errorf("writer %d: insert version %d of contended aggregate: %w", w, v, err))
						return
					}
					next[c]++
					continue
				}
				ids, err := r.InsertEvents(ctx, batch)
				if err != nil {
					fail(fmt.Errorf("writer %d: insert %d events: %w", w, len(batch), err))
					return
				}
				if err := record(batch, ids); err != nil {
					fail(err)
					return
				}
			}
		}()
	}

	// The reader tails the log like a follower: always from the position
	// after the last notification it saw. When the writers are done it
	// reads on until it has seen the highest notification ID they were
	// given: a store may show commits to readers a little later (in
	// PostgreSQL, while an older transaction of any program runs), but it
	// must show them, in order.
	done := make(chan struct{})
	var target int64
	var read []persistence.Notification
	readErr := make(chan error, 1)
	go func() {
		var last int64
		var deadline time.Time
		for {
			batch, err := r.SelectNotifications(ctx, persistence.NotificationQuery{Start: last + 1, Limit: cfg.ReadLimit})
			if err != nil {
				readErr <- fmt.Errorf("reader: select from %d: %w", last+1, err)
				return
			}
			for _, n := range batch {
				if n.ID <= last {
					readErr <- fmt.Errorf("reader: notification %d after %d", n.ID, last)
					return
				}
				last = n.ID
			}
			read = append(read, batch...)
			if len(batch) > 0 {
				continue
			}
			select {
			case <-done:
				if last >= target {
					readErr <- nil
					return
				}
				if deadline.IsZero() {
					deadline = time.Now().Add(time.Minute)
				}
				if time.Now().After(deadline) {
					readErr <- nil // the check below reports what was missed
					return
				}
				time.Sleep(time.Millisecond)
			case <-time.After(time.Millisecond):
			}
		}
	}()
	writers.Wait()
	mu.Lock()
	for _, c := range commits {
		target = max(target, c.nid)
	}
	mu.Unlock()
	close(done)
	if err := <-readErr; err != nil {
		fail(err)
	}
	if failure != nil {
		t.Fatal(failure)
	}

	// Every committed event was read once, nothing else was.
	seen := make(map[key]bool, len(read))
	for _, n := range read {
		k := key{n.OriginatorID, n.OriginatorVersion}
		c, ok := commits[k]
		switch {
		case !ok:
			t.Fatalf("the reader read %s version %d (notification %d), which no successful save committed", k.id, k.version, n.ID)
		case seen[k]:
			t.Fatalf("the reader read %s version %d twice", k.id, k.version)
		case c.nid != n.ID:
			t.Fatalf("%s version %d: the insert returned notification ID %d, the reader read %d", k.id, k.version, c.nid, n.ID)
		case c.state != string(n.State):
			t.Fatalf("%s version %d: read state %q, committed %q", k.id, k.version, n.State, c.state)
		}
		seen[k] = true
	}
	if len(seen) != len(commits) {
		missing := 0
		var example key
		for k := range commits {
			if !seen[k] {
				missing++
				example = k
			}
		}
		t.Fatalf("the reader missed %d of %d committed events (for example %s version %d, notification %d)",
			missing, len(commits), example.id, example.version, commits[example].nid)
	}
	for k, n := range winners {
		if n != 1 {
			t.Fatalf("contended %s version %d has %d winners", k.id, k.version, n)
		}
	}
	for _, id := range contended {
		stored, err := r.SelectEvents(context.Background(), id, persistence.EventQuery{})
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range stored {
			k := key{id, e.OriginatorVersion}
			if e.OriginatorVersion != int64(i+1) || winners[k] != 1 || string(e.State) != commits[k].state {
				t.Fatalf("contended %s: stored version %d (state %q) is not its single winner's", id, e.OriginatorVersion, e.State)
			}
		}
	}
	maxID, err := r.MaxNotificationID(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(read) > 0 && maxID != read[len(read)-1].ID {
		t.Fatalf("max notification ID %d, the last notification read is %d", maxID, read[len(read)-1].ID)
	}
	return StressResult{Saves: saves, Events: len(commits), Conflicts: conflicts, Reads: len(read), Elapsed: time.Since(start)}
}

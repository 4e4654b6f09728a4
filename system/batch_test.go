package system_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/domain"
	"github.com/strata-go/strata/examples/counters"
	"github.com/strata-go/strata/examples/worlds"
	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/system"
)

// backlog saves, with the leader alone, a world and the things that
// happen in it, and returns the leader's notification IDs.
func backlog(t *testing.T, env map[string]string, whats ...string) []int64 {
	t.Helper()
	w := openWorlds(t, env)
	id := createWorld(t, w)
	happen(t, w, id, whats...)
	all := first(t, w.Log(), len(whats)+1)
	w.Close()
	return all
}

// A follower that finds a backlog processes it in batches. A poison
// notification in a batch does not take the others with it: those before
// it are recorded, exactly once, it stops the follower alone (or is
// parked, and those after it are processed), and once fixed, everything
// is processed exactly once.
func TestAPoisonNotificationInABatchFailsAlone(t *testing.T) {
	persistent(t, func(t *testing.T, env map[string]string) {
		ctx := context.Background()
		all := backlog(t, env, "a", "b", "c", "poison", "d", "e")
		poison := all[4]

		t.Run("stopped at", func(t *testing.T) {
			var faulty atomic.Bool
			faulty.Store(true)
			sys := mustSystem(t, []system.Def{worldsDef, journal("Scribe", poisoned(&faulty, false))}, []string{worlds.Name, "Scribe"})
			r := system.NewSingleThreadedRunner(sys, system.WithEnv(env))
			startRunner(t, r)
			scribe := get[*Journal](t, r, "Scribe")
			checkPoisoned(t, r.Err(), poison, false)
			checkExactlyOnce(t, scribe.App(), worlds.Name, all[:4])
			if got := tracked(t, scribe.App(), worlds.Name); got != all[3] {
				t.Fatalf("tracked up to %d, want %d, the notification before the poison one", got, all[3])
			}
			faulty.Store(false)
			if err := r.Process(ctx); err != nil {
				t.Fatal(err)
			}
			checkExactlyOnce(t, scribe.App(), worlds.Name, all)
		})
	})
}

// The same with ParkPoison: the poison notification is parked, and the
// batch's others are recorded around it.
func TestAPoisonNotificationInABatchIsParkedAlone(t *testing.T) {
	persistent(t, func(t *testing.T, env map[string]string) {
		all := backlog(t, env, "a", "b", "poison", "c", "d")
		poison := all[3]
		var faulty atomic.Bool
		faulty.Store(true)
		sys := mustSystem(t, []system.Def{worldsDef, journal("Scribe", poisoned(&faulty, false))}, []string{worlds.Name, "Scribe"})
		r := system.NewSingleThreadedRunner(sys, system.WithEnv(env), system.WithPoisonPolicy(system.ParkPoison))
		startRunner(t, r)
		scribe := get[*Journal](t, r, "Scribe")
		if err := r.Err(); err != nil {
			t.Fatalf("a follower that parks reported %v", err)
		}
		var rest []int64
		for _, id := range all {
			if id != poison {
				rest = append(rest, id)
			}
		}
		checkExactlyOnce(t, scribe.App(), worlds.Name, rest)
		parked, err := system.ParkedNotifications(context.Background(), scribe.App())
		if err != nil {
			t.Fatal(err)
		}
		if len(parked) != 1 || parked[0].NotificationID != poison {
			t.Fatalf("parked %+v, want notification %d alone", parked, poison)
		}
		if got := tracked(t, scribe.App(), worlds.Name); got != all[len(all)-1] {
			t.Fatalf("tracked up to %d, want %d", got, all[len(all)-1])
		}
	})
}

// checkedCounters is the Counters example with a policy that first loads
// the counter it is about to count on, as the next policy will, and notes
// a load that does not show every earlier notification's count.
type checkedCounters struct {
	*counters.Counters
	seen  map[string]int // what the policy counted so far, by thing
	stale *atomic.Int64
	last  *int64 // the last notification the policy saw
}

func (c checkedCounters) Policy(ctx context.Context, e domain.Event, p *system.Processing) error {
	if p.Tracking.NotificationID <= *c.last {
		// A batch that failed to record (a store's transient error) is
		// processed again from the recorded position: what the policy
		// counted since is not in the store, so start from what is.
		for what := range c.seen {
			n, err := c.Count(context.Background(), what) // the store, not the batch
			if err != nil {
				return err
			}
			c.seen[what] = n
		}
	}
	*c.last = p.Tracking.NotificationID
	if h, ok := e.Data.(worlds.SomethingHappened); ok {
		repo, err := application.NewRepository[counters.Counter](c.App())
		if err != nil {
			return err
		}
		counter, err := repo.Get(ctx, counters.CounterID(h.What))
		switch {
		case errors.Is(err, application.ErrAggregateNotFound):
			if c.seen[h.What] != 0 {
				c.stale.Add(1)
			}
		case err != nil:
			return err
		case counter.Count != c.seen[h.What]:
			c.stale.Add(1)
		}
	}
	if err := c.Counters.Policy(ctx, e, p); err != nil {
		return err
	}
	if h, ok := e.Data.(worlds.SomethingHappened); ok {
		c.seen[h.What]++
	}
	return nil
}

// In a batch, a policy's load of an aggregate that an earlier notification
// of the batch changed is served from the batch, with that change, though
// the store does not have it yet: the batch's commits follow each other
// and nothing is processed twice.
func TestLoadsInABatchSeeTheBatchsChanges(t *testing.T) {
	persistent(t, func(t *testing.T, env map[string]string) {
		ctx := context.Background()
		whats := make([]string, 30)
		for i := range whats {
			whats[i] = []string{"x", "y"}[i%2]
		}
		backlog(t, env, whats...)
		var stale atomic.Int64
		sys := mustSystem(t, []system.Def{worldsDef,
			system.Define(counters.Name, counters.Types, func(ctx context.Context, opts ...application.Option) (checkedCounters, error) {
				c, err := counters.New(ctx, opts...)
				return checkedCounters{c, map[string]int{}, &stale, new(int64)}, err
			})}, []string{worlds.Name, counters.Name})
		r := system.NewSingleThreadedRunner(sys, system.WithEnv(env))
		startRunner(t, r)
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		if n := stale.Load(); n != 0 {
			t.Fatalf("%d loads in a batch did not show the batch's earlier changes", n)
		}
		c := get[checkedCounters](t, r, counters.Name)
		for _, what := range []string{"x", "y"} {
			n, err := c.Count(ctx, what)
			if err != nil || n != 15 {
				t.Fatalf("%s counted %d times (%v), want 15", what, n, err)
			}
		}
		last, err := get[*worlds.Worlds](t, r, worlds.Name).Recorder().MaxNotificationID(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := tracked(t, c.App(), worlds.Name); got != last {
			t.Fatalf("tracked up to %d, want %d", got, last)
		}
	})
}

// aloneJournal is a journal that processes alone (system.AloneProcessor).
type aloneJournal struct{ *Journal }

func (aloneJournal) ProcessAlone() bool { return true }

// A processor that processes alone has each notification recorded before
// its policy sees the next, even with a backlog to catch up on; others
// record a backlog in batches.
func TestAloneProcessorsAreNotBatched(t *testing.T) {
	persistent(t, func(t *testing.T, env map[string]string) {
		backlog(t, env, "a", "b", "c", "d")
		for _, alone := range []bool{true, false} {
			var last, unrecorded atomic.Int64
			name := "Batched"
			if alone {
				name = "Alone"
			}
			h := func(ctx context.Context, _ domain.Event, p *system.Processing) (bool, error) {
				if prev := last.Swap(p.Tracking.NotificationID); prev != 0 {
					done, err := p.App.Recorder().(persistence.ProcessRecorder).HasTrackingID(ctx, p.Upstream, prev)
					if err != nil {
						return false, err
					}
					if !done {
						unrecorded.Add(1)
					}
				}
				return false, nil
			}
			def := system.Define(name, journalTypes, func(ctx context.Context, opts ...application.Option) (system.Processor, error) {
				j, err := newJournal(ctx, name, h, opts...)
				if alone {
					return aloneJournal{j}, err
				}
				return j, err
			})
			sys := mustSystem(t, []system.Def{worldsDef, def}, []string{worlds.Name, name})
			r := system.NewSingleThreadedRunner(sys, system.WithEnv(env))
			startRunner(t, r)
			if err := r.Err(); err != nil {
				t.Fatal(err)
			}
			switch n := unrecorded.Load(); {
			case alone && n != 0:
				t.Fatalf("a processor that processes alone saw %d notifications before the one before was recorded", n)
			case !alone && n == 0:
				t.Fatal("a backlog was not processed in batches: each notification was recorded before the next")
			}
		}
	})
}

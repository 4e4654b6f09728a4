package system_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/domain"
	"github.com/strata-go/strata/examples/worlds"
	"github.com/strata-go/strata/internal/pgtest"
	"github.com/strata-go/strata/internal/storetest"
	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/system"
)

// record inserts a stored event into app's recorder as another program
// might have written it, bypassing the mapper, and returns its
// notification ID.
func record(t *testing.T, app *application.Application, topic string, state []byte) int64 {
	t.Helper()
	ids, err := app.Recorder().InsertEvents(context.Background(), []persistence.StoredEvent{{OriginatorID: uuid.New(), OriginatorVersion: 1, Topic: topic, State: state}})
	if err != nil {
		t.Fatal(err)
	}
	return ids[0]
}

func parkedIDs(t *testing.T, app *application.Application) []int64 {
	t.Helper()
	parked, err := system.ParkedNotifications(context.Background(), app)
	if err != nil {
		t.Fatal(err)
	}
	var out []int64
	for _, p := range parked {
		out = append(out, p.NotificationID)
	}
	return out
}

// Under ParkPoison, notifications that cannot be processed (a policy that
// fails, an unknown topic, state that does not decode) are parked with
// their tracking records and the follower goes on; an operator retries or
// skips them, each exactly once; a follower of the follower does not see
// them.
func TestPoisonNotificationsAreParkedThenRetriedOrSkipped(t *testing.T) {
	storetest.Run(t, func(t *testing.T, env map[string]string) {
		ctx := context.Background()
		var faulty atomic.Bool
		faulty.Store(true)
		sys := mustSystem(t, []system.Def{worldsDef, journal("Scribe", poisoned(&faulty, false)), journal("Auditor", nil)},
			[]string{worlds.Name, "Scribe", "Auditor"})
		r := system.NewSingleThreadedRunner(sys, system.WithEnv(env), system.WithPoisonPolicy(system.ParkPoison), system.WithLogger(discardLogger()))
		startRunner(t, r)
		w, scribe, auditor := get[*worlds.Worlds](t, r, worlds.Name), get[*Journal](t, r, "Scribe"), get[*Journal](t, r, "Auditor")

		id := createWorld(t, w)
		happen(t, w, id, "dinosaurs", "poison")
		unknown := record(t, w.App(), "World.Unknown", []byte(`{"timestamp":"2026-01-01T00:00:00Z","class_version":1,"data":{}}`))
		garbage := record(t, w.App(), "World.SomethingHappened", []byte("not json"))
		happen(t, w, id, "trucks")
		all := first(t, w.Log(), 6)
		if err := r.Process(ctx); err != nil {
			t.Fatalf("a follower that parks reported: %v", err)
		}
		poison := all[2]
		checkExactlyOnce(t, scribe.App(), worlds.Name, []int64{all[0], all[1], all[5]})
		if got := tracked(t, scribe.App(), worlds.Name); got != all[5] {
			t.Fatalf("Scribe tracked up to %d, want %d", got, all[5])
		}
		if got := parkedIDs(t, scribe.App()); !slices.Equal(got, []int64{poison, unknown, garbage}) {
			t.Fatalf("parked %v, want %v", got, []int64{poison, unknown, garbage})
		}
		parked, _ := system.ParkedNotifications(ctx, scribe.App())
		for i, want := range []string{"policy: poisoned", `unknown topic "World.Unknown"`, "corrupt data"} {
			if p := parked[i]; !strings.Contains(p.Error, want) || p.Upstream != worlds.Name || p.Follower != "Scribe" {
				t.Errorf("parked %d: %+v, want an error that says %q", i, p, want)
			}
		}

		faulty.Store(false)
		if err := r.RetryParked(ctx, "Scribe", worlds.Name, poison); err != nil {
			t.Fatalf("retry the fixed notification: %v", err)
		}
		checkExactlyOnce(t, scribe.App(), worlds.Name, []int64{all[0], all[1], all[5], poison})
		if err := r.RetryParked(ctx, "Scribe", worlds.Name, poison); !errors.Is(err, system.ErrNotParked) {
			t.Fatalf("retry it again: %v, want ErrNotParked", err)
		}
		var pe *system.PoisonError
		if err := r.RetryParked(ctx, "Scribe", worlds.Name, unknown); !errors.As(err, &pe) || pe.NotificationID != unknown {
			t.Fatalf("retry a notification that still cannot be decoded: %v", err)
		}
		if err := r.SkipParked(ctx, "Scribe", worlds.Name, unknown, "not ours"); err != nil {
			t.Fatal(err)
		}
		if err := r.SkipParked(ctx, "Scribe", worlds.Name, unknown, "again"); !errors.Is(err, system.ErrNotParked) {
			t.Fatalf("skip it again: %v, want ErrNotParked", err)
		}
		if err := r.RetryParked(ctx, "Scribe", worlds.Name, all[0]); !errors.Is(err, system.ErrNotParked) {
			t.Fatalf("retry a notification that was never parked: %v", err)
		}
		if got := parkedIDs(t, scribe.App()); !slices.Equal(got, []int64{garbage}) {
			t.Fatalf("still parked %v, want %v", got, []int64{garbage})
		}
		// The auditor follows Scribe: it notes Scribe's entries, and
		// tracks its parked records without seeing them.
		if err := r.Process(ctx); err != nil {
			t.Fatal(err)
		}
		scribeLog := logIDs(t, scribe.App().Log())
		if got := noted(t, auditor.App(), "Scribe"); got != 4 {
			t.Fatalf("the auditor noted %d of Scribe's notifications, want its 4 entries", got)
		}
		if got := tracked(t, auditor.App(), "Scribe"); got != scribeLog[len(scribeLog)-1] {
			t.Fatalf("the auditor tracked up to %d, want Scribe's last notification %d", got, scribeLog[len(scribeLog)-1])
		}
	})
}

// Stop returns when its context ends, even while a policy that ignores its
// context is running; the applications are closed when the policy returns.
func TestStopReturnsWhenItsContextEndsWhateverThePolicyDoes(t *testing.T) {
	entered, release := make(chan struct{}, 1), make(chan struct{})
	stubborn := func(_ context.Context, e domain.Event, _ *system.Processing) (bool, error) {
		if h, ok := e.Data.(worlds.SomethingHappened); ok && h.What == "stubborn" {
			entered <- struct{}{}
			<-release
		}
		return false, nil
	}
	sys := mustSystem(t, []system.Def{worldsDef, journal("Scribe", stubborn)}, []string{worlds.Name, "Scribe"})
	r := system.NewConcurrentRunner(sys, system.WithEnv(map[string]string{"PERSISTENCE_MODULE": "memory"}), system.PollInterval(poll))
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	w := get[*worlds.Worlds](t, r, worlds.Name)
	happen(t, w, createWorld(t, w), "stubborn")
	waitFor(t, "the policy to start", entered)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := r.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop: %v, want the context's error", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("Stop took %v with a context of 200ms", took)
	}
	close(release)
	eventually(t, "the applications to be closed", func() bool {
		_, err := w.App().Recorder().MaxNotificationID(context.Background())
		return errors.Is(err, persistence.ErrInterface)
	})
}

// quietWorlds builds Worlds without registering its types: a process that
// only reads the leader's log must decode it with the types of the
// leader's definition.
func quietWorlds(ctx context.Context, opts ...application.Option) (*worlds.Worlds, error) {
	app, err := application.New(ctx, worlds.Name, opts...)
	if err != nil {
		return nil, err
	}
	return &worlds.Worlds{Application: app}, nil
}

func TestAFollowerDecodesItsLeaderWithTheTypesOfTheLeadersDefinition(t *testing.T) {
	persistent(t, func(t *testing.T, env map[string]string) {
		full := mustSystem(t, []system.Def{worldsDef, journal("Scribe", nil)}, []string{worlds.Name, "Scribe"})
		leader := system.NewSingleThreadedRunner(full, system.WithEnv(env), system.Hosting(worlds.Name))
		startRunner(t, leader)
		w := get[*worlds.Worlds](t, leader, worlds.Name)
		happen(t, w, createWorld(t, w), "dinosaurs", "trucks")
		all := first(t, w.Log(), 3)

		followers := mustSystem(t, []system.Def{system.Define(worlds.Name, worlds.Types, quietWorlds), journal("Scribe", nil)},
			[]string{worlds.Name, "Scribe"})
		r := system.NewConcurrentRunner(followers, system.WithEnv(env), system.Hosting("Scribe"), system.PollInterval(poll))
		startRunner(t, r)
		scribe := get[*Journal](t, r, "Scribe")
		eventually(t, "Scribe to process the leader's events", func() bool { return noted(t, scribe.App(), worlds.Name) >= 3 })
		checkExactlyOnce(t, scribe.App(), worlds.Name, all)
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
	})
}

// With one connection in the pool, a leader and two followers all make
// progress: a follower's read of its leader's log never holds the
// connection that its policy and its save need.
func TestFollowersWorkWithAPoolOfOneConnection(t *testing.T) {
	env := pgtest.Env(t)
	env["POSTGRES_POOL_SIZE"] = "1"
	sys := mustSystem(t, []system.Def{worldsDef, countersDef, journal("Scribe", nil)},
		[]string{worlds.Name, "Scribe"}, []string{worlds.Name, "Counters"})
	r := system.NewConcurrentRunner(sys, system.WithEnv(env), system.PollInterval(poll))
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	w, scribe := get[*worlds.Worlds](t, r, worlds.Name), get[*Journal](t, r, "Scribe")
	id := createWorld(t, w)
	for i := range 20 {
		happen(t, w, id, "thing "+string(rune('a'+i)))
	}
	all := first(t, w.Log(), 21)
	eventually(t, "Scribe to process every event", func() bool { return noted(t, scribe.App(), worlds.Name) >= 21 })
	checkExactlyOnce(t, scribe.App(), worlds.Name, all)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := r.Err(); err != nil {
		t.Fatalf("processing: %v", err)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// A follower records each notification's results in the notification's
// tenant, with the upstream event's correlation ID and its ID as the
// causation ID.
func TestFollowersKeepTenantsAndPropagateCausation(t *testing.T) {
	storetest.Run(t, func(t *testing.T, env map[string]string) {
		ctx := context.Background()
		sys := mustSystem(t, []system.Def{worldsDef, journal("Scribe", nil)}, []string{worlds.Name, "Scribe"})
		r := system.NewSingleThreadedRunner(sys, system.WithEnv(env))
		startRunner(t, r)
		w, scribe := get[*worlds.Worlds](t, r, worlds.Name), get[*Journal](t, r, "Scribe")
		acme, err := w.App().ForTenant("acme")
		if err != nil {
			t.Fatal(err)
		}
		world, _ := worlds.NewWorld()
		_ = world.MakeItSo("dinosaurs")
		ctx = application.ContextWithHeaders(ctx, persistence.Headers{persistence.HeaderCorrelationID: "order-1"})
		recs, err := acme.Save(ctx, world)
		if err != nil {
			t.Fatal(err)
		}
		plain := createWorld(t, w)
		storetest.WaitForLog(t, w.App().Recorder(), 1)

		scribeAcme, _ := scribe.App().ForTenant("acme")
		storetest.WaitForLog(t, scribeAcme.Recorder(), 2)
		entries, err := scribeAcme.Log().Select(context.Background(), 1, 10)
		if err != nil || len(entries) != 2 {
			t.Fatalf("Scribe's acme log: %d entries (%v)", len(entries), err)
		}
		for i, n := range entries {
			cause := persistence.EventID("acme", world.ID(), recs[i].Event.OriginatorVersion).String()
			if n.Tenant != "acme" || n.Headers[persistence.HeaderCausationID] != cause || n.Headers[persistence.HeaderCorrelationID] != "order-1" {
				t.Fatalf("entry %d: tenant %q headers %v, want acme, causation %s, correlation order-1", i, n.Tenant, n.Headers, cause)
			}
		}
		storetest.WaitForLog(t, scribe.App().Recorder(), 1)
		own, err := scribe.App().Log().Select(context.Background(), 1, 10)
		if err != nil || len(own) != 1 {
			t.Fatalf("Scribe's default log: %d entries (%v), want the one of the default tenant's world", len(own), err)
		}
		cause := persistence.EventID("", plain, 1).String()
		if own[0].Headers[persistence.HeaderCausationID] != cause || own[0].Headers[persistence.HeaderCorrelationID] != cause {
			t.Fatalf("an entry of an event without a correlation ID: headers %v, want %s as both", own[0].Headers, cause)
		}
	})
}

// Crypto-shredding: erasing a tenant's data key leaves its events in the
// log, unreadable; other tenants read theirs, and a follower started after
// the erasure processes the rest and goes past the erased events.
func TestAFollowerGoesPastATenantsErasedEvents(t *testing.T) {
	persistent(t, func(t *testing.T, env map[string]string) {
		ctx := context.Background()
		key, _ := persistence.CreateKey(32)
		env["CIPHER_KEY"], env["CIPHER_DATA_KEYS"] = key, "tenant"
		w, err := worlds.New(ctx, application.WithEnv(env))
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		var want []int64
		for _, tenant := range []string{"acme", "globex", ""} {
			view, err := w.App().ForTenant(tenant)
			if err != nil {
				t.Fatal(err)
			}
			world, _ := worlds.NewWorld()
			_ = world.MakeItSo(tenant + "'s")
			recs, err := view.Save(ctx, world)
			if err != nil {
				t.Fatal(err)
			}
			if tenant != "acme" {
				want = append(want, recs[0].NotificationID, recs[1].NotificationID)
			}
		}
		acme, _ := w.App().ForTenant("acme")
		if err := acme.EraseTenant(ctx); err != nil {
			t.Fatal(err)
		}
		all := first(t, w.App().AllTenants(), 6)
		acmeWorlds, _ := application.NewRepository[worlds.World](acme)
		acmeLog, _ := acme.Log().Select(ctx, 1, 10)
		if _, err := acmeWorlds.Get(ctx, acmeLog[0].OriginatorID); !errors.Is(err, persistence.ErrErased) {
			t.Fatalf("load an erased tenant's world: %v, want ErrErased", err)
		}
		if _, err := acme.Save(ctx, mustWorld(t)); !errors.Is(err, persistence.ErrErased) {
			t.Fatalf("save for an erased tenant: %v, want ErrErased", err)
		}
		globex, _ := w.App().ForTenant("globex")
		globexLog, _ := globex.Log().Select(ctx, 1, 10)
		if _, err := w.Mapper().WithCipher(w.DataKeys().Cipher("globex")).ToEvent(globexLog[1].StoredEvent); err != nil {
			t.Fatalf("another tenant's event after the erasure: %v", err)
		}

		sys := mustSystem(t, []system.Def{worldsDef, journal("Scribe", nil)}, []string{worlds.Name, "Scribe"})
		r := system.NewSingleThreadedRunner(sys, system.WithEnv(env))
		startRunner(t, r)
		if err := r.Err(); err != nil {
			t.Fatalf("the follower stopped at erased events: %v", err)
		}
		scribe := get[*Journal](t, r, "Scribe")
		if got := tracked(t, scribe.App(), worlds.Name); got != all[5] {
			t.Fatalf("Scribe tracked up to %d, want %d", got, all[5])
		}
		var noted []int64
		for _, tenant := range []string{"globex", ""} {
			view, _ := scribe.App().ForTenant(tenant)
			noted = append(noted, ids(entries(t, view), worlds.Name)...)
		}
		slices.Sort(noted)
		if !slices.Equal(noted, want) {
			t.Fatalf("Scribe noted %v, want the other tenants' %v", noted, want)
		}
	})
}

func mustWorld(t *testing.T) *worlds.World {
	t.Helper()
	w, err := worlds.NewWorld()
	if err != nil {
		t.Fatal(err)
	}
	return w
}

package dynamodb_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/examples/worlds"
	"github.com/strata-go/strata/internal/awstest"
	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/persistence/dynamodb"
)

func snapshots(t *testing.T, f persistence.Factory) (persistence.AggregateRecorder, persistence.Replacer) {
	t.Helper()
	r, err := f.AggregateRecorder(context.Background(), "snapshots")
	if err != nil {
		t.Fatal(err)
	}
	return r, r.(persistence.Replacer)
}

// versions describes the records of one aggregate as "version=state ...".
func versions(t *testing.T, r persistence.AggregateRecorder, id uuid.UUID, q persistence.EventQuery) string {
	t.Helper()
	got, err := r.SelectEvents(context.Background(), id, q)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for i, e := range got {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%d=%s", e.OriginatorVersion, e.State)
	}
	return b.String()
}

// Records share chunks with the others of their save: a replacement goes
// into the chunk that spans its version, or into a new chunk in the gap
// between two, so that reads by chunk stay in version order and the head
// still refuses saves at or below the highest version.
func TestReplacementsKeepEveryReadInVersionOrder(t *testing.T) {
	ctx := context.Background()
	r, rep := snapshots(t, open(t))
	id := uuid.New()
	for _, save := range [][]persistence.StoredEvent{
		{ev(id, 1, []byte("a")), ev(id, 3, []byte("c")), ev(id, 5, []byte("e"))},
		{ev(id, 10, []byte("j")), ev(id, 12, []byte("l"))},
	} {
		if _, err := r.InsertEvents(ctx, save); err != nil {
			t.Fatal(err)
		}
	}
	other := uuid.New()
	err := rep.ReplaceEvents(ctx, []persistence.StoredEvent{
		ev(id, 3, []byte("C")),  // in the first save's chunk
		ev(id, 4, []byte("D")),  // a version the first chunk spans, new
		ev(id, 7, []byte("G")),  // in the gap between the chunks
		ev(id, 8, []byte("H")),  // the same gap
		ev(id, 11, []byte("K")), // spanned by the second chunk
		ev(id, 14, []byte("N")), // above the last version
		ev(other, 2, []byte("o")),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		q    persistence.EventQuery
		want string
	}{
		{persistence.EventQuery{}, "1=a 3=C 4=D 5=e 7=G 8=H 10=j 11=K 12=l 14=N"},
		{persistence.EventQuery{Desc: true}, "14=N 12=l 11=K 10=j 8=H 7=G 5=e 4=D 3=C 1=a"},
		{persistence.EventQuery{Gt: ptr(4), Lte: ptr(10)}, "5=e 7=G 8=H 10=j"},
		{persistence.EventQuery{Lte: ptr(9), Desc: true, Limit: 1}, "8=H"},
	} {
		if got := versions(t, r, id, c.q); got != c.want {
			t.Errorf("select %+v after the replacement: %s, want %s", c.q, got, c.want)
		}
	}
	if got := versions(t, r, other, persistence.EventQuery{}); got != "2=o" {
		t.Errorf("the replacement's other aggregate has %q", got)
	}
	if _, err := r.InsertEvents(ctx, []persistence.StoredEvent{ev(id, 13, nil)}); !errors.Is(err, persistence.ErrIntegrity) {
		t.Fatalf("a save below the replaced last version: %v, want ErrIntegrity", err)
	}
	if _, err := r.InsertEvents(ctx, []persistence.StoredEvent{ev(id, 15, []byte("o"))}); err != nil {
		t.Fatalf("a save above the replaced last version: %v", err)
	}
	// A replacement with two records at one version is refused whole.
	err = rep.ReplaceEvents(ctx, []persistence.StoredEvent{ev(id, 1, []byte("x")), ev(id, 1, []byte("y"))})
	if !errors.Is(err, persistence.ErrIntegrity) {
		t.Fatalf("two records at one version: %v, want ErrIntegrity", err)
	}
	if got := versions(t, r, id, persistence.EventQuery{Limit: 1}); got != "1=a" {
		t.Fatalf("a refused replacement wrote %q", got)
	}
}

// Concurrent replacements of one aggregate, at versions its chunks span
// and in the gaps between them, all land, each version once.
func TestConcurrentReplacementsOfOneAggregateAllLand(t *testing.T) {
	ctx := context.Background()
	f := open(t)
	r, rep := snapshots(t, f)
	id := uuid.New()
	if _, err := r.InsertEvents(ctx, []persistence.StoredEvent{ev(id, 10, []byte("-")), ev(id, 20, []byte("-"))}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.InsertEvents(ctx, []persistence.StoredEvent{ev(id, 40, []byte("-"))}); err != nil {
		t.Fatal(err)
	}
	const writers = 6
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Writer w replaces 10 or 20 (spanned), and writes 21+w and
			// 30+w (the gap between the chunks) and 41+w (above them).
			state := []byte(fmt.Sprint("w", w))
			evs := []persistence.StoredEvent{ev(id, 21+int64(w), state), ev(id, 30+int64(w), state), ev(id, 41+int64(w), state)}
			if w < 2 {
				evs = append(evs, ev(id, 10*int64(w+1), state))
			}
			if err := rep.ReplaceEvents(ctx, evs); err != nil {
				errs <- fmt.Errorf("writer %d: %w", w, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var want []string
	add := func(v int64, s string) { want = append(want, fmt.Sprintf("%d=%s", v, s)) }
	add(10, "w0")
	add(20, "w1")
	for w := range writers {
		add(21+int64(w), fmt.Sprint("w", w))
	}
	for w := range writers {
		add(30+int64(w), fmt.Sprint("w", w))
	}
	add(40, "-")
	for w := range writers {
		add(41+int64(w), fmt.Sprint("w", w))
	}
	if got := versions(t, r, id, persistence.EventQuery{}); got != strings.Join(want, " ") {
		t.Fatalf("after concurrent replacements:\n got %s\nwant %s", got, strings.Join(want, " "))
	}
	if _, err := r.InsertEvents(ctx, []persistence.StoredEvent{ev(id, 41+writers-1, nil)}); !errors.Is(err, persistence.ErrIntegrity) {
		t.Fatalf("a save at the highest replaced version: %v, want ErrIntegrity", err)
	}
}

// A replacement racing a deletion of its aggregate, or a purge of its
// tenant, lands either before it (and is deleted with it) or after it
// (and is all that is left): never a chunk that the deletion missed, which
// no later deletion would find.
func TestAReplacementAndADeletionOfOneAggregateSerialize(t *testing.T) {
	ctx := context.Background()
	tf, err := open(t).Tenant("acme")
	if err != nil {
		t.Fatal(err)
	}
	r, rep := snapshots(t, tf)
	eraser := tf.(persistence.Eraser)
	deletions := map[string]func(id uuid.UUID) error{
		"delete the aggregate": func(id uuid.UUID) error { _, err := eraser.DeleteAggregate(ctx, id); return err },
		"purge the tenant":     func(uuid.UUID) error { return eraser.PurgeTenant(ctx) },
	}
	for name, erase := range deletions {
		t.Run(name, func(t *testing.T) {
			for round := range 8 {
				id := uuid.New()
				if _, err := r.InsertEvents(ctx, []persistence.StoredEvent{ev(id, 1, []byte("a")), ev(id, 3, []byte("c"))}); err != nil {
					t.Fatal(err)
				}
				if _, err := r.InsertEvents(ctx, []persistence.StoredEvent{ev(id, 10, []byte("j"))}); err != nil {
					t.Fatal(err)
				}
				var wg sync.WaitGroup
				var rerr, derr error
				wg.Add(2)
				go func() {
					defer wg.Done()
					// Version 5 makes a new chunk below the last version,
					// which a save never writes; version 3 rewrites the
					// first chunk.
					rerr = rep.ReplaceEvents(ctx, []persistence.StoredEvent{ev(id, 3, []byte("C")), ev(id, 5, []byte("E"))})
				}()
				go func() { defer wg.Done(); derr = erase(id) }()
				wg.Wait()
				if rerr != nil || derr != nil {
					t.Fatalf("round %d: replace: %v; %s: %v", round, rerr, name, derr)
				}
				switch got := versions(t, r, id, persistence.EventQuery{}); got {
				case "", "3=C 5=E":
				default:
					t.Fatalf("round %d: after a replacement and a deletion at once: %q, want nothing or 3=C 5=E", round, got)
				}
				if err := erase(id); err != nil {
					t.Fatal(err)
				}
				if got := versions(t, r, id, persistence.EventQuery{}); got != "" {
					t.Fatalf("round %d: a deletion left %q", round, got)
				}
			}
		})
	}
}

// A replacement that lands between a deletion's reads and its
// transaction, made to happen there: the deletion reads again and
// deletes what the replacement wrote too.
func TestADeletionReadsAgainAfterAReplacementLandsInItsWindow(t *testing.T) {
	ctx := context.Background()
	f := open(t)
	tf, err := f.Tenant("acme")
	if err != nil {
		t.Fatal(err)
	}
	r, rep := snapshots(t, tf)
	eraser := tf.(persistence.Eraser)
	for name, erase := range map[string]func(id uuid.UUID) error{
		"delete the aggregate": func(id uuid.UUID) error { _, err := eraser.DeleteAggregate(ctx, id); return err },
		"purge the tenant":     func(uuid.UUID) error { return eraser.PurgeTenant(ctx) },
	} {
		t.Run(name, func(t *testing.T) {
			id := uuid.New()
			if _, err := r.InsertEvents(ctx, []persistence.StoredEvent{ev(id, 1, []byte("a")), ev(id, 3, []byte("c"))}); err != nil {
				t.Fatal(err)
			}
			if _, err := r.InsertEvents(ctx, []persistence.StoredEvent{ev(id, 10, []byte("j"))}); err != nil {
				t.Fatal(err)
			}
			var rerr error
			landed := false
			dynamodb.SetBeforeErase(f, func() {
				if !landed {
					landed = true
					rerr = rep.ReplaceEvents(ctx, []persistence.StoredEvent{ev(id, 3, []byte("C")), ev(id, 5, []byte("E"))})
				}
			})
			defer dynamodb.SetBeforeErase(f, nil)
			if err := erase(id); err != nil || rerr != nil {
				t.Fatalf("%s: %v; the replacement in its window: %v", name, err, rerr)
			}
			if got := versions(t, r, id, persistence.EventQuery{}); got != "" {
				t.Fatalf("after a replacement landed in the window of a deletion: %q left", got)
			}
		})
	}
}

// A replacement whose records no longer fit the item they share is
// refused whole.
func TestAReplacementBeyondOneItemIsRefusedWhole(t *testing.T) {
	ctx := context.Background()
	r, rep := snapshots(t, open(t))
	id, other := uuid.New(), uuid.New()
	big := bytes.Repeat([]byte("b"), 250<<10)
	if _, err := r.InsertEvents(ctx, []persistence.StoredEvent{ev(id, 1, big), ev(id, 2, []byte("small"))}); err != nil {
		t.Fatal(err)
	}
	err := rep.ReplaceEvents(ctx, []persistence.StoredEvent{ev(other, 1, []byte("o")), ev(id, 2, big)})
	if !errors.Is(err, persistence.ErrNotSupported) || !strings.Contains(err.Error(), "one DynamoDB item") {
		t.Fatalf("a replacement beyond one item: %v, want an error wrapping ErrNotSupported", err)
	}
	if got := versions(t, r, id, persistence.EventQuery{Gt: ptr(1)}); got != "2=small" {
		t.Fatalf("a refused replacement wrote %q", got)
	}
	if got := versions(t, r, other, persistence.EventQuery{}); got != "" {
		t.Fatalf("a refused replacement wrote %q for another aggregate", got)
	}
}

// The data keys of persistence.DataKeys kept on DynamoDB: erased, the
// state they encrypted is undecodable (ErrErased); rewrapped with a new
// master key, it reads with that key alone.
func TestDataKeysEraseAndRewrap(t *testing.T) {
	ctx := context.Background()
	f := open(t)
	store, err := f.AggregateRecorder(ctx, "keys")
	if err != nil {
		t.Fatal(err)
	}
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	m1, _ := persistence.NewAESCipher(k1)
	keys := persistence.NewDataKeys(m1, store, persistence.KeyPerTenant)
	keys.SetCacheTTL(0)
	a, err := keys.Cipher("acme").Encrypt([]byte("acme's secret"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := keys.Cipher("globex").Encrypt([]byte("globex's secret"))
	if err != nil {
		t.Fatal(err)
	}

	rotating, _ := persistence.NewAESCipher(k2, k1)
	if n, err := persistence.NewDataKeys(rotating, store, persistence.KeyPerTenant).Rewrap(ctx); err != nil || n != 2 {
		t.Fatalf("rewrap: %d keys, %v", n, err)
	}
	m2, _ := persistence.NewAESCipher(k2)
	after := persistence.NewDataKeys(m2, store, persistence.KeyPerTenant)
	after.SetCacheTTL(0)
	if p, err := after.Cipher("x").Decrypt(a); err != nil || string(p) != "acme's secret" {
		t.Fatalf("decrypt with the new master key alone after rewrapping: %q %v", p, err)
	}

	if err := keys.Erase(ctx, "acme", uuid.Nil); err != nil {
		t.Fatal(err)
	}
	for _, k := range []*persistence.DataKeys{keys, after} {
		if _, err := k.Cipher("acme").Decrypt(a); !errors.Is(err, persistence.ErrErased) {
			t.Fatalf("decrypt an erased tenant's state: %v, want ErrErased", err)
		}
	}
	if p, err := after.Cipher("globex").Decrypt(g); err != nil || string(p) != "globex's secret" {
		t.Fatalf("another tenant after the erasure: %q %v", p, err)
	}
	recs, err := store.SelectEvents(ctx, keys.KeyID("acme", uuid.Nil), persistence.EventQuery{})
	if err != nil || len(recs) != 1 || len(recs[0].State) != 0 {
		t.Fatalf("the erased key's records: %+v %v, want one without state", recs, err)
	}
}

// Crypto-shredding through the application, on DynamoDB: erasing a
// tenant's or an aggregate's data key makes its events undecodable, and
// rotating the master key keeps the rest readable with the new key alone.
func TestCryptoShreddingAndKeyRotation(t *testing.T) {
	ctx := context.Background()
	k1, _ := persistence.CreateKey(32)
	k2, _ := persistence.CreateKey(32)
	newWorlds := func(t *testing.T, env map[string]string, vars ...string) *worlds.Worlds {
		t.Helper()
		e := map[string]string{}
		for k, v := range env {
			e[k] = v
		}
		for _, kv := range vars {
			k, v, _ := strings.Cut(kv, "=")
			e[k] = v
		}
		w, err := worlds.New(ctx, application.WithEnv(e), application.WithoutProcessEnv())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.Close() })
		return w
	}
	save := func(t *testing.T, app *application.Application, what string) uuid.UUID {
		t.Helper()
		world, _ := worlds.NewWorld()
		_ = world.MakeItSo(what)
		if _, err := app.Save(ctx, world); err != nil {
			t.Fatal(err)
		}
		return world.ID()
	}
	get := func(app *application.Application, id uuid.UUID) error {
		repo, err := application.NewRepository[worlds.World](app)
		if err != nil {
			return err
		}
		_, err = repo.Get(ctx, id)
		return err
	}

	t.Run("a tenant", func(t *testing.T) {
		env := awstest.DynamoDBEnv(t)
		w := newWorlds(t, env, "CIPHER_KEY="+k1, "CIPHER_DATA_KEYS=tenant")
		acme, _ := w.ForTenant("acme")
		globex, _ := w.ForTenant("globex")
		a, g := save(t, acme, "acme's"), save(t, globex, "globex's")
		if err := acme.EraseTenant(ctx); err != nil {
			t.Fatal(err)
		}
		if err := get(acme, a); !errors.Is(err, persistence.ErrErased) {
			t.Fatalf("load an erased tenant's world: %v, want ErrErased", err)
		}
		if _, err := acme.Save(ctx, mustWorld(t)); !errors.Is(err, persistence.ErrErased) {
			t.Fatalf("save for an erased tenant: %v, want ErrErased", err)
		}
		// Another process, with the next master key.
		w.Close()
		w2 := newWorlds(t, env, "CIPHER_KEY="+k2, "CIPHER_PREVIOUS_KEYS="+k1, "CIPHER_DATA_KEYS=tenant")
		if n, err := w2.RotateDataKeys(ctx); err != nil || n != 1 {
			t.Fatalf("rotate: %d keys, %v, want the one not erased", n, err)
		}
		w2.Close()
		w3 := newWorlds(t, env, "CIPHER_KEY="+k2, "CIPHER_DATA_KEYS=tenant")
		acme3, _ := w3.ForTenant("acme")
		globex3, _ := w3.ForTenant("globex")
		if err := get(globex3, g); err != nil {
			t.Fatalf("another tenant's world with the new master key alone: %v", err)
		}
		if err := get(acme3, a); !errors.Is(err, persistence.ErrErased) {
			t.Fatalf("the erased tenant's world after the rotation: %v, want ErrErased", err)
		}
	})

	t.Run("an aggregate", func(t *testing.T) {
		env := awstest.DynamoDBEnv(t)
		w := newWorlds(t, env, "CIPHER_KEY="+k1, "CIPHER_DATA_KEYS=aggregate")
		x, y := save(t, w.Application, "x"), save(t, w.Application, "y")
		if err := w.EraseAggregate(ctx, x); err != nil {
			t.Fatal(err)
		}
		if err := get(w.Application, x); !errors.Is(err, persistence.ErrErased) {
			t.Fatalf("load an erased world: %v, want ErrErased", err)
		}
		if err := get(w.Application, y); err != nil {
			t.Fatalf("another world after the erasure: %v", err)
		}
		fresh := newWorlds(t, env, "CIPHER_KEY="+k1, "CIPHER_DATA_KEYS=aggregate")
		if err := get(fresh.Application, x); !errors.Is(err, persistence.ErrErased) {
			t.Fatalf("load an erased world in another process: %v, want ErrErased", err)
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

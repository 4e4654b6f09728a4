package wiki_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/examples/wiki"
	"github.com/strata-go/strata/internal/storetest"
	"github.com/strata-go/strata/persistence"
)

func newWiki(t *testing.T, opts ...application.Option) *wiki.Wiki {
	t.Helper()
	w, err := wiki.New(context.Background(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func body(t *testing.T, w *wiki.Wiki, slug string) string {
	t.Helper()
	p, err := w.GetPage(context.Background(), slug)
	if err != nil {
		t.Fatalf("get page %q: %v", slug, err)
	}
	return p.Body
}

// The reference's scenario of saving several aggregates: pages are found by
// name through indexes, renamed, and names cannot be taken twice.
func TestPagesAndIndexes(t *testing.T) {
	storetest.Run(t, func(t *testing.T, env map[string]string) {
		ctx := context.Background()
		w := newWiki(t, application.WithEnv(env))
		if _, err := w.CreatePage(ctx, "Earth", "Erth", "Lorem ipsum..."); err != nil {
			t.Fatal(err)
		}
		if got := body(t, w, "Erth"); got != "Lorem ipsum..." {
			t.Fatalf("body %q", got)
		}
		if err := w.RenameSlug(ctx, "Erth", "Earth"); err != nil {
			t.Fatal(err)
		}
		if got := body(t, w, "Earth"); got != "Lorem ipsum..." {
			t.Fatalf("body %q", got)
		}
		if _, err := w.GetPage(ctx, "Erth"); !errors.Is(err, wiki.ErrPageNotFound) {
			t.Fatalf("the old slug still finds the page: %v", err)
		}

		// Can't create another page with an existing slug.
		if _, err := w.CreatePage(ctx, "Earth 2", "Earth", "Neque porro quisquam..."); !errors.Is(err, wiki.ErrSlugTaken) {
			t.Fatalf("create with a taken slug: %v", err)
		}
		if got := body(t, w, "Earth"); got != "Lorem ipsum..." {
			t.Fatalf("body %q", got)
		}
		// Can't rename another page to an existing slug.
		if _, err := w.CreatePage(ctx, "Mars", "Mars", "Neque porro quisquam..."); err != nil {
			t.Fatal(err)
		}
		if err := w.RenameSlug(ctx, "Mars", "Earth"); !errors.Is(err, wiki.ErrSlugTaken) {
			t.Fatalf("rename to a taken slug: %v", err)
		}
		if body(t, w, "Earth") != "Lorem ipsum..." || body(t, w, "Mars") != "Neque porro quisquam..." {
			t.Fatal("a refused rename changed the pages")
		}
		// The released slug can be used again.
		if _, err := w.CreatePage(ctx, "Erth", "Erth", "a typo"); err != nil {
			t.Fatalf("reuse a released slug: %v", err)
		}
		if body(t, w, "Erth") != "a typo" {
			t.Fatal("the reused slug finds another page")
		}
	})
}

func TestEditingPages(t *testing.T) {
	storetest.Run(t, func(t *testing.T, env map[string]string) {
		ctx := context.Background()
		w := newWiki(t, application.WithEnv(env))
		id, _ := w.CreatePage(ctx, "Venus", "venus", "v1")
		if err := w.UpdateBody(ctx, "venus", "v2"); err != nil {
			t.Fatal(err)
		}
		if err := w.UpdateTitle(ctx, "venus", "Morning Star"); err != nil {
			t.Fatal(err)
		}
		p, err := w.GetPage(ctx, "venus")
		if err != nil || p.ID != id || p.Title != "Morning Star" || p.Body != "v2" {
			t.Fatalf("page %+v %v", p, err)
		}
		old, err := w.Pages().Get(ctx, id, application.AtVersion(1))
		if err != nil || old.Body != "v1" || old.Title != "Venus" {
			t.Fatalf("first version %+v %v", old, err)
		}
		for _, bad := range []string{"", "a b", "a/b"} {
			if _, err := w.CreatePage(ctx, "x", bad, ""); !errors.Is(err, wiki.ErrInvalidSlug) {
				t.Fatalf("slug %q: %v", bad, err)
			}
		}
		if err := w.UpdateBody(ctx, "nowhere", "x"); !errors.Is(err, wiki.ErrPageNotFound) {
			t.Fatalf("edit a missing page: %v", err)
		}
	})
}

func TestOneOfConcurrentCreatorsGetsTheSlug(t *testing.T) {
	storetest.Run(t, func(t *testing.T, env map[string]string) {
		ctx := context.Background()
		w := newWiki(t, application.WithEnv(env))
		var wg sync.WaitGroup
		var mu sync.Mutex
		won, lost := 0, 0
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := w.CreatePage(ctx, "Home", "home", "welcome")
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					won++
				case errors.Is(err, wiki.ErrSlugTaken):
					lost++
				default:
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if won != 1 || lost != 7 {
			t.Fatalf("%d creators won, %d lost", won, lost)
		}
	})
}

func TestEncryptionAndCompressionBySettingsAlone(t *testing.T) {
	storetest.Run(t, func(t *testing.T, env map[string]string) {
		ctx := context.Background()
		key, _ := persistence.CreateKey(32)
		w := newWiki(t, application.WithEnv(env), application.WithEnv(map[string]string{"CIPHER_KEY": key, "COMPRESSOR_TOPIC": "zlib"}))
		if _, err := w.CreatePage(ctx, "Secret", "secret", "the plans"); err != nil {
			t.Fatal(err)
		}
		storetest.WaitForLog(t, w.Recorder(), 2)
		ns, err := w.Log().Select(ctx, 1, 10)
		if err != nil || len(ns) != 2 {
			t.Fatalf("notifications %d %v", len(ns), err)
		}
		for _, n := range ns {
			if bytes.Contains(n.State, []byte("plans")) || bytes.Contains(n.State, []byte("secret")) {
				t.Fatalf("state in the clear: %q", n.State)
			}
		}
		if body(t, w, "secret") != "the plans" {
			t.Fatal("cannot read the encrypted page")
		}
		// Another key cannot read it.
		other, _ := persistence.CreateKey(32)
		spy := newWiki(t, application.WithFactory(w.Factory()), application.WithEnv(map[string]string{"CIPHER_KEY": other, "COMPRESSOR_TOPIC": "zlib"}))
		if _, err := spy.GetPage(ctx, "secret"); !errors.Is(err, persistence.ErrWrongKey) {
			t.Fatalf("read with another key: %v", err)
		}
	})
}

package wiki_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/examples/wiki"
)

func Example() {
	ctx := context.Background()
	w, _ := wiki.New(ctx, application.WithoutProcessEnv())
	defer w.Close()

	_, _ = w.CreatePage(ctx, "Earth", "Erth", "Lorem ipsum...")
	_ = w.RenameSlug(ctx, "Erth", "Earth")
	page, _ := w.GetPage(ctx, "Earth")
	fmt.Println(page.Title, page.Slug, page.Body)

	_, err := w.CreatePage(ctx, "Another Earth", "Earth", "...")
	fmt.Println(errors.Is(err, wiki.ErrSlugTaken))
	// Output:
	// Earth Earth Lorem ipsum...
	// true
}

// Package wiki is the reference design's example of saving several
// aggregates atomically and of name-based IDs: wiki pages found by their
// slug through index aggregates whose IDs are derived from the slug.
//
// Creating a page saves the page and the index of its slug together, so two
// pages can never take one slug: the second save conflicts on the index's
// first version and records nothing. Renaming a page's slug saves the page,
// the released old index and the new index together. The Wiki application
// switches on encryption and compression by the environment alone
// (CIPHER_KEY, COMPRESSOR_TOPIC), like any Strata application.
package wiki

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/domain"
)

// Page is a wiki page.
type Page struct {
	domain.Aggregate
	Title string `json:"title"`
	Slug  string `json:"slug"`
	Body  string `json:"body"`
}

// PageCreated creates a page.
type PageCreated struct {
	Title string `json:"title"`
	Slug  string `json:"slug"`
	Body  string `json:"body"`
}

// TitleUpdated changes a page's title.
type TitleUpdated struct {
	Title string `json:"title"`
}

// SlugUpdated changes a page's slug.
type SlugUpdated struct {
	Slug string `json:"slug"`
}

// BodyUpdated replaces a page's body.
type BodyUpdated struct {
	Body string `json:"body"`
}

// ApplyTo creates the page.
func (e PageCreated) ApplyTo(p *Page) { p.Title, p.Slug, p.Body = e.Title, e.Slug, e.Body }

// ApplyTo changes the title.
func (e TitleUpdated) ApplyTo(p *Page) { p.Title = e.Title }

// ApplyTo changes the slug.
func (e SlugUpdated) ApplyTo(p *Page) { p.Slug = e.Slug }

// ApplyTo replaces the body.
func (e BodyUpdated) ApplyTo(p *Page) { p.Body = e.Body }

// Index points from a slug to the page that has it. Its ID is derived from
// the slug, so it is found without a query.
type Index struct {
	domain.Aggregate
	Slug string    `json:"slug"`
	Ref  uuid.UUID `json:"ref"` // uuid.Nil when the slug is free
}

// IndexCreated creates the index of a slug.
type IndexCreated struct {
	Slug string    `json:"slug"`
	Ref  uuid.UUID `json:"ref"`
}

// RefUpdated points an index to another page, or to none (uuid.Nil).
type RefUpdated struct {
	Ref uuid.UUID `json:"ref"`
}

// ApplyTo creates the index.
func (e IndexCreated) ApplyTo(i *Index) { i.Slug, i.Ref = e.Slug, e.Ref }

// ApplyTo changes the page the index points to.
func (e RefUpdated) ApplyTo(i *Index) { i.Ref = e.Ref }

// IndexID returns the ID of the index of slug.
func IndexID(slug string) uuid.UUID {
	return domain.NameID(domain.NamespaceURL, "/slugs/"+slug)
}

// Types are the persisted types of the wiki.
var Types = domain.Types(
	domain.AggregateType[Page](domain.Named("Page"), domain.CreatedBy(PageCreated{})),
	domain.EventType[PageCreated](domain.Named("Page.Created")),
	domain.EventType[TitleUpdated](domain.Named("Page.TitleUpdated")),
	domain.EventType[SlugUpdated](domain.Named("Page.SlugUpdated")),
	domain.EventType[BodyUpdated](domain.Named("Page.BodyUpdated")),
	domain.AggregateType[Index](domain.Named("Index"), domain.CreatedBy(IndexCreated{})),
	domain.EventType[IndexCreated](domain.Named("Index.Created")),
	domain.EventType[RefUpdated](domain.Named("Index.RefUpdated")),
)

// Errors of the wiki; test them with errors.Is.
var (
	// ErrPageNotFound means no page has the slug.
	ErrPageNotFound = errors.New("page not found")
	// ErrSlugTaken means another page has the slug. It wraps
	// application.ErrConflict when a concurrent writer took it first.
	ErrSlugTaken = errors.New("slug is taken")
	// ErrInvalidSlug means an empty slug or one with spaces or slashes.
	ErrInvalidSlug = errors.New("invalid slug")
)

// Name is the application's name.
const Name = "Wiki"

// Wiki is the wiki application.
type Wiki struct {
	*application.Application
	pages   *application.Repository[*Page]
	indexes *application.Repository[*Index]
}

// PageDetails is what a reader sees of a page.
type PageDetails struct {
	ID    uuid.UUID
	Title string
	Slug  string
	Body  string
}

// New returns the wiki application.
func New(ctx context.Context, opts ...application.Option) (*Wiki, error) {
	app, err := application.New(ctx, Name, append([]application.Option{application.WithTypes(Types)}, opts...)...)
	if err != nil {
		return nil, err
	}
	pages, err := application.NewRepository[Page](app)
	if err != nil {
		app.Close()
		return nil, err
	}
	indexes, err := application.NewRepository[Index](app)
	if err != nil {
		app.Close()
		return nil, err
	}
	return &Wiki{Application: app, pages: pages, indexes: indexes}, nil
}

func checkSlug(slug string) error {
	if slug == "" || strings.ContainsAny(slug, " \t\n/") {
		return fmt.Errorf("%w %q", ErrInvalidSlug, slug)
	}
	return nil
}

// CreatePage creates a page with a slug no other page has.
func (w *Wiki) CreatePage(ctx context.Context, title, slug, body string) (uuid.UUID, error) {
	if err := checkSlug(slug); err != nil {
		return uuid.Nil, err
	}
	page, err := domain.New[Page](domain.NewID(), PageCreated{Title: title, Slug: slug, Body: body})
	if err != nil {
		return uuid.Nil, err
	}
	index, err := w.claim(ctx, slug, page.ID())
	if err != nil {
		return uuid.Nil, err
	}
	if _, err := w.Save(ctx, page, index); err != nil {
		return uuid.Nil, w.saveError(slug, err)
	}
	return page.ID(), nil
}

// claim returns the index of slug pointing to the page: a new index, or
// the existing one if its slug was released.
func (w *Wiki) claim(ctx context.Context, slug string, page uuid.UUID) (*Index, error) {
	index, err := w.indexes.Get(ctx, IndexID(slug))
	switch {
	case errors.Is(err, application.ErrAggregateNotFound):
		return domain.New[Index](IndexID(slug), IndexCreated{Slug: slug, Ref: page})
	case err != nil:
		return nil, err
	case index.Ref != uuid.Nil:
		return nil, fmt.Errorf("%w: %q is the slug of page %s", ErrSlugTaken, slug, index.Ref)
	}
	return index, domain.Trigger(index, RefUpdated{Ref: page})
}

func (w *Wiki) saveError(slug string, err error) error {
	if errors.Is(err, application.ErrConflict) {
		return fmt.Errorf("%w: %q: %w", ErrSlugTaken, slug, err)
	}
	return err
}

func (w *Wiki) page(ctx context.Context, slug string) (*Page, error) {
	index, err := w.indexes.Get(ctx, IndexID(slug))
	if errors.Is(err, application.ErrAggregateNotFound) || err == nil && index.Ref == uuid.Nil {
		return nil, fmt.Errorf("%w: %q", ErrPageNotFound, slug)
	}
	if err != nil {
		return nil, err
	}
	return w.pages.Get(ctx, index.Ref)
}

// GetPage returns the page with the slug.
func (w *Wiki) GetPage(ctx context.Context, slug string) (PageDetails, error) {
	p, err := w.page(ctx, slug)
	if err != nil {
		return PageDetails{}, err
	}
	return PageDetails{ID: p.ID(), Title: p.Title, Slug: p.Slug, Body: p.Body}, nil
}

// RenameSlug gives the page with slug the new slug, atomically with
// releasing the old slug and claiming the new one.
func (w *Wiki) RenameSlug(ctx context.Context, slug, newSlug string) error {
	if err := checkSlug(newSlug); err != nil {
		return err
	}
	if slug == newSlug {
		return nil
	}
	return application.Retry(ctx, func(ctx context.Context) error {
		p, err := w.page(ctx, slug)
		if err != nil {
			return err
		}
		old, err := w.indexes.Get(ctx, IndexID(slug))
		if err != nil {
			return err
		}
		claimed, err := w.claim(ctx, newSlug, p.ID())
		if err != nil {
			return err
		}
		if err := domain.Trigger(p, SlugUpdated{Slug: newSlug}); err != nil {
			return err
		}
		if err := domain.Trigger(old, RefUpdated{Ref: uuid.Nil}); err != nil {
			return err
		}
		_, err = w.Save(ctx, p, old, claimed)
		return err
	})
}

// UpdateTitle changes the title of the page with the slug.
func (w *Wiki) UpdateTitle(ctx context.Context, slug, title string) error {
	return w.edit(ctx, slug, TitleUpdated{Title: title})
}

// UpdateBody replaces the body of the page with the slug.
func (w *Wiki) UpdateBody(ctx context.Context, slug, body string) error {
	return w.edit(ctx, slug, BodyUpdated{Body: body})
}

func (w *Wiki) edit(ctx context.Context, slug string, event any) error {
	return application.Retry(ctx, func(ctx context.Context) error {
		p, err := w.page(ctx, slug)
		if err != nil {
			return err
		}
		if err := domain.Trigger(p, event); err != nil {
			return err
		}
		_, err = w.Save(ctx, p)
		return err
	})
}

// Pages returns the repository of pages.
func (w *Wiki) Pages() *application.Repository[*Page] { return w.pages }

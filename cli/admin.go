package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/google/uuid"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/domain"
	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/system"
)

// Admin is an operator's handle on the stores of one domain: what the
// commands do, as library calls. Open one with [Open] and close it when
// done. It opens each application when it is first needed, with
// snapshotting enabled, and keeps it open until Close. An Admin is safe for
// concurrent use.
type Admin struct {
	dom    Domain
	opts   []application.Option
	sys    *system.System
	defs   map[string]system.Def
	aggs   []*aggregateType
	byName map[string]*aggregateType
	// other explains the names of registered types that are not
	// event-sourced aggregates: "an event type of application Worlds".
	other map[string]string

	mu     sync.Mutex
	apps   map[string]*application.Application
	closed bool
	tenant string
}

// SetTenant makes the Admin's operations work on tenant id's data ("" is
// the default tenant).
func (a *Admin) SetTenant(id string) error {
	if id != "" {
		if err := persistence.CheckTenant(id); err != nil {
			return err
		}
	}
	a.mu.Lock()
	a.tenant = id
	a.mu.Unlock()
	return nil
}

// view returns the named application as the Admin's tenant sees it.
func (a *Admin) view(ctx context.Context, name string) (*application.Application, error) {
	app, err := a.Application(ctx, name)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	tenant := a.tenant
	a.mu.Unlock()
	return app.ForTenant(tenant)
}

// aggregateType is an event-sourced aggregate type of a domain.
type aggregateType struct {
	name    string
	app     string
	info    *domain.TypeInfo
	created []string // the topics of its created events
}

// Open returns the handle on the stores of domain d. The options are given
// to every application's constructor after the command's own, so that
// application.WithEnv and application.WithSettings configure the stores as
// they configure any application (with no configuration, applications keep
// their events in memory). Open checks the domain's definition, whose
// errors wrap [ErrInvalidDomain]; it opens no store.
func Open(d Domain, opts ...application.Option) (*Admin, error) {
	fail := func(err error) (*Admin, error) {
		return nil, fmt.Errorf("domain %s: %w: %w", d.Name, ErrInvalidDomain, err)
	}
	if d.Name == "" {
		return nil, fmt.Errorf("%w: a domain has no name", ErrInvalidDomain)
	}
	sys, err := system.New(d.Applications, d.Pipes...)
	if err != nil {
		return fail(err)
	}
	a := &Admin{dom: d, opts: slices.Clone(opts), sys: sys, defs: map[string]system.Def{},
		byName: map[string]*aggregateType{}, other: map[string]string{}, apps: map[string]*application.Application{}}
	for _, def := range d.Applications {
		a.defs[def.Name] = def
		types, err := domain.NewRegistry(def.Types)
		if err != nil {
			return fail(fmt.Errorf("types of application %s: %w", def.Name, err))
		}
		for _, info := range types.Types() {
			name := info.Name()
			if !info.IsAggregate() {
				if _, ok := a.other[name]; !ok {
					a.other[name] = "an event type of application " + def.Name
				}
				continue
			}
			if prev, ok := a.byName[name]; ok {
				return fail(fmt.Errorf("applications %s and %s both have an aggregate type named %s", prev.app, def.Name, name))
			}
			t := &aggregateType{name: name, app: def.Name, info: info, created: types.CreatedTopics(info)}
			a.aggs = append(a.aggs, t)
			a.byName[name] = t
		}
	}
	for _, p := range d.PlainTypes {
		name := string(p)
		if t, ok := a.byName[name]; ok {
			return fail(fmt.Errorf("%s is a plain type and an aggregate type of application %s", name, t.app))
		}
		a.other[name] = "a plain type of domain " + d.Name
	}
	return a, nil
}

// Domain returns the domain.
func (a *Admin) Domain() Domain { return a.dom }

// Applications returns the names of the domain's applications, in the
// order they are defined.
func (a *Admin) Applications() []string { return a.sys.Names() }

// Aggregates returns the names of the domain's event-sourced aggregate
// types: by application, in the order the applications are defined, and
// by topic within each.
func (a *Admin) Aggregates() []string {
	names := make([]string, len(a.aggs))
	for i, t := range a.aggs {
		names[i] = t.name
	}
	return names
}

// ApplicationOf returns the name of the application whose aggregate type
// is named aggregate.
func (a *Admin) ApplicationOf(aggregate string) (string, error) {
	t, err := a.aggregate(aggregate)
	if err != nil {
		return "", err
	}
	return t.app, nil
}

// aggregate returns the event-sourced aggregate type named name.
func (a *Admin) aggregate(name string) (*aggregateType, error) {
	if t, ok := a.byName[name]; ok {
		return t, nil
	}
	if what, ok := a.other[name]; ok {
		return nil, fmt.Errorf("%s is %w (it is %s)", name, ErrNotEventSourced, what)
	}
	known := "it has none"
	if len(a.aggs) > 0 {
		known = "event-sourced aggregates: " + strings.Join(a.Aggregates(), ", ")
	}
	return nil, fmt.Errorf("aggregate %s %w %s (%s)", name, ErrAggregateNotFound, a.dom.Name, known)
}

// Application returns the named application (the domain's first if name
// is empty), opening it on first use. An unknown name is an error wrapping
// system.ErrUnknownApplication.
func (a *Admin) Application(ctx context.Context, name string) (*application.Application, error) {
	names := a.sys.Names()
	if name == "" {
		if len(names) == 0 {
			return nil, fmt.Errorf("domain %s has no applications", a.dom.Name)
		}
		name = names[0]
	}
	def, ok := a.defs[name]
	if !ok {
		return nil, fmt.Errorf("%w %q in domain %s (applications: %s)", system.ErrUnknownApplication, name, a.dom.Name, strings.Join(names, ", "))
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, fmt.Errorf("open application %s: %w: the admin handle is closed", name, persistence.ErrInterface)
	}
	if app := a.apps[name]; app != nil {
		return app, nil
	}
	n, err := def.New(ctx, a.options(name)...)
	if err != nil {
		return nil, fmt.Errorf("open application %s: %w", name, err)
	}
	if n == nil || n.App() == nil {
		return nil, fmt.Errorf("open application %s: %w: the constructor returned no application", name, ErrInvalidDomain)
	}
	a.apps[name] = n.App()
	return n.App(), nil
}

// options returns the options of the named application's constructor:
// those of a system runner (tracking and the leaders' types for a
// follower), the Admin's, and a snapshot store whatever
// IS_SNAPSHOTTING_ENABLED says (its value is still checked).
func (a *Admin) options(name string) []application.Option {
	var opts []application.Option
	if a.sys.IsFollower(name) {
		opts = append(opts, application.WithTracking())
		for _, l := range a.sys.Leaders(name) {
			opts = append(opts, application.WithTypes(a.defs[l].Types))
		}
	}
	opts = append(opts, application.WithTypes(system.ParkingTypes))
	opts = append(opts, a.opts...)
	return append(opts, application.WithSnapshotStore())
}

// Close closes the applications the Admin opened.
func (a *Admin) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed = true
	var errs []error
	for _, name := range a.sys.Names() {
		if app := a.apps[name]; app != nil {
			errs = append(errs, app.Close())
		}
	}
	a.apps = map[string]*application.Application{}
	return errors.Join(errs...)
}

// instance returns the application of an aggregate and checks that id has
// events, the first of which creates an aggregate of the type.
func (a *Admin) instance(ctx context.Context, aggregate string, id uuid.UUID) (*aggregateType, *application.Application, error) {
	t, err := a.aggregate(aggregate)
	if err != nil {
		return nil, nil, err
	}
	app, err := a.view(ctx, t.app)
	if err != nil {
		return nil, nil, err
	}
	first, err := app.Recorder().SelectEvents(ctx, id, persistence.EventQuery{Limit: 1})
	if err != nil {
		return nil, nil, fmt.Errorf("%s with identifier %s: %w", t.name, id, err)
	}
	if len(first) == 0 {
		return nil, nil, fmt.Errorf("%s with identifier %s %w", t.name, id, ErrInstanceNotFound)
	}
	if len(t.created) > 0 && !slices.Contains(t.created, first[0].Topic) && !a.truncatedInstance(ctx, app, t, first[0]) {
		return nil, nil, fmt.Errorf("%s with identifier %s %w (%s)", t.name, id, ErrInstanceNotFound, a.whatIs(t.app, first[0].Topic))
	}
	return t, app, nil
}

// truncatedInstance reports whether first, the first event of an
// aggregate that is not one of t's created events, starts a truncated
// stream of a t: one after t's initial version whose latest snapshot is a
// t's.
func (a *Admin) truncatedInstance(ctx context.Context, app *application.Application, t *aggregateType, first persistence.StoredEvent) bool {
	if first.OriginatorVersion <= domain.InitialVersion(t.info.New()) || app.Snapshots() == nil {
		return false
	}
	snaps, err := app.Snapshots().Recorder().SelectEvents(ctx, first.OriginatorID, persistence.EventQuery{Desc: true, Limit: 1})
	if err != nil || len(snaps) == 0 {
		return false
	}
	return snaps[0].Topic == t.info.Topic() || slices.Contains(t.info.Aliases(), snaps[0].Topic)
}

// whatIs describes the aggregate whose first event has the topic.
func (a *Admin) whatIs(app, topic string) string {
	for _, t := range a.aggs {
		if t.app == app && slices.Contains(t.created, topic) {
			return "it is of type " + t.name
		}
	}
	return "its first event is a " + topic
}

// CreateSnapshot snapshots the aggregate of the named type with the
// identifier: it is rebuilt from all its events, even if it has a
// snapshot, and the snapshot replaces any at the same version. The store
// writes each snapshot atomically. Errors wrap [ErrAggregateNotFound],
// [ErrNotEventSourced] or, if the identifier has no events of the type,
// [ErrInstanceNotFound].
func (a *Admin) CreateSnapshot(ctx context.Context, aggregate string, id uuid.UUID) (domain.Snapshot, error) {
	_, app, err := a.instance(ctx, aggregate, id)
	if err != nil {
		return domain.Snapshot{}, err
	}
	snap, err := app.TakeSnapshot(ctx, id)
	if err != nil {
		return domain.Snapshot{}, fmt.Errorf("%s with identifier %s: %w", aggregate, id, err)
	}
	return snap, nil
}

// Progress is how far a run of snapshots is.
type Progress struct {
	// Aggregate names the aggregate type being snapshotted.
	Aggregate string
	// Done is how many of its instances have been snapshotted.
	Done int
	// Total is how many instances it had when the run started.
	Total int
}

// SnapshotOption configures [Admin.CreateSnapshots] and
// [Admin.CreateAllSnapshots].
type SnapshotOption func(*snapshotConfig)

type snapshotConfig struct {
	progress func(Progress)
}

// WithProgress makes a run call f when it starts an aggregate type
// (Done 0) and after each snapshot. Knowing the total costs one more pass
// over the notification log's created events, which is only made for f.
func WithProgress(f func(Progress)) SnapshotOption {
	return func(c *snapshotConfig) { c.progress = f }
}

// pageSize is how many notifications of created events a run reads at a
// time: what it holds in memory however many instances there are.
const pageSize = application.MaxLimit

// CreateSnapshots snapshots every instance of the named aggregate type as
// [Admin.CreateSnapshot] does, and returns how many it snapshotted. It
// finds the instances in the application's notification log by the topics
// of the events that create the type (see domain.CreatedBy), a page at a
// time, up to the last notification when it starts, and the instances
// whose streams were truncated by their snapshots; each instance is
// snapshotted once.
//
// When ctx ends, the run stops between two snapshots: the ones it
// created are complete, and it returns their number with ctx's error.
func (a *Admin) CreateSnapshots(ctx context.Context, aggregate string, opts ...SnapshotOption) (int, error) {
	var c snapshotConfig
	for _, o := range opts {
		o(&c)
	}
	t, err := a.aggregate(aggregate)
	if err != nil {
		return 0, err
	}
	return a.createSnapshots(ctx, t, c)
}

func (a *Admin) createSnapshots(ctx context.Context, t *aggregateType, c snapshotConfig) (int, error) {
	if len(t.created) == 0 {
		return 0, fmt.Errorf("snapshot %s: cannot find its instances: the aggregate type declares no created events (domain.CreatedBy)", t.name)
	}
	app, err := a.view(ctx, t.app)
	if err != nil {
		return 0, err
	}
	stop, err := app.Recorder().MaxNotificationID(ctx)
	if err != nil {
		return 0, fmt.Errorf("snapshot %s: %w", t.name, err)
	}
	total := 0
	if c.progress != nil {
		if err := a.instances(ctx, app, t, stop, func(uuid.UUID) error { total++; return nil }); err != nil {
			return 0, fmt.Errorf("snapshot %s: count instances: %w", t.name, err)
		}
		c.progress(Progress{Aggregate: t.name, Total: total})
	}
	done := 0
	err = a.instances(ctx, app, t, stop, func(id uuid.UUID) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := app.TakeSnapshot(ctx, id); err != nil {
			return fmt.Errorf("%s with identifier %s: %w", t.name, id, err)
		}
		done++
		if c.progress != nil {
			c.progress(Progress{Aggregate: t.name, Done: done, Total: max(total, done)})
		}
		return nil
	})
	if err == nil {
		// Truncated instances have no created event left in the log:
		// their snapshots find them.
		var truncated []uuid.UUID
		if truncated, err = a.truncatedInstances(ctx, app, t); err == nil {
			for _, id := range truncated {
				if err = ctx.Err(); err != nil {
					break
				}
				if _, err = app.TakeSnapshot(ctx, id); err != nil {
					err = fmt.Errorf("%s with identifier %s: %w", t.name, id, err)
					break
				}
				done++
				if c.progress != nil {
					c.progress(Progress{Aggregate: t.name, Done: done, Total: max(total, done)})
				}
			}
		}
	}
	if err != nil {
		return done, fmt.Errorf("snapshot %s after %d snapshot(s): %w", t.name, done, err)
	}
	return done, nil
}

// truncatedInstances returns the instances of t whose streams were
// truncated (see persistence.Truncater), found by their snapshots, or none
// if the store cannot truncate.
func (a *Admin) truncatedInstances(ctx context.Context, app *application.Application, t *aggregateType) ([]uuid.UUID, error) {
	tr, ok := app.Factory().(persistence.Truncater)
	if !ok || app.Snapshots() == nil {
		return nil, nil
	}
	lister, ok := app.Snapshots().Recorder().(persistence.Lister)
	if !ok {
		return nil, nil
	}
	var ids []uuid.UUID
	for id, err := range lister.Originators(ctx) {
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	var out []uuid.UUID
	for _, id := range ids {
		point, err := tr.TruncationPoint(ctx, id)
		if err != nil {
			return nil, err
		}
		if point <= domain.InitialVersion(t.info.New()) {
			continue // never truncated, or its created event is still there
		}
		latest, err := app.Snapshots().Recorder().SelectEvents(ctx, id, persistence.EventQuery{Desc: true, Limit: 1})
		if err != nil {
			return nil, err
		}
		if len(latest) > 0 && (latest[0].Topic == t.info.Topic() || slices.Contains(t.info.Aliases(), latest[0].Topic)) {
			out = append(out, id)
		}
	}
	return out, nil
}

// instances calls f with the ID of each instance of t whose created event
// has a notification ID up to stop, in order. An aggregate has one event
// at its initial version, so each ID comes once, without remembering IDs.
func (a *Admin) instances(ctx context.Context, app *application.Application, t *aggregateType, stop int64, f func(uuid.UUID) error) error {
	if stop == 0 {
		return nil
	}
	initial := domain.InitialVersion(t.info.New())
	start := int64(1)
	for {
		page, err := app.Log().Select(ctx, start, pageSize, application.Topics(t.created...), application.Stop(stop))
		if err != nil {
			return err
		}
		for _, n := range page {
			start = n.ID + 1
			if n.OriginatorVersion != initial {
				continue
			}
			if err := f(n.OriginatorID); err != nil {
				return err
			}
		}
		if len(page) < pageSize {
			return nil
		}
	}
}

// CreateAllSnapshots snapshots every instance of every event-sourced
// aggregate type of the domain, type after type in the order of
// [Admin.Aggregates], and returns how many it snapshotted of each. A domain
// without event-sourced aggregates gives an empty map. If a type fails or
// ctx ends, it returns what it did so far with the error.
func (a *Admin) CreateAllSnapshots(ctx context.Context, opts ...SnapshotOption) (map[string]int, error) {
	var c snapshotConfig
	for _, o := range opts {
		o(&c)
	}
	out := make(map[string]int, len(a.aggs))
	for _, t := range a.aggs {
		n, err := a.createSnapshots(ctx, t, c)
		out[t.name] = n
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

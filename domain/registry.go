package domain

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Upcaster changes the stored state of a type from one class version to the
// next, before the state becomes a Go value. The state is the decoded JSON
// object of the value's fields.
type Upcaster func(state map[string]any) error

// TypeInfo describes a registered type: its topic, class version, upcasters
// and, for aggregates, the events that create it.
type TypeInfo struct {
	topic          string
	aliases        []string
	goType         reflect.Type
	classVersion   int
	upcasters      map[int]Upcaster
	aggregate      bool
	createdBy      []reflect.Type
	newPtr         func() any
	deref          func(ptr any) any
	replay         func(agg Root, events []Event) error
	applies        func(event reflect.Type) bool
	snapshotReason string
}

// Topic returns the type's topic, the string recorded with its values.
func (t *TypeInfo) Topic() string { return t.topic }

// Aliases returns the older topics that still resolve to the type.
func (t *TypeInfo) Aliases() []string { return slices.Clone(t.aliases) }

// GoType returns the registered Go type. For aggregates it is the pointer
// type that implements [Root].
func (t *TypeInfo) GoType() reflect.Type { return t.goType }

// ClassVersion returns the current class version of the type (at least 1).
func (t *TypeInfo) ClassVersion() int { return t.classVersion }

// IsAggregate reports whether the type is an aggregate.
func (t *TypeInfo) IsAggregate() bool { return t.aggregate }

// Name returns the Go type's name without its package, for messages and
// command lines: "World" for *worlds.World.
func (t *TypeInfo) Name() string {
	g := t.goType
	for g.Kind() == reflect.Pointer {
		g = g.Elem()
	}
	return g.Name()
}

// New returns a pointer to a new zero value of the type, ready to be
// decoded into. For an aggregate type *World it returns a *World.
func (t *TypeInfo) New() any { return t.newPtr() }

// Value turns a pointer made by New back into a value of the registered
// type: the pointed-to value for value types, the pointer itself for
// pointer types and aggregates.
func (t *TypeInfo) Value(ptr any) any { return t.deref(ptr) }

// Upcast runs the upcasters that bring state from class version from to the
// type's class version, in order. State recorded before class versions
// existed has version 1.
func (t *TypeInfo) Upcast(state map[string]any, from int) error {
	if from < 1 {
		from = 1
	}
	if from > t.classVersion {
		return fmt.Errorf("%w: %s: stored class version %d is newer than the registered version %d",
			ErrUpcast, t.topic, from, t.classVersion)
	}
	for v := from; v < t.classVersion; v++ {
		up := t.upcasters[v]
		if up == nil {
			return fmt.Errorf("%w: %s: no upcaster from class version %d to %d", ErrUpcast, t.topic, v, v+1)
		}
		if err := up(state); err != nil {
			return fmt.Errorf("%w: %s from class version %d to %d: %w", ErrUpcast, t.topic, v, v+1, err)
		}
	}
	return nil
}

// Replay applies events to agg, an aggregate of this type, as [Replay]
// does with the static type; it lets code that holds a [Root] rebuild
// aggregates whose events apply themselves (the explicit style).
func (t *TypeInfo) Replay(agg Root, events ...Event) error {
	if t.replay == nil {
		return fmt.Errorf("replay %s: not an aggregate type", t.goType)
	}
	return t.replay(agg, events)
}

// Snapshottable reports whether snapshots of the aggregate type keep its
// whole state. It is false, with the reason, when the type has unexported
// fields and does not encode itself (MarshalJSON), so that a snapshot would
// silently lose them.
func (t *TypeInfo) Snapshottable() (bool, string) {
	return t.aggregate && t.snapshotReason == "", t.snapshotReason
}

// Def is a definition of one or more types to register. Build them with
// [EventType], [AggregateType] and [Types].
type Def struct {
	items []typeDef
}

type typeDef struct {
	info     *TypeInfo
	explicit bool
	err      error
}

// Option configures a type definition.
type Option func(*TypeInfo, *Def) error

// Named sets the type's topic, instead of the default derived from its
// package path and name. Give every persisted type an explicit name if its
// package or name may change.
func Named(topic string) Option {
	return func(t *TypeInfo, _ *Def) error {
		if strings.TrimSpace(topic) == "" {
			return errors.New("empty topic")
		}
		t.topic = topic
		return nil
	}
}

// Aliases keeps older topics of a renamed type, so that values stored under
// them still resolve to it.
func Aliases(topics ...string) Option {
	return func(t *TypeInfo, _ *Def) error {
		for _, a := range topics {
			if strings.TrimSpace(a) == "" {
				return errors.New("empty alias")
			}
		}
		t.aliases = append(t.aliases, topics...)
		return nil
	}
}

// ClassVersion sets the type's class version (default 1). An event type at
// version n needs an [Upcast] from every version 1 to n-1. An aggregate
// type may omit some: snapshots recorded at a version that cannot be upcast
// are not used, and the aggregate is rebuilt from its events instead.
func ClassVersion(n int) Option {
	return func(t *TypeInfo, _ *Def) error {
		if n < 1 {
			return fmt.Errorf("class version %d is less than 1", n)
		}
		t.classVersion = n
		return nil
	}
}

// Upcast registers the upcaster from class version from to from+1.
func Upcast(from int, fn Upcaster) Option {
	return func(t *TypeInfo, _ *Def) error {
		if from < 1 {
			return fmt.Errorf("upcaster from class version %d: versions start at 1", from)
		}
		if fn == nil {
			return fmt.Errorf("upcaster from class version %d is nil", from)
		}
		if _, dup := t.upcasters[from]; dup {
			return fmt.Errorf("two upcasters from class version %d", from)
		}
		t.upcasters[from] = fn
		return nil
	}
}

// CreatedBy names, by example values, the event types that create an
// aggregate type, and registers them with default settings unless they are
// defined explicitly. Operators' tools use them to find every instance of an
// aggregate type.
func CreatedBy(events ...any) Option {
	return func(t *TypeInfo, d *Def) error {
		if !t.aggregate {
			return errors.New("CreatedBy applies to aggregate types")
		}
		for _, e := range events {
			if e == nil {
				return errors.New("CreatedBy: nil event")
			}
			if err := t.checkApplies(e); err != nil {
				return err
			}
			t.createdBy = append(t.createdBy, reflect.TypeOf(e))
			d.items = append(d.items, weakEvent(e))
		}
		return nil
	}
}

// Events registers, by example values, more event types of an aggregate
// with default settings, unless they are defined explicitly.
func Events(events ...any) Option {
	return func(t *TypeInfo, d *Def) error {
		for _, e := range events {
			if e == nil {
				return errors.New("Events: nil event")
			}
			if _, isRoot := e.(Root); isRoot {
				return fmt.Errorf("%T is an aggregate, not an event", e)
			}
			if err := t.checkApplies(e); err != nil {
				return err
			}
			d.items = append(d.items, weakEvent(e))
		}
		return nil
	}
}

// checkApplies refuses an event type listed for an aggregate type that
// nothing would apply: triggering it would move the aggregate's version
// and change none of its state.
func (t *TypeInfo) checkApplies(event any) error {
	if t.applies == nil || t.applies(reflect.TypeOf(event)) {
		return nil
	}
	return fmt.Errorf("%w: %T has no ApplyTo(%s) method and %s has no Apply(event any) error method",
		ErrUnknownEvent, event, t.goType, t.goType)
}

// EventType defines the event type T. Its values are stored as they are
// triggered: register SomethingHappened for events triggered as
// SomethingHappened{...}, *SomethingHappened for pointers.
func EventType[T any](opts ...Option) Def {
	t := reflect.TypeFor[T]()
	info := newInfo(t)
	info.newPtr = func() any { return new(T) }
	info.deref = func(p any) any { return *p.(*T) }
	return define(info, opts)
}

// AggregateType defines the aggregate type T, whose pointer embeds
// [Aggregate]. Its topic is used for snapshots.
//
//	domain.AggregateType[World](domain.CreatedBy(WorldCreated{}), domain.Events(SomethingHappened{}))
func AggregateType[T any, PT interface {
	*T
	Root
}](opts ...Option) Def {
	info := newInfo(reflect.TypeFor[PT]())
	info.aggregate = true
	info.newPtr = func() any { return PT(new(T)) }
	info.deref = func(p any) any { return p }
	info.snapshotReason = snapshotProblem(reflect.TypeFor[T](), reflect.TypeFor[PT]())
	_, mutates := any(PT(nil)).(Mutator)
	applier := reflect.TypeFor[Applier[PT]]()
	info.applies = func(event reflect.Type) bool { return mutates || event.Implements(applier) }
	info.replay = func(agg Root, events []Event) error {
		p, ok := agg.(PT)
		if !ok {
			return fmt.Errorf("replay %T as %s: %w", agg, info.goType, ErrUnregistered)
		}
		return Replay(p, events...)
	}
	return define(info, opts)
}

// Types groups definitions, so that a domain package can export all its
// types as one value:
//
//	var Types = domain.Types(domain.AggregateType[World](...), domain.EventType[SomethingHappened]())
func Types(defs ...Def) Def {
	var d Def
	for _, x := range defs {
		d.items = append(d.items, x.items...)
	}
	return d
}

func newInfo(t reflect.Type) *TypeInfo {
	return &TypeInfo{goType: t, topic: DefaultTopic(t), classVersion: 1, upcasters: map[int]Upcaster{}}
}

func define(info *TypeInfo, opts []Option) Def {
	d := Def{}
	item := typeDef{info: info, explicit: true}
	if info.goType.Name() == "" && (info.goType.Kind() != reflect.Pointer || info.goType.Elem().Name() == "") {
		item.err = fmt.Errorf("type %s has no name", info.goType)
	}
	for _, o := range opts {
		if item.err != nil {
			break
		}
		if err := o(info, &d); err != nil {
			item.err = fmt.Errorf("%s: %w", info.goType, err)
		}
	}
	return Def{items: append([]typeDef{item}, d.items...)}
}

func weakEvent(v any) typeDef {
	t := reflect.TypeOf(v)
	info := newInfo(t)
	if t.Kind() == reflect.Pointer {
		elem := t.Elem()
		info.newPtr = func() any { return reflect.New(elem).Interface() }
		info.deref = func(p any) any { return p }
	} else {
		info.newPtr = func() any { return reflect.New(t).Interface() }
		info.deref = func(p any) any { return reflect.ValueOf(p).Elem().Interface() }
	}
	var err error
	if _, isRoot := v.(Root); isRoot {
		err = fmt.Errorf("%s is an aggregate, not an event", t)
	}
	return typeDef{info: info, err: err}
}

// DefaultTopic returns the topic a type has unless it is given a name: its
// package path and type name, "github.com/acme/worlds.SomethingHappened".
// Pointer types have the topic of the type they point to.
func DefaultTopic(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.PkgPath() == "" {
		return t.Name()
	}
	return t.PkgPath() + "." + t.Name()
}

// snapshotProblem explains why a snapshot of an aggregate type would lose
// state, or returns "".
func snapshotProblem(t, pt reflect.Type) string {
	for _, m := range []string{"MarshalJSON", "MarshalJSONTo"} {
		if _, ok := pt.MethodByName(m); ok {
			return ""
		}
	}
	base := reflect.TypeFor[Aggregate]()
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Type == base {
			continue
		}
		if !f.IsExported() {
			return fmt.Sprintf("%s has the unexported field %s, which a snapshot would not keep: export it or implement MarshalJSON and UnmarshalJSON", t, f.Name)
		}
	}
	return ""
}

// Registry maps topics to Go types and back. It is safe for concurrent use;
// registration normally happens once, when an application is built.
type Registry struct {
	mu      sync.RWMutex
	byType  map[reflect.Type]*TypeInfo
	byTopic map[string]*TypeInfo
	weak    map[reflect.Type]bool
}

// NewRegistry returns a registry with the given definitions registered.
func NewRegistry(defs ...Def) (*Registry, error) {
	r := &Registry{byType: map[reflect.Type]*TypeInfo{}, byTopic: map[string]*TypeInfo{}, weak: map[reflect.Type]bool{}}
	if err := r.Register(defs...); err != nil {
		return nil, err
	}
	return r, nil
}

// Register adds definitions. Defining a type again with the same topic and
// class version is allowed (two domains may share an event type); a
// conflicting definition, a topic or alias taken by another type, or a gap
// in a type's upcasters is an error wrapping [ErrRegistration], and nothing
// of the call is registered.
func (r *Registry) Register(defs ...Def) error {
	var items []typeDef
	for _, d := range defs {
		items = append(items, d.items...)
	}
	// Explicit definitions go first so that a type named explicitly is not
	// registered under its default topic by a CreatedBy or Events reference.
	sort.SliceStable(items, func(i, j int) bool { return items[i].explicit && !items[j].explicit })
	var errs []error
	for _, it := range items {
		if it.err != nil {
			errs = append(errs, it.err)
			continue
		}
		if err := checkUpcasters(it.info); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrRegistration, errors.Join(errs...))
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byType == nil {
		r.byType, r.byTopic, r.weak = map[reflect.Type]*TypeInfo{}, map[string]*TypeInfo{}, map[reflect.Type]bool{}
	}
	byType := cloneMap(r.byType)
	byTopic := cloneMap(r.byTopic)
	weak := cloneMap(r.weak)
	for _, it := range items {
		if err := add(byType, byTopic, weak, it); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrRegistration, errors.Join(errs...))
	}
	r.byType, r.byTopic, r.weak = byType, byTopic, weak
	return nil
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	c := make(map[K]V, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// checkUpcasters requires an event type's chain of upcasters to be
// complete. An aggregate type may leave gaps: its state can always be
// rebuilt from events, so snapshots that cannot be upcast are not used.
func checkUpcasters(t *TypeInfo) error {
	for v := 1; v < t.classVersion && !t.aggregate; v++ {
		if t.upcasters[v] == nil {
			return fmt.Errorf("%s: class version %d has no upcaster from version %d to %d", t.goType, t.classVersion, v, v+1)
		}
	}
	for from := range t.upcasters {
		if from >= t.classVersion {
			return fmt.Errorf("%s: upcaster from version %d but the class version is %d", t.goType, from, t.classVersion)
		}
	}
	return nil
}

func add(byType map[reflect.Type]*TypeInfo, byTopic map[string]*TypeInfo, weak map[reflect.Type]bool, it typeDef) error {
	t := it.info
	if old, ok := byType[t.goType]; ok {
		switch {
		case !it.explicit:
			return nil
		case weak[t.goType]:
			// An explicit definition replaces a default one.
			delete(byTopic, old.topic)
			delete(weak, t.goType)
		case old.topic != t.topic || old.classVersion != t.classVersion || old.aggregate != t.aggregate:
			return fmt.Errorf("%s is defined twice differently (topic %q version %d, then topic %q version %d)",
				t.goType, old.topic, old.classVersion, t.topic, t.classVersion)
		default:
			// Merge into a copy, so that a failed Register leaves the
			// registered types as they were.
			merged := *old
			merged.aliases = slices.Clone(old.aliases)
			merged.createdBy = slices.Clone(old.createdBy)
			for _, a := range t.aliases {
				if !slices.Contains(merged.aliases, a) {
					if other, taken := byTopic[a]; taken && other.goType != t.goType {
						return fmt.Errorf("alias %q of %s is the topic of %s", a, t.goType, other.goType)
					}
					merged.aliases = append(merged.aliases, a)
				}
			}
			for _, c := range t.createdBy {
				if !slices.Contains(merged.createdBy, c) {
					merged.createdBy = append(merged.createdBy, c)
				}
			}
			byType[t.goType] = &merged
			for _, topic := range append([]string{merged.topic}, merged.aliases...) {
				byTopic[topic] = &merged
			}
			return nil
		}
	}
	for _, topic := range append([]string{t.topic}, t.aliases...) {
		if other, taken := byTopic[topic]; taken && other.goType != t.goType {
			return fmt.Errorf("topic %q of %s is already the topic of %s", topic, t.goType, other.goType)
		}
	}
	byType[t.goType] = t
	byTopic[t.topic] = t
	for _, a := range t.aliases {
		byTopic[a] = t
	}
	if !it.explicit {
		weak[t.goType] = true
	}
	return nil
}

// Resolve returns the type recorded under topic, which may be an alias.
// An unknown topic is an error wrapping [ErrUnknownTopic] that names it.
func (r *Registry) Resolve(topic string) (*TypeInfo, error) {
	r.mu.RLock()
	t := r.byTopic[topic]
	r.mu.RUnlock()
	if t == nil {
		return nil, fmt.Errorf("%w %q: register its type with the application", ErrUnknownTopic, topic)
	}
	return t, nil
}

// Lookup returns the registered type of v (an event value or an aggregate).
// An unregistered type is an error wrapping [ErrUnregistered].
func (r *Registry) Lookup(v any) (*TypeInfo, error) {
	return r.LookupType(reflect.TypeOf(v))
}

// LookupType is [Registry.Lookup] for a reflect.Type.
func (r *Registry) LookupType(t reflect.Type) (*TypeInfo, error) {
	r.mu.RLock()
	info := r.byType[t]
	r.mu.RUnlock()
	if info == nil {
		return nil, fmt.Errorf("%w: %v: define it with domain.EventType or domain.AggregateType", ErrUnregistered, t)
	}
	return info, nil
}

// Types returns every registered type, ordered by topic.
func (r *Registry) Types() []*TypeInfo {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]*TypeInfo, 0, len(r.byType))
	for _, t := range r.byType {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].topic < out[j].topic })
	return out
}

// Aggregates returns the registered aggregate types, ordered by topic.
func (r *Registry) Aggregates() []*TypeInfo {
	var out []*TypeInfo
	for _, t := range r.Types() {
		if t.aggregate {
			out = append(out, t)
		}
	}
	return out
}

// CreatedTopics returns the topics (and aliases) of the events that create
// aggregates of type agg, as declared with [CreatedBy].
func (r *Registry) CreatedTopics(agg *TypeInfo) []string {
	var topics []string
	for _, ct := range agg.createdBy {
		if info, err := r.LookupType(ct); err == nil {
			topics = append(topics, info.topic)
			topics = append(topics, info.aliases...)
		}
	}
	return topics
}

// AggregateCreatedBy returns the aggregate type that lists the type of
// event (a created event's value) in its [CreatedBy] option.
func (r *Registry) AggregateCreatedBy(event any) (*TypeInfo, bool) {
	et := reflect.TypeOf(event)
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, t := range r.byType {
		if t.aggregate && slices.Contains(t.createdBy, et) {
			return t, true
		}
	}
	return nil, false
}

// CreatedByTypes returns the Go types of the events that create the
// aggregate type, as declared with [CreatedBy].
func (t *TypeInfo) CreatedByTypes() []reflect.Type { return slices.Clone(t.createdBy) }

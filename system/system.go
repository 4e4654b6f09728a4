package system

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/domain"
	"github.com/strata-go/strata/persistence"
)

// Node is an application of a system: any type that embeds
// *application.Application (which gives it the App method).
type Node interface {
	App() *application.Application
}

// Processor is a node that processes the events of the applications it
// follows: a process application. Its policy decides what an upstream
// event means for its own aggregates.
type Processor interface {
	Node
	// Policy processes one upstream event. It loads what it needs from
	// the node's repositories, changes aggregates, and hands them to
	// p.Save: their new events are then recorded atomically with the
	// position of the upstream event, so that each upstream event is
	// processed exactly once. A policy that returns an error changes
	// nothing; the event is processed again later.
	Policy(ctx context.Context, event domain.Event, p *Processing) error
}

// AloneProcessor is implemented by processors whose policies act outside
// their own application before their results are recorded, as a saga's
// dispatcher sends commands: ProcessAlone returning true makes the runner
// record each of their notifications in a transaction of its own, as
// [BatchSize](1) would. In a batch, a policy's outside effect would be
// made for every notification of the batch before any of them is
// recorded, and made again if the batch is processed again (after a crash,
// or one by one after a failure), which only an idempotent effect bears.
type AloneProcessor interface {
	Processor
	ProcessAlone() bool
}

// Processing is what processing one upstream event produced: the
// aggregates whose new events are to be recorded with the event's
// position (the reference design's ProcessEvent).
type Processing struct {
	// Upstream names the application the event came from.
	Upstream string
	// Tracking is the event's position in the upstream log.
	Tracking persistence.Tracking
	// Notification is the upstream notification.
	Notification persistence.Notification
	// Tenant is the upstream notification's tenant, in which the results
	// are recorded ("" is the default tenant).
	Tenant string
	// App is the follower's application as the notification's tenant sees
	// it (see application.Application.ForTenant): a policy of an
	// application with tenants loads what it changes from repositories made
	// from it. For the default tenant it is the follower's application.
	App *application.Application
	// Commit is what the results' commit records: by default, the
	// upstream event's correlation ID (its own ID if it has none) and its
	// ID as the causation ID (see persistence.EventID). A policy may add
	// headers.
	Commit application.Commit

	aggregates []domain.Root
	nodes      func(name string) (Node, error)
}

// Node returns the application named name that the runner built in this
// process, so that a policy (a saga's dispatcher, say) can act on another
// application. An application the runner did not build here (one that is
// hosted by another process, or only remote) is an error wrapping
// ErrUnknownApplication.
func (p *Processing) Node(name string) (Node, error) {
	if p.nodes == nil {
		return nil, fmt.Errorf("%w %q: not built in this process", ErrUnknownApplication, name)
	}
	return p.nodes(name)
}

// NodeAs is [Processing.Node] as type T.
func NodeAs[T Node](p *Processing, name string) (T, error) {
	var zero T
	n, err := p.Node(name)
	if err != nil {
		return zero, err
	}
	t, ok := n.(T)
	if !ok {
		return zero, fmt.Errorf("%s is a %T, not a %T", name, n, zero)
	}
	return t, nil
}

// Save collects the pending events of aggregates, to be recorded
// atomically with the tracking record when the policy returns.
func (p *Processing) Save(aggregates ...domain.Root) {
	for _, a := range aggregates {
		if a != nil && !slices.Contains(p.aggregates, a) {
			p.aggregates = append(p.aggregates, a)
		}
	}
}

// Def defines a node of a system: its name, the types of its events (which
// its followers need to decode them), and how to build it.
type Def struct {
	Name      string
	Types     domain.Def
	New       func(ctx context.Context, opts ...application.Option) (Node, error)
	processor bool
}

// Define defines a node built by newNode, which receives the options the
// runner adds (the environment, the types of the node's leaders, tracking
// for processors) and must pass them to application.New.
func Define[T Node](name string, types domain.Def, newNode func(ctx context.Context, opts ...application.Option) (T, error)) Def {
	return Def{
		Name:  name,
		Types: types,
		New: func(ctx context.Context, opts ...application.Option) (Node, error) {
			n, err := newNode(ctx, opts...)
			if err != nil {
				return nil, err
			}
			return n, nil
		},
		processor: reflect.TypeFor[T]().Implements(reflect.TypeFor[Processor]()),
	}
}

// ErrSystem means a system definition that cannot run: an unknown
// application in a pipe, a follower that has no policy, and so on.
var ErrSystem = errors.New("invalid system")

// System is a set of applications and who follows whom, defined by pipes:
// in the pipe {"Worlds", "Counters", "Reports"}, Counters follows Worlds and
// Reports follows Counters. Pipes may form cycles, through which two
// process applications follow each other; an application does not follow
// itself.
type System struct {
	defs    map[string]Def
	order   []string            // names in order of first appearance
	leaders map[string][]string // follower → the applications it follows
	follows map[string][]string // leader → its followers
}

// New returns the system of the defined applications and pipes. Errors
// wrap [ErrSystem] and say what is wrong.
func New(defs []Def, pipes ...[]string) (*System, error) {
	s := &System{defs: map[string]Def{}, leaders: map[string][]string{}, follows: map[string][]string{}}
	var errs []error
	for _, d := range defs {
		switch {
		case d.Name == "":
			errs = append(errs, errors.New("an application has no name"))
		case d.New == nil:
			errs = append(errs, fmt.Errorf("application %s has no constructor", d.Name))
		case s.defs[d.Name].Name != "":
			errs = append(errs, fmt.Errorf("application %s is defined twice", d.Name))
		default:
			s.defs[d.Name] = d
			s.order = append(s.order, d.Name)
		}
	}
	for _, pipe := range pipes {
		if len(pipe) < 2 {
			errs = append(errs, fmt.Errorf("pipe %v: a pipe needs a leader and a follower", pipe))
			continue
		}
		for i, name := range pipe {
			if _, ok := s.defs[name]; !ok {
				errs = append(errs, fmt.Errorf("pipe %v: unknown application %q", pipe, name))
				continue
			}
			if i == 0 {
				continue
			}
			leader := pipe[i-1]
			if _, ok := s.defs[leader]; !ok {
				continue
			}
			switch {
			case leader == name:
				errs = append(errs, fmt.Errorf("pipe %v: %s cannot follow itself", pipe, name))
			case !s.defs[name].processor:
				errs = append(errs, fmt.Errorf("pipe %v: %s follows %s but has no Policy method (it must implement system.Processor)", pipe, name, leader))
			case !slices.Contains(s.leaders[name], leader):
				s.leaders[name] = append(s.leaders[name], leader)
				s.follows[leader] = append(s.follows[leader], name)
			}
		}
	}
	for _, name := range s.order {
		if s.defs[name].processor && len(s.leaders[name]) == 0 {
			errs = append(errs, fmt.Errorf("%s is a process application that follows no application: put it in a pipe after its leader", name))
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrSystem, errors.Join(errs...))
	}
	return s, nil
}

// Names returns the applications' names in the order they were defined.
func (s *System) Names() []string { return slices.Clone(s.order) }

// Leaders returns the applications that name follows.
func (s *System) Leaders(name string) []string { return slices.Clone(s.leaders[name]) }

// Followers returns the applications that follow name.
func (s *System) Followers(name string) []string { return slices.Clone(s.follows[name]) }

// IsFollower reports whether name follows another application.
func (s *System) IsFollower(name string) bool { return len(s.leaders[name]) > 0 }

// options returns the options a runner gives the constructor of name: the
// given ones, the types of its leaders, and tracking if it follows.
func (s *System) options(name string, opts []application.Option) []application.Option {
	out := append(slices.Clone(opts), application.WithTypes(ParkingTypes))
	if s.IsFollower(name) {
		out = append(out, application.WithTracking())
		for _, l := range s.leaders[name] {
			out = append(out, application.WithTypes(s.defs[l].Types))
		}
	}
	return out
}

// build constructs the node named name.
func (s *System) build(ctx context.Context, name string, opts []application.Option) (Node, error) {
	n, err := s.defs[name].New(ctx, s.options(name, opts)...)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	if n == nil || n.App() == nil {
		return nil, fmt.Errorf("start %s: %w: the constructor returned no application", name, ErrSystem)
	}
	if s.IsFollower(name) && !n.App().Tracks() {
		n.App().Close()
		return nil, fmt.Errorf("start %s: %w: it follows other applications but was not built with the runner's options (pass them to application.New)", name, ErrSystem)
	}
	return n, nil
}

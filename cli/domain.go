package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/system"
)

// Errors of the command and of [Admin]; test them with errors.Is. The
// errors that wrap them name the domain, the aggregate type or the
// identifier.
var (
	// ErrUnknownDomain means a domain name that no registered domain has.
	ErrUnknownDomain = errors.New("unknown domain")
	// ErrInvalidDomain means a domain definition the command cannot serve:
	// no name, two domains with one name, two applications with an
	// aggregate type of the same name, an invalid system.
	ErrInvalidDomain = errors.New("invalid domain definition")
	// ErrAggregateNotFound means a type name that the domain does not
	// register at all.
	ErrAggregateNotFound = errors.New("not found in domain")
	// ErrNotEventSourced means a type that the domain registers but that is
	// not an event-sourced aggregate: an event type, or a plain type such
	// as a read model.
	ErrNotEventSourced = errors.New("not an event-sourced aggregate")
	// ErrInstanceNotFound means an identifier that has no events of the
	// aggregate type.
	ErrInstanceNotFound = errors.New("does not exist")
)

// Domain is a domain that the command serves: its applications, the pipes
// between them if it is a system, the other types it registers, and a demo
// that fills its store. Go cannot load a user's domain at run time, so a
// user's main registers its domains with [Main] or [New].
type Domain struct {
	// Name selects the domain with --domain or STRATA_DOMAIN: a short word
	// such as "worlds".
	Name string
	// Description is one line for the help.
	Description string
	// Applications are the domain's applications, defined as for a system
	// with system.Define. The command finds the aggregate types of each in
	// its Types, so they must include them. Two applications may not have
	// aggregate types of the same name: --aggregate names them.
	Applications []system.Def
	// Pipes make the domain a system: in the pipe {"Worlds", "Counters"},
	// Counters follows Worlds (see system.New). The command builds a
	// follower as a system runner would, with tracking and its leaders'
	// types.
	Pipes [][]string
	// PlainTypes names the types the domain registers that are not
	// event-sourced aggregates (read models, projections, value objects),
	// so that the command says so rather than that it does not know them.
	PlainTypes []PlainType
	// Demo, if not nil, is what strata demo runs.
	Demo DemoFunc
}

// PlainType is the name of a type that a domain registers and that is not
// an event-sourced aggregate, as --aggregate would name it: the Go type's
// name without its package, "AccountSummary".
type PlainType string

// Plain returns the plain type of the Go type T.
func Plain[T any]() PlainType { return PlainType(application.TypeName[T]()) }

// DemoFunc fills a domain's store with examples and writes what happened
// to w. It gets a started single-threaded runner of the domain's
// applications (system.Get[*MyApp](apps, "MyApp") returns one), so that
// followers have processed each save before it returns. A demo must work
// when it is run again on the same store: it adds more.
type DemoFunc func(ctx context.Context, apps system.Runner, w io.Writer) error

// Lookup returns the domain named name, or the first domain, the default,
// if name is empty. An unknown name is an error wrapping [ErrUnknownDomain]
// that lists the registered domains.
func Lookup(domains []Domain, name string) (Domain, error) {
	if len(domains) == 0 {
		return Domain{}, fmt.Errorf("%w %q: no domain is registered", ErrUnknownDomain, name)
	}
	if name == "" {
		return domains[0], nil
	}
	for _, d := range domains {
		if d.Name == name {
			return d, nil
		}
	}
	return Domain{}, fmt.Errorf("%w %q (registered: %s)", ErrUnknownDomain, name, strings.Join(domainNames(domains), ", "))
}

func domainNames(domains []Domain) []string {
	names := make([]string, len(domains))
	for i, d := range domains {
		names[i] = d.Name
	}
	return names
}

// checkDomains checks what no single domain can check: that names are
// given and unique.
func checkDomains(domains []Domain) error {
	seen := map[string]bool{}
	for _, d := range domains {
		if d.Name == "" {
			return fmt.Errorf("%w: a domain has no name", ErrInvalidDomain)
		}
		if seen[d.Name] {
			return fmt.Errorf("%w: two domains are named %s", ErrInvalidDomain, d.Name)
		}
		seen[d.Name] = true
	}
	return nil
}

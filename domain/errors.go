package domain

import "errors"

// Errors of the domain layer. They are wrapped with details of what was
// being done; test for them with errors.Is.
var (
	// ErrVersion means an event is not the next in its aggregate's sequence.
	ErrVersion = errors.New("event version is not the next version of the aggregate")
	// ErrOriginator means an event belongs to another aggregate.
	ErrOriginator = errors.New("event belongs to another aggregate")
	// ErrNotCreated means an event was triggered on an aggregate that was
	// never created.
	ErrNotCreated = errors.New("aggregate has not been created")
	// ErrCreated means Create was called on an aggregate that already exists.
	ErrCreated = errors.New("aggregate has already been created")
	// ErrNilID means an aggregate or event has the nil UUID as its ID.
	ErrNilID = errors.New("nil aggregate ID")
	// ErrUnknownEvent is for an aggregate's Apply method to return for an
	// event type it does not apply, so that replaying a stream with a
	// foreign event fails loudly:
	//
	//	default:
	//		return fmt.Errorf("%w: %T", domain.ErrUnknownEvent, event)
	ErrUnknownEvent = errors.New("the aggregate does not apply this type of event")
	// ErrNilEvent means an event without data was created or applied.
	ErrNilEvent = errors.New("event has no data")
	// ErrUnknownTopic means a topic that no registered type has.
	ErrUnknownTopic = errors.New("unknown topic")
	// ErrUnregistered means a value whose type was not registered.
	ErrUnregistered = errors.New("type is not registered")
	// ErrRegistration means a type definition that cannot be registered:
	// a topic taken by another type, a gap in its upcasters, and so on.
	ErrRegistration = errors.New("invalid type registration")
	// ErrUpcast means an upcaster failed or a stored class version cannot
	// be upcast to the registered one.
	ErrUpcast = errors.New("cannot upcast stored state")
)

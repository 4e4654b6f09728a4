package persistence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"maps"
	"math"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

// StoredEvent is a domain event or snapshot as a recorder keeps it: the
// aggregate's ID and version, the topic of the event's type, the encoded
// (perhaps compressed and encrypted) state, and the commit that recorded
// it.
type StoredEvent struct {
	OriginatorID      uuid.UUID
	OriginatorVersion int64
	Topic             string
	State             []byte
	// CommitID identifies the save (the commit) that recorded the event:
	// every event of one InsertEvents call has the same one, and a commit
	// ID recorded again for the same aggregates is refused with
	// ErrAlreadyCommitted. uuid.Nil means none. Application and process
	// recorders keep it; aggregate recorders (snapshots) need not.
	CommitID uuid.UUID
	// Headers are the commit's headers (correlation and causation IDs, the
	// user, anything), the same for every event of one save. Application
	// and process recorders keep them; aggregate recorders need not.
	Headers Headers
}

// Headers are the string keys and values that a commit carries. A nil map
// and an empty one are the same.
type Headers map[string]string

// The headers that Strata itself sets.
const (
	// HeaderCorrelationID names what a chain of commits belongs to: a
	// process application's commits carry their upstream event's.
	HeaderCorrelationID = "correlation_id"
	// HeaderCausationID names the event that caused a commit: a process
	// application's commits carry their upstream event's ID (see EventID).
	HeaderCausationID = "causation_id"
)

// Notification is a stored event with its position in the application's
// total order. Notification IDs start at 1 and increase in the order in
// which readers can see them; there may be gaps. A recorder that cannot
// read a row's originator ID (a damaged row) still returns the
// notification, with the nil UUID as its OriginatorID, so that one bad row
// does not hide the rest of the log; decoding it fails.
type Notification struct {
	ID int64
	// Tenant is the tenant of the notification's aggregate ("" is the
	// default tenant).
	Tenant string
	StoredEvent
}

// Tracking is the position of a processed notification in an upstream
// application's log. Recorded atomically with the events that processing it
// produced, it makes processing exactly-once: the same position cannot be
// recorded twice.
type Tracking struct {
	ApplicationName string
	NotificationID  int64
}

// EventQuery selects events of one aggregate. The zero value selects all
// of them in ascending order of version.
type EventQuery struct {
	// Gt, if not nil, selects only versions greater than *Gt.
	Gt *int64
	// Lte, if not nil, selects only versions less than or equal to *Lte.
	Lte *int64
	// Desc orders by descending version.
	Desc bool
	// Limit, if positive, is the most events to return.
	Limit int
}

// NotificationQuery selects notifications in ascending order of ID.
type NotificationQuery struct {
	// Start is the lowest notification ID to return.
	Start int64
	// Limit is the most notifications to return; it must be positive.
	Limit int
	// Stop, if positive, is the highest notification ID to return.
	Stop int64
	// Topics, if not empty, selects only notifications with one of these
	// topics.
	Topics []string
	// AllTenants selects the notifications of every tenant, not only those
	// of the recorder's tenant: the operator's view of an application's
	// whole log. Notification IDs are one order across tenants.
	AllTenants bool
}

// InsertOption modifies one call of InsertEvents.
type InsertOption func(*InsertConfig)

// InsertConfig is the result of applying InsertOptions; recorders read it
// with [NewInsertConfig].
type InsertConfig struct {
	// Tracking, if not nil, is recorded atomically with the events.
	Tracking *Tracking
	// Commit, if not nil, is the commit of an EventStore's Put. Recorders
	// ignore it: the stored events carry their commit.
	Commit *Commit
}

// Commit is what one save records about itself: its ID (an idempotency
// key) and its headers.
type Commit struct {
	// ID identifies the save; uuid.Nil makes EventStore.Put choose a new
	// random one.
	ID uuid.UUID
	// Headers are given to every event of the save.
	Headers Headers
}

// WithCommit makes EventStore.Put record its events as commit c.
func WithCommit(c Commit) InsertOption {
	return func(cfg *InsertConfig) { cfg.Commit = &c }
}

// WithTracking records t atomically with the events. Only process
// recorders accept it; if t was already recorded, nothing is recorded and
// the error wraps [ErrIntegrity].
func WithTracking(t Tracking) InsertOption {
	return func(c *InsertConfig) { c.Tracking = &t }
}

// NewInsertConfig applies opts.
func NewInsertConfig(opts []InsertOption) InsertConfig {
	var c InsertConfig
	for _, o := range opts {
		o(&c)
	}
	return c
}

// AggregateRecorder records the events of aggregates. It is also used for
// snapshots.
//
// InsertEvents records all the given events atomically: if any of them
// has the ID and version of an event already recorded (or two of them
// share one), nothing is recorded and the error wraps [ErrIntegrity]. It
// returns the notification IDs the events got, in order, or nil if the
// recorder does not give notification IDs. The events of one call are one
// commit: they share their CommitID and Headers (see [CheckCommit]). If
// the commit ID is already recorded for every aggregate of the events,
// nothing is recorded and the error wraps [ErrAlreadyCommitted]; if it is
// recorded for some of them only, the error wraps [ErrIntegrity].
//
// SelectEvents returns one aggregate's events as the query asks, or an
// empty slice.
type AggregateRecorder interface {
	InsertEvents(ctx context.Context, events []StoredEvent, opts ...InsertOption) ([]int64, error)
	SelectEvents(ctx context.Context, originatorID uuid.UUID, q EventQuery) ([]StoredEvent, error)
}

// ApplicationRecorder is an AggregateRecorder that also gives every event a
// notification ID in a total order.
//
// The order is the order in which readers see events: a reader that has
// read up to notification ID n will never later see a newly committed
// notification with an ID of n or less, however many writers there are.
//
// MaxNotificationID returns the highest notification ID readers can see,
// or 0 if there is none.
type ApplicationRecorder interface {
	AggregateRecorder
	SelectNotifications(ctx context.Context, q NotificationQuery) ([]Notification, error)
	MaxNotificationID(ctx context.Context) (int64, error)
}

// ProcessRecorder is an ApplicationRecorder that also records tracking
// records atomically with events (see [WithTracking]).
//
// MaxTrackingID returns the highest notification ID recorded for the
// upstream application, or 0. HasTrackingID reports whether that
// notification ID was recorded for it. A tracking record belongs to the
// tenant of the recorder that recorded it (and is purged with it), but
// both look at every tenant's records: they are positions in an upstream
// log, which is one order across tenants.
type ProcessRecorder interface {
	ApplicationRecorder
	MaxTrackingID(ctx context.Context, applicationName string) (int64, error)
	HasTrackingID(ctx context.Context, applicationName string, notificationID int64) (bool, error)
}

// Replacer is implemented by aggregate recorders that can replace recorded
// events. Snapshot stores use it so that a snapshot taken again at the same
// version (after a change of code, say) replaces the old one.
type Replacer interface {
	// ReplaceEvents records the events atomically, replacing any event
	// already recorded at the same ID and version.
	ReplaceEvents(ctx context.Context, events []StoredEvent) error
}

// Closer is implemented by recorders and factories that hold resources.
type Closer interface {
	Close() error
}

// NotificationStreamer is implemented by application recorders that can
// stream notifications from one query, without a round trip per page.
// Notifications selects all matching notifications when q.Limit is 0.
type NotificationStreamer interface {
	Notifications(ctx context.Context, q NotificationQuery) iter.Seq2[Notification, error]
}

// ReadNotifications yields the notifications that q selects (all of them
// from q.Start if q.Limit is 0), in order, holding one page in memory. It
// streams from one query if the recorder is a [NotificationStreamer], and
// selects pages of pageSize otherwise. It stops at the first error, which
// it yields.
func ReadNotifications(ctx context.Context, r ApplicationRecorder, q NotificationQuery, pageSize int) iter.Seq2[Notification, error] {
	if s, ok := r.(NotificationStreamer); ok {
		return s.Notifications(ctx, q)
	}
	return func(yield func(Notification, error) bool) {
		left := q.Limit
		page := q
		for {
			page.Limit = pageSize
			if left > 0 && left < pageSize {
				page.Limit = left
			}
			ns, err := r.SelectNotifications(ctx, page)
			if err != nil {
				yield(Notification{}, err)
				return
			}
			for _, n := range ns {
				if !yield(n, nil) {
					return
				}
			}
			if left > 0 {
				if left -= len(ns); left <= 0 {
					return
				}
			}
			if len(ns) < page.Limit {
				return
			}
			page.Start = ns[len(ns)-1].ID + 1
		}
	}
}

// CheckCommit checks that events are one commit: that they share their
// CommitID and Headers. It returns an error wrapping [ErrProgramming]
// otherwise.
func CheckCommit(op string, events []StoredEvent) error {
	for _, e := range events[min(len(events), 1):] {
		if e.CommitID != events[0].CommitID {
			return &Error{Op: op, Kind: ErrProgramming, Err: fmt.Errorf("events of commits %s and %s in one insert", events[0].CommitID, e.CommitID)}
		}
		if !maps.Equal(e.Headers, events[0].Headers) {
			return &Error{Op: op, Kind: ErrProgramming, Err: fmt.Errorf("events of commit %s with different headers in one insert", e.CommitID)}
		}
	}
	return nil
}

// EncodeHeaders returns headers as recorders keep them: a JSON object, or
// nil for no headers.
func EncodeHeaders(h Headers) []byte {
	if len(h) == 0 {
		return nil
	}
	b, err := json.Marshal(map[string]string(h))
	if err != nil {
		// A map of strings always encodes; invalid UTF-8 is replaced.
		return []byte("{}")
	}
	return b
}

// DecodeHeaders reverses EncodeHeaders. Empty bytes are no headers.
func DecodeHeaders(b []byte) (Headers, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var h map[string]string
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("%w: stored headers: %v", ErrCorrupt, err)
	}
	if len(h) == 0 {
		return nil, nil
	}
	return h, nil
}

// MaxTenantLength is the longest tenant ID, in bytes.
const MaxTenantLength = 128

// CheckTenant checks a tenant ID: not empty (the default tenant is not
// named), at most MaxTenantLength bytes of UTF-8 without control
// characters.
func CheckTenant(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: empty tenant ID (the default tenant is the factory itself)", ErrConfig)
	case len(id) > MaxTenantLength:
		return fmt.Errorf("%w: tenant ID %.40q... is longer than %d bytes", ErrConfig, id, MaxTenantLength)
	case !utf8.ValidString(id) || strings.ContainsFunc(id, unicode.IsControl):
		return fmt.Errorf("%w: tenant ID %q is not printable UTF-8", ErrConfig, id)
	}
	return nil
}

// eventNamespace is the namespace of event IDs.
var eventNamespace = uuid.MustParse("5b6f3c2e-8a1d-5e4f-9c7b-2d0a1e3f4b5c")

// EventID returns the ID of the event of the aggregate id at version in
// tenant: the same for every reader, without being stored, since an
// aggregate has one event at each version. Process applications put their
// upstream event's ID in their commits' causation header.
func EventID(tenant string, id uuid.UUID, version int64) uuid.UUID {
	return uuid.NewSHA1(eventNamespace, fmt.Appendf(nil, "%s/%s/%d", tenant, id, version))
}

// AcrossTenantsMaxer is implemented by application recorders that find the
// highest notification ID of every tenant's notifications in one query.
// [MaxNotificationIDAcrossTenants] uses it.
type AcrossTenantsMaxer interface {
	MaxNotificationIDAcrossTenants(ctx context.Context) (int64, error)
}

// MaxNotificationIDAcrossTenants returns the highest notification ID that
// readers of r's log across every tenant can see (0 if none): the head of
// the operator's view (NotificationQuery.AllTenants), where
// r.MaxNotificationID gives r's own tenant's only. A recorder that is not
// an [AcrossTenantsMaxer] is probed with selects of one notification
// across tenants, from r's own tenant's highest ID onwards: about two
// selects per bit of the distance to the highest ID.
func MaxNotificationIDAcrossTenants(ctx context.Context, r ApplicationRecorder) (int64, error) {
	if m, ok := r.(AcrossTenantsMaxer); ok {
		return m.MaxNotificationIDAcrossTenants(ctx)
	}
	lo, err := r.MaxNotificationID(ctx)
	if err != nil {
		return 0, err
	}
	// first returns the first notification ID from start (up to stop, if
	// positive), or 0 if there is none.
	first := func(start, stop int64) (int64, error) {
		ns, err := r.SelectNotifications(ctx, NotificationQuery{Start: start, Stop: stop, Limit: 1, AllTenants: true})
		if err != nil || len(ns) == 0 {
			return 0, err
		}
		return ns[0].ID, nil
	}
	// Gallop: lo is a notification (or 0), hi the first start past lo
	// found empty.
	var hi int64
	for step := int64(1); ; {
		start := lo + step
		if start < lo { // overflow: nothing can be above
			hi = math.MaxInt64
			break
		}
		id, err := first(start, 0)
		if err != nil {
			return 0, err
		}
		if id == 0 {
			hi = start
			break
		}
		lo = id
		if step < math.MaxInt64/2 {
			step *= 2
		}
	}
	// Bisect: nothing is at hi or above; is anything in (lo, hi)?
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		id, err := first(mid, hi-1)
		if err != nil {
			return 0, err
		}
		if id == 0 {
			hi = mid
		} else {
			lo = id
		}
	}
	return lo, nil
}

// ApplicationView returns r seen as an application recorder: the same
// events and notifications, and InsertEvents refusing a tracking record
// with an ErrProgramming error, as every adapter's application recorder
// does. It is for adapters whose application recorder is their process
// recorder without tracking. The view finds the head across tenants as r
// does ([MaxNotificationIDAcrossTenants]), and streams if r streams.
func ApplicationView(r ProcessRecorder) ApplicationRecorder {
	v := applicationView{r}
	if s, ok := r.(NotificationStreamer); ok {
		return streamingApplicationView{v, s}
	}
	return v
}

type applicationView struct{ r ProcessRecorder }

func (v applicationView) InsertEvents(ctx context.Context, events []StoredEvent, opts ...InsertOption) ([]int64, error) {
	if NewInsertConfig(opts).Tracking != nil {
		return nil, &Error{Op: "insert events", Kind: ErrProgramming, Err: errors.New("this recorder does not record tracking records")}
	}
	return v.r.InsertEvents(ctx, events)
}

func (v applicationView) SelectEvents(ctx context.Context, id uuid.UUID, q EventQuery) ([]StoredEvent, error) {
	return v.r.SelectEvents(ctx, id, q)
}

func (v applicationView) SelectNotifications(ctx context.Context, q NotificationQuery) ([]Notification, error) {
	return v.r.SelectNotifications(ctx, q)
}

func (v applicationView) MaxNotificationID(ctx context.Context) (int64, error) {
	return v.r.MaxNotificationID(ctx)
}

func (v applicationView) MaxNotificationIDAcrossTenants(ctx context.Context) (int64, error) {
	return MaxNotificationIDAcrossTenants(ctx, v.r)
}

type streamingApplicationView struct {
	applicationView
	s NotificationStreamer
}

func (v streamingApplicationView) Notifications(ctx context.Context, q NotificationQuery) iter.Seq2[Notification, error] {
	return v.s.Notifications(ctx, q)
}

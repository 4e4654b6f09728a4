package persistence

import (
	"context"
	"iter"

	"github.com/google/uuid"
)

// StoredEvent is a domain event or snapshot as a recorder keeps it: the
// aggregate's ID and version, the topic of the event's type, and the
// encoded (perhaps compressed and encrypted) state.
type StoredEvent struct {
	OriginatorID      uuid.UUID
	OriginatorVersion int64
	Topic             string
	State             []byte
}

// Notification is a stored event with its position in the application's
// total order. Notification IDs start at 1 and increase in the order in
// which readers can see them; there may be gaps. A recorder that cannot
// read a row's originator ID (a damaged row) still returns the
// notification, with the nil UUID as its OriginatorID, so that one bad row
// does not hide the rest of the log; decoding it fails.
type Notification struct {
	ID int64
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
}

// InsertOption modifies one call of InsertEvents.
type InsertOption func(*InsertConfig)

// InsertConfig is the result of applying InsertOptions; recorders read it
// with [NewInsertConfig].
type InsertConfig struct {
	// Tracking, if not nil, is recorded atomically with the events.
	Tracking *Tracking
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
// recorder does not give notification IDs.
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
// notification ID was recorded for it.
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

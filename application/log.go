package application

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"

	"github.com/strata-go/strata/domain"
	"github.com/strata-go/strata/observe"
	"github.com/strata-go/strata/persistence"
)

// Errors of notification log queries.
var (
	// ErrSectionID means a section ID that is not two notification IDs
	// "first,last" with 1 <= first <= last.
	ErrSectionID = errors.New("invalid section ID")
	// ErrQuery means a select with a start below 0, a limit that is not
	// between 1 and MaxLimit, or an unknown topic.
	ErrQuery = errors.New("invalid notification query")
)

// MaxLimit is the largest number of notifications one select may ask for,
// and the largest section size.
const MaxLimit = 1000

// DefaultSectionSize is the most notifications a section holds unless
// [WithSectionSize] says otherwise.
const DefaultSectionSize = MaxLimit

// Section is a part of a notification log, as the reference design
// presents it: its own ID (the IDs of its first and last notifications,
// "1,10", or "" if it has none), its notifications, and the ID of the next
// section ("" if this section has fewer notifications than were asked for,
// so that a reader knows it has reached the end for now).
//
// A section ID "first,last" asks for the notifications from ID first on,
// as many as last−first+1 but no more than the log's section size. IDs may
// be sparse (PostgreSQL's are): the section holds the next notifications
// whatever their IDs, so its own ID, made of its first and last
// notifications' IDs, may span more than it holds, and the next section's
// ID is "last+1,last+n" for a section of n. Asking again for a section by
// its own ID gives at least the same notifications, from the same first.
type Section struct {
	ID     string
	Items  []persistence.Notification
	NextID string
}

// NotificationLog presents an application's notifications in order, by
// sections or by selects. The application's local log and the HTTP client
// of a remote application's log both implement it, so that a follower does
// not care where its leader runs.
type NotificationLog interface {
	// Section returns the section with the given ID ("1,10": notification
	// IDs 1 to 10, which may have gaps).
	Section(ctx context.Context, sectionID string) (Section, error)
	// Select returns up to limit notifications from notification ID start.
	Select(ctx context.Context, start int64, limit int, opts ...SelectOption) ([]persistence.Notification, error)
}

// SelectOption narrows a select.
type SelectOption func(*SelectConfig)

// SelectConfig is the result of applying SelectOptions; implementations
// of NotificationLog read it with [NewSelectConfig].
type SelectConfig struct {
	Topics []string
	Stop   int64
}

// NewSelectConfig applies opts.
func NewSelectConfig(opts []SelectOption) SelectConfig {
	var c SelectConfig
	for _, o := range opts {
		o(&c)
	}
	return c
}

// Topics selects only notifications of events with these topics (or the
// aliases of their types).
func Topics(topics ...string) SelectOption {
	return func(c *SelectConfig) { c.Topics = append(c.Topics, topics...) }
}

// Stop selects only notifications with IDs up to and including id.
func Stop(id int64) SelectOption {
	return func(c *SelectConfig) { c.Stop = id }
}

// LocalNotificationLog is the notification log of an application in this
// process, read from its recorder.
type LocalNotificationLog struct {
	recorder    persistence.ApplicationRecorder
	types       *domain.Registry
	sectionSize int
	allTenants  bool
	tel         *observe.Telemetry
	attrs       attribute.Set
	spanAttrs   []attribute.KeyValue
}

// observe makes the log trace and measure its selects as app's.
func (l *LocalNotificationLog) observe(app *Application) {
	l.tel, l.attrs, l.spanAttrs = app.tel, app.attrs, app.spanAttrs
}

// MaxNotificationID returns the ID of the log's last notification (0 if
// it has none), so that readers can tell how far behind they are.
func (l *LocalNotificationLog) MaxNotificationID(ctx context.Context) (int64, error) {
	var id int64
	var err error
	if l.allTenants {
		id, err = persistence.MaxNotificationIDAcrossTenants(ctx, l.recorder)
	} else {
		id, err = l.recorder.MaxNotificationID(ctx)
	}
	if err != nil {
		return 0, fmt.Errorf("last notification ID: %w", err)
	}
	return id, nil
}

// AcrossTenants returns the log of every tenant of the same recorder's
// store, whose notifications carry their tenant.
func (l *LocalNotificationLog) AcrossTenants() *LocalNotificationLog {
	c := *l
	c.allTenants = true
	return &c
}

var _ NotificationLog = (*LocalNotificationLog)(nil)

// NewLocalNotificationLog returns the log of the notifications in
// recorder. If types is not nil, topic filters are checked against it and
// widened to the aliases of their types.
func NewLocalNotificationLog(recorder persistence.ApplicationRecorder, types *domain.Registry) *LocalNotificationLog {
	return &LocalNotificationLog{recorder: recorder, types: types, sectionSize: DefaultSectionSize, tel: observe.Default()}
}

// SetSectionSize sets the most notifications a section holds (1 to
// MaxLimit; other values are brought into that range). An application
// sets it from [WithSectionSize].
func (l *LocalNotificationLog) SetSectionSize(n int) { l.sectionSize = min(max(n, 1), MaxLimit) }

// SectionSize returns the most notifications a section holds.
func (l *LocalNotificationLog) SectionSize() int { return l.sectionSize }

// ParseSectionID parses "first,last" into the first notification ID and
// the number of notifications the section asks for (last−first+1, but at
// most MaxLimit).
func ParseSectionID(id string) (start int64, limit int, err error) {
	a, b, ok := strings.Cut(strings.TrimSpace(id), ",")
	first, errA := strconv.ParseInt(strings.TrimSpace(a), 10, 64)
	last, errB := strconv.ParseInt(strings.TrimSpace(b), 10, 64)
	switch {
	case !ok || errA != nil || errB != nil:
		return 0, 0, fmt.Errorf("%w %q: want two notification IDs, such as \"1,10\"", ErrSectionID, id)
	case first < 1:
		return 0, 0, fmt.Errorf("%w %q: notification IDs start at 1", ErrSectionID, id)
	case last < first:
		return 0, 0, fmt.Errorf("%w %q: the last ID is before the first", ErrSectionID, id)
	}
	return first, int(min(last-first, MaxLimit-1) + 1), nil
}

// SectionOf builds the section that a select of limit notifications
// returned: its ID from the items, and the next section's ID if it is full.
func SectionOf(items []persistence.Notification, limit int) Section {
	s := Section{Items: items}
	if len(items) > 0 {
		last := items[len(items)-1].ID
		s.ID = fmt.Sprintf("%d,%d", items[0].ID, last)
		if len(items) >= limit && last <= math.MaxInt64-int64(limit) {
			s.NextID = fmt.Sprintf("%d,%d", last+1, last+int64(limit))
		}
	}
	if s.Items == nil {
		s.Items = []persistence.Notification{}
	}
	return s
}

// Section returns the section with the given ID.
func (l *LocalNotificationLog) Section(ctx context.Context, sectionID string) (Section, error) {
	start, limit, err := ParseSectionID(sectionID)
	if err != nil {
		return Section{}, err
	}
	limit = min(limit, l.sectionSize)
	items, err := l.Select(ctx, start, limit)
	if err != nil {
		return Section{}, err
	}
	return SectionOf(items, limit), nil
}

// Select returns up to limit notifications from notification ID start,
// filtered as the options say.
func (l *LocalNotificationLog) Select(ctx context.Context, start int64, limit int, opts ...SelectOption) (items []persistence.Notification, err error) {
	ctx, op := l.tel.Begin(ctx, observe.SpanSelect, observe.OpSelect, observe.MetricSelectDuration, l.attrs, l.spanAttrs...)
	defer func() {
		if err != nil || !op.Span().IsRecording() {
			op.End(ctx, err)
			return
		}
		attrs := []attribute.KeyValue{attribute.Int64(observe.KeyStart, start), attribute.Int(observe.KeyLimit, limit), attribute.Int(observe.KeyEventCount, len(items))}
		if len(items) > 0 {
			attrs = append(attrs, attribute.Int64(observe.KeyFirstNotificationID, items[0].ID), attribute.Int64(observe.KeyLastNotificationID, items[len(items)-1].ID))
		}
		op.End(ctx, nil, attrs...)
	}()
	return l.selectNotifications(ctx, start, limit, opts)
}

func (l *LocalNotificationLog) selectNotifications(ctx context.Context, start int64, limit int, opts []SelectOption) ([]persistence.Notification, error) {
	c := NewSelectConfig(opts)
	if err := CheckSelect(start, limit); err != nil {
		return nil, err
	}
	if c.Stop < 0 {
		return nil, fmt.Errorf("%w: stop %d is negative", ErrQuery, c.Stop)
	}
	topics, err := l.expandTopics(c.Topics)
	if err != nil {
		return nil, err
	}
	items, err := l.recorder.SelectNotifications(ctx, persistence.NotificationQuery{Start: max(start, 1), Limit: limit, Stop: c.Stop, Topics: topics, AllTenants: l.allTenants})
	if err != nil {
		return nil, fmt.Errorf("select notifications from %d: %w", start, err)
	}
	return items, nil
}

// NotificationStream is implemented by notification logs that can yield
// all notifications from a position without a round trip per page, such as
// the local log of an application on PostgreSQL. Readers use it when it is
// there.
type NotificationStream interface {
	Notifications(ctx context.Context, start int64, opts ...SelectOption) iter.Seq2[persistence.Notification, error]
}

var _ NotificationStream = (*LocalNotificationLog)(nil)

// Notifications yields the notifications from start on, filtered as the
// options say, streaming if the recorder can and a page at a time
// otherwise. It stops at the first error, which it yields.
func (l *LocalNotificationLog) Notifications(ctx context.Context, start int64, opts ...SelectOption) iter.Seq2[persistence.Notification, error] {
	c := NewSelectConfig(opts)
	topics, err := l.expandTopics(c.Topics)
	if err == nil && (start < 0 || c.Stop < 0) {
		err = fmt.Errorf("%w: start %d or stop %d is negative", ErrQuery, start, c.Stop)
	}
	if err != nil {
		return func(yield func(persistence.Notification, error) bool) { yield(persistence.Notification{}, err) }
	}
	return persistence.ReadNotifications(ctx, l.recorder, persistence.NotificationQuery{Start: max(start, 1), Stop: c.Stop, Topics: topics, AllTenants: l.allTenants}, MaxLimit)
}

// CheckSelect checks the start and limit of a select.
func CheckSelect(start int64, limit int) error {
	if start < 0 {
		return fmt.Errorf("%w: start %d is negative", ErrQuery, start)
	}
	if limit < 1 || limit > MaxLimit {
		return fmt.Errorf("%w: limit %d is not between 1 and %d", ErrQuery, limit, MaxLimit)
	}
	return nil
}

func (l *LocalNotificationLog) expandTopics(topics []string) ([]string, error) {
	if len(topics) == 0 || l.types == nil {
		return topics, nil
	}
	var out []string
	for _, t := range topics {
		info, err := l.types.Resolve(t)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrQuery, err)
		}
		out = append(out, info.Topic())
		out = append(out, info.Aliases()...)
	}
	return out, nil
}

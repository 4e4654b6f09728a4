package system

import (
	"context"
	"iter"
	"strconv"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/persistence"
)

// NotificationLogReader reads a notification log, local or remote, from a
// position on: section by section or select by select, holding one page
// in memory however long the log.
type NotificationLogReader struct {
	log    application.NotificationLog
	limit  int
	topics []string
}

// ReaderOption configures a NotificationLogReader.
type ReaderOption func(*NotificationLogReader)

// PageSize sets how many notifications the reader asks for at a time
// (default 100, at most application.MaxLimit).
func PageSize(n int) ReaderOption {
	return func(r *NotificationLogReader) { r.limit = min(max(n, 1), application.MaxLimit) }
}

// FilterTopics makes the reader return only notifications with these
// topics. Only selects filter: sections hold every notification.
func FilterTopics(topics ...string) ReaderOption {
	return func(r *NotificationLogReader) { r.topics = append(r.topics, topics...) }
}

// NewNotificationLogReader returns a reader of log.
func NewNotificationLogReader(log application.NotificationLog, opts ...ReaderOption) *NotificationLogReader {
	r := &NotificationLogReader{log: log, limit: 100}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Read yields the notifications from ID start on by following the log's
// linked sections, until a section is not full. It stops at the first
// error, which it yields.
func (r *NotificationLogReader) Read(ctx context.Context, start int64) iter.Seq2[persistence.Notification, error] {
	return func(yield func(persistence.Notification, error) bool) {
		start = max(start, 1)
		id := sectionID(start, r.limit)
		for id != "" {
			s, err := r.log.Section(ctx, id)
			if err != nil {
				yield(persistence.Notification{}, err)
				return
			}
			for _, n := range s.Items {
				if n.ID < start {
					continue
				}
				if !yield(n, nil) {
					return
				}
			}
			id = s.NextID
		}
	}
}

func sectionID(start int64, limit int) string {
	return strconv.FormatInt(start, 10) + "," + strconv.FormatInt(start+int64(limit)-1, 10)
}

// Select yields the notifications from ID start on (filtered by topic if
// the reader has topics): streamed if the log is an
// application.NotificationStream, else selected a page at a time until a
// page is not full. It stops at the first error, which it yields.
func (r *NotificationLogReader) Select(ctx context.Context, start int64) iter.Seq2[persistence.Notification, error] {
	var opts []application.SelectOption
	if len(r.topics) > 0 {
		opts = append(opts, application.Topics(r.topics...))
	}
	if s, ok := r.log.(application.NotificationStream); ok {
		return s.Notifications(ctx, max(start, 1), opts...)
	}
	return func(yield func(persistence.Notification, error) bool) {
		from := max(start, 1) // not start: the sequence may be ranged over again
		for {
			page, err := r.log.Select(ctx, from, r.limit, opts...)
			if err != nil {
				yield(persistence.Notification{}, err)
				return
			}
			for _, n := range page {
				if !yield(n, nil) {
					return
				}
				from = n.ID + 1
			}
			if len(page) < r.limit {
				return
			}
		}
	}
}

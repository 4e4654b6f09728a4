package application

import (
	"context"
	"fmt"
	"time"

	"github.com/strata-go/strata/observe"
	"github.com/strata-go/strata/persistence"
)

// headReader is a notification log that knows its last notification ID,
// as a [LocalNotificationLog] does.
type headReader interface {
	MaxNotificationID(ctx context.Context) (int64, error)
}

// MeasureLag measures how far a reader that has processed log up to
// notification position is behind: the log's head, how many notification
// IDs lie between, and how long ago the first notification after position
// was recorded (its event's timestamp, decoded with mapper). With topic
// options, as the reader reads, only the notifications it would read
// count: a reader past the last of them is not behind. A log that
// cannot say its head (a remote one) is read one page ahead, so that Head
// and Behind are then at least what they say. The result's Kind, Reader,
// Version and Upstream are left for the caller.
func MeasureLag(ctx context.Context, log NotificationLog, mapper *persistence.Mapper, position int64, opts ...SelectOption) (observe.Lag, error) {
	lag := observe.Lag{Position: position, Head: position}
	next, err := log.Select(ctx, position+1, 1, opts...)
	if err != nil {
		return lag, fmt.Errorf("measure lag after notification %d: %w", position, err)
	}
	if len(next) == 0 {
		return lag, nil
	}
	if e, err := mapper.ToEvent(next[0].StoredEvent); err == nil && !e.Timestamp.IsZero() {
		lag.Age = max(time.Since(e.Timestamp), 0)
	}
	lag.Head = next[0].ID
	if h, ok := log.(headReader); ok {
		if lag.Head, err = h.MaxNotificationID(ctx); err != nil {
			return lag, fmt.Errorf("measure lag after notification %d: %w", position, err)
		}
	} else {
		page, err := log.Select(ctx, position+1, MaxLimit, opts...)
		if err != nil {
			return lag, fmt.Errorf("measure lag after notification %d: %w", position, err)
		}
		if len(page) > 0 {
			lag.Head = page[len(page)-1].ID
		}
	}
	lag.Head = max(lag.Head, next[0].ID)
	lag.Behind = lag.Head - position
	return lag, nil
}

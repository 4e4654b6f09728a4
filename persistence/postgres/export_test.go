package postgres

import (
	"context"
	"iter"

	"github.com/strata-go/strata/persistence"
)

// QueuedSaves returns how many saves on the factory's pool wait to be
// committed together.
func QueuedSaves(f *Factory) int { return f.pool.group.Queued() }

// StreamNotifications is the stream of r's notifications in pages of at
// most pageRows.
func StreamNotifications(ctx context.Context, r persistence.ProcessRecorder, q persistence.NotificationQuery, pageRows int) iter.Seq2[persistence.Notification, error] {
	return r.(*Recorder).streamNotifications(ctx, q, pageRows)
}

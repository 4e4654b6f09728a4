package jetstream

import (
	"context"
	"iter"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/strata-go/strata/persistence"
)

var _ persistence.NotificationStreamer = (*ApplicationRecorder)(nil)

// Notifications yields the notifications q selects, pushed by the servers
// through an ordered consumer (an ephemeral consumer that the client
// recreates if a message goes missing), up to the last one that existed
// when the call began: a follower catching up reads the log in one flow,
// without a request per page.
func (a *ApplicationRecorder) Notifications(ctx context.Context, q persistence.NotificationQuery) iter.Seq2[persistence.Notification, error] {
	r := a.r
	return func(yield func(persistence.Notification, error) bool) {
		const op = "stream notifications"
		if err := r.begin(ctx, op); err != nil {
			yield(persistence.Notification{}, err)
			return
		}
		filter := r.tenantFilter(q.AllTenants)
		last, err := r.c.lastMsg(ctx, filter)
		if err != nil {
			yield(persistence.Notification{}, classify(op, err, false))
			return
		}
		start := uint64(max(q.Start, 1))
		if last == nil || last.seq < start || q.Stop > 0 && uint64(q.Stop) < start {
			return
		}
		end := last.seq
		if q.Stop > 0 {
			end = min(end, uint64(q.Stop))
		}
		c, err := r.c.js.OrderedConsumer(ctx, r.c.stream, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{filter},
			DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
			OptStartSeq:    start,
			// A backstop for a process that dies while reading: the
			// consumer is deleted when the read ends.
			InactiveThreshold: 30 * time.Second,
		})
		if err != nil {
			yield(persistence.Notification{}, classify(op, err, false))
			return
		}
		msgs, err := c.Messages(jetstream.PullHeartbeat(2 * time.Second))
		if err != nil {
			yield(persistence.Notification{}, classify(op, err, false))
			return
		}
		defer func() {
			msgs.Stop()
			// The servers keep a stopped consumer until its inactive
			// threshold: without this, a follower that reads the log
			// often would leave a consumer behind for every read.
			if info := c.CachedInfo(); info != nil {
				dctx, cancel := r.c.withTimeout(context.WithoutCancel(ctx))
				r.c.js.DeleteConsumer(dctx, r.c.stream, info.Name)
				cancel()
			}
		}()
		stop := context.AfterFunc(ctx, msgs.Stop)
		defer stop()
		n := 0
		for {
			m, err := msgs.Next()
			if err != nil {
				if ctx.Err() != nil {
					err = ctx.Err()
				}
				yield(persistence.Notification{}, classify(op, err, false))
				return
			}
			meta, err := m.Metadata()
			if err != nil {
				yield(persistence.Notification{}, &persistence.Error{Op: op, Kind: persistence.ErrData, Err: err})
				return
			}
			seq := meta.Sequence.Stream
			if seq > end {
				return
			}
			note, err := r.notification(msg{subject: m.Subject(), seq: seq, data: m.Data()})
			if err != nil {
				yield(persistence.Notification{}, &persistence.Error{Op: op, Kind: persistence.ErrData, Err: err})
				return
			}
			if len(q.Topics) == 0 || slices.Contains(q.Topics, note.Topic) {
				if !yield(note, nil) {
					return
				}
				if n++; q.Limit > 0 && n >= q.Limit {
					return
				}
			}
			if seq == end {
				return
			}
		}
	}
}

package postgres

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// notifier announces saves on a channel, after they commit. Pokes that
// arrive while a notification is being sent, or within notifyGap after
// it, are folded into the next one, so that many concurrent writers, or
// one writer saving fast, cost a notification per gap instead of one per
// save (NOTIFY serialises commits in the server, and wakes every
// listening backend and its client).
type notifier struct {
	pool    *pgxpool.Pool
	channel string
	wake    chan struct{}
	done    chan struct{}
	wg      sync.WaitGroup
}

func newNotifier(pool *pgxpool.Pool, channel string) *notifier {
	n := &notifier{pool: pool, channel: channel, wake: make(chan struct{}, 1), done: make(chan struct{})}
	n.wg.Add(1)
	go n.run()
	return n
}

func (n *notifier) poke() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

func (n *notifier) run() {
	defer n.wg.Done()
	for {
		select {
		case <-n.done:
			return
		case <-n.wake:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		// A lost notification only delays listeners until they poll.
		_, _ = n.pool.Exec(ctx, "SELECT pg_notify($1, '')", n.channel)
		cancel()
		gap := time.NewTimer(notifyGap)
		select {
		case <-n.done:
			gap.Stop()
			return
		case <-gap.C:
		}
	}
}

// notifyGap is the least time between two notifications of a notifier.
// A save after a quiet spell is announced at once; the saves that follow
// it within the gap share the next notification. With a leader saving a
// single event per save at 2,000 saves a second and a follower listening,
// a notification per save cost the leader about a third of its rate
// (docs/benchmarks.md, "Profiles"); a follower prompted up to 5 ms later
// batches for longer than that anyway (system.BatchWait).
const notifyGap = 5 * time.Millisecond

func (n *notifier) stop() {
	close(n.done)
	n.wg.Wait()
}

// Listen returns a channel that receives a value soon after other
// processes (or this one) save events of the application, if they notify
// (POSTGRES_NOTIFY, on by default). Values are coalesced: one value may
// stand for many saves. It also receives a value after the listening
// connection is re-established, since saves may have been missed. The
// channel is closed when ctx ends.
//
// Notifications are prompts, not data: they can arrive before the saved
// events are visible to readers, so followers still poll on an interval.
func (f *Factory) Listen(ctx context.Context) (<-chan struct{}, error) {
	cfg := f.pool.Config().ConnConfig.Copy()
	conn, err := listen(ctx, cfg, f.Channel())
	if err != nil {
		return nil, err
	}
	out := make(chan struct{}, 1)
	go func() {
		defer close(out)
		send := func() {
			select {
			case out <- struct{}{}:
			default:
			}
		}
		backoff := 100 * time.Millisecond
		for {
			if conn == nil {
				select {
				case <-ctx.Done():
					return
				case <-time.After(backoff):
				}
				if conn, err = listen(ctx, cfg, f.Channel()); err != nil {
					conn = nil
					backoff = min(2*backoff, 5*time.Second)
					continue
				}
				backoff = 100 * time.Millisecond
				send() // saves may have happened while we were away
			}
			_, err := conn.WaitForNotification(ctx)
			if err != nil {
				conn.Close(context.Background())
				conn = nil
				if ctx.Err() != nil {
					return
				}
				continue
			}
			send()
		}
	}()
	return out, nil
}

func listen(ctx context.Context, cfg *pgx.ConnConfig, channel string) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, errorf("listen on "+channel, err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		conn.Close(context.Background())
		return nil, errorf("listen on "+channel, err)
	}
	return conn, nil
}

package postgres

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// notifier announces saves on a channel, after they commit. Pokes that
// arrive while a notification is being sent are folded into the next one,
// so that many concurrent writers cost one notification per round trip
// instead of one each (NOTIFY serialises commits in the server).
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
	}
}

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

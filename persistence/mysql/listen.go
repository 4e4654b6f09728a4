package mysql

import (
	"context"
	"errors"
	"time"
)

// Listen returns a channel that receives a value soon after saves of the
// application's events by any process, until ctx ends, when it is closed.
// MySQL has no LISTEN/NOTIFY: Listen reads the committed value of the
// application's counter of notification IDs every PollInterval, a lookup
// of one row by its primary key, and prompts when it has moved. A prompt
// says only that there may be something new to read; followers read the
// log as usual.
func (f *Factory) Listen(ctx context.Context) (<-chan struct{}, error) {
	op := "listen for saves to " + f.tables.Events
	if err := f.ensureEvents(ctx); err != nil {
		return nil, err
	}
	query := "SELECT last_id FROM " + f.tables.Sequence + " WHERE name = ?"
	read := func(ctx context.Context) (int64, error) {
		var last int64
		err := f.pool.QueryRowContext(ctx, query, f.tables.Events).Scan(&last)
		return last, err
	}
	last, err := read(ctx)
	if err != nil {
		return nil, f.db.Errorf(op, err)
	}
	prompts := make(chan struct{}, 1)
	go func() {
		defer close(prompts)
		t := time.NewTicker(f.cfg.PollInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			n, err := read(ctx)
			if err != nil {
				// A broken connection or a restart: the next tick tries
				// again, and a prompt then wakes followers to catch up.
				if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
					return
				}
				continue
			}
			if n != last {
				last = n
				select {
				case prompts <- struct{}{}:
				default: // a prompt is already waiting
				}
			}
		}
	}()
	return prompts, nil
}

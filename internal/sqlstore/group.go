package sqlstore

import (
	"context"
	"sync"
)

// Group commits concurrent writes together: a write that finds the
// database busy with another waits in a queue, and when the database is
// free, one of the waiting writes (the leader) takes the whole queue and
// runs it as one group, typically one transaction with one durable flush
// instead of one per write. Every write returns only after its group has
// run, with its own outcome. The zero value is not usable; see
// [NewGroup].
//
// T is a write with room for its outcome (a pointer type): Lead sets the
// outcome of each write it takes before it returns.
type Group[T any] struct {
	// lead runs a group. It first gets what a group needs (a connection),
	// honouring ctx, the leader's; then it calls take once for the writes
	// queued by then, runs them whatever becomes of ctx (a write that is
	// committing cannot be abandoned), sets their outcomes and returns
	// nil. An error it returns before calling take is the leader's alone:
	// the queued writes wait for the next leader.
	lead func(ctx context.Context, take func() []T) error
	max  int

	slots chan struct{} // a token per group that may run at once
	mu    sync.Mutex
	queue []*waiter[T]
}

type waiter[T any] struct {
	w     T
	done  chan struct{}
	taken bool
}

// NewGroup returns a Group whose groups lead runs, at most slots groups
// at once and at most max writes in a group.
func NewGroup[T any](slots, max int, lead func(ctx context.Context, take func() []T) error) *Group[T] {
	return &Group[T]{lead: lead, max: max, slots: make(chan struct{}, slots)}
}

// Do queues w and returns when a group holding it has run, with nil: w
// then holds its outcome. It returns an error instead if w never ran: ctx
// ended while w was queued, or the leader failed before taking w (the
// error lead returned).
func (g *Group[T]) Do(ctx context.Context, w T) error {
	me := &waiter[T]{w: w, done: make(chan struct{})}
	g.mu.Lock()
	g.queue = append(g.queue, me)
	g.mu.Unlock()
	for {
		select {
		case <-me.done:
			return nil
		case g.slots <- struct{}{}:
			if g.isTaken(me) {
				// A group that is running holds w: leading another now
				// would only hold the database for nothing (or for writes
				// that the next group would take with more).
				<-g.slots
				<-me.done
				return nil
			}
			var taken []*waiter[T]
			err := g.lead(ctx, func() []T {
				taken = g.take()
				out := make([]T, len(taken))
				for i, t := range taken {
					out[i] = t.w
				}
				return out
			})
			<-g.slots
			for _, t := range taken {
				close(t.done)
			}
			if err != nil && g.withdraw(me) {
				return err
			}
		case <-ctx.Done():
			if g.withdraw(me) {
				return ctx.Err()
			}
			// Taken by a group that is running: its outcome is coming,
			// and a write that may be committing cannot be abandoned.
			<-me.done
			return nil
		}
	}
}

// isTaken reports whether a group has taken me.
func (g *Group[T]) isTaken(me *waiter[T]) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return me.taken
}

// withdraw removes me from the queue, and reports whether it was still
// there (not taken by a group).
func (g *Group[T]) withdraw(me *waiter[T]) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if me.taken {
		return false
	}
	for i, w := range g.queue {
		if w == me {
			g.queue = append(g.queue[:i], g.queue[i+1:]...)
			break
		}
	}
	return true
}

// take removes up to max writes from the queue, in the order queued.
func (g *Group[T]) take() []*waiter[T] {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := min(len(g.queue), g.max)
	batch := g.queue[:n:n]
	g.queue = append([]*waiter[T](nil), g.queue[n:]...)
	for _, w := range batch {
		w.taken = true
	}
	return batch
}

// Queued returns how many writes wait in the queue, not yet taken by a
// group; tests use it to know that writes will be grouped.
func (g *Group[T]) Queued() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.queue)
}

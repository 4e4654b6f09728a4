package sqlstore

import (
	"context"
	"sync"
	"time"
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
	// honouring ctx, the leader's; then it calls take for the writes
	// queued by then, and again, while take says more may come, for the
	// writes that came since (see [Group.Gather]); it runs them whatever
	// becomes of ctx (a write that is committing cannot be abandoned),
	// sets the outcomes of all it took and returns nil. An error it
	// returns before calling take is the leader's alone: the queued
	// writes wait for the next leader.
	lead func(ctx context.Context, take func() (ws []T, more bool)) error
	max  int
	// gather makes a leader wait for the writers of the last group to
	// come back before it takes the queue (see [Group.Gather]).
	gather bool

	slots chan struct{} // a token per group that may run at once
	// arrived wakes a gathering leader when a write is queued; it holds
	// at most one signal, which the leader drains when it stops waiting.
	arrived chan struct{}

	mu        sync.Mutex
	queue     []*waiter[T]
	gathering bool          // a leader waits on arrived
	last      int           // the size of the last group
	lastRun   time.Duration // how long the last group took to run
}

type waiter[T any] struct {
	w     T
	done  chan struct{}
	taken bool
}

// NewGroup returns a Group whose groups lead runs, at most slots groups
// at once and at most max writes in a group.
func NewGroup[T any](slots, max int, lead func(ctx context.Context, take func() (ws []T, more bool)) error) *Group[T] {
	return &Group[T]{lead: lead, max: max, slots: make(chan struct{}, slots), arrived: make(chan struct{}, 1)}
}

// Gather makes the groups of g gather as many writes as the last group
// ran, for at most half the time that group took: a leader's first take
// returns the writes queued by then, and says that more may come; each
// later take returns all those queued since (up to the group's most),
// waiting for the first of them, until the group is as large as the last
// one or the time is up. Writes already queued are taken even past the
// last group's size: they wait anyway, and a group of its own would cost
// them another durable flush. It pays
// where writers save again as soon as their save returns: they all come
// back at about the same time, and the first of them would otherwise lead
// a group of the few that have arrived, paying a whole durable flush for
// them, while the others queue for the next one. The leader runs the
// writes it has while the others arrive, instead of waiting for them
// idle: on two cores, the writers' own work before they queue and the
// group's statements then share the time a wait would have cost. One
// writer never waits (its last group was of one), and a writer that stops
// coming costs one wait, after which the next group is smaller and so is
// the wait's aim. Call it before the first Do.
func (g *Group[T]) Gather() { g.gather = true }

// Do queues w and returns when a group holding it has run, with nil: w
// then holds its outcome. It returns an error instead if w never ran: ctx
// ended while w was queued, or the leader failed before taking w (the
// error lead returned).
func (g *Group[T]) Do(ctx context.Context, w T) error {
	me := &waiter[T]{w: w, done: make(chan struct{})}
	g.mu.Lock()
	g.queue = append(g.queue, me)
	if g.gathering {
		select {
		case g.arrived <- struct{}{}:
		default: // a signal is pending already
		}
	}
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
			var start time.Time
			var want int           // the size the group gathers to
			var deadline time.Time // when it stops gathering
			calls := 0
			err := g.lead(ctx, func() ([]T, bool) {
				calls++
				var ws []*waiter[T]
				switch {
				case calls == 1:
					start = time.Now()
					ws = g.take(g.max)
					if g.gather {
						g.mu.Lock()
						want, deadline = min(g.last, g.max), start.Add(g.lastRun/2)
						g.mu.Unlock()
					}
				case len(taken) < want:
					g.wait(ctx, deadline)
					ws = g.take(g.max - len(taken))
				}
				taken = append(taken, ws...)
				out := make([]T, len(ws))
				for i, t := range ws {
					out[i] = t.w
				}
				more := len(taken) < want && time.Now().Before(deadline) && ctx.Err() == nil
				return out, more
			})
			if calls > 0 {
				g.mu.Lock()
				g.last, g.lastRun = len(taken), time.Since(start)
				g.mu.Unlock()
			}
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

// wait waits, for a gathering leader, until a write is queued, or until
// deadline, or until ctx ends.
func (g *Group[T]) wait(ctx context.Context, deadline time.Time) {
	g.mu.Lock()
	limit := time.Until(deadline)
	if len(g.queue) > 0 || limit <= 0 {
		g.mu.Unlock()
		return
	}
	g.gathering = true
	g.mu.Unlock()
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-g.arrived:
	case <-t.C:
	case <-ctx.Done():
	}
	g.mu.Lock()
	g.gathering = false
	select {
	case <-g.arrived: // a signal no one waits for any more
	default:
	}
	g.mu.Unlock()
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

// take removes up to n writes from the queue, in the order queued.
func (g *Group[T]) take(n int) []*waiter[T] {
	g.mu.Lock()
	defer g.mu.Unlock()
	n = min(len(g.queue), n)
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

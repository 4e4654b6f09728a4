package projection

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/persistence"
)

// Subscription reads the events of its sources after given positions,
// each source in the order of its log, and waits at the head for more.
// Its positions move past what it returns. A [Runner] reads through one; a
// program that keeps its own positions can range over [Subscription.All].
// It is not safe for concurrent use.
type Subscription struct {
	sources   []Source
	positions map[string]int64
	poll      time.Duration
	kick      chan struct{} // a runner's own prompt
}

// Subscribe returns a subscription to sources after positions (a source
// missing from positions is read from its start). It polls every poll
// interval when no source prompts it (500ms if poll is 0).
func Subscribe(sources []Source, positions map[string]int64, poll time.Duration) *Subscription {
	if poll <= 0 {
		poll = 500 * time.Millisecond
	}
	s := &Subscription{sources: sources, poll: poll}
	s.Seek(positions)
	return s
}

// Seek moves the subscription's positions to positions.
func (s *Subscription) Seek(positions map[string]int64) {
	s.positions = make(map[string]int64, len(s.sources))
	for _, src := range s.sources {
		s.positions[src.Name] = positions[src.Name]
	}
}

// Positions returns the subscription's positions: the last notification
// ID it returned of each source.
func (s *Subscription) Positions() map[string]int64 {
	out := make(map[string]int64, len(s.positions))
	for k, v := range s.positions {
		out[k] = v
	}
	return out
}

// Poll returns up to limit events after the positions without waiting, and
// whether they reach the end of every source. An event that cannot be
// decoded is returned with Event nil and DecodeErr set, in its place.
func (s *Subscription) Poll(ctx context.Context, limit int) ([]Event, bool, error) {
	limit = min(max(limit, 1), application.MaxLimit)
	atHead := true
	var out []Event
	for i := range s.sources {
		src := &s.sources[i]
		budget := limit - len(out)
		if budget == 0 {
			atHead = false
			break
		}
		var opts []application.SelectOption
		if len(src.Topics) > 0 {
			opts = append(opts, application.Topics(src.Topics...))
		}
		from := s.positions[src.Name]
		items, err := src.Log.Select(ctx, from+1, budget, opts...)
		if err != nil {
			return nil, false, fmt.Errorf("read %s from notification %d: %w", src.Name, from+1, err)
		}
		if len(items) == budget {
			atHead = false
		}
		for _, note := range items {
			e := Event{Upstream: src.Name, Notification: note}
			e.Event, e.DecodeErr = src.Mapper.ToEvent(note.StoredEvent)
			out = append(out, e)
			s.positions[src.Name] = note.ID
		}
	}
	return out, atHead, nil
}

// Next returns up to limit events after the positions, waiting for a
// prompt of a source or the poll interval while there are none, until ctx
// ends.
func (s *Subscription) Next(ctx context.Context, limit int) ([]Event, error) {
	for {
		events, _, err := s.Poll(ctx, limit)
		if err != nil || len(events) > 0 {
			return events, err
		}
		if err := s.wait(ctx); err != nil {
			return nil, err
		}
	}
}

// All returns the events after the positions one by one, blocking at the
// head, until ctx ends or reading fails: the error then ends the
// sequence. An event that cannot be decoded is yielded with its
// DecodeErr, and the sequence goes on after it.
func (s *Subscription) All(ctx context.Context) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		for {
			events, err := s.Next(ctx, 100)
			if err != nil {
				yield(Event{}, err)
				return
			}
			for _, e := range events {
				if !yield(e, e.DecodeErr) {
					return
				}
			}
		}
	}
}

// wait waits for a prompt of any source or the poll interval.
func (s *Subscription) wait(ctx context.Context) error {
	timer := time.NewTimer(s.poll)
	defer timer.Stop()
	prompted := make(chan struct{}, 1)
	stop := make(chan struct{})
	defer close(stop)
	for _, src := range s.sources {
		if src.Prompts == nil {
			continue
		}
		go func(p <-chan struct{}) {
			select {
			case <-p:
				select {
				case prompted <- struct{}{}:
				default:
				}
			case <-stop:
			}
		}(src.Prompts)
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
	case <-prompted:
	case <-s.kick:
	}
	return nil
}

// isErased reports whether an event could not be decoded because its
// data was erased (crypto-shredded): it has nothing left to project.
func isErased(e Event) bool { return errors.Is(e.DecodeErr, persistence.ErrErased) }

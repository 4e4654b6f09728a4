package projection

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// MemoryStore keeps read models of type V in memory, for tests and for
// models that are rebuilt at every start. Its transactions work on copies
// of the models (made by the clone function), which replace the models
// when the transaction commits, so that a failed batch changes nothing.
// Transactions run one at a time. It is safe for concurrent use.
type MemoryStore[V any] struct {
	newModel func() V
	clone    func(V) V

	mu        sync.Mutex
	models    map[Model]V
	positions map[Model]map[string]int64
	live      map[string]int
	holds     map[string]hold
	parked    []ParkedEvent
}

// hold is a newer version's request that the live version stop.
type hold struct {
	version int
	until   time.Time
}

// ParkedEvent is an event a projection could not process and parked.
type ParkedEvent struct {
	Model          Model
	Upstream       string
	NotificationID int64
	Topic          string
	Error          string
	ParkedAt       time.Time
}

var _ Store[*MemoryTx[int]] = (*MemoryStore[int])(nil)

// NewMemoryStore returns a store of models made by newModel and copied by
// clone (which must copy deeply enough that changing the copy leaves the
// original as it was).
func NewMemoryStore[V any](newModel func() V, clone func(V) V) *MemoryStore[V] {
	return &MemoryStore[V]{newModel: newModel, clone: clone, models: map[Model]V{},
		positions: map[Model]map[string]int64{}, live: map[string]int{}, holds: map[string]hold{}}
}

// MemoryTx is a transaction of a MemoryStore.
type MemoryTx[V any] struct {
	s         *MemoryStore[V]
	models    map[Model]*V
	positions map[Model]map[string]int64
	live      map[string]int
	dropped   []Model
	parked    []ParkedEvent
	holds     map[string]hold
}

// Model returns the transaction's copy of version m's model, made (empty)
// if there is none yet. Changes to it are kept if the transaction commits.
func (tx *MemoryTx[V]) Model(m Model) *V {
	if _, ok := tx.models[m]; !ok {
		var v V
		if old, ok := tx.s.models[m]; ok {
			v = tx.s.clone(old)
		} else {
			v = tx.s.newModel()
		}
		tx.models[m] = &v
	}
	return tx.models[m]
}

// Transact runs f in a transaction.
func (s *MemoryStore[V]) Transact(ctx context.Context, f func(ctx context.Context, tx *MemoryTx[V]) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	tx := &MemoryTx[V]{s: s, models: map[Model]*V{}, positions: map[Model]map[string]int64{}, live: map[string]int{}, holds: map[string]hold{}}
	if err := f(ctx, tx); err != nil {
		return err
	}
	for m, v := range tx.models {
		s.models[m] = *v
	}
	for m, ps := range tx.positions {
		if s.positions[m] == nil {
			s.positions[m] = map[string]int64{}
		}
		for u, p := range ps {
			s.positions[m][u] = p
		}
	}
	for name, v := range tx.live {
		s.live[name] = v
	}
	for _, m := range tx.dropped {
		delete(s.models, m)
		delete(s.positions, m)
	}
	for name, h := range tx.holds {
		s.holds[name] = h
	}
	s.parked = append(s.parked, tx.parked...)
	return nil
}

// Prepare does nothing.
func (s *MemoryStore[V]) Prepare(context.Context) error { return nil }

// Register does nothing: a memory model has no tables.
func (s *MemoryStore[V]) Register(context.Context, *MemoryTx[V], Model, []string) error { return nil }

// Live returns the live version of the projection.
func (s *MemoryStore[V]) Live(_ context.Context, tx *MemoryTx[V], name string) (int, error) {
	if v, ok := tx.live[name]; ok {
		return v, nil
	}
	return s.live[name], nil
}

// Positions returns version m's positions.
func (s *MemoryStore[V]) Positions(_ context.Context, tx *MemoryTx[V], m Model) (map[string]int64, error) {
	out := map[string]int64{}
	for u, p := range s.positions[m] {
		out[u] = p
	}
	for u, p := range tx.positions[m] {
		out[u] = p
	}
	return out, nil
}

// SetPosition moves version m's position in upstream.
func (s *MemoryStore[V]) SetPosition(ctx context.Context, tx *MemoryTx[V], m Model, upstream string, from, to int64) error {
	ps, _ := s.Positions(ctx, tx, m)
	if ps[upstream] != from {
		return fmt.Errorf("projection %s version %d in %s: %w (at %d, not %d)", m.Name, m.Version, upstream, ErrMoved, ps[upstream], from)
	}
	if tx.positions[m] == nil {
		tx.positions[m] = map[string]int64{}
	}
	tx.positions[m][upstream] = to
	return nil
}

// Switch makes m live and drops the old version.
func (s *MemoryStore[V]) Switch(_ context.Context, tx *MemoryTx[V], m Model, old int) error {
	tx.live[m.Name] = m.Version
	if old > 0 && old != m.Version {
		tx.dropped = append(tx.dropped, Model{Name: m.Name, Version: old})
	}
	return nil
}

// Drop drops version m.
func (s *MemoryStore[V]) Drop(_ context.Context, tx *MemoryTx[V], m Model) error {
	tx.dropped = append(tx.dropped, m)
	return nil
}

// Park records a parked event.
func (s *MemoryStore[V]) Park(_ context.Context, tx *MemoryTx[V], m Model, e Event, cause error) error {
	tx.parked = append(tx.parked, ParkedEvent{Model: m, Upstream: e.Upstream, NotificationID: e.Notification.ID, Topic: e.Notification.Topic, Error: cause.Error(), ParkedAt: time.Now()})
	return nil
}

// Hold asks the live version of m's projection to stop for d.
func (s *MemoryStore[V]) Hold(_ context.Context, tx *MemoryTx[V], m Model, d time.Duration) error {
	tx.holds[m.Name] = hold{version: m.Version, until: time.Now().Add(d)}
	return nil
}

// Held returns the version that holds the projection now, or 0.
func (s *MemoryStore[V]) Held(_ context.Context, tx *MemoryTx[V], name string) (int, error) {
	h, ok := tx.holds[name]
	if !ok {
		h = s.holds[name]
	}
	if h.version == 0 || !time.Now().Before(h.until) {
		return 0, nil
	}
	return h.version, nil
}

// Read calls f with the live model of the projection named name and its
// version (a new model and 0 if no version is live), while no transaction
// runs. f must not keep v or change it.
func (s *MemoryStore[V]) Read(name string, f func(v V, version int)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	version := s.live[name]
	v, ok := s.models[Model{Name: name, Version: version}]
	if !ok {
		v = s.newModel()
	}
	f(v, version)
}

// Parked returns the parked events.
func (s *MemoryStore[V]) Parked() []ParkedEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ParkedEvent(nil), s.parked...)
}

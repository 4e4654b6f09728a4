package application

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"

	"github.com/google/uuid"

	"github.com/strata-go/strata/domain"
	"github.com/strata-go/strata/persistence"
)

// TakeSnapshot snapshots the recorded state of an aggregate (at the given
// version, if AtVersion is given) and stores the snapshot, replacing one at
// the same version. The aggregate is rebuilt from all its events, not from
// an earlier snapshot (unless its stream is truncated: then from its latest
// snapshot and the events after it), and its type is found from its created event (see
// domain.CreatedBy); with a [Repository] the type is known.
func (a *Application) TakeSnapshot(ctx context.Context, id uuid.UUID, opts ...GetOption) (domain.Snapshot, error) {
	return a.takeSnapshot(ctx, id, nil, opts)
}

func (a *Application) takeSnapshot(ctx context.Context, id uuid.UUID, want *domain.TypeInfo, opts []GetOption) (domain.Snapshot, error) {
	if a.snapshots == nil {
		return domain.Snapshot{}, fmt.Errorf("take snapshot of %s: %w (set IS_SNAPSHOTTING_ENABLED)", id, ErrSnapshotting)
	}
	c := newGetConfig(opts)
	c.noSnapshot = true
	agg, err := a.load(ctx, id, want, c)
	if errors.Is(err, ErrTruncated) {
		// The events a full rebuild needs are gone: the latest snapshot
		// and the events after it are the best rebuild there is.
		c.noSnapshot = false
		agg, err = a.load(ctx, id, want, c)
	}
	if err != nil {
		return domain.Snapshot{}, fmt.Errorf("take snapshot: %w", err)
	}
	snap, err := domain.TakeSnapshot(agg)
	if err != nil {
		return domain.Snapshot{}, fmt.Errorf("take snapshot: %w", err)
	}
	if err := a.snapshots.Put(ctx, snap); err != nil {
		return domain.Snapshot{}, fmt.Errorf("take snapshot of %s version %d: %w", id, snap.OriginatorVersion, err)
	}
	a.policy.remember(id, snap.OriginatorVersion)
	return snap, nil
}

// snapshotPolicy decides when a save is followed by a snapshot: every n
// versions of an aggregate type, or when an aggregate has threshold events
// since its last snapshot.
type snapshotPolicy struct {
	enabled   bool
	threshold int64
	intervals map[reflect.Type]int64

	mu   sync.Mutex
	last map[uuid.UUID]int64 // the last snapshot version of recently seen aggregates
}

// maxRemembered bounds the memory of last snapshot versions; forgetting
// only costs a query.
const maxRemembered = 100_000

func (p *snapshotPolicy) remember(id uuid.UUID, version int64) {
	if p == nil || p.threshold <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last == nil || len(p.last) >= maxRemembered {
		p.last = map[uuid.UUID]int64{}
	}
	if version > p.last[id] {
		p.last[id] = version
	}
}

// fresh returns a policy with p's settings and no memory, for a tenant's
// view, whose aggregates IDs may be those of other tenants.
func (p *snapshotPolicy) fresh() *snapshotPolicy {
	if p == nil {
		return nil
	}
	return &snapshotPolicy{enabled: p.enabled, threshold: p.threshold, intervals: p.intervals}
}

// forget drops what p remembers of aggregate id, which was deleted.
func (p *snapshotPolicy) forget(id uuid.UUID) {
	if p == nil {
		return
	}
	p.mu.Lock()
	delete(p.last, id)
	p.mu.Unlock()
}

// forgetAll drops what p remembers.
func (p *snapshotPolicy) forgetAll() {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.last = nil
	p.mu.Unlock()
}

func (p *snapshotPolicy) recall(id uuid.UUID) (int64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	v, ok := p.last[id]
	return v, ok
}

// autoSnapshot takes the snapshots the policy asks for after a save, and
// records them together, in one write (a batch of a follower may be due
// several, each of which would otherwise cost a commit of its own). If
// that fails, each is tried alone, so that one that cannot be recorded
// does not cost the others. A failure is logged: the save has happened
// and must not be undone.
func (a *Application) autoSnapshot(ctx context.Context, saved []domain.Root, events []domain.Event) {
	p := a.policy
	if a.snapshots == nil || (p.threshold <= 0 && len(p.intervals) == 0) {
		return
	}
	firstVersion := map[uuid.UUID]int64{}
	for _, e := range events {
		if v, ok := firstVersion[e.OriginatorID]; !ok || e.OriginatorVersion < v {
			firstVersion[e.OriginatorID] = e.OriginatorVersion
		}
	}
	var snaps []domain.Snapshot
	for _, agg := range saved {
		first, ok := firstVersion[agg.ID()]
		if !ok {
			continue
		}
		if !a.wantsSnapshot(ctx, agg, first-1) {
			continue
		}
		snap, err := domain.TakeSnapshot(agg)
		if err != nil {
			a.logger.ErrorContext(ctx, "automatic snapshot failed; the save stands",
				"aggregate_id", agg.ID(), "version", agg.Version(), "error", err)
			continue
		}
		snaps = append(snaps, snap)
	}
	if len(snaps) == 0 {
		return
	}
	if len(snaps) > 1 {
		if err := a.snapshots.Put(ctx, snaps...); err == nil {
			for _, snap := range snaps {
				p.remember(snap.OriginatorID, snap.OriginatorVersion)
			}
			return
		}
	}
	for _, snap := range snaps {
		if err := a.snapshots.Put(ctx, snap); err != nil {
			a.logger.ErrorContext(ctx, "automatic snapshot failed; the save stands",
				"aggregate_id", snap.OriginatorID, "version", snap.OriginatorVersion, "error", err)
			continue
		}
		p.remember(snap.OriginatorID, snap.OriginatorVersion)
	}
}

// wantsSnapshot reports whether agg, saved from version before to its
// current version, is due a snapshot.
func (a *Application) wantsSnapshot(ctx context.Context, agg domain.Root, before int64) bool {
	p := a.policy
	v := agg.Version()
	if n := p.intervals[reflect.TypeOf(agg)]; n > 0 && v > 0 && v/n > max(before, 0)/n {
		return true
	}
	if p.threshold <= 0 {
		return false
	}
	none := domain.InitialVersion(agg) - 1 // the "last snapshot" of an aggregate without one
	if v-none < p.threshold {
		return false
	}
	last, ok := p.recall(agg.ID())
	if !ok {
		last = none
		stored, err := a.snapshots.Recorder().SelectEvents(ctx, agg.ID(), persistence.EventQuery{Desc: true, Limit: 1})
		if err != nil {
			a.logger.WarnContext(ctx, "cannot read the last snapshot version; not snapshotting",
				"aggregate_id", agg.ID(), "error", err)
			return false
		}
		if len(stored) > 0 {
			last = stored[0].OriginatorVersion
		}
		p.remember(agg.ID(), last)
	}
	return v-last >= p.threshold
}

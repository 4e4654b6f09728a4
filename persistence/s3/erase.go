package s3

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/google/uuid"

	"github.com/strata-go/strata/persistence"
)

var _ persistence.Eraser = (*Factory)(nil)

// view is what a process knows of its application's erase markers. A
// marker is never changed nor removed, so the view only grows: it holds
// every marker up to position upTo, and a read lists the marker index
// only past it, which it need not do while the log has not grown.
type view struct {
	mu    sync.Mutex
	upTo  int64
	byPos map[int64]*marker
	done  map[int64]bool
	all   markers
}

// markers are the erase markers a read applies, in log order. Each is
// immutable once known.
type markers []*marker

// erased reports whether a marker erased the record of the aggregate
// that the save at pos in the purpose's log (the events' for "") wrote.
func (ms markers) erased(purpose, tenant string, id uuid.UUID, pos int64) bool {
	for _, m := range ms {
		if m.Tenant != tenant || m.Aggregate != nil && *m.Aggregate != id {
			continue
		}
		if purpose == "" {
			if pos < m.Pos {
				return true
			}
			continue
		}
		if b, ok := m.Bounds[purpose]; ok && pos <= b {
			return true
		}
	}
	return false
}

// purges reports whether any marker purges a tenant.
func (ms markers) purges() bool {
	return slices.ContainsFunc(ms, func(m *marker) bool { return m.Aggregate == nil })
}

// purged reports whether a purge erased what the tenant's save at pos of
// the events' log recorded.
func (ms markers) purged(tenant string, pos int64) bool {
	return ms.purgedSeg(tenantSeg(tenant), pos)
}

func (ms markers) purgedSeg(seg string, pos int64) bool {
	for _, m := range ms {
		if m.Aggregate == nil && tenantSeg(m.Tenant) == seg && pos < m.Pos {
			return true
		}
	}
	return false
}

// touches reports whether any marker may erase records of the aggregate.
func (ms markers) touches(tenant string, id uuid.UUID) bool {
	return slices.ContainsFunc(ms, func(m *marker) bool {
		return m.Tenant == tenant && (m.Aggregate == nil || *m.Aggregate == id)
	})
}

func (s *space) markerPrefix() string       { return s.prefix + "ers/" }
func (s *space) markerKey(pos int64) string { return s.markerPrefix() + sortable(pos) }

// doneKey marks a marker whose erased objects are all deleted.
func (s *space) doneKey(pos int64) string { return s.markerKey(pos) + "/done" }

func (v *view) add(m *marker, done bool) {
	if v.byPos == nil {
		v.byPos, v.done = map[int64]*marker{}, map[int64]bool{}
	}
	if done {
		v.done[m.Pos] = true
	}
	if v.byPos[m.Pos] != nil {
		return
	}
	v.byPos[m.Pos] = m
	// A new array: readers hold the old one.
	v.all = append(slices.Clip(v.all), m)
	slices.SortFunc(v.all, func(a, b *marker) int { return cmpInt(a.Pos, b.Pos) })
}

func (v *view) snapshot() markers {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clip(v.all)
}

// markersAt returns the erase markers up to the head of the events' log
// (and any later one it meets). Every position below the head is
// indexed, so the marker index holds their markers; the head's own
// record, if it is not indexed, is pending and the caller passes it.
func (s *space) markersAt(ctx context.Context, head int64, pending *commitRecord, pendPos int64) (markers, error) {
	v := &s.view
	v.mu.Lock()
	upTo := v.upTo
	v.mu.Unlock()
	if head <= upTo {
		return v.snapshot(), nil
	}
	after := ""
	if upTo > 0 {
		// After the marker at upTo and its done mark.
		after = s.markerKey(upTo) + "~"
	}
	var found, done []int64
	var perr error
	err := s.o.list(ctx, s.markerPrefix(), after, "", func(key string) bool {
		p, isDone := strings.CutSuffix(strings.TrimPrefix(key, s.markerPrefix()), "/done")
		pos, err := unsortable(p)
		if err != nil {
			perr = err
			return false
		}
		if isDone {
			done = append(done, pos)
		} else {
			found = append(found, pos)
		}
		return true
	})
	if err == nil {
		err = perr
	}
	if err != nil {
		return nil, err
	}
	var got []*marker
	for _, pos := range found {
		v.mu.Lock()
		known := v.byPos[pos] != nil
		v.mu.Unlock()
		if known {
			continue
		}
		key := s.markerKey(pos)
		b, _, ok, err := s.o.get(ctx, key)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, &persistence.Error{Op: "read the erase markers", Kind: persistence.ErrInternal, Err: fmt.Errorf("marker %s listed but missing", key)}
		}
		var m marker
		if err := decode(key, b, &m); err != nil {
			return nil, err
		}
		got = append(got, &m)
	}
	if pending != nil && pending.Erase != nil {
		got = append(got, pending.marker(pendPos))
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, m := range got {
		v.add(m, false)
		s.forgetErased(m)
	}
	for _, pos := range done {
		if m := v.byPos[pos]; m != nil {
			v.add(m, true)
		}
	}
	v.upTo = max(v.upTo, head)
	return slices.Clip(v.all), nil
}

// currentMarkers returns the erase markers up to the head of the events'
// log, reading its last record only if the log has grown past the view.
func (s *space) currentMarkers(ctx context.Context) (markers, error) {
	_, ms, err := s.headMarkers(ctx)
	return ms, err
}

// headMarkers is currentMarkers that also returns the end of the log.
func (s *space) headMarkers(ctx context.Context) (int64, markers, error) {
	pos, indexed, err := s.head(ctx)
	if err != nil {
		return 0, nil, err
	}
	s.view.mu.Lock()
	upTo := s.view.upTo
	s.view.mu.Unlock()
	var pending *commitRecord
	if !indexed && pos > upTo {
		if pending, err = s.readRecord(ctx, pos); err != nil {
			return 0, nil, err
		}
	}
	ms, err := s.markersAt(ctx, pos, pending, pos)
	return pos, ms, err
}

// forgetErased drops from the chunk cache what the marker erased.
func (s *space) forgetErased(m *marker) {
	id := ""
	if m.Aggregate != nil {
		id = m.Aggregate.String()
	}
	s.chunks.forget(m.Tenant, id)
}

// claimed extends the view by this process's own save at next, on a
// head at pos, so that a process's saves need no list of the markers.
func (s *space) claimed(pos, next int64, rec *commitRecord) {
	if !s.events {
		return
	}
	v := &s.view
	v.mu.Lock()
	defer v.mu.Unlock()
	if rec.Erase != nil {
		m := rec.marker(next)
		v.add(m, false)
		s.forgetErased(m)
	}
	if v.upTo >= pos {
		v.upTo = max(v.upTo, next)
	}
}

// state reads what a read of a space needs first: the last position's
// record if its indexes may not be written yet, and the erase markers.
func (s *shared) state(ctx context.Context, sp *space) (int64, *commitRecord, markers, error) {
	pos, indexed, err := sp.head(ctx)
	if err != nil {
		return 0, nil, nil, err
	}
	var pending *commitRecord
	if !indexed && pos > 0 {
		if pending, err = sp.readRecord(ctx, pos); err != nil {
			return 0, nil, nil, err
		}
	}
	var ms markers
	if sp.events {
		ms, err = sp.markersAt(ctx, pos, pending, pos)
	} else {
		ms, err = s.events.currentMarkers(ctx)
	}
	return pos, pending, ms, err
}

// DeleteAggregate erases the aggregate's events, commits and records of
// every purpose (snapshots) in the factory's tenant, and reports whether
// it had any. The erasure is one erase marker, claimed at the next
// position of the log like a save: from then on every read hides what it
// erased, and a save may record the aggregate anew, from any version.
// Then the erased objects are deleted and the erased events taken out of
// the commit records they are in (their places, and so the notification
// IDs of the others, stay). If that fails, the error says so; the data
// is hidden all the same, and the next erasure, or the next factory
// opened on the bucket, finishes the deletion (see docs/s3.md).
func (f *Factory) DeleteAggregate(ctx context.Context, id uuid.UUID) (bool, error) {
	op := fmt.Sprintf("delete aggregate %s", id)
	if err := f.s.begin(ctx, op, true); err != nil {
		return false, err
	}
	if err := f.s.finishAll(ctx, op); err != nil {
		return false, err
	}
	bounds, err := f.s.purposeHeads(ctx, op)
	if err != nil {
		return false, err
	}
	had := false
	spaces := []*space{f.s.events}
	for seg := range bounds {
		spaces = append(spaces, f.s.space(seg))
	}
	for _, sp := range spaces {
		evs, err := f.s.selectEvents(ctx, sp, f.tenant, id, persistence.EventQuery{Limit: 1})
		if err != nil {
			return false, err
		}
		if len(evs) > 0 {
			had = true
			break
		}
	}
	if !had {
		return false, nil
	}
	return true, f.s.erase(ctx, op, f.tenant, &id, bounds)
}

// PurgeTenant erases everything of the factory's tenant: events, commits,
// tracking records and the records of every purpose, by one erase marker,
// as DeleteAggregate does for one aggregate. It is refused for the
// default tenant.
func (f *Factory) PurgeTenant(ctx context.Context) error {
	op := fmt.Sprintf("purge tenant %q", f.tenant)
	if err := f.s.begin(ctx, op, true); err != nil {
		return err
	}
	if f.tenant == "" {
		return &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: errors.New("the default tenant cannot be purged")}
	}
	if err := f.s.finishAll(ctx, op); err != nil {
		return err
	}
	bounds, err := f.s.purposeHeads(ctx, op)
	if err != nil {
		return err
	}
	return f.s.erase(ctx, op, f.tenant, nil, bounds)
}

// purposeHeads returns the last position of each purpose's log, by its
// escaped name, each indexed, so that a marker's bound covers only
// records whose indexes its deletion finds.
func (s *shared) purposeHeads(ctx context.Context, op string) (map[string]int64, error) {
	root := s.cfg.Prefix + "p/"
	var segs []string
	if err := s.o.list(ctx, root, "", "/", func(p string) bool {
		segs = append(segs, strings.TrimSuffix(strings.TrimPrefix(p, root), "/"))
		return true
	}); err != nil {
		return nil, fail(op+": list the purposes", err, false)
	}
	bounds := map[string]int64{}
	for _, seg := range segs {
		sp := s.space(seg)
		pos, indexed, err := sp.head(ctx)
		if err == nil {
			err = sp.ensureIndexed(ctx, pos, indexed)
		}
		if err != nil {
			return nil, fail(op+": find the end of the log of purpose "+seg, err, false)
		}
		bounds[seg] = pos
	}
	return bounds, nil
}

// erase claims the erase marker, then deletes what it erased.
func (s *shared) erase(ctx context.Context, op, tenant string, id *uuid.UUID, bounds map[string]int64) error {
	rec := &commitRecord{Tenant: tenant, Nonce: uuid.NewString(), Erase: &eraseRecord{Aggregate: id, Bounds: bounds}}
	pos, err := s.events.claim(ctx, op, rec, func(int64, markers) error { return nil })
	if err != nil {
		return err
	}
	if s.afterMarker != nil {
		s.afterMarker()
	}
	if err := s.finish(ctx, rec.marker(pos)); err != nil {
		return &persistence.Error{Op: op, Kind: persistence.ErrOperational,
			Err: fmt.Errorf("erased by the marker at log position %d, but deleting the erased objects failed (the next erasure or opening finishes it): %w", pos, err)}
	}
	return nil
}

// finishAll finishes the deletions of every marker not marked done: those
// of an eraser that failed or died after claiming its marker.
func (s *shared) finishAll(ctx context.Context, op string) error {
	ms, err := s.events.currentMarkers(ctx)
	if err != nil {
		return fail(op+": read the erase markers", err, false)
	}
	for _, m := range ms {
		s.events.view.mu.Lock()
		done := s.events.view.done[m.Pos]
		s.events.view.mu.Unlock()
		if done {
			continue
		}
		if err := s.finish(ctx, m); err != nil {
			return fail(op+fmt.Sprintf(": finish the erasure of log position %d", m.Pos), err, true)
		}
	}
	return nil
}

// finish deletes what the marker erased, in every space, then marks it
// done. Every step is idempotent, and reads hide what the marker erased
// whether or not it is deleted, so a deletion that stops anywhere is
// finished by running it again.
func (s *shared) finish(ctx context.Context, m *marker) error {
	if err := s.events.sweep(ctx, m, m.Pos-1); err != nil {
		return err
	}
	for seg, b := range m.Bounds {
		if err := s.space(seg).sweep(ctx, m, b); err != nil {
			return err
		}
	}
	if err := s.o.create(ctx, s.events.doneKey(m.Pos), nil); err != nil && !errors.Is(err, errPrecondition) {
		return err
	}
	v := &s.events.view
	v.mu.Lock()
	v.add(m, true)
	v.mu.Unlock()
	return nil
}

// sweep deletes the space's objects that the marker erased, those of
// saves at positions up to bound: it takes the erased events out of
// their commit records first, then deletes the indexes, whose positions
// lead it to the commit records; so an interrupted sweep leaves indexes
// that lead the next one to what is left.
func (sp *space) sweep(ctx context.Context, m *marker, bound int64) error {
	seg := tenantSeg(m.Tenant)
	aggRoot, cidRoot := sp.prefix+"agg/"+seg+"/", sp.prefix+"cid/"+seg+"/"
	if m.Aggregate != nil {
		aggRoot += m.Aggregate.String() + "/"
		cidRoot += m.Aggregate.String() + "/"
	}
	var del []string
	positions := map[int64]bool{}
	var perr error
	err := sp.o.list(ctx, aggRoot, "", "", func(key string) bool {
		_, _, pos, err := parseChunkKey(key)
		if err != nil {
			perr = err
			return false
		}
		if pos <= bound {
			del = append(del, key)
			positions[pos] = true
		}
		return true
	})
	if err == nil {
		err = perr
	}
	if err != nil {
		return err
	}
	if positions[0] {
		// Chunks written before erasures existed name no position: their
		// bodies do.
		delete(positions, 0)
		for _, key := range del {
			if _, _, pos, err := parseChunkKey(key); err != nil || pos != 0 {
				continue
			}
			b, _, found, err := sp.o.get(ctx, key)
			if err != nil {
				return err
			}
			var c chunk
			if found && decode(key, b, &c) == nil && c.Pos > 0 {
				positions[c.Pos] = true
			}
		}
	}
	if err := sp.o.list(ctx, cidRoot, "", "", func(key string) bool {
		// <aggregate>/<commit>/<pos>, or <aggregate>/<commit> from before
		// erasures existed, which is older than every marker.
		pos, err := unsortable(lastSegment(key))
		if err != nil {
			pos = 0
		}
		if pos <= bound {
			del = append(del, key)
		}
		return true
	}); err != nil {
		return err
	}
	if m.Aggregate == nil && sp.events {
		root := sp.prefix + "trk/"
		var old []string
		if err := sp.o.list(ctx, root, "", "", func(key string) bool {
			parts := strings.Split(strings.TrimPrefix(key, root), "/")
			switch len(parts) {
			case 2:
				old = append(old, key)
			case 4:
				pos, err := unsortable(parts[3])
				if err == nil && parts[2] == seg && pos <= bound {
					del = append(del, key)
					positions[pos] = true
				}
			}
			return true
		}); err != nil {
			return err
		}
		for _, key := range old {
			b, _, found, err := sp.o.get(ctx, key)
			if err != nil {
				return err
			}
			if found && string(b) == m.Tenant {
				del = append(del, key)
			}
		}
	}
	ps := make([]int64, 0, len(positions))
	for p := range positions {
		if p > 0 {
			ps = append(ps, p)
		}
	}
	slices.Sort(ps)
	for _, p := range ps {
		if err := sp.scrub(ctx, p, m); err != nil {
			return err
		}
	}
	return sp.o.remove(ctx, del)
}

// scrub takes what the marker erased out of the commit record at pos:
// each erased event becomes an empty place, so that the others keep
// their notification IDs; a purged tenant's record loses its tenant and
// tracking record too. The record is replaced on the ETag it was read
// with, so that two sweeps of one record (an aggregate's and its
// tenant's) both take effect.
func (sp *space) scrub(ctx context.Context, pos int64, m *marker) error {
	key := sp.logKey(pos)
	for {
		b, etag, found, err := sp.o.get(ctx, key)
		if err != nil {
			return err
		}
		if !found {
			return &persistence.Error{Op: "erase", Kind: persistence.ErrInternal, Err: fmt.Errorf("log object %s of an indexed save is missing", key)}
		}
		var r commitRecord
		if err := decode(key, b, &r); err != nil {
			return err
		}
		if r.Tenant != m.Tenant || r.Erase != nil {
			return nil
		}
		changed := false
		for i, e := range r.Events {
			if !e.erased() && (m.Aggregate == nil || e.ID == *m.Aggregate) {
				r.Events[i] = storedEvent{}
				changed = true
			}
		}
		if m.Aggregate == nil {
			changed = changed || r.Track != nil || r.Tenant != ""
			r.Track, r.Tenant = nil, ""
		}
		if r.liveEvents() == 0 && (r.Commit != "" || r.Headers != nil) {
			r.Commit, r.Headers, changed = "", nil, true
		}
		if !changed {
			return nil
		}
		_, err = sp.o.replace(ctx, key, encode(&r), etag)
		if !errors.Is(err, errPrecondition) {
			return err
		}
	}
}

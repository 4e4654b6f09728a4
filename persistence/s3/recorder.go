package s3

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/strata-go/strata/persistence"
)

// Recorder is the process recorder of one tenant of an application (its
// application recorder is the same without tracking records). It is safe
// for concurrent use.
type Recorder struct {
	s        *shared
	tenant   string
	tracking bool
}

var _ persistence.ProcessRecorder = (*Recorder)(nil)

// AggregateRecorder is the recorder of one purpose (snapshots) of one
// tenant. Its records have no notification IDs.
type AggregateRecorder struct {
	s      *shared
	sp     *space
	tenant string
}

var (
	_ persistence.AggregateRecorder = (*AggregateRecorder)(nil)
	_ persistence.Lister            = (*AggregateRecorder)(nil)
	_ persistence.Replacer          = (*AggregateRecorder)(nil)
)

func errNoTracking(op string) error {
	return &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: errors.New("this recorder does not record tracking records")}
}

// checkSave checks what S3 cannot hold before anything is sent.
func checkSave(op string, events []persistence.StoredEvent) error {
	if err := persistence.CheckCommit(op, events); err != nil {
		return err
	}
	if len(events) > MaxSaveEvents {
		return &persistence.Error{Op: op, Kind: persistence.ErrNotSupported,
			Err: fmt.Errorf("a save of %d events is more than the %d that one log position holds: save at most %d at once", len(events), MaxSaveEvents, MaxSaveEvents)}
	}
	return nil
}

// InsertEvents records the events, their commit and the tracking record,
// if any, as one commit object at the next position of the log, and
// returns the events' notification IDs (see [NotificationStride]).
func (r *Recorder) InsertEvents(ctx context.Context, events []persistence.StoredEvent, opts ...persistence.InsertOption) ([]int64, error) {
	const op = "insert events"
	if err := r.s.begin(ctx, op, true); err != nil {
		return nil, err
	}
	if err := checkSave(op, events); err != nil {
		return nil, err
	}
	cfg := persistence.NewInsertConfig(opts)
	if cfg.Tracking != nil && !r.tracking {
		return nil, errNoTracking(op)
	}
	if len(events) == 0 && cfg.Tracking == nil {
		return nil, nil
	}
	pos, err := r.s.events.insert(ctx, op, r.tenant, events, cfg.Tracking, false)
	if err != nil || len(events) == 0 {
		return nil, err
	}
	ids := make([]int64, len(events))
	for i := range ids {
		ids[i] = pos*NotificationStride + int64(i) + 1
	}
	return ids, nil
}

// SelectEvents returns one aggregate's events as the query asks.
func (r *Recorder) SelectEvents(ctx context.Context, id uuid.UUID, q persistence.EventQuery) ([]persistence.StoredEvent, error) {
	return r.s.selectEvents(ctx, r.s.events, r.tenant, id, q)
}

// selectEvents lists an aggregate's chunks (every page), reads those the
// query needs, and adds the events of the last log position if its
// indexes may not be written yet. A chunk that an eraser or a replacing
// save deleted between the list and the get makes it read again: the
// next list no longer has it.
func (s *shared) selectEvents(ctx context.Context, sp *space, tenant string, id uuid.UUID, q persistence.EventQuery) ([]persistence.StoredEvent, error) {
	op := fmt.Sprintf("select events of %s", id)
	if err := s.begin(ctx, op, false); err != nil {
		return nil, err
	}
	if q.Gt != nil && q.Lte != nil && *q.Lte <= *q.Gt {
		return []persistence.StoredEvent{}, nil
	}
	for attempt := 1; ; attempt++ {
		out, gone, err := s.selectOnce(ctx, op, sp, tenant, id, q)
		if gone == "" || err != nil {
			return out, err
		}
		if attempt == maxReads {
			return nil, &persistence.Error{Op: op, Kind: persistence.ErrOperational, Err: fmt.Errorf("chunks kept disappearing between a list and a get (%s last) in %d reads", gone, attempt)}
		}
	}
}

// maxReads bounds the reads of an aggregate whose chunks keep being
// deleted under it.
const maxReads = 10

// source is a save's events of one aggregate: a chunk, read when needed,
// or the pending save's.
type source struct {
	key              string
	first, last, pos int64
	evs              []persistence.StoredEvent
	read             bool
}

// selectOnce is one read of selectEvents; gone names a chunk that was
// listed but missing.
func (s *shared) selectOnce(ctx context.Context, op string, sp *space, tenant string, id uuid.UUID, q persistence.EventQuery) (out []persistence.StoredEvent, gone string, err error) {
	out = []persistence.StoredEvent{}
	pendPos, pending, ms, err := s.state(ctx, sp)
	if err != nil {
		return nil, "", fail(op, err, false)
	}
	if sp.known != nil && pending == nil {
		if ks, ok := sp.known.lookup(tenant, id, pendPos); ok {
			// Nothing was recorded for the aggregate since the process
			// knew its chunks: no list is needed.
			var srcs []*source
			for _, k := range ks {
				if (q.Gt == nil || k.last > *q.Gt) && (q.Lte == nil || k.first <= *q.Lte) && !ms.erased(sp.purpose, tenant, id, k.pos) {
					srcs = append(srcs, &source{key: k.key, first: k.first, last: k.last, pos: k.pos})
				}
			}
			out, gone, err = s.readSources(ctx, op, sp, id, q, srcs)
			if gone != "" {
				sp.known.forget(tenant, id)
			}
			return out, gone, err
		}
	}
	prefix := sp.aggPrefix(tenant, id)
	after := ""
	if q.Gt != nil {
		after = prefix + sortable(*q.Gt) + "."
	}
	var listed []*source
	var perr error
	err = s.o.list(ctx, prefix, after, "", func(key string) bool {
		first, last, pos, err := parseChunkKey(key)
		if err != nil {
			perr = err
			return false
		}
		// Chunks sort by their last versions: one whose first is past
		// Lte holds nothing wanted, but a later one (of a replacing
		// save) may.
		if q.Lte == nil || first <= *q.Lte {
			listed = append(listed, &source{key: key, first: first, last: last, pos: pos})
		}
		return true
	})
	if err == nil {
		err = perr
	}
	if err != nil {
		return nil, "", fail(op, err, false)
	}
	// The markers are read again once the list is done. An erasure
	// deletes objects only after its marker is claimed, so a list that
	// missed some of an aggregate's chunks because an erasure was
	// deleting them ended after that marker was in the log, and the
	// markers read now hide what is left of that life; with the markers
	// read before the list, the read would return it with holes. The same
	// holds for a chunk of a save past the end of the log seen before the
	// list, which may follow a marker that erases its predecessors'.
	head, ms, err := s.events.headMarkers(ctx)
	if err != nil {
		return nil, "", fail(op, err, false)
	}
	var srcs []*source
	indexed := false
	for _, src := range listed {
		if !ms.erased(sp.purpose, tenant, id, src.pos) {
			indexed = indexed || src.pos == pendPos
			srcs = append(srcs, src)
		}
	}
	if pending != nil && pending.Tenant == tenant && !indexed && !ms.erased(sp.purpose, tenant, id, pendPos) {
		commit, err := pending.commitID()
		if err != nil {
			return nil, "", &persistence.Error{Op: op, Kind: persistence.ErrCorrupt, Err: err}
		}
		for _, g := range groupRecord(pending.Events) {
			if g[0].ID != id {
				continue
			}
			src := &source{first: g[0].Version, last: g[len(g)-1].Version, pos: pendPos, read: true}
			for _, e := range g {
				src.evs = append(src.evs, persistence.StoredEvent{OriginatorID: id, OriginatorVersion: e.Version, Topic: e.Topic, State: e.State, CommitID: commit, Headers: pending.Headers})
			}
			srcs = append(srcs, src)
		}
	}
	// A whole list, with no save past the end of the log seen before it
	// and none pending, is the aggregate as of that end.
	if sp.known != nil && pending == nil && q.Gt == nil && q.Lte == nil && head == pendPos {
		defer func() {
			if err != nil || gone != "" {
				return
			}
			ks := make([]knownSrc, len(srcs))
			for i, src := range srcs {
				ks[i] = knownSrc{key: src.key, first: src.first, last: src.last, pos: src.pos}
				if src.read && len(src.evs) > 0 {
					ks[i].commit, ks[i].commitKnown = src.evs[0].CommitID, true
				}
			}
			sp.known.store(tenant, id, pendPos, ks)
		}()
	}
	return s.readSources(ctx, op, sp, id, q, srcs)
}

// readSources reads what the query needs of an aggregate's sources; gone
// names a chunk that was listed but missing.
func (s *shared) readSources(ctx context.Context, op string, sp *space, id uuid.UUID, q persistence.EventQuery, srcs []*source) (out []persistence.StoredEvent, gone string, err error) {
	out = []persistence.StoredEvent{}
	load := func(src *source) error {
		if src.read {
			return nil
		}
		b, found := sp.chunks.get(src.key)
		if !found {
			var err error
			if b, _, found, err = s.o.get(ctx, src.key); err != nil {
				return fail(op, err, false)
			}
			if !found {
				gone = src.key
				return nil
			}
			sp.chunks.put(src.key, b)
		}
		var c chunk
		if err := decode(src.key, b, &c); err != nil {
			return &persistence.Error{Op: op, Kind: persistence.ErrCorrupt, Err: err}
		}
		commit, err := parseCommit(c.Commit)
		if err != nil {
			return &persistence.Error{Op: op, Kind: persistence.ErrCorrupt, Err: err}
		}
		src.evs = make([]persistence.StoredEvent, len(c.Events))
		for i, e := range c.Events {
			src.evs[i] = persistence.StoredEvent{OriginatorID: id, OriginatorVersion: e.Version, Topic: e.Topic, State: e.State, CommitID: commit, Headers: c.Headers}
		}
		src.read = true
		return nil
	}
	in := func(v int64) bool { return (q.Gt == nil || v > *q.Gt) && (q.Lte == nil || v <= *q.Lte) }
	full := func() bool { return q.Limit > 0 && len(out) >= q.Limit }
	emit := func(evs []persistence.StoredEvent) {
		for _, e := range evs {
			if in(e.OriginatorVersion) && !full() {
				out = append(out, e)
			}
		}
	}
	slices.SortStableFunc(srcs, func(a, b *source) int { return cmpInt(a.first, b.first) })
	overlap := false
	for i := 1; i < len(srcs); i++ {
		overlap = overlap || srcs[i].first <= srcs[i-1].last
	}
	if overlap {
		// A replacing save's records win over older ones at the same
		// versions: the highest position wins.
		// Newest first; a chunk of one version that a newer one holds is
		// not read, which is also the chunk a replacing save deletes.
		slices.SortStableFunc(srcs, func(a, b *source) int { return cmpInt(b.pos, a.pos) })
		at := map[int64]persistence.StoredEvent{}
		for _, src := range srcs {
			if _, ok := at[src.first]; ok && src.first == src.last {
				continue
			}
			if err := load(src); err != nil || gone != "" {
				return nil, gone, err
			}
			for _, e := range src.evs {
				if _, ok := at[e.OriginatorVersion]; !ok {
					at[e.OriginatorVersion] = e
				}
			}
		}
		vs := slices.Sorted(maps.Keys(at))
		if q.Desc {
			slices.Reverse(vs)
		}
		for _, v := range vs {
			emit([]persistence.StoredEvent{at[v]})
		}
		return out, "", nil
	}
	if q.Desc {
		for i := len(srcs) - 1; i >= 0 && !full(); i-- {
			if err := load(srcs[i]); err != nil || gone != "" {
				return nil, gone, err
			}
			evs := slices.Clone(srcs[i].evs)
			slices.Reverse(evs)
			emit(evs)
		}
		return out, "", nil
	}
	for _, src := range srcs {
		if full() {
			break
		}
		if err := load(src); err != nil || gone != "" {
			return nil, gone, err
		}
		emit(src.evs)
	}
	return out, "", nil
}

// SelectNotifications returns notifications from q.Start in order: it
// lists the log from the position of q.Start, page after page, and reads
// each commit object until it has q.Limit notifications or passes q.Stop.
// The log is one order across tenants, so a tenant's reader reads the
// commit objects of every tenant and keeps its own (see docs/s3.md).
func (r *Recorder) SelectNotifications(ctx context.Context, q persistence.NotificationQuery) ([]persistence.Notification, error) {
	const op = "select notifications"
	if err := r.s.begin(ctx, op, false); err != nil {
		return nil, err
	}
	if q.Limit <= 0 {
		return nil, &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: fmt.Errorf("limit %d is not positive", q.Limit)}
	}
	out := []persistence.Notification{}
	if q.Stop > 0 && q.Stop < q.Start {
		return out, nil
	}
	sp := r.s.events
	after := ""
	if p := max(q.Start, 0) / NotificationStride; p > 0 {
		after = sp.logKey(p - 1)
	}
	// A marker erases only saves before it: those between the view and
	// q.Start are not read, and those the list meets are read in order,
	// each taking out of what was selected so far what it erased, so that
	// the result is the log as it is after the last marker read.
	ms := sp.view.snapshot()
	visible := func(n persistence.Notification, pos int64) bool {
		return !ms.erased("", n.Tenant, n.OriginatorID, pos)
	}
	var ferr error
	err := r.s.o.list(ctx, sp.prefix+"log/", after, "", func(key string) bool {
		pos, err := unsortable(lastSegment(key))
		if err != nil {
			ferr = err
			return false
		}
		if q.Stop > 0 && pos*NotificationStride+1 > q.Stop {
			return false
		}
		rec, err := sp.readRecord(ctx, pos)
		if err != nil {
			ferr = err
			return false
		}
		if rec.Erase != nil {
			m := rec.marker(pos)
			if !slices.ContainsFunc(ms, func(k *marker) bool { return k.Pos == pos }) {
				ms = append(slices.Clip(ms), m)
				out = slices.DeleteFunc(out, func(n persistence.Notification) bool { return !visible(n, n.ID/NotificationStride) })
			}
			return true
		}
		if !q.AllTenants && rec.Tenant != r.tenant {
			return true
		}
		commit, err := rec.commitID()
		if err != nil {
			ferr = err
			return false
		}
		for i, e := range rec.Events {
			nid := pos*NotificationStride + int64(i) + 1
			if e.erased() || nid < q.Start || q.Stop > 0 && nid > q.Stop || len(q.Topics) > 0 && !slices.Contains(q.Topics, e.Topic) {
				continue
			}
			n := persistence.Notification{ID: nid, Tenant: rec.Tenant, StoredEvent: persistence.StoredEvent{
				OriginatorID: e.ID, OriginatorVersion: e.Version, Topic: e.Topic, State: e.State, CommitID: commit, Headers: rec.Headers,
			}}
			if !visible(n, pos) {
				continue
			}
			out = append(out, n)
			if len(out) == q.Limit {
				return false
			}
		}
		return true
	})
	if err == nil {
		err = ferr
	}
	if err != nil {
		if errors.Is(err, persistence.ErrCorrupt) {
			return nil, &persistence.Error{Op: op, Kind: persistence.ErrCorrupt, Err: err}
		}
		return nil, fail(op, err, false)
	}
	return out, nil
}

// MaxNotificationID returns the highest notification ID given to the
// recorder's tenant, or 0.
func (r *Recorder) MaxNotificationID(ctx context.Context) (int64, error) {
	const op = "max notification ID"
	if err := r.s.begin(ctx, op, false); err != nil {
		return 0, err
	}
	sp := r.s.events
	pos, pending, err := sp.pending(ctx)
	if err != nil {
		return 0, fail(op, err, false)
	}
	if pending != nil && pending.Tenant == r.tenant && len(pending.Events) > 0 {
		return pos*NotificationStride + int64(len(pending.Events)), nil
	}
	last, _, found, err := sp.readInt(ctx, sp.tenantMaxKey(r.tenant))
	if err != nil {
		return 0, fail(op, err, false)
	}
	if !found {
		return 0, nil
	}
	rec, err := sp.readRecord(ctx, last)
	if err != nil {
		return 0, fail(op, err, false)
	}
	return last*NotificationStride + int64(len(rec.Events)), nil
}

// MaxTrackingID returns the highest notification ID recorded for the
// upstream application, in any tenant, or 0. The stored maximum only
// grows: if a purge erased the record it names, the application's
// tracking records are listed for the highest one left.
func (r *Recorder) MaxTrackingID(ctx context.Context, app string) (int64, error) {
	const op = "max tracking ID"
	if err := r.s.begin(ctx, op, false); err != nil {
		return 0, err
	}
	sp := r.s.events
	_, pending, ms, err := r.s.state(ctx, sp)
	if err != nil {
		return 0, fail(op, err, false)
	}
	n, _, _, err := sp.readInt(ctx, sp.trackMaxKey(app))
	if err != nil {
		return 0, fail(op, err, false)
	}
	if n > 0 && ms.purges() {
		if n, err = sp.maxLiveTracking(ctx, app, n, ms); err != nil {
			return 0, fail(op, err, false)
		}
	}
	if pending != nil && pending.Track != nil && pending.Track.ApplicationName == app {
		n = max(n, pending.Track.NotificationID)
	}
	return n, nil
}

// maxLiveTracking returns the highest tracking ID of app that no purge
// erased, given the stored maximum.
func (sp *space) maxLiveTracking(ctx context.Context, app string, stored int64, ms markers) (int64, error) {
	if ok, err := sp.hasTracking(ctx, app, stored, ms); err != nil || ok {
		return stored, err
	}
	root := sp.prefix + "trk/" + escape(app) + "/"
	var keys []string
	if err := sp.o.list(ctx, root, "", "", func(key string) bool { keys = append(keys, key); return true }); err != nil {
		return 0, err
	}
	var n int64
	for _, key := range keys {
		nseg, _, _ := strings.Cut(strings.TrimPrefix(key, root), "/")
		nid, err := unsortable(nseg)
		if err != nil {
			return 0, err
		}
		if nid <= n {
			continue
		}
		live, err := sp.trackLive(ctx, key, root+nseg, ms)
		if err != nil {
			return 0, err
		}
		if live {
			n = nid
		}
	}
	return n, nil
}

// HasTrackingID reports whether the notification ID was recorded for the
// upstream application, in any tenant.
func (r *Recorder) HasTrackingID(ctx context.Context, app string, id int64) (bool, error) {
	const op = "has tracking ID"
	if err := r.s.begin(ctx, op, false); err != nil {
		return false, err
	}
	sp := r.s.events
	_, pending, ms, err := r.s.state(ctx, sp)
	if err != nil {
		return false, fail(op, err, false)
	}
	if pending != nil && pending.Track != nil && *pending.Track == (persistence.Tracking{ApplicationName: app, NotificationID: id}) {
		return true, nil
	}
	ok, err := sp.hasTracking(ctx, app, id, ms)
	if err != nil {
		return false, fail(op, err, false)
	}
	return ok, nil
}

// InsertEvents records the events atomically, as one commit object at
// the next position of the purpose's log. It refuses a tracking record:
// an aggregate recorder keeps none.
func (a *AggregateRecorder) InsertEvents(ctx context.Context, events []persistence.StoredEvent, opts ...persistence.InsertOption) ([]int64, error) {
	const op = "insert events"
	if err := a.s.begin(ctx, op, true); err != nil {
		return nil, err
	}
	if persistence.NewInsertConfig(opts).Tracking != nil {
		return nil, errNoTracking(op)
	}
	if err := checkSave(op, events); err != nil {
		return nil, err
	}
	if len(events) == 0 {
		return nil, nil
	}
	_, err := a.sp.insert(ctx, op, a.tenant, events, nil, false)
	return nil, err
}

// ReplaceEvents records the events atomically, as one commit object at
// the next position of the purpose's log, replacing the records at the
// same aggregates and versions: a read takes, at each version, the
// record of the latest save. The replaced chunks that the new one covers
// whole are deleted afterwards; a reader that listed one and finds it
// gone reads again.
func (a *AggregateRecorder) ReplaceEvents(ctx context.Context, events []persistence.StoredEvent) error {
	const op = "replace events"
	if err := a.s.begin(ctx, op, true); err != nil {
		return err
	}
	if err := checkSave(op, events); err != nil {
		return err
	}
	if len(events) == 0 {
		return nil
	}
	pos, err := a.sp.insert(ctx, op, a.tenant, events, nil, true)
	if err != nil {
		return err
	}
	// Best effort: a superseded chunk left behind is never read as the
	// record of its version, only listed and skipped.
	_ = a.sp.dropSuperseded(ctx, a.tenant, events, pos)
	return nil
}

// SelectEvents returns one aggregate's records as the query asks.
func (a *AggregateRecorder) SelectEvents(ctx context.Context, id uuid.UUID, q persistence.EventQuery) ([]persistence.StoredEvent, error) {
	return a.s.selectEvents(ctx, a.sp, a.tenant, id, q)
}

// dropSuperseded deletes the chunks of one version each, older than the
// replacing save at pos, whose versions it replaced.
func (sp *space) dropSuperseded(ctx context.Context, tenant string, events []persistence.StoredEvent, pos int64) error {
	var del []string
	for _, g := range groupRecord(replaceRecord(events)) {
		vs := map[int64]bool{}
		for _, e := range g {
			vs[e.Version] = true
		}
		err := sp.o.list(ctx, sp.aggPrefix(tenant, g[0].ID), "", "", func(key string) bool {
			first, last, p, err := parseChunkKey(key)
			if err == nil && p < pos && first == last && vs[first] {
				del = append(del, key)
			}
			return true
		})
		if err != nil {
			return err
		}
	}
	return sp.o.remove(ctx, del)
}

func replaceRecord(events []persistence.StoredEvent) []storedEvent {
	out := make([]storedEvent, len(events))
	for i, e := range events {
		out[i] = storedEvent{ID: e.OriginatorID, Version: e.OriginatorVersion}
	}
	return out
}

// Originators yields the IDs of the aggregates the recorder's tenant has
// records of, listing every page. An aggregate that a marker may have
// erased is yielded only if a read of it finds a record.
func (a *AggregateRecorder) Originators(ctx context.Context) iter.Seq2[uuid.UUID, error] {
	return func(yield func(uuid.UUID, error) bool) {
		const op = "list aggregates"
		if err := a.s.begin(ctx, op, false); err != nil {
			yield(uuid.Nil, err)
			return
		}
		pendPos, pending, ms, err := a.s.state(ctx, a.sp)
		if err != nil {
			yield(uuid.Nil, fail(op, err, false))
			return
		}
		seen := map[uuid.UUID]bool{}
		prefix := a.sp.prefix + "agg/" + tenantSeg(a.tenant) + "/"
		var ids []uuid.UUID
		var ferr error
		err = a.s.o.list(ctx, prefix, "", "/", func(p string) bool {
			id, perr := uuid.Parse(strings.TrimSuffix(strings.TrimPrefix(p, prefix), "/"))
			if perr != nil {
				ferr = &persistence.Error{Op: op, Kind: persistence.ErrCorrupt, Err: fmt.Errorf("key prefix %s: %v", p, perr)}
				return false
			}
			ids = append(ids, id)
			return true
		})
		if err == nil {
			err = ferr
		}
		if err != nil {
			yield(uuid.Nil, fail(op, err, false))
			return
		}
		for _, id := range ids {
			seen[id] = true
			if ms.touches(a.tenant, id) {
				evs, err := a.s.selectEvents(ctx, a.sp, a.tenant, id, persistence.EventQuery{Limit: 1})
				if err != nil {
					yield(uuid.Nil, err)
					return
				}
				if len(evs) == 0 {
					continue
				}
			}
			if !yield(id, nil) {
				return
			}
		}
		if pending != nil && pending.Tenant == a.tenant {
			for _, g := range groupRecord(pending.Events) {
				if !seen[g[0].ID] && !ms.erased(a.sp.purpose, a.tenant, g[0].ID, pendPos) && !yield(g[0].ID, nil) {
					return
				}
			}
		}
	}
}

package s3

import (
	"context"
	"errors"
	"fmt"
	"iter"
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
	pos, err := r.s.events.insert(ctx, op, r.tenant, events, cfg.Tracking)
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
// indexes may not be written yet.
func (s *shared) selectEvents(ctx context.Context, sp *space, tenant string, id uuid.UUID, q persistence.EventQuery) ([]persistence.StoredEvent, error) {
	op := fmt.Sprintf("select events of %s", id)
	if err := s.begin(ctx, op, false); err != nil {
		return nil, err
	}
	out := []persistence.StoredEvent{}
	if q.Gt != nil && q.Lte != nil && *q.Lte <= *q.Gt {
		return out, nil
	}
	_, pending, err := sp.pending(ctx)
	if err != nil {
		return nil, fail(op, err, false)
	}
	prefix := sp.aggPrefix(tenant, id)
	after := ""
	if q.Gt != nil {
		after = prefix + sortable(*q.Gt) + "."
	}
	var keys []string
	var perr error
	err = s.o.list(ctx, prefix, after, "", func(key string) bool {
		first, _, err := parseChunkKey(key)
		if err != nil {
			perr = err
			return false
		}
		if q.Lte != nil && first > *q.Lte {
			return false
		}
		keys = append(keys, key)
		return true
	})
	if err == nil {
		err = perr
	}
	if err != nil {
		return nil, fail(op, err, false)
	}
	// The pending save's events come after every indexed chunk: it holds
	// the aggregate's last versions, if any.
	var tail []persistence.StoredEvent
	if pending != nil && pending.Tenant == tenant {
		commit, err := pending.commitID()
		if err != nil {
			return nil, &persistence.Error{Op: op, Kind: persistence.ErrCorrupt, Err: err}
		}
		for _, g := range groupRecord(pending.Events) {
			if g[0].ID != id {
				continue
			}
			if n := len(keys); n > 0 {
				if _, last, _ := parseChunkKey(keys[n-1]); last >= g[0].Version {
					break // indexed already
				}
			}
			for _, e := range g {
				tail = append(tail, persistence.StoredEvent{OriginatorID: id, OriginatorVersion: e.Version, Topic: e.Topic, State: e.State, CommitID: commit, Headers: pending.Headers})
			}
		}
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
	read := func(key string) ([]persistence.StoredEvent, error) {
		b, _, found, err := s.o.get(ctx, key)
		if err != nil {
			return nil, fail(op, err, false)
		}
		if !found {
			// Only a deletion removes a chunk, and this store deletes
			// nothing that a reader reads.
			return nil, &persistence.Error{Op: op, Kind: persistence.ErrInternal, Err: fmt.Errorf("chunk %s listed but missing", key)}
		}
		var c chunk
		if err := decode(key, b, &c); err != nil {
			return nil, &persistence.Error{Op: op, Kind: persistence.ErrCorrupt, Err: err}
		}
		commit, err := parseCommit(c.Commit)
		if err != nil {
			return nil, &persistence.Error{Op: op, Kind: persistence.ErrCorrupt, Err: err}
		}
		evs := make([]persistence.StoredEvent, len(c.Events))
		for i, e := range c.Events {
			evs[i] = persistence.StoredEvent{OriginatorID: id, OriginatorVersion: e.Version, Topic: e.Topic, State: e.State, CommitID: commit, Headers: c.Headers}
		}
		return evs, nil
	}
	if q.Desc {
		slices.Reverse(tail)
		emit(tail)
		for i := len(keys) - 1; i >= 0 && !full(); i-- {
			evs, err := read(keys[i])
			if err != nil {
				return nil, err
			}
			slices.Reverse(evs)
			emit(evs)
		}
		return out, nil
	}
	for _, key := range keys {
		if full() {
			break
		}
		evs, err := read(key)
		if err != nil {
			return nil, err
		}
		emit(evs)
	}
	emit(tail)
	return out, nil
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
			if nid < q.Start || q.Stop > 0 && nid > q.Stop || len(q.Topics) > 0 && !slices.Contains(q.Topics, e.Topic) {
				continue
			}
			out = append(out, persistence.Notification{ID: nid, Tenant: rec.Tenant, StoredEvent: persistence.StoredEvent{
				OriginatorID: e.ID, OriginatorVersion: e.Version, Topic: e.Topic, State: e.State, CommitID: commit, Headers: rec.Headers,
			}})
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
// upstream application, in any tenant, or 0.
func (r *Recorder) MaxTrackingID(ctx context.Context, app string) (int64, error) {
	const op = "max tracking ID"
	if err := r.s.begin(ctx, op, false); err != nil {
		return 0, err
	}
	sp := r.s.events
	_, pending, err := sp.pending(ctx)
	if err != nil {
		return 0, fail(op, err, false)
	}
	n, _, _, err := sp.readInt(ctx, sp.trackMaxKey(app))
	if err != nil {
		return 0, fail(op, err, false)
	}
	if pending != nil && pending.Track != nil && pending.Track.ApplicationName == app {
		n = max(n, pending.Track.NotificationID)
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
	_, pending, err := sp.pending(ctx)
	if err != nil {
		return false, fail(op, err, false)
	}
	if pending != nil && pending.Track != nil && *pending.Track == (persistence.Tracking{ApplicationName: app, NotificationID: id}) {
		return true, nil
	}
	ok, err := sp.o.exists(ctx, sp.trackKey(app, id))
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
	_, err := a.sp.insert(ctx, op, a.tenant, events, nil)
	return nil, err
}

// SelectEvents returns one aggregate's records as the query asks.
func (a *AggregateRecorder) SelectEvents(ctx context.Context, id uuid.UUID, q persistence.EventQuery) ([]persistence.StoredEvent, error) {
	return a.s.selectEvents(ctx, a.sp, a.tenant, id, q)
}

// Originators yields the IDs of the aggregates the recorder's tenant has
// records of, listing every page.
func (a *AggregateRecorder) Originators(ctx context.Context) iter.Seq2[uuid.UUID, error] {
	return func(yield func(uuid.UUID, error) bool) {
		const op = "list aggregates"
		if err := a.s.begin(ctx, op, false); err != nil {
			yield(uuid.Nil, err)
			return
		}
		_, pending, err := a.sp.pending(ctx)
		if err != nil {
			yield(uuid.Nil, fail(op, err, false))
			return
		}
		seen := map[uuid.UUID]bool{}
		prefix := a.sp.prefix + "agg/" + tenantSeg(a.tenant) + "/"
		var ferr error
		stopped := false
		err = a.s.o.list(ctx, prefix, "", "/", func(p string) bool {
			id, err := uuid.Parse(strings.TrimSuffix(strings.TrimPrefix(p, prefix), "/"))
			if err != nil {
				ferr = &persistence.Error{Op: op, Kind: persistence.ErrCorrupt, Err: fmt.Errorf("key prefix %s: %v", p, err)}
				return false
			}
			seen[id] = true
			if !yield(id, nil) {
				stopped = true
				return false
			}
			return true
		})
		if stopped {
			return
		}
		if err == nil {
			err = ferr
		}
		if err != nil {
			yield(uuid.Nil, fail(op, err, false))
			return
		}
		if pending != nil && pending.Tenant == a.tenant {
			for _, g := range groupRecord(pending.Events) {
				if !seen[g[0].ID] && !yield(g[0].ID, nil) {
					return
				}
			}
		}
	}
}

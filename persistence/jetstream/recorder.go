package jetstream

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/strata-go/strata/persistence"
)

// head is what a recorder knows of the last message on a subject.
type head struct {
	version int64 // of the last event, or the last tracked notification ID
	seq     uint64
	commit  uuid.UUID
	none    bool // the subject has no message
}

// heads caches the last message of subjects that a factory wrote or read,
// so that a save of an aggregate just loaded needs no read before its
// write. A stale entry costs a retry, never a wrong write: the servers
// check the expected sequence.
type heads struct {
	mu sync.Mutex
	m  map[string]head
}

const maxHeads = 100_000

func (h *heads) get(subject string) (head, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v, ok := h.m[subject]
	return v, ok
}

func (h *heads) put(subject string, v head) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil || len(h.m) >= maxHeads {
		h.m = map[string]head{}
	}
	if old, ok := h.m[subject]; ok && old.seq > v.seq {
		return // a later write or read is known
	}
	h.m[subject] = v
}

func (h *heads) drop(subject string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.m, subject)
}

// recorder is one tenant's recorder of one kind of subject: the events
// ("e") or the aggregates of a purpose ("a.<purpose>").
type recorder struct {
	f        *Factory
	c        *client       // of the events stream, or of the records stream
	kind     string        // the subject token(s) after the prefix
	tracking bool          // a process recorder
	ids      bool          // gives notification IDs
	ttl      time.Duration // of each record written, if positive (snapshots)
}

// withTTL sets the record's time to live on m, if the recorder has one.
func (r *recorder) withTTL(m *nats.Msg) {
	if r.ttl > 0 {
		m.Header.Set(hdrTTL, strconv.FormatInt(int64(r.ttl/time.Second), 10))
	}
}

func (r *recorder) subject(tenant string, id uuid.UUID) string {
	return r.f.cfg.SubjectPrefix + "." + r.kind + "." + tenantToken(tenant) + "." + id.String()
}

func (r *recorder) tenantFilter(all bool) string {
	if all {
		return r.f.cfg.SubjectPrefix + "." + r.kind + ".*.*"
	}
	return r.f.cfg.SubjectPrefix + "." + r.kind + "." + tenantToken(r.f.tenant) + ".*"
}

// trackingSubject is the subject of the tenant's tracking records of the
// upstream application; trackingFilter covers every tenant's, since
// positions in an upstream log are one order across tenants.
func (r *recorder) trackingSubject(app string) string {
	return r.f.cfg.SubjectPrefix + ".k." + nameToken(app) + "." + tenantToken(r.f.tenant) + ".t"
}

func (r *recorder) trackingFilter(app string) string {
	return r.f.cfg.SubjectPrefix + ".k." + nameToken(app) + ".*.t"
}

// begin checks that a call may start.
func (r *recorder) begin(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return &persistence.Error{Op: op, Kind: persistence.ErrOperational, Err: err}
	}
	if r.f.shared.closed.Load() {
		return &persistence.Error{Op: op, Kind: persistence.ErrInterface, Err: errors.New("factory is closed")}
	}
	return nil
}

// aggregate is one aggregate's part of a save.
type aggregate struct {
	subject string
	id      uuid.UUID
	first   int64 // the version of its first event in the save
	last    int   // index of its last event in the save
}

// InsertEvents records the events and the tracking record, if any, as one
// atomic batch: each aggregate's first message expects the aggregate's
// last stream sequence, so that a save that conflicts on any aggregate
// stores nothing.
func (r *recorder) InsertEvents(ctx context.Context, events []persistence.StoredEvent, opts ...persistence.InsertOption) ([]int64, error) {
	const op = "insert events"
	if err := r.begin(ctx, op); err != nil {
		return nil, err
	}
	if err := persistence.CheckCommit(op, events); err != nil {
		return nil, err
	}
	cfg := persistence.NewInsertConfig(opts)
	if cfg.Tracking != nil && !r.tracking {
		return nil, &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: errors.New("this recorder does not record tracking records")}
	}
	n := len(events)
	if cfg.Tracking != nil {
		n++
	}
	if n == 0 {
		return nil, nil
	}
	if n > MaxBatch {
		return nil, &persistence.Error{Op: op, Kind: persistence.ErrProgramming,
			Err: fmt.Errorf("a save of %d messages is more than the %d of one atomic batch", n, MaxBatch)}
	}
	var aggs []*aggregate
	byID := map[uuid.UUID]*aggregate{}
	for i, e := range events {
		a := byID[e.OriginatorID]
		if a == nil {
			a = &aggregate{subject: r.subject(r.f.tenant, e.OriginatorID), id: e.OriginatorID, first: e.OriginatorVersion}
			byID[e.OriginatorID] = a
			aggs = append(aggs, a)
		} else if e.OriginatorVersion <= events[a.last].OriginatorVersion {
			return nil, &persistence.Error{Op: op, Kind: persistence.ErrIntegrity,
				Err: fmt.Errorf("events of %s at version %d after version %d in one save: a version is recorded once, in increasing order", e.OriginatorID, e.OriginatorVersion, events[a.last].OriginatorVersion)}
		}
		a.last = i
	}
	commit := uuid.Nil
	if len(events) > 0 {
		commit = events[0].CommitID
	}
	fresh := false   // whether heads were read from the leader in this call
	noDedup := false // whether the servers' memory of commit IDs is outdated
	for attempt := 1; ; attempt++ {
		hs := make([]head, len(aggs))
		for i, a := range aggs {
			h, ok := r.f.shared.heads.get(a.subject)
			if !ok || fresh {
				if !fresh {
					// Unknown to the factory: most likely a new aggregate.
					// Expecting no message costs no read; if the aggregate
					// has one, the servers refuse the batch and the next
					// attempt reads the head from the leader.
					h = head{none: true}
				} else {
					var err error
					if h, err = r.head(ctx, a.subject, true); err != nil {
						return nil, err
					}
				}
			}
			hs[i] = h
		}
		var th head
		if t := cfg.Tracking; t != nil {
			var err error
			if th, err = r.head(ctx, r.trackingSubject(t.ApplicationName), fresh); err != nil {
				return nil, err
			}
		}
		if err := r.checkSave(ctx, aggs, hs, commit, cfg.Tracking, th, fresh); err != nil {
			if !fresh && errors.Is(err, persistence.ErrPersistence) {
				// The cache may be stale: decide on what the leader says.
				fresh = true
				continue
			}
			return nil, err
		}
		msgs := make([]*nats.Msg, 0, n)
		for i, e := range events {
			a := byID[e.OriginatorID]
			m := &nats.Msg{Subject: a.subject, Data: encodeEvent(e), Header: nats.Header{}}
			r.withTTL(m)
			if e.OriginatorVersion == a.first {
				j := slices.Index(aggs, a)
				m.Header.Set(hdrExpectedSubSeq, strconv.FormatUint(hs[j].seq, 10))
				if commit != uuid.Nil && !noDedup {
					m.Header.Set(hdrMsgID, a.subject+"/"+commit.String())
				}
			}
			_ = i
			msgs = append(msgs, m)
		}
		if t := cfg.Tracking; t != nil {
			m := &nats.Msg{Subject: r.trackingSubject(t.ApplicationName), Data: encodeTracking(t.NotificationID, r.f.tenant), Header: nats.Header{}}
			m.Header.Set(hdrExpectedSubSeq, strconv.FormatUint(th.seq, 10))
			msgs = append(msgs, m)
		}
		last, err := r.c.publishBatch(ctx, msgs)
		if err == nil {
			first := last - uint64(len(msgs)) + 1
			ids := make([]int64, len(events))
			for i, e := range events {
				ids[i] = int64(first) + int64(i)
				if i == byID[e.OriginatorID].last {
					r.f.shared.heads.put(msgs[i].Subject, head{version: e.OriginatorVersion, seq: first + uint64(i), commit: commit})
				}
			}
			if t := cfg.Tracking; t != nil {
				r.f.shared.heads.put(r.trackingSubject(t.ApplicationName), head{version: t.NotificationID, seq: last})
			}
			if len(events) > 0 && r.ids {
				lastEvent := first + uint64(len(events)) - 1
				r.f.shared.mark(r.tenantFilter(false), lastEvent)
				r.f.shared.mark(r.tenantFilter(true), lastEvent)
			}
			if !r.ids {
				return nil, nil
			}
			return ids, nil
		}
		var ae *apiError
		if errors.As(err, &ae) {
			switch ae.ErrCode {
			case codeWrongLastSeq, codeWrongLastSeqConstant, codeDuplicateConflict:
				// Another save of one of these subjects came first or is in
				// flight: look again, from the leader.
				for _, a := range aggs {
					r.f.shared.heads.drop(a.subject)
				}
				if attempt < 50 {
					fresh = true
					if attempt > 3 {
						sleep(ctx, time.Duration(attempt)*time.Millisecond)
					}
					continue
				}
			case codeDuplicateInBatch:
				// The servers remember the commit ID for one of the
				// aggregates: find out which.
				if err := r.checkSave(ctx, aggs, nil, commit, nil, head{}, true); err != nil {
					return nil, err
				}
				if !noDedup {
					// The store holds the commit for none of them: the
					// servers remember events since deleted. The durable
					// check has spoken; send the save without the IDs.
					fresh, noDedup = true, true
					continue
				}
			}
		}
		return nil, classify(op, err, true)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// head returns the last message of subject: from the cache unless fresh,
// otherwise from the stream's leader.
func (r *recorder) head(ctx context.Context, subject string, fresh bool) (head, error) {
	if !fresh {
		if h, ok := r.f.shared.heads.get(subject); ok {
			return h, nil
		}
	}
	m, err := r.c.lastMsg(ctx, subject)
	if err != nil {
		return head{}, classify("read the last message of "+subject, err, false)
	}
	if m == nil {
		h := head{none: true}
		r.f.shared.heads.put(subject, h)
		return h, nil
	}
	h, err := headOf(m)
	if err != nil {
		return head{}, &persistence.Error{Op: "read the last message of " + subject, Kind: persistence.ErrData, Err: err}
	}
	r.f.shared.heads.put(subject, h)
	return h, nil
}

func headOf(m *msg) (head, error) {
	if len(m.data) > 0 && m.data[0] == formatTracking {
		t, err := decodeTracking(m.data)
		return head{version: t.id, seq: m.seq}, err
	}
	e, err := decodeEvent(m.data)
	return head{version: e.OriginatorVersion, seq: m.seq, commit: e.CommitID}, err
}

// checkSave decides a save against the aggregates' heads: already
// committed, a conflict, or free to go. With hs nil, it reads them.
func (r *recorder) checkSave(ctx context.Context, aggs []*aggregate, hs []head, commit uuid.UUID, t *persistence.Tracking, th head, fresh bool) error {
	const op = "insert events"
	if hs == nil {
		hs = make([]head, len(aggs))
		for i, a := range aggs {
			h, err := r.head(ctx, a.subject, true)
			if err != nil {
				return err
			}
			hs[i] = h
		}
	}
	if commit != uuid.Nil {
		var have, lack []uuid.UUID
		for i, a := range aggs {
			h := hs[i]
			recorded := !h.none && h.commit == commit
			if !recorded && !h.none && h.version >= a.first && fresh {
				// The save conflicts: it may be this very commit, sent again
				// after others wrote on.
				var err error
				if recorded, err = r.hasCommit(ctx, a.subject, a.first, commit); err != nil {
					return err
				}
			}
			if recorded {
				have = append(have, a.id)
			} else {
				lack = append(lack, a.id)
			}
		}
		switch {
		case len(have) > 0 && len(lack) == 0:
			return &persistence.Error{Op: op, Kind: persistence.ErrAlreadyCommitted, Err: fmt.Errorf("commit %s is recorded", commit)}
		case len(have) > 0:
			return &persistence.Error{Op: op, Kind: persistence.ErrIntegrity,
				Err: fmt.Errorf("commit %s is recorded for aggregate %s but not for %s: a commit ID names one save", commit, have[0], lack[0])}
		}
	}
	for i, a := range aggs {
		if h := hs[i]; !h.none && h.version >= a.first {
			return &persistence.Error{Op: op, Kind: persistence.ErrIntegrity,
				Err: fmt.Errorf("event of %s at version %d: version %d is recorded", a.id, a.first, h.version)}
		}
	}
	if t != nil && !th.none && th.version >= t.NotificationID {
		return &persistence.Error{Op: op, Kind: persistence.ErrIntegrity,
			Err: fmt.Errorf("tracking record %s %d: notification %d of %s is recorded, and a tenant records positions in increasing order", t.ApplicationName, t.NotificationID, th.version, t.ApplicationName)}
	}
	if t != nil {
		// Another tenant's record of the same position (see
		// docs/jetstream.md: checked before the write, not atomically).
		has, err := r.hasTracking(ctx, t.ApplicationName, t.NotificationID)
		if err != nil {
			return err
		}
		if has {
			return &persistence.Error{Op: op, Kind: persistence.ErrIntegrity,
				Err: fmt.Errorf("tracking record %s %d is recorded by another tenant", t.ApplicationName, t.NotificationID)}
		}
	}
	return nil
}

// hasCommit reports whether an event of subject at version from or later
// belongs to commit.
func (r *recorder) hasCommit(ctx context.Context, subject string, from int64, commit uuid.UUID) (bool, error) {
	gt := from - 1
	events, err := r.selectEvents(ctx, subject, persistence.EventQuery{Gt: &gt})
	if err != nil {
		return false, err
	}
	for _, e := range events {
		if e.CommitID == commit {
			return true, nil
		}
	}
	return false, nil
}

// SelectEvents returns one aggregate's events as the query asks.
func (r *recorder) SelectEvents(ctx context.Context, id uuid.UUID, q persistence.EventQuery) ([]persistence.StoredEvent, error) {
	if err := r.begin(ctx, "select events"); err != nil {
		return nil, err
	}
	out, err := r.selectEvents(ctx, r.subject(r.f.tenant, id), q)
	if err != nil {
		return nil, err
	}
	for i := range out {
		if !r.ids {
			out[i].CommitID, out[i].Headers = uuid.Nil, nil
		}
	}
	return out, nil
}

const readBatch = 256

func (r *recorder) selectEvents(ctx context.Context, subject string, q persistence.EventQuery) ([]persistence.StoredEvent, error) {
	op := "select events of " + subject
	if q.Gt != nil && q.Lte != nil && *q.Lte <= *q.Gt {
		return []persistence.StoredEvent{}, nil
	}
	known, _ := r.f.shared.heads.get(subject)
	if q.Desc && q.Limit == 1 && q.Lte == nil {
		// The latest, as a snapshot load asks: one read of the leader.
		m, err := r.c.lastMsg(ctx, subject)
		if err != nil {
			return nil, classify(op, err, false)
		}
		if m == nil {
			return []persistence.StoredEvent{}, nil
		}
		e, err := decodeEvent(m.data)
		if err != nil {
			return nil, &persistence.Error{Op: op, Kind: persistence.ErrData, Err: err}
		}
		if q.Gt != nil && e.OriginatorVersion <= *q.Gt {
			return []persistence.StoredEvent{}, nil
		}
		return []persistence.StoredEvent{e}, nil
	}
	var start uint64 = 1
	if q.Gt != nil {
		s, err := r.seek(ctx, subject, *q.Gt)
		if err != nil {
			return nil, err
		}
		if s == 0 {
			return []persistence.StoredEvent{}, nil
		}
		start = s
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var out []persistence.StoredEvent
		var lastSeq uint64
		complete := true
		for seq := start; ; {
			ms, pending, err := r.c.directGet(ctx, subject, seq, readBatch)
			if err != nil {
				return nil, classify(op, err, false)
			}
			stop := false
			for _, m := range ms {
				e, err := decodeEvent(m.data)
				if err != nil {
					return nil, &persistence.Error{Op: op, Kind: persistence.ErrData, Err: fmt.Errorf("message %d: %w", m.seq, err)}
				}
				lastSeq = m.seq
				if q.Lte != nil && e.OriginatorVersion > *q.Lte {
					stop, complete = true, false
					break
				}
				out = append(out, e)
				if !q.Desc && q.Limit > 0 && len(out) == q.Limit {
					stop, complete = true, false
					break
				}
			}
			if stop || pending == 0 || len(ms) == 0 {
				break
			}
			seq = ms[len(ms)-1].seq + 1
		}
		// A replica that is behind answers with less than this factory
		// wrote: ask again until one is as far.
		if complete && !known.none && known.seq > lastSeq && time.Now().Before(deadline) {
			behind, err := r.behind(ctx, subject, lastSeq, 0)
			if err != nil {
				return nil, classify(op, err, false)
			}
			if behind {
				sleep(ctx, time.Millisecond)
				continue
			}
		}
		if q.Desc {
			slices.Reverse(out)
		}
		if q.Limit > 0 && len(out) > q.Limit {
			out = out[:q.Limit]
		}
		if out == nil {
			out = []persistence.StoredEvent{}
		}
		return out, nil
	}
}

// seek returns the stream sequence of the first message of subject whose
// version (or tracked notification ID) is greater than gt, or 0 if there
// is none: a binary search over the stream, whose messages on one subject
// are in increasing order of version, so that a load after a snapshot
// reads only the events after it.
func (r *recorder) seek(ctx context.Context, subject string, gt int64) (uint64, error) {
	op := "seek in " + subject
	probe := func(seq uint64) (*msg, int64, error) {
		ms, _, err := r.c.directGet(ctx, subject, seq, 1)
		if err != nil {
			return nil, 0, classify(op, err, false)
		}
		if len(ms) == 0 {
			return nil, 0, nil
		}
		h, err := headOf(&ms[0])
		if err != nil {
			return nil, 0, &persistence.Error{Op: op, Kind: persistence.ErrData, Err: err}
		}
		return &ms[0], h.version, nil
	}
	first, v, err := probe(1)
	if err != nil || first == nil {
		return 0, err
	}
	if v > gt {
		return first.seq, nil
	}
	last, err := r.c.lastMsg(ctx, subject)
	if err != nil {
		return 0, classify(op, err, false)
	}
	lh, err := headOf(last)
	if err != nil {
		return 0, &persistence.Error{Op: op, Kind: persistence.ErrData, Err: err}
	}
	if lh.version <= gt {
		return 0, nil
	}
	// P(p): the first message at or after p has a version above gt. P
	// holds for hi and not for lo, and is monotonic since versions
	// increase along the stream.
	lo, hi, answer := first.seq, last.seq, last.seq
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		m, v, err := probe(mid)
		if err != nil {
			return 0, err
		}
		switch {
		case m == nil: // removed meanwhile
			return 0, nil
		case v > gt:
			hi, answer = mid, m.seq
		default:
			lo = max(mid, m.seq)
		}
	}
	return answer, nil
}

// SelectNotifications returns notifications from q.Start in order.
func (r *recorder) SelectNotifications(ctx context.Context, q persistence.NotificationQuery) ([]persistence.Notification, error) {
	const op = "select notifications"
	if err := r.begin(ctx, op); err != nil {
		return nil, err
	}
	if q.Limit <= 0 {
		return nil, &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: fmt.Errorf("limit %d is not positive", q.Limit)}
	}
	filter := r.tenantFilter(q.AllTenants)
	known := r.f.shared.marked(filter)
	deadline := time.Now().Add(5 * time.Second)
	for {
		out := []persistence.Notification{}
		var lastSeq uint64
		complete := true
		for seq := uint64(max(q.Start, 1)); ; {
			want := q.Limit - len(out)
			if len(q.Topics) > 0 {
				want = readBatch
			}
			ms, pending, err := r.c.directGet(ctx, filter, seq, min(want, readBatch))
			if err != nil {
				return nil, classify(op, err, false)
			}
			stop := false
			for _, m := range ms {
				lastSeq = m.seq
				if q.Stop > 0 && m.seq > uint64(q.Stop) {
					stop, complete = true, false
					break
				}
				n, err := r.notification(m)
				if err != nil {
					return nil, &persistence.Error{Op: op, Kind: persistence.ErrData, Err: err}
				}
				if len(q.Topics) > 0 && !slices.Contains(q.Topics, n.Topic) {
					continue
				}
				out = append(out, n)
				if len(out) == q.Limit {
					stop, complete = true, false
					break
				}
			}
			if stop || pending == 0 || len(ms) == 0 {
				break
			}
			seq = ms[len(ms)-1].seq + 1
		}
		// A replica behind this factory's own writes answered: ask again.
		if complete && known > lastSeq && known >= uint64(q.Start) && (q.Stop <= 0 || known <= uint64(q.Stop)) &&
			time.Now().Before(deadline) {
			behind, err := r.behind(ctx, filter, max(lastSeq, uint64(max(q.Start, 1))-1), uint64(max(q.Stop, 0)))
			if err != nil {
				return nil, classify(op, err, false)
			}
			if behind {
				sleep(ctx, time.Millisecond)
				continue
			}
		}
		return out, nil
	}
}

// behind reports whether the stream's leader has a message on subject
// after seq (and at most stop, if positive) that a replica's answer did
// not show: the replica was behind, and is asked again. A write this
// factory made that has since been deleted is no reason to wait.
func (r *recorder) behind(ctx context.Context, subject string, seq, stop uint64) (bool, error) {
	m, err := r.c.lastMsg(ctx, subject)
	if err != nil || m == nil {
		return false, err
	}
	return m.seq > seq && (stop == 0 || seq < stop), nil
}

// notification decodes one event message.
func (r *recorder) notification(m msg) (persistence.Notification, error) {
	n := persistence.Notification{ID: int64(m.seq)}
	// <prefix>.<kind>.<tenant>.<id>
	toks := strings.Split(strings.TrimPrefix(m.subject, r.f.cfg.SubjectPrefix+"."+r.kind+"."), ".")
	if len(toks) != 2 {
		return n, fmt.Errorf("%w: notification %d has subject %q", persistence.ErrCorrupt, m.seq, m.subject)
	}
	tenant, err := tenantFromToken(toks[0])
	if err != nil {
		return n, fmt.Errorf("notification %d: %w", m.seq, err)
	}
	n.Tenant = tenant
	e, err := decodeEvent(m.data)
	if err != nil {
		// A damaged message is still a notification, so that one bad
		// message does not hide the rest; decoding it fails.
		id, _ := uuid.Parse(toks[1])
		n.StoredEvent = persistence.StoredEvent{OriginatorID: id, State: m.data}
		return n, nil
	}
	n.StoredEvent = e
	return n, nil
}

// MaxNotificationID returns the highest notification ID of the recorder's
// tenant, or 0, from the stream's leader.
func (r *recorder) MaxNotificationID(ctx context.Context) (int64, error) {
	const op = "max notification ID"
	if err := r.begin(ctx, op); err != nil {
		return 0, err
	}
	m, err := r.c.lastMsg(ctx, r.tenantFilter(false))
	if err != nil {
		return 0, classify(op, err, false)
	}
	if m == nil {
		return 0, nil
	}
	return int64(m.seq), nil
}

// trackingHeads returns the last tracking record of every tenant for the
// upstream application, by subject, with what this factory wrote itself,
// which a replica that is behind may not show yet.
func (r *recorder) trackingHeads(ctx context.Context, app string) (map[string]head, error) {
	ms, err := r.c.multiLast(ctx, r.trackingFilter(app))
	if err != nil {
		return nil, classify("read tracking records of "+app, err, false)
	}
	hs := make(map[string]head, len(ms)+1)
	for _, m := range ms {
		h, err := headOf(&m)
		if err != nil {
			return nil, &persistence.Error{Op: "read tracking records of " + app, Kind: persistence.ErrData, Err: err}
		}
		hs[m.subject] = h
	}
	own := r.trackingSubject(app)
	if h, ok := r.f.shared.heads.get(own); ok && !h.none && h.seq > hs[own].seq {
		hs[own] = h
	}
	return hs, nil
}

// MaxTrackingID returns the highest notification ID recorded for the
// upstream application by any tenant, or 0.
func (r *recorder) MaxTrackingID(ctx context.Context, app string) (int64, error) {
	const op = "max tracking ID"
	if err := r.begin(ctx, op); err != nil {
		return 0, err
	}
	hs, err := r.trackingHeads(ctx, app)
	if err != nil {
		return 0, err
	}
	var most int64
	for _, h := range hs {
		most = max(most, h.version)
	}
	return most, nil
}

// HasTrackingID reports whether the notification ID was recorded for the
// upstream application by any tenant.
func (r *recorder) HasTrackingID(ctx context.Context, app string, id int64) (bool, error) {
	if err := r.begin(ctx, "has tracking ID"); err != nil {
		return false, err
	}
	return r.hasTracking(ctx, app, id)
}

// hasTracking looks for the position in each tenant's tracking records: a
// tenant records positions in increasing order, so a binary search over
// the stream finds it.
func (r *recorder) hasTracking(ctx context.Context, app string, id int64) (bool, error) {
	const op = "has tracking ID"
	hs, err := r.trackingHeads(ctx, app)
	if err != nil {
		return false, err
	}
	for subject, h := range hs {
		if h.none || h.version < id {
			continue
		}
		if h.version == id {
			return true, nil
		}
		seq, err := r.seek(ctx, subject, id-1)
		if err != nil {
			return false, err
		}
		if seq == 0 {
			continue
		}
		ms, _, err := r.c.directGet(ctx, subject, seq, 1)
		if err != nil {
			return false, classify(op, err, false)
		}
		if len(ms) == 0 {
			continue
		}
		t, err := decodeTracking(ms[0].data)
		if err != nil {
			return false, &persistence.Error{Op: op, Kind: persistence.ErrData, Err: err}
		}
		if t.id == id {
			return true, nil
		}
	}
	return false, nil
}

// replaceEvents rewrites each aggregate's records with the events merged
// in, as one atomic batch per aggregate whose first message rolls up the
// subject.
func (r *recorder) replaceEvents(ctx context.Context, events []persistence.StoredEvent) error {
	const op = "replace events"
	if err := r.begin(ctx, op); err != nil {
		return err
	}
	byID := map[uuid.UUID][]persistence.StoredEvent{}
	var order []uuid.UUID
	for _, e := range events {
		if _, ok := byID[e.OriginatorID]; !ok {
			order = append(order, e.OriginatorID)
		}
		byID[e.OriginatorID] = append(byID[e.OriginatorID], e)
	}
	for _, id := range order {
		subject := r.subject(r.f.tenant, id)
		for attempt := 1; ; attempt++ {
			h, err := r.head(ctx, subject, true)
			if err != nil {
				return err
			}
			old, err := r.selectEvents(ctx, subject, persistence.EventQuery{})
			if err != nil {
				return err
			}
			merged := map[int64]persistence.StoredEvent{}
			for _, e := range old {
				merged[e.OriginatorVersion] = e
			}
			for _, e := range byID[id] {
				merged[e.OriginatorVersion] = e
			}
			versions := make([]int64, 0, len(merged))
			for v := range merged {
				versions = append(versions, v)
			}
			slices.Sort(versions)
			if len(versions) > MaxBatch {
				return &persistence.Error{Op: op, Kind: persistence.ErrProgramming,
					Err: fmt.Errorf("aggregate %s would have %d records, more than the %d of one atomic batch", id, len(versions), MaxBatch)}
			}
			msgs := make([]*nats.Msg, len(versions))
			for i, v := range versions {
				msgs[i] = &nats.Msg{Subject: subject, Data: encodeEvent(merged[v]), Header: nats.Header{}}
				r.withTTL(msgs[i])
			}
			msgs[0].Header.Set("Nats-Rollup", "sub")
			msgs[0].Header.Set(hdrExpectedSubSeq, strconv.FormatUint(h.seq, 10))
			last, err := r.c.publishBatch(ctx, msgs)
			if err == nil {
				e := merged[versions[len(versions)-1]]
				r.f.shared.heads.put(subject, head{version: e.OriginatorVersion, seq: last, commit: e.CommitID})
				break
			}
			var ae *apiError
			if errors.As(err, &ae) && (ae.ErrCode == codeWrongLastSeq || ae.ErrCode == codeWrongLastSeqConstant) && attempt < 50 {
				sleep(ctx, time.Duration(attempt)*time.Millisecond)
				continue
			}
			return classify(op+" of "+id.String(), err, true)
		}
	}
	return nil
}

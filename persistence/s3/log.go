package s3

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/strata-go/strata/persistence"
)

// NotificationStride is the distance between the first notification IDs
// of consecutive log positions: the event at index i of the save at
// position p has notification ID p*NotificationStride+i+1. IDs are
// therefore sparse, and a reader finds the log object of any ID from the
// ID alone.
const NotificationStride = 10000

// MaxSaveEvents is the most events one save holds: they must fit between
// two positions' notification IDs.
const MaxSaveEvents = NotificationStride - 1

// space is one log and its indexes: the application's events, or the
// records of one purpose (snapshots). Its keys, under its prefix:
//
//	log/<pos>                     the commit record at log position pos
//	hint                          a position up to which the indexes are written
//	agg/<tenant>/<id>/<last>-<first>  an aggregate's events of one save
//	cid/<tenant>/<id>/<commit>    a commit recorded for an aggregate
//	trk/<app>/<nid>               a tracking record
//	max/trk/<app>                 the highest tracking ID of app
//	max/tenant/<tenant>           the last position with events of a tenant
//
// Positions start at 1 and are dense: a writer puts position p+1 only
// after it has read p, and only if p+1 does not exist (If-None-Match),
// so that positions are claimed one after the other and never twice.
// Before it claims p+1 it makes sure the indexes of p are written, so
// that only the last position can lack its indexes, and readers read it
// from the log. A position is indexed if and only if it is not above the
// hint, which writers raise after the indexes of a position are written.
type space struct {
	o      *objects
	prefix string
	events bool // the application's events: notification IDs, tracking
	// purpose is the escaped name of the purpose, "" for the events.
	purpose string
	// ev is the space of the application's events, whose log holds the
	// erase markers of every space.
	ev *space
	// view is what this process knows of the erase markers (events only).
	view view
	// mu queues this process's saves: only one of them could win each
	// position, and losing costs requests.
	mu sync.Mutex
	// races counts positions this process lost to another writer.
	races int64

	// cache holds the last value and ETag this process read or wrote of
	// each number object (the hint, the maxima). Those values only grow,
	// so a cached one is never above the stored one: a save tries its
	// conditional put on the cached ETag first, and skips the read.
	cmu   sync.Mutex
	cache map[string]cachedInt

	// chunks holds the chunks this process read or wrote, one cache for
	// every space of the factory.
	chunks *chunkCache
	// known is what this process knows of the aggregates (events only:
	// purposes' replacing saves and deletions of superseded chunks are
	// not positions of the events' log).
	known *known
}

type cachedInt struct {
	v    int64
	etag string
}

func (s *space) cached(key string) (cachedInt, bool) {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	c, ok := s.cache[key]
	return c, ok
}

func (s *space) remember(key string, v int64, etag string) {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if s.cache == nil {
		s.cache = map[string]cachedInt{}
	}
	if c, ok := s.cache[key]; !ok || c.v <= v {
		s.cache[key] = cachedInt{v, etag}
	}
}

func (s *space) logKey(pos int64) string { return s.prefix + "log/" + sortable(pos) }
func (s *space) hintKey() string         { return s.prefix + "hint" }
func (s *space) aggPrefix(tenant string, id uuid.UUID) string {
	return s.prefix + "agg/" + tenantSeg(tenant) + "/" + id.String() + "/"
}

// chunkKey ends with the position of the save, so that a save after an
// erasure never meets a chunk of the erased life at the same versions,
// and readers tell erased chunks from the key alone.
func (s *space) chunkKey(tenant string, id uuid.UUID, first, last, pos int64) string {
	return s.aggPrefix(tenant, id) + sortable(last) + "-" + sortable(first) + "-" + sortable(pos)
}

// commitPrefix is the prefix of the keys of a commit recorded for an
// aggregate: the key of each save that recorded it is the prefix, "/"
// and the save's position (keys written before erasures existed are the
// prefix alone).
func (s *space) commitPrefix(tenant string, id, commit uuid.UUID) string {
	return s.prefix + "cid/" + tenantSeg(tenant) + "/" + id.String() + "/" + commit.String()
}
func (s *space) commitKey(tenant string, id, commit uuid.UUID, pos int64) string {
	return s.commitPrefix(tenant, id, commit) + "/" + sortable(pos)
}

// trackPrefix is the prefix of the keys of a tracking record: the key is
// the prefix, "/", the tenant's segment, "/" and the save's position, so
// that a purge's marker hides it by its key alone (keys written before
// erasures existed are the prefix alone, the tenant in the body).
func (s *space) trackPrefix(app string, nid int64) string {
	return s.prefix + "trk/" + escape(app) + "/" + sortable(nid)
}
func (s *space) trackKey(app string, nid int64, tenant string, pos int64) string {
	return s.trackPrefix(app, nid) + "/" + tenantSeg(tenant) + "/" + sortable(pos)
}
func (s *space) trackMaxKey(app string) string { return s.prefix + "max/trk/" + escape(app) }
func (s *space) tenantMaxKey(tenant string) string {
	return s.prefix + "max/tenant/" + tenantSeg(tenant)
}

// tenantSeg is a tenant as a key segment: "-" for the default tenant,
// "t" and the escaped ID for the others, so that none meets another.
func tenantSeg(tenant string) string {
	if tenant == "" {
		return "-"
	}
	return "t" + escape(tenant)
}

// parseChunkKey reads the versions and the save's position from a
// chunk's key. A key written before erasures existed has no position: it
// is older than every erase marker, and reads as position 0.
func parseChunkKey(key string) (first, last, pos int64, err error) {
	seg := lastSegment(key)
	if len(seg) != 33 && (len(seg) != 50 || seg[33] != '-') || seg[16] != '-' {
		return 0, 0, 0, fmt.Errorf("%w: chunk key %s", persistence.ErrCorrupt, key)
	}
	if last, err = unsortable(seg[:16]); err != nil {
		return 0, 0, 0, err
	}
	if first, err = unsortable(seg[17:33]); err != nil {
		return 0, 0, 0, err
	}
	if len(seg) == 50 {
		pos, err = unsortable(seg[34:])
	}
	return first, last, pos, err
}

// keyPos reads the position that ends a commit or tracking record's key
// after its prefix; a key that is the prefix alone was written before
// erasures existed and reads as position 0.
func keyPos(key, prefix string) (int64, error) {
	rest := key[len(prefix):]
	if rest == "" {
		return 0, nil
	}
	return unsortable(lastSegment(rest))
}

// readInt reads an object holding a decimal number, with its ETag.
func (s *space) readInt(ctx context.Context, key string) (int64, string, bool, error) {
	b, etag, found, err := s.o.get(ctx, key)
	if err != nil || !found {
		return 0, "", found, err
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return 0, "", false, fmt.Errorf("%w: object %s holds %q, not a number", persistence.ErrCorrupt, key, b)
	}
	s.remember(key, n, etag)
	return n, etag, true, nil
}

// raise makes the number in key at least n: a conditional put on the
// ETag it read (or last wrote), so that a slow writer never lowers it.
func (s *space) raise(ctx context.Context, key string, n int64) error {
	c, found := s.cached(key)
	if found && c.v >= n {
		return nil
	}
	for {
		body := []byte(strconv.FormatInt(n, 10))
		var etag string
		var err error
		if found {
			etag, err = s.o.replace(ctx, key, body, c.etag)
		} else {
			etag, err = s.o.createTagged(ctx, key, body)
		}
		if err == nil {
			s.remember(key, n, etag)
			return nil
		}
		if !errors.Is(err, errPrecondition) {
			return err
		}
		v, etag, ok, err := s.readInt(ctx, key)
		if err != nil {
			return err
		}
		if ok && v >= n {
			return nil
		}
		c, found = cachedInt{v, etag}, ok
	}
}

// head returns the last position of the log and whether its indexes are
// known to be written. It lists the log after the hint it last saw (it
// reads the hint first if it has seen none), and reads the hint again
// only if the log has grown past it.
func (s *space) head(ctx context.Context) (pos int64, indexed bool, err error) {
	c, ok := s.cached(s.hintKey())
	if !ok {
		if c.v, _, _, err = s.readInt(ctx, s.hintKey()); err != nil {
			return 0, false, err
		}
	}
	pos = c.v
	after := ""
	if c.v > 0 {
		after = s.logKey(c.v)
	}
	var perr error
	err = s.o.list(ctx, s.prefix+"log/", after, "", func(key string) bool {
		pos, perr = unsortable(lastSegment(key))
		return perr == nil
	})
	if err == nil {
		err = perr
	}
	if err != nil || pos == c.v {
		return pos, true, err
	}
	hint, _, _, err := s.readInt(ctx, s.hintKey())
	return pos, pos <= hint, err
}

// readRecord reads the commit record at pos.
func (s *space) readRecord(ctx context.Context, pos int64) (*commitRecord, error) {
	key := s.logKey(pos)
	b, _, found, err := s.o.get(ctx, key)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, &persistence.Error{Op: "read the log", Kind: persistence.ErrInternal, Err: fmt.Errorf("log object %s is missing", key)}
	}
	var r commitRecord
	if err := decode(key, b, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// pending returns the commit record of the last position if its indexes
// may not be written yet, so that readers add it to what the indexes
// say; nil if there is none.
func (s *space) pending(ctx context.Context) (int64, *commitRecord, error) {
	pos, indexed, err := s.head(ctx)
	if err != nil || indexed || pos == 0 {
		return 0, nil, err
	}
	r, err := s.readRecord(ctx, pos)
	if err != nil {
		return 0, nil, err
	}
	return pos, r, nil
}

// ensureIndexed writes the indexes of pos unless they are known to be
// written. The indexes are a function of the commit record, so writing
// them again, by the save's writer and by the next writer at once, puts
// the same objects.
func (s *space) ensureIndexed(ctx context.Context, pos int64, indexed bool) error {
	if pos == 0 || indexed {
		return nil
	}
	r, err := s.readRecord(ctx, pos)
	if err != nil {
		return err
	}
	return s.index(ctx, pos, r)
}

// index writes the indexes of the commit record at pos, then raises the
// hint to pos.
func (s *space) index(ctx context.Context, pos int64, r *commitRecord) error {
	if r.Erase != nil {
		m := r.marker(pos)
		if err := s.o.create(ctx, s.markerKey(pos), encode(m)); err != nil && !errors.Is(err, errPrecondition) {
			return err
		}
	}
	for _, g := range groupRecord(r.Events) {
		c := chunk{Pos: pos, Commit: r.Commit, Headers: r.Headers, Events: g}
		key := s.chunkKey(r.Tenant, g[0].ID, g[0].Version, g[len(g)-1].Version, pos)
		body := encode(c)
		if err := s.o.create(ctx, key, body); err != nil && !errors.Is(err, errPrecondition) {
			return err
		}
		// Written now, or by another writer indexing the same record: the
		// same bytes either way.
		s.chunks.put(key, body)
		if r.Commit != "" {
			commit, err := r.commitID()
			if err != nil {
				return err
			}
			if err := s.o.create(ctx, s.commitKey(r.Tenant, g[0].ID, commit, pos), []byte(strconv.FormatInt(pos, 10))); err != nil && !errors.Is(err, errPrecondition) {
				return err
			}
		}
	}
	if r.Track != nil {
		if err := s.o.create(ctx, s.trackKey(r.Track.ApplicationName, r.Track.NotificationID, r.Tenant, pos), []byte(r.Tenant)); err != nil && !errors.Is(err, errPrecondition) {
			return err
		}
		if err := s.raise(ctx, s.trackMaxKey(r.Track.ApplicationName), r.Track.NotificationID); err != nil {
			return err
		}
	}
	if s.events && r.liveEvents() > 0 {
		if err := s.raise(ctx, s.tenantMaxKey(r.Tenant), pos); err != nil {
			return err
		}
	}
	return s.raise(ctx, s.hintKey(), pos)
}

// groupRecord splits a save's events by aggregate, in the order the
// aggregates first appear, each in version order.
func groupRecord(evs []storedEvent) [][]storedEvent {
	var order []uuid.UUID
	by := map[uuid.UUID][]storedEvent{}
	for _, e := range evs {
		if e.erased() {
			continue
		}
		if _, ok := by[e.ID]; !ok {
			order = append(order, e.ID)
		}
		by[e.ID] = append(by[e.ID], e)
	}
	out := make([][]storedEvent, len(order))
	for i, id := range order {
		g := by[id]
		slices.SortStableFunc(g, func(a, b storedEvent) int { return cmpInt(a.Version, b.Version) })
		out[i] = g
	}
	return out
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// insert records one save: it finds the head, makes sure its indexes are
// written, checks the save against them (versions, commit ID, tracking
// record), and claims the next position with the commit record. A lost
// race for the position starts again. It returns the position. A
// replacing save (snapshots) is not checked against the versions
// recorded: its chunks win over the older ones at the same versions.
func (s *space) insert(ctx context.Context, op, tenant string, events []persistence.StoredEvent, tracking *persistence.Tracking, replace bool) (int64, error) {
	rec := &commitRecord{Tenant: tenant, Track: tracking, Nonce: uuid.NewString(), Replace: replace}
	if len(events) > 0 {
		rec.Commit = commitString(events[0].CommitID)
		rec.Headers = events[0].Headers
	}
	for _, e := range events {
		rec.Events = append(rec.Events, storedEvent{ID: e.OriginatorID, Version: e.OriginatorVersion, Topic: e.Topic, State: e.State})
	}
	groups := groupRecord(rec.Events)
	for _, g := range groups {
		for i := 1; i < len(g); i++ {
			if g[i].Version == g[i-1].Version {
				return 0, &persistence.Error{Op: op, Kind: persistence.ErrIntegrity, Err: fmt.Errorf("two events of %s at version %d in one save", g[i].ID, g[i].Version)}
			}
		}
	}
	return s.claim(ctx, op, rec, func(head int64, ms markers) error {
		return s.check(ctx, op, tenant, groups, events, tracking, replace, head, ms)
	})
}

// claim puts rec at the next position of the log once check, given the
// erase markers up to the head, accepts it, and returns the position.
func (s *space) claim(ctx context.Context, op string, rec *commitRecord, check func(head int64, ms markers) error) (int64, error) {
	body := encode(rec)
	s.mu.Lock()
	defer s.mu.Unlock()
	for attempt := 1; ; attempt++ {
		pos, indexed, err := s.head(ctx)
		if err != nil {
			return 0, fail(op+": find the end of the log", err, false)
		}
		if err := s.ensureIndexed(ctx, pos, indexed); err != nil {
			return 0, fail(op+fmt.Sprintf(": index log position %d", pos), err, false)
		}
		var ms markers
		if s.events {
			// Every position up to pos is indexed: the marker index is
			// complete up to it.
			ms, err = s.markersAt(ctx, pos, nil, 0)
		} else {
			ms, err = s.ev.currentMarkers(ctx)
		}
		if err != nil {
			return 0, fail(op+": read the erase markers", err, false)
		}
		if err := check(pos, ms); err != nil {
			return 0, err
		}
		next := pos + 1
		err = s.o.create(ctx, s.logKey(next), body)
		if err == nil {
			s.claimed(pos, next, rec)
			// The save is recorded. Its indexes are written now so that
			// the next save need not; if that fails, the next save does
			// it, and readers read the save from the log meanwhile.
			s.saved(pos, next, rec, s.index(ctx, next, rec) == nil)
			return next, nil
		}
		if !errors.Is(err, errPrecondition) {
			return 0, fail(op+fmt.Sprintf(": put log position %d", next), err, true)
		}
		// The SDK retries a put whose response it lost: if the first
		// attempt had succeeded, the position is this save's.
		if r, rerr := s.readRecord(ctx, next); rerr == nil && r.Nonce == rec.Nonce {
			s.claimed(pos, next, rec)
			s.saved(pos, next, rec, s.index(ctx, next, rec) == nil)
			return next, nil
		}
		s.races++
		if attempt == maxAttempts {
			return 0, &persistence.Error{Op: op, Kind: persistence.ErrOperational, Err: fmt.Errorf("lost the race for the next log position %d times; nothing was recorded", attempt)}
		}
		if err := backoff(ctx, attempt); err != nil {
			return 0, &persistence.Error{Op: op, Kind: persistence.ErrOperational, Err: err}
		}
	}
}

// saved tells what the process knows of the aggregates of its save at
// next, claimed on a head at pos, and whether its indexes are written.
func (s *space) saved(pos, next int64, rec *commitRecord, indexed bool) {
	if s.known != nil {
		s.known.saved(pos, next, rec, s.chunkKey, indexed)
	}
}

// check refuses a save that the indexes, complete up to the head, say
// cannot be recorded: a commit ID already recorded, an event at a
// recorded version or below the last one, a tracking record already
// recorded. What the erase markers hide does not count.
func (s *space) check(ctx context.Context, op, tenant string, groups [][]storedEvent, events []persistence.StoredEvent, tracking *persistence.Tracking, replace bool, head int64, ms markers) error {
	// What the process knows of an aggregate as of the head answers for
	// its chunks and commit records without a list.
	knownAt := func(id uuid.UUID) ([]knownSrc, bool) {
		if s.known == nil {
			return nil, false
		}
		return s.known.lookup(tenant, id, head)
	}
	if len(events) > 0 && events[0].CommitID != uuid.Nil {
		commit := events[0].CommitID
		var have, lack []uuid.UUID
		for _, g := range groups {
			ok, err := false, error(nil)
			if srcs, found := knownAt(g[0].ID); found && !slices.ContainsFunc(srcs, func(k knownSrc) bool { return !k.commitKnown }) {
				ok = slices.ContainsFunc(srcs, func(k knownSrc) bool {
					return k.commit == commit && !ms.erased(s.purpose, tenant, g[0].ID, k.pos)
				})
			} else {
				ok, err = s.hasCommit(ctx, tenant, g[0].ID, commit, ms)
			}
			if err != nil {
				return fail(op+": read commit records", err, false)
			}
			if ok {
				have = append(have, g[0].ID)
			} else {
				lack = append(lack, g[0].ID)
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
	for _, g := range groups {
		if replace {
			break
		}
		// A chunk whose last version is at or above the save's first
		// version conflicts; chunk keys start with the last version.
		if srcs, found := knownAt(g[0].ID); found {
			if slices.ContainsFunc(srcs, func(k knownSrc) bool {
				return k.last >= g[0].Version && !ms.erased(s.purpose, tenant, g[0].ID, k.pos)
			}) {
				return &persistence.Error{Op: op, Kind: persistence.ErrIntegrity,
					Err: fmt.Errorf("aggregate %s has an event at version %d or later already", g[0].ID, g[0].Version)}
			}
			continue
		}
		prefix := s.aggPrefix(tenant, g[0].ID)
		after := ""
		if first := g[0].Version; first > -1<<63 {
			after = prefix + sortable(first-1) + "."
		}
		found := false
		var perr error
		if err := s.o.list(ctx, prefix, after, "", func(key string) bool {
			_, _, pos, err := parseChunkKey(key)
			if err != nil {
				perr = err
				return false
			}
			found = !ms.erased(s.purpose, tenant, g[0].ID, pos)
			return !found
		}); err != nil || perr != nil {
			return fail(op+fmt.Sprintf(": read aggregate %s", g[0].ID), errors.Join(err, perr), false)
		}
		if found {
			return &persistence.Error{Op: op, Kind: persistence.ErrIntegrity,
				Err: fmt.Errorf("aggregate %s has an event at version %d or later already", g[0].ID, g[0].Version)}
		}
	}
	if tracking != nil {
		ok, err := s.hasTracking(ctx, tracking.ApplicationName, tracking.NotificationID, ms)
		if err != nil {
			return fail(op+": read tracking records", err, false)
		}
		if ok {
			return &persistence.Error{Op: op, Kind: persistence.ErrIntegrity,
				Err: fmt.Errorf("tracking record %s %d is already recorded", tracking.ApplicationName, tracking.NotificationID)}
		}
	}
	return nil
}

// hasCommit reports whether a save that no marker erased recorded the
// commit for the aggregate: one list of the commit's keys.
func (s *space) hasCommit(ctx context.Context, tenant string, id, commit uuid.UUID, ms markers) (bool, error) {
	prefix := s.commitPrefix(tenant, id, commit)
	found := false
	var perr error
	err := s.o.list(ctx, prefix, "", "", func(key string) bool {
		pos, err := keyPos(key, prefix)
		if err != nil {
			perr = err
			return false
		}
		found = !ms.erased(s.purpose, tenant, id, pos)
		return !found
	})
	if err == nil {
		err = perr
	}
	return found, err
}

// hasTracking reports whether a tracking record that no purge erased is
// recorded: one list of its keys (and a get of a key written before
// erasures existed, whose tenant is in its body, if a purge may apply).
func (s *space) hasTracking(ctx context.Context, app string, nid int64, ms markers) (bool, error) {
	prefix := s.trackPrefix(app, nid)
	var keys []string
	if err := s.o.list(ctx, prefix, "", "", func(key string) bool { keys = append(keys, key); return true }); err != nil {
		return false, err
	}
	for _, key := range keys {
		live, err := s.trackLive(ctx, key, prefix, ms)
		if err != nil || live {
			return live, err
		}
	}
	return false, nil
}

// trackLive reports whether no purge erased the tracking record at key.
func (s *space) trackLive(ctx context.Context, key, prefix string, ms markers) (bool, error) {
	if !ms.purges() {
		return true, nil
	}
	rest := strings.TrimPrefix(key[len(prefix):], "/")
	if rest == "" {
		b, _, found, err := s.o.get(ctx, key)
		if err != nil || !found {
			return false, err
		}
		return !ms.purged(string(b), 0), nil
	}
	seg, p, ok := strings.Cut(rest, "/")
	if !ok {
		return false, fmt.Errorf("%w: tracking key %s", persistence.ErrCorrupt, key)
	}
	pos, err := unsortable(p)
	if err != nil {
		return false, err
	}
	return !ms.purgedSeg(seg, pos), nil
}

// maxAttempts bounds the attempts of one save that keeps losing the race
// for the next position.
const maxAttempts = 1000

// backoff waits before attempt n (from 1) of a save that lost a race,
// with full jitter, so that writers that lost together do not collide
// again together.
func backoff(ctx context.Context, n int) error {
	d := time.Duration(rand.Int64N(int64(min(50*time.Millisecond, time.Millisecond<<min(n, 10)))))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

package cli

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/domain"
	"github.com/strata-go/strata/persistence"
)

// The kinds of [Problem] that [Admin.Verify] finds.
const (
	// ProblemVersions is an aggregate whose versions are not contiguous:
	// a version missing, or versions that do not start at the aggregate
	// type's initial version.
	ProblemVersions = "versions"
	// ProblemDecode is an event that does not decode: an unknown topic, a
	// wrong cipher key, corrupt bytes, a damaged originator ID.
	ProblemDecode = "decode"
	// ProblemOrder is a notification ID out of order: the log's IDs not
	// increasing, or an aggregate's later version with a lower
	// notification ID than an earlier one.
	ProblemOrder = "order"
	// ProblemTracking is a tracking record ahead of its upstream: a
	// follower that says it processed a notification its upstream's log
	// does not have.
	ProblemTracking = "tracking"
	// ProblemSnapshot is a snapshot that does not decode or does not match
	// the aggregate rebuilt from its events at the snapshot's version.
	ProblemSnapshot = "snapshot"
)

// Problem is something wrong that [Admin.Verify] found in a store.
type Problem struct {
	// Kind is one of ProblemVersions, ProblemDecode, ProblemOrder,
	// ProblemTracking and ProblemSnapshot.
	Kind string `json:"kind"`
	// Application is the application whose store holds the damage.
	Application string `json:"application"`
	// Tenant is the aggregate's tenant ("" is the default tenant).
	Tenant string `json:"tenant,omitempty"`
	// AggregateID is the aggregate at fault, if there is one.
	AggregateID *uuid.UUID `json:"aggregate_id,omitempty"`
	// Version is the version at fault, if there is one.
	Version *int64 `json:"version,omitempty"`
	// NotificationID is the notification at fault, if there is one: for a
	// tracking problem, the tracked position.
	NotificationID int64 `json:"notification_id,omitempty"`
	// Message says what is wrong, naming the row or value at fault.
	Message string `json:"message"`
}

// String returns the problem as the verify command prints it: the kind,
// the application, the tenant (unless the default), then the message.
func (p Problem) String() string {
	s := p.Kind + " " + p.Application
	if p.Tenant != "" {
		s += fmt.Sprintf(" tenant=%q", p.Tenant)
	}
	return s + ": " + p.Message
}

// Report is what [Admin.Verify] read and found.
type Report struct {
	// Applications are the applications verified, in order.
	Applications []string `json:"applications"`
	// Notifications is how many notifications were read.
	Notifications int64 `json:"notifications"`
	// Aggregates is how many aggregates (of every tenant) were found.
	Aggregates int64 `json:"aggregates"`
	// Snapshots is how many snapshots were checked against a rebuild.
	Snapshots int64 `json:"snapshots"`
	// Truncated is how many of the aggregates have a truncated stream:
	// their versions before a truncation point were deleted (or
	// archived), which is not a problem when a snapshot covers them.
	Truncated int64 `json:"truncated"`
	// Tracking is how many follower positions (a follower and one of its
	// upstreams) were checked.
	Tracking int64 `json:"tracking"`
	// Problems are what was found wrong, application by application in log
	// order; empty if the store is sound.
	Problems []Problem `json:"problems"`
}

// OK reports whether no problem was found.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// VerifyProgress is how far [Admin.Verify] is in one step of one
// application.
type VerifyProgress struct {
	// Application is the application being verified.
	Application string
	// Step is "notifications" (Done and Total are notification IDs: the
	// last read and the highest when the step started) or "aggregates"
	// (Done and Total count aggregates).
	Step string
	// Done is how far the step is, and Total where it ends.
	Done, Total int64
}

// VerifyOption configures [Admin.Verify].
type VerifyOption func(*verifyConfig)

type verifyConfig struct {
	progress func(VerifyProgress)
	apps     []string
	// ends are the last notification IDs read of the applications
	// verified so far.
	ends map[string]int64
}

// VerifyProgressFunc makes Verify call f as it goes: at the start and end
// of each step and after each page of notifications or each aggregate.
func VerifyProgressFunc(f func(VerifyProgress)) VerifyOption {
	return func(c *verifyConfig) { c.progress = f }
}

// VerifyApplications verifies only the named applications (all of the
// domain's if none are named).
func VerifyApplications(names ...string) VerifyOption {
	return func(c *verifyConfig) { c.apps = append(c.apps, names...) }
}

// aggKey is an aggregate of one tenant.
type aggKey struct {
	tenant string
	id     uuid.UUID
}

// aggState is what the log pass remembers of one aggregate.
type aggState struct {
	first       int64 // the notification ID of its first event in the log, for the order of reports
	lastVersion int64 // the highest version seen so far
	lastID      int64 // the notification ID of lastVersion
	// missing are the versions below lastVersion not seen yet, as ranges:
	// only damaged aggregates have any.
	missing [][2]int64
	damaged bool  // an event did not decode: no snapshot can be rebuilt
	initial int64 // the initial version of its type
	// truncated is the first version of a truncated stream (one whose
	// versions before it were deleted, a snapshot covering them), or 0.
	truncated int64
}

// verifyPage is how many notifications the log pass reads at a time.
const verifyPage = application.MaxLimit

// Verify reads the stores of the domain's applications end to end, every
// tenant's data, and reports what is wrong with them; it writes nothing.
// It checks, application by application:
//
//   - every notification: that IDs increase, that the event decodes with
//     the application's types and cipher (an erased event is fine), and
//     that each aggregate's versions have increasing notification IDs;
//   - every aggregate: that its versions are contiguous from its type's
//     initial version;
//   - every snapshot of every aggregate: that it decodes and equals the
//     aggregate rebuilt from its events at the snapshot's version (state,
//     version and times);
//   - every follower: that its tracking record of each upstream is not
//     ahead of the upstream's last notification.
//
// Problems are in the report, not errors: the error is for a store that
// cannot be read (or ctx ending), with the report so far. The log pass
// keeps about a hundred bytes per aggregate in memory (a million
// aggregates: about 100 MB); the snapshot pass makes a query per aggregate
// and a rebuild per snapshot.
func (a *Admin) Verify(ctx context.Context, opts ...VerifyOption) (*Report, error) {
	c := verifyConfig{ends: map[string]int64{}}
	for _, o := range opts {
		o(&c)
	}
	names := a.Applications()
	if len(c.apps) > 0 {
		for _, n := range c.apps {
			if _, err := a.Application(ctx, n); err != nil {
				return nil, err
			}
		}
		names = c.apps
	}
	rep := &Report{Applications: names, Problems: []Problem{}}
	for _, name := range names {
		app, err := a.Application(ctx, name)
		if err != nil {
			return rep, err
		}
		if err := a.verifyApplication(ctx, app, rep, c); err != nil {
			return rep, fmt.Errorf("verify %s: %w", name, err)
		}
	}
	return rep, nil
}

func (a *Admin) verifyApplication(ctx context.Context, app *application.Application, rep *Report, c verifyConfig) error {
	progress := func(step string, done, total int64) {
		if c.progress != nil {
			c.progress(VerifyProgress{Application: app.Name(), Step: step, Done: done, Total: total})
		}
	}
	add := func(p Problem) {
		p.Application = app.Name()
		rep.Problems = append(rep.Problems, p)
	}
	// An estimate for the progress: the highest ID of the default tenant.
	stop, err := app.Recorder().MaxNotificationID(ctx)
	if err != nil {
		return err
	}
	initial := a.initialVersions(app.Name())
	aggs := map[aggKey]*aggState{}
	progress("notifications", 0, stop)
	var last int64
	// No Stop: MaxNotificationID is the default tenant's, and the log of
	// every tenant may go further.
	q := persistence.NotificationQuery{Start: 1, AllTenants: true}
	for n, err := range persistence.ReadNotifications(ctx, app.Recorder(), q, verifyPage) {
		if err != nil {
			return err
		}
		rep.Notifications++
		id, v := n.OriginatorID, n.OriginatorVersion
		if n.ID <= last {
			add(Problem{Kind: ProblemOrder, Tenant: n.Tenant, AggregateID: ref(id), Version: ref(v), NotificationID: n.ID,
				Message: fmt.Sprintf("notification %d (%s version %d) comes after notification %d: IDs do not increase", n.ID, id, v, last)})
		}
		last = max(last, n.ID)
		if rep.Notifications%verifyPage == 0 {
			progress("notifications", last, max(stop, last))
		}
		if id == uuid.Nil {
			add(Problem{Kind: ProblemDecode, Tenant: n.Tenant, Version: ref(v), NotificationID: n.ID,
				Message: fmt.Sprintf("notification %d (version %d, %s): the stored originator ID is missing or damaged", n.ID, v, n.Topic)})
			continue
		}
		k := aggKey{n.Tenant, id}
		s := aggs[k]
		if s == nil {
			want := initial(n.Topic)
			s = &aggState{first: n.ID, lastVersion: v, lastID: n.ID, initial: want}
			aggs[k] = s
			if v > want {
				s.missing = append(s.missing, [2]int64{want, v - 1})
			} else if v < want {
				add(Problem{Kind: ProblemVersions, Tenant: n.Tenant, AggregateID: ref(id), Version: ref(v), NotificationID: n.ID,
					Message: fmt.Sprintf("aggregate %s starts at version %d (notification %d), below its type's initial version %d", id, v, n.ID, want)})
			}
		} else if v > s.lastVersion {
			if v > s.lastVersion+1 {
				s.missing = append(s.missing, [2]int64{s.lastVersion + 1, v - 1})
			}
			s.lastVersion, s.lastID = v, n.ID
		} else {
			// A version below one already seen: it was given a later
			// notification ID than a later version.
			add(Problem{Kind: ProblemOrder, Tenant: n.Tenant, AggregateID: ref(id), Version: ref(v), NotificationID: n.ID,
				Message: fmt.Sprintf("aggregate %s version %d has notification %d, after version %d at notification %d", id, v, n.ID, s.lastVersion, s.lastID)})
			s.missing = fill(s.missing, v)
		}
		if _, err := app.Mapper().ToEvent(n.StoredEvent); err != nil && !errors.Is(err, persistence.ErrErased) {
			s.damaged = true
			add(Problem{Kind: ProblemDecode, Tenant: n.Tenant, AggregateID: ref(id), Version: ref(v), NotificationID: n.ID,
				Message: fmt.Sprintf("notification %d: %v", n.ID, err)})
		}
	}
	progress("notifications", max(stop, last), max(stop, last))
	c.ends[app.Name()] = last
	keys := make([]aggKey, 0, len(aggs))
	for k := range aggs {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y aggKey) int { return cmp.Compare(aggs[x].first, aggs[y].first) })
	rep.Aggregates += int64(len(keys))
	for _, k := range keys {
		s := aggs[k]
		if err := truncatedStream(ctx, app, k, s, add); err != nil {
			return err
		}
		if s.truncated > 0 {
			rep.Truncated++
		}
		for _, m := range s.missing {
			what := fmt.Sprintf("version %d is", m[0])
			if m[1] > m[0] {
				what = fmt.Sprintf("versions %d to %d are", m[0], m[1])
			}
			add(Problem{Kind: ProblemVersions, Tenant: k.tenant, AggregateID: ref(k.id), Version: ref(m[0]),
				Message: fmt.Sprintf("aggregate %s: %s missing (it has versions up to %d)", k.id, what, s.lastVersion)})
		}
	}

	if app.Snapshots() != nil {
		progress("aggregates", 0, int64(len(keys)))
		for i, k := range keys {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := verifySnapshots(ctx, app, k, aggs[k], rep, add); err != nil {
				return err
			}
			progress("aggregates", int64(i+1), int64(len(keys)))
		}
	}
	return a.verifyTracking(ctx, app, c.ends, rep, add)
}

// initialVersions returns a function giving the initial version of the
// aggregate whose first event has the topic: that of the type it creates,
// else the lowest initial version of the application's types.
func (a *Admin) initialVersions(app string) func(topic string) int64 {
	byTopic := map[string]int64{}
	lowest := int64(-1)
	for _, t := range a.aggs {
		if t.app != app {
			continue
		}
		v := domain.InitialVersion(t.info.New())
		for _, topic := range t.created {
			byTopic[topic] = v
		}
		if lowest < 0 || v < lowest {
			lowest = v
		}
	}
	if lowest < 0 {
		lowest = 1
	}
	return func(topic string) int64 {
		if v, ok := byTopic[topic]; ok {
			return v
		}
		return lowest
	}
}

// fill removes version v from the missing ranges.
func fill(missing [][2]int64, v int64) [][2]int64 {
	for i, m := range missing {
		if v < m[0] || v > m[1] {
			continue
		}
		var parts [][2]int64
		if v > m[0] {
			parts = append(parts, [2]int64{m[0], v - 1})
		}
		if v < m[1] {
			parts = append(parts, [2]int64{v + 1, m[1]})
		}
		return slices.Concat(missing[:i], parts, missing[i+1:])
	}
	return missing
}

// verifySnapshots checks every snapshot of one aggregate against a rebuild
// from its events.
func verifySnapshots(ctx context.Context, base *application.Application, k aggKey, s *aggState, rep *Report, add func(Problem)) error {
	app, err := base.ForTenant(k.tenant)
	if err != nil {
		return err
	}
	stored, err := app.Snapshots().Recorder().SelectEvents(ctx, k.id, persistence.EventQuery{})
	if err != nil {
		return err
	}
	// The snapshot a truncated stream loads from: the first at or after
	// the version before its first event. It cannot be rebuilt (its events
	// are gone); the snapshots after it are rebuilt from it.
	var from *persistence.StoredEvent
	if s.truncated > 0 {
		for i, st := range stored {
			if st.OriginatorVersion >= s.truncated-1 {
				from = &stored[i]
				break
			}
		}
	}
	for _, st := range stored {
		rep.Snapshots++
		v := st.OriginatorVersion
		problem := func(format string, args ...any) {
			add(Problem{Kind: ProblemSnapshot, Tenant: k.tenant, AggregateID: ref(k.id), Version: ref(v),
				Message: fmt.Sprintf("snapshot of %s at version %d: ", k.id, v) + fmt.Sprintf(format, args...)})
		}
		snap, err := app.Mapper().ToSnapshot(st)
		if errors.Is(err, persistence.ErrErased) || errors.Is(err, domain.ErrUpcast) {
			// Erased, or of a class version that loading skips too.
			continue
		}
		if err != nil {
			problem("%v", err)
			continue
		}
		if v > s.lastVersion {
			// Its later events may have been committed after the log was
			// read, or not be visible to readers yet: ask the recorder.
			latest, err := app.Recorder().SelectEvents(ctx, k.id, persistence.EventQuery{Desc: true, Limit: 1})
			if err != nil {
				return err
			}
			if len(latest) == 0 || latest[0].OriginatorVersion < v {
				end := int64(0)
				if len(latest) > 0 {
					end = latest[0].OriginatorVersion
				}
				problem("the aggregate's last version is %d", end)
				continue
			}
		}
		if s.damaged || len(s.missing) > 0 {
			// Its events are reported already; a rebuild would fail or
			// differ for that reason.
			continue
		}
		if s.truncated > 0 && (from == nil || v <= from.OriginatorVersion) {
			continue // decoded; there are no events to rebuild it from
		}
		var agg domain.Root
		if s.truncated > 0 {
			agg, err = rebuildFrom(ctx, app, *from, v)
		} else {
			agg, err = app.Get(ctx, k.id, application.AtVersion(v), application.FromEvents())
		}
		if err != nil {
			problem("cannot rebuild the aggregate from its events: %v", err)
			continue
		}
		rebuilt, err := domain.TakeSnapshot(agg)
		if err != nil {
			problem("cannot snapshot the rebuilt aggregate: %v", err)
			continue
		}
		if diff := compareSnapshots(app.Mapper().Transcoder(), snap, rebuilt); diff != "" {
			problem("it differs from the aggregate rebuilt from its events: %s", diff)
		}
	}
	return nil
}

// truncatedStream decides whether the aggregate's stream, which starts
// after its type's initial version, was truncated: whether the store has
// a truncation point for it (persistence.Truncater). The versions below
// the point are not missing; those from the point to the first event are.
// A truncated stream needs a snapshot at the version before the point or
// later to be loaded: it is a problem if it has none.
func truncatedStream(ctx context.Context, app *application.Application, k aggKey, s *aggState, add func(Problem)) error {
	if len(s.missing) == 0 || s.missing[0][0] != s.initial || app.Snapshots() == nil {
		return nil
	}
	view, err := app.ForTenant(k.tenant)
	if err != nil {
		return err
	}
	tr, ok := view.Factory().(persistence.Truncater)
	if !ok {
		return nil
	}
	point, err := tr.TruncationPoint(ctx, k.id)
	if err != nil || point <= s.initial {
		return err
	}
	first := s.missing[0][1] + 1
	point = min(point, first)
	s.truncated = point
	if point < first {
		s.missing[0][0] = point
	} else {
		s.missing = s.missing[1:]
	}
	covers := point - 2 // snapshots at point-1 or later
	snaps, err := view.Snapshots().Recorder().SelectEvents(ctx, k.id, persistence.EventQuery{Gt: &covers, Lte: &s.lastVersion, Limit: 1})
	if err != nil {
		return err
	}
	if len(snaps) == 0 {
		add(Problem{Kind: ProblemVersions, Tenant: k.tenant, AggregateID: ref(k.id), Version: ref(point),
			Message: fmt.Sprintf("aggregate %s: truncated before version %d, and no snapshot at version %d or later: it cannot be loaded", k.id, point, point-1)})
	}
	return nil
}

// rebuildFrom loads the aggregate at version v from the stored snapshot
// base and the events after it.
func rebuildFrom(ctx context.Context, app *application.Application, base persistence.StoredEvent, v int64) (domain.Root, error) {
	snap, err := app.Mapper().ToSnapshot(base)
	if err != nil {
		return nil, fmt.Errorf("the snapshot at version %d it is rebuilt from: %w", base.OriginatorVersion, err)
	}
	agg, err := snap.Aggregate()
	if err != nil {
		return nil, err
	}
	info, err := app.Types().Lookup(agg)
	if err != nil {
		return nil, err
	}
	from := base.OriginatorVersion
	events, err := app.Events().Get(ctx, base.OriginatorID, persistence.EventQuery{Gt: &from, Lte: &v})
	if err != nil {
		return nil, err
	}
	if err := info.Replay(agg, events...); err != nil {
		return nil, err
	}
	return agg, nil
}

// compareSnapshots says how a stored snapshot differs from a rebuilt one,
// or returns "" if they are the same.
func compareSnapshots(tc persistence.Transcoder, stored, rebuilt domain.Snapshot) string {
	var diffs []string
	if stored.OriginatorVersion != rebuilt.OriginatorVersion {
		diffs = append(diffs, fmt.Sprintf("version %d, rebuilt %d", stored.OriginatorVersion, rebuilt.OriginatorVersion))
	}
	got, err1 := tc.Marshal(stored.State)
	want, err2 := tc.Marshal(rebuilt.State)
	if err := errors.Join(err1, err2); err != nil {
		diffs = append(diffs, "cannot encode the states to compare them: "+err.Error())
	} else if !bytes.Equal(got, want) {
		diffs = append(diffs, fmt.Sprintf("state %s, rebuilt %s", clip(got), clip(want)))
	}
	if !stored.Timestamp.Equal(rebuilt.Timestamp) {
		diffs = append(diffs, fmt.Sprintf("timestamp %s, rebuilt %s", stored.Timestamp.UTC().Format(time.RFC3339Nano), rebuilt.Timestamp.UTC().Format(time.RFC3339Nano)))
	}
	if !stored.CreatedOn.IsZero() && !stored.CreatedOn.Equal(rebuilt.CreatedOn) {
		diffs = append(diffs, fmt.Sprintf("created on %s, rebuilt %s", stored.CreatedOn.UTC().Format(time.RFC3339Nano), rebuilt.CreatedOn.UTC().Format(time.RFC3339Nano)))
	}
	return strings.Join(diffs, "; ")
}

// clip shortens a state for a message.
func clip(b []byte) string {
	const most = 200
	if len(b) <= most {
		return string(b)
	}
	return string(b[:most]) + "..."
}

// verifyTracking checks that the follower app has tracked no notification
// beyond the last of each upstream (of every tenant). ends are the last IDs
// of the upstreams already read.
func (a *Admin) verifyTracking(ctx context.Context, app *application.Application, ends map[string]int64, rep *Report, add func(Problem)) error {
	leaders := a.sys.Leaders(app.Name())
	if len(leaders) == 0 {
		return nil
	}
	pr, ok := app.Recorder().(persistence.ProcessRecorder)
	if !ok {
		return fmt.Errorf("follower %s: its recorder keeps no tracking records", app.Name())
	}
	for _, leader := range leaders {
		up, err := a.Application(ctx, leader)
		if err != nil {
			return err
		}
		tracked, err := pr.MaxTrackingID(ctx, leader)
		if err != nil {
			return err
		}
		rep.Tracking++
		if tracked == 0 {
			continue
		}
		// The tracked notification, or one after it, must be in the
		// upstream's log: a follower only tracks what it has read.
		found, err := up.Recorder().SelectNotifications(ctx, persistence.NotificationQuery{Start: tracked, Limit: 1, AllTenants: true})
		if err != nil {
			return err
		}
		if len(found) > 0 {
			continue
		}
		end := "has no notification at or after it"
		if n, ok := ends[leader]; ok {
			end = fmt.Sprintf("whose log ends at %d", n)
		}
		add(Problem{Kind: ProblemTracking, NotificationID: tracked,
			Message: fmt.Sprintf("%s tracks notification %d of %s, %s", app.Name(), tracked, leader, end)})
	}
	return nil
}

func ref[T any](v T) *T { return &v }

// formatReport writes the report as text: a line per problem and a
// summary.
func formatReport(rep *Report) string {
	var b strings.Builder
	for _, p := range rep.Problems {
		b.WriteString(p.String() + "\n")
	}
	truncated := ""
	if rep.Truncated > 0 {
		truncated = fmt.Sprintf(" (%d truncated)", rep.Truncated)
	}
	fmt.Fprintf(&b, "Verified %s: %d notification(s), %d aggregate(s)%s, %d snapshot(s), %d tracking position(s): ",
		strings.Join(rep.Applications, ", "), rep.Notifications, rep.Aggregates, truncated, rep.Snapshots, rep.Tracking)
	if rep.OK() {
		b.WriteString("no problems.\n")
	} else {
		fmt.Fprintf(&b, "%d problem(s).\n", len(rep.Problems))
	}
	return b.String()
}

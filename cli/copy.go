package cli

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/persistence"
)

// CopyCheckpoint is the upstream name of the tracking records that
// [Admin.CopyTo] records in the target with each commit it copies: the
// position in the source's log that the commit ends at. A copy that
// starts again resumes after the highest one.
const CopyCheckpoint = "strata copy"

// ErrTargetNotEmpty means a copy refused because the target store already
// has events of an application that no interrupted copy recorded.
var ErrTargetNotEmpty = errors.New("the target store is not empty")

// CopyProgress is how far [Admin.CopyTo] is in one step of one
// application.
type CopyProgress struct {
	// Application is the application being copied.
	Application string
	// Step is "events" (Done and Total are notification IDs of the
	// source: the last copied, and the highest when the step started),
	// "snapshots" (Done counts aggregates, and so does Total, which is
	// not known beforehand) or
	// "tracking" (Done and Total are the upstream's notification IDs).
	Step string
	// Done is how far the step is, and Total where it ends.
	Done, Total int64
}

// CopyReport is what [Admin.CopyTo] copied.
type CopyReport struct {
	// Applications are the applications copied, in order.
	Applications []string `json:"applications"`
	// Resumed is, per application, the last notification ID of the
	// source that an earlier, interrupted copy had copied (0 if none).
	Resumed map[string]int64 `json:"resumed"`
	// Notifications is how many notifications this run copied, Commits in
	// how many commits.
	Notifications int64 `json:"notifications"`
	Commits       int64 `json:"commits"`
	// Records is how many snapshots and data keys were copied (again, if
	// a copy ran before: they are replaced).
	Records int64 `json:"records"`
	// Tracking is how many tracking records of followers were copied.
	Tracking int64 `json:"tracking"`
}

// CopyOption configures [Admin.CopyTo].
type CopyOption func(*copyConfig)

type copyConfig struct {
	progress func(CopyProgress)
	visible  time.Duration
}

// DefaultCopyVisibleWithin is how long a copy waits, unless
// [CopyVisibleWithin] says otherwise, for the commits it wrote to show in
// the target's notification log.
const DefaultCopyVisibleWithin = time.Minute

// CopyVisibleWithin sets how long CopyTo waits for the commits it wrote
// to show in the target's notification log before it reads that log
// back (to check where an interrupted copy stopped, and to translate the
// followers' positions). On PostgreSQL a commit shows there only once
// every transaction that began before it, in any database of the
// cluster, has ended (docs/postgres.md): one long transaction elsewhere
// delays the copy by as long, and past d the copy fails, naming the
// backend that holds it back.
func CopyVisibleWithin(d time.Duration) CopyOption {
	return func(c *copyConfig) { c.visible = d }
}

// CopyProgressFunc makes CopyTo call f as it goes.
func CopyProgressFunc(f func(CopyProgress)) CopyOption {
	return func(c *copyConfig) { c.progress = f }
}

// copyPage is how many notifications a copy reads at a time.
const copyPage = application.MaxLimit

// CopyTo copies the stores of every application of the domain to the
// stores of dst, the same domain opened on another store: every tenant's
// events, in the order of the source's notification log, each commit in
// one insert with its commit ID and headers, the events' versions, topics
// and stored state unchanged (so that the target needs the same cipher
// keys); then the snapshots and data keys; then the followers' tracking
// records, translated to the target's notification IDs (which are the
// target's own).
//
// A copy is resumable: each commit is inserted with a tracking record of
// its last notification ID in the source (upstream [CopyCheckpoint]), in
// the same transaction, so that a copy interrupted at any point (killed,
// cancelled) and started again goes on after the last commit it recorded,
// without duplicates, and ends with what an uninterrupted copy gives.
// Snapshots, data keys and tracking are copied idempotently. A target
// that has events of an application but no checkpoint is refused with
// [ErrTargetNotEmpty]. Nothing may write to the target while it is copied
// to; the source may be read-only.
func (a *Admin) CopyTo(ctx context.Context, dst *Admin, opts ...CopyOption) (*CopyReport, error) {
	c := copyConfig{visible: DefaultCopyVisibleWithin}
	for _, o := range opts {
		o(&c)
	}
	rep := &CopyReport{Applications: a.Applications(), Resumed: map[string]int64{}}
	tenants := map[string][]string{}
	absent := map[string]bool{}
	for _, name := range rep.Applications {
		to, err := dst.Application(ctx, name)
		if err != nil {
			return rep, fmt.Errorf("target: %w", err)
		}
		src, err := a.Application(ctx, name)
		if errors.Is(err, persistence.ErrNoTable) {
			// The source has no data of the application; the target has
			// its (empty) tables now, as a store written to would.
			absent[name] = true
			continue
		}
		if err != nil {
			return rep, err
		}
		ts, err := copyEvents(ctx, src, to, rep, c)
		if err != nil {
			return rep, fmt.Errorf("copy the events of %s: %w", name, err)
		}
		tenants[name] = ts
		if err := copyRecords(ctx, src, to, ts, rep, c); err != nil {
			return rep, fmt.Errorf("copy the snapshots of %s: %w", name, err)
		}
	}
	for _, name := range rep.Applications {
		for _, leader := range a.sys.Leaders(name) {
			if absent[name] || absent[leader] {
				continue
			}
			if err := a.copyTracking(ctx, dst, name, leader, rep, c); err != nil {
				return rep, fmt.Errorf("copy the tracking records of %s of %s: %w", name, leader, err)
			}
		}
	}
	return rep, nil
}

// processRecorders gives the target's process recorder of each tenant,
// opened once.
type processRecorders struct {
	factory persistence.Factory
	byName  map[string]persistence.ProcessRecorder
}

func (p *processRecorders) of(ctx context.Context, tenant string) (persistence.ProcessRecorder, error) {
	if r, ok := p.byName[tenant]; ok {
		return r, nil
	}
	f := p.factory
	if tenant != "" {
		var err error
		if f, err = f.Tenant(tenant); err != nil {
			return nil, err
		}
	}
	r, err := f.ProcessRecorder(ctx)
	if err != nil {
		return nil, err
	}
	p.byName[tenant] = r
	return r, nil
}

// copyEvents copies the events of one application after the checkpoint
// of an earlier copy, and returns the tenants of the source's log.
func copyEvents(ctx context.Context, src, dst *application.Application, rep *CopyReport, c copyConfig) ([]string, error) {
	progress := func(done, total int64) {
		if c.progress != nil {
			c.progress(CopyProgress{Application: src.Name(), Step: "events", Done: done, Total: total})
		}
	}
	recs := &processRecorders{factory: dst.Factory(), byName: map[string]persistence.ProcessRecorder{}}
	base, err := recs.of(ctx, "")
	if err != nil {
		return nil, err
	}
	checkpoint, err := base.MaxTrackingID(ctx, CopyCheckpoint)
	if err != nil {
		return nil, err
	}
	rep.Resumed[src.Name()] = checkpoint
	if checkpoint > 0 {
		// The commits of the copy that stopped may not show in the log
		// yet; once the transactions older than now have ended, they do.
		held, err := awaitVisibility(ctx, dst.Factory(), c.visible)
		if err != nil {
			return nil, err
		}
		if err := checkResumable(ctx, src, base, checkpoint); err != nil {
			return nil, errors.Join(err, held)
		}
	}
	if checkpoint == 0 {
		there, err := base.SelectNotifications(ctx, persistence.NotificationQuery{Start: 1, Limit: 1, AllTenants: true})
		if err != nil {
			return nil, err
		}
		if len(there) > 0 {
			return nil, fmt.Errorf("%w: it has events of %s (notification %d) and no checkpoint of a copy", ErrTargetNotEmpty, src.Name(), there[0].ID)
		}
	}
	stop, err := src.Recorder().MaxNotificationID(ctx)
	if err != nil {
		return nil, err
	}
	progress(checkpoint, max(stop, checkpoint))
	seen := map[string]bool{}
	var written int64 // the target's last notification ID this run wrote
	// group is the commit being read: consecutive notifications of one
	// tenant with one commit ID.
	var group []persistence.Notification
	flush := func() error {
		if len(group) == 0 {
			return nil
		}
		r, err := recs.of(ctx, group[0].Tenant)
		if err != nil {
			return err
		}
		events := make([]persistence.StoredEvent, len(group))
		for i, n := range group {
			events[i] = n.StoredEvent
		}
		last := group[len(group)-1].ID
		ids, err := r.InsertEvents(ctx, events, persistence.WithTracking(persistence.Tracking{ApplicationName: CopyCheckpoint, NotificationID: last}))
		if err != nil {
			return fmt.Errorf("notifications %d to %d: %w", group[0].ID, last, err)
		}
		if len(ids) > 0 {
			written = max(written, ids[len(ids)-1])
		}
		rep.Notifications += int64(len(group))
		rep.Commits++
		group = group[:0]
		progress(last, max(stop, last))
		return nil
	}
	q := persistence.NotificationQuery{Start: 1, AllTenants: true}
	for n, err := range persistence.ReadNotifications(ctx, src.Recorder(), q, copyPage) {
		if err != nil {
			return nil, err
		}
		seen[n.Tenant] = true
		if n.ID <= checkpoint {
			continue
		}
		if len(group) > 0 && (n.Tenant != group[0].Tenant || n.CommitID == uuid.Nil || n.CommitID != group[0].CommitID) {
			if err := flush(); err != nil {
				return nil, err
			}
		}
		// Cancelled between commits, the copy stops with whole commits.
		if len(group) == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		group = append(group, n)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	if written > 0 {
		if err := awaitVisible(ctx, dst.Factory(), base, written, c.visible); err != nil {
			return nil, err
		}
	}
	return slices.Sorted(maps.Keys(seen)), nil
}

// awaitVisible waits, up to within, until notification id shows in the
// log that rec reads (every tenant's), and fails past it, naming what
// holds it back if the store can tell (a persistence.HorizonReader).
func awaitVisible(ctx context.Context, f persistence.Factory, rec persistence.ApplicationRecorder, id int64, within time.Duration) error {
	deadline := time.Now().Add(within)
	for wait := time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		ns, err := rec.SelectNotifications(ctx, persistence.NotificationQuery{Start: id, Limit: 1, AllTenants: true})
		if err != nil {
			return err
		}
		if len(ns) > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return withHolder(ctx, f, fmt.Errorf("notification %d, which the copy wrote, does not show in the target's log after %v", id, within))
		}
		if err := sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// awaitVisibility waits, up to within, until the log of f's store shows
// every commit made before the call, if the store can tell (a
// persistence.VisibilityAwaiter: PostgreSQL, whose log shows a commit
// once the transactions begun before it have ended). Past within it
// returns, with a non-nil held describing what holds the log back, to be
// added to an error that what is not shown may cause.
func awaitVisibility(ctx context.Context, f persistence.Factory, within time.Duration) (held, err error) {
	va, ok := f.(persistence.VisibilityAwaiter)
	if !ok {
		return nil, nil
	}
	wctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	err = va.AwaitVisibility(wctx)
	switch {
	case err == nil:
		return nil, nil
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case wctx.Err() == nil:
		return nil, err
	}
	return withHolder(ctx, f, fmt.Errorf("the target's log may not show all it has after %v", within)), nil
}

// withHolder adds to err the transaction that holds the visibility
// horizon of f's store back, if the store can tell (a
// persistence.HorizonReader) and one does.
func withHolder(ctx context.Context, f persistence.Factory, err error) error {
	hr, ok := f.(persistence.HorizonReader)
	if !ok {
		return err
	}
	h, herr := hr.Horizon(ctx)
	if herr != nil || h.Age == 0 {
		return err
	}
	return fmt.Errorf("%w: a transaction of backend %d (application_name %q, database %q, %s) has run for %v, and the target's log shows nothing committed after it began until it ends",
		err, h.PID, h.ApplicationName, h.Database, h.State, h.Age.Round(time.Millisecond))
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// checkResumable checks that the target's log ends with the event of
// the source's notification checkpoint, where the copy stopped: that
// nothing else wrote to it since.
func checkResumable(ctx context.Context, src *application.Application, dst persistence.ApplicationRecorder, checkpoint int64) error {
	at, err := src.Recorder().SelectNotifications(ctx, persistence.NotificationQuery{Start: checkpoint, Limit: 1, AllTenants: true})
	if err != nil {
		return err
	}
	if len(at) == 0 || at[0].ID != checkpoint {
		return nil // deleted from the source since: nothing to compare with
	}
	from, err := dst.MaxNotificationID(ctx)
	if err != nil {
		return err
	}
	var last persistence.Notification
	for n, err := range persistence.ReadNotifications(ctx, dst, persistence.NotificationQuery{Start: from, AllTenants: true}, copyPage) {
		if err != nil {
			return err
		}
		last = n
	}
	if last.Tenant != at[0].Tenant || last.OriginatorID != at[0].OriginatorID || last.OriginatorVersion != at[0].OriginatorVersion {
		return fmt.Errorf("%w: its log of %s does not end where the copy stopped (notification %d of the source, %s version %d): something else wrote to it",
			ErrTargetNotEmpty, src.Name(), checkpoint, at[0].OriginatorID, at[0].OriginatorVersion)
	}
	return nil
}

// copyRecords copies the snapshots of every tenant, and the data keys,
// replacing those already copied.
func copyRecords(ctx context.Context, src, dst *application.Application, tenants []string, rep *CopyReport, c copyConfig) error {
	type store struct {
		tenant, purpose string
	}
	var stores []store
	for _, t := range tenants {
		stores = append(stores, store{t, "snapshots"})
	}
	if src.DataKeys() != nil {
		stores = append(stores, store{"", "keys"})
	}
	done := int64(0)
	for _, s := range stores {
		from, err := tenantFactory(src.Factory(), s.tenant)
		if err != nil {
			return err
		}
		to, err := tenantFactory(dst.Factory(), s.tenant)
		if err != nil {
			return err
		}
		in, err := from.AggregateRecorder(ctx, s.purpose)
		if errors.Is(err, persistence.ErrNoTable) {
			continue // nothing was ever recorded there
		}
		if err != nil {
			return err
		}
		out, err := to.AggregateRecorder(ctx, s.purpose)
		if err != nil {
			return err
		}
		lister, ok := in.(persistence.Lister)
		if !ok {
			return fmt.Errorf("the source's %s records cannot be listed (the store offers no persistence.Lister)", s.purpose)
		}
		var ids []uuid.UUID
		for id, err := range lister.Originators(ctx) {
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		for _, id := range ids {
			if err := ctx.Err(); err != nil {
				return err
			}
			recs, err := in.SelectEvents(ctx, id, persistence.EventQuery{})
			if err != nil {
				return err
			}
			if err := putRecords(ctx, out, recs); err != nil {
				return fmt.Errorf("%s of %s: %w", s.purpose, id, err)
			}
			rep.Records += int64(len(recs))
			done++
			if c.progress != nil {
				c.progress(CopyProgress{Application: src.Name(), Step: "snapshots", Done: done, Total: done})
			}
		}
	}
	return nil
}

func tenantFactory(f persistence.Factory, tenant string) (persistence.Factory, error) {
	if tenant == "" {
		return f, nil
	}
	return f.Tenant(tenant)
}

// putRecords records recs in out, replacing those it has if it can, else
// keeping them.
func putRecords(ctx context.Context, out persistence.AggregateRecorder, recs []persistence.StoredEvent) error {
	if len(recs) == 0 {
		return nil
	}
	if r, ok := out.(persistence.Replacer); ok {
		return r.ReplaceEvents(ctx, recs)
	}
	for _, e := range recs {
		if _, err := out.InsertEvents(ctx, []persistence.StoredEvent{e}); err != nil && !errors.Is(err, persistence.ErrIntegrity) {
			return err
		}
	}
	return nil
}

// copyTracking copies the tracking records of the follower of leader:
// each tracked position of the source, translated to the notification ID
// of the same event in the target's log of the leader.
func (a *Admin) copyTracking(ctx context.Context, dst *Admin, follower, leader string, rep *CopyReport, c copyConfig) error {
	srcF, err := a.Application(ctx, follower)
	if err != nil {
		return err
	}
	dstF, err := dst.Application(ctx, follower)
	if err != nil {
		return err
	}
	srcL, err := a.Application(ctx, leader)
	if err != nil {
		return err
	}
	dstL, err := dst.Application(ctx, leader)
	if err != nil {
		return err
	}
	from, ok := srcF.Recorder().(persistence.ProcessRecorder)
	if !ok {
		return fmt.Errorf("the source's recorder of %s keeps no tracking records", follower)
	}
	high, err := from.MaxTrackingID(ctx, leader)
	if err != nil || high == 0 {
		return err
	}
	recs := &processRecorders{factory: dstF.Factory(), byName: map[string]persistence.ProcessRecorder{}}
	q := persistence.NotificationQuery{Start: 1, Stop: high, AllTenants: true}
	srcLog := persistence.ReadNotifications(ctx, srcL.Recorder(), q, copyPage)
	dstLog := persistence.ReadNotifications(ctx, dstL.Recorder(), persistence.NotificationQuery{Start: 1, AllTenants: true}, copyPage)
	next, stop := iter.Pull2(dstLog)
	defer stop()
	for s, err := range srcLog {
		if err != nil {
			return err
		}
		t, err, ok := next()
		if err != nil {
			return err
		}
		if !ok || t.Tenant != s.Tenant || t.OriginatorID != s.OriginatorID || t.OriginatorVersion != s.OriginatorVersion {
			return fmt.Errorf("the target's log of %s does not have notification %d of the source (%s version %d) where the copy put it: was it written to since?",
				leader, s.ID, s.OriginatorID, s.OriginatorVersion)
		}
		has, err := from.HasTrackingID(ctx, leader, s.ID)
		if err != nil {
			return err
		}
		if !has {
			continue
		}
		r, err := recs.of(ctx, s.Tenant)
		if err != nil {
			return err
		}
		_, err = r.InsertEvents(ctx, nil, persistence.WithTracking(persistence.Tracking{ApplicationName: leader, NotificationID: t.ID}))
		switch {
		case err == nil:
			rep.Tracking++
		case !errors.Is(err, persistence.ErrIntegrity): // an integrity error: copied before
			return err
		}
		if c.progress != nil {
			c.progress(CopyProgress{Application: follower, Step: "tracking", Done: s.ID, Total: high})
		}
	}
	return nil
}

package system

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/observe"
	"github.com/strata-go/strata/persistence"
)

// ProcessingError is the error of processing one upstream notification:
// decoding it, running the policy, or saving the result. The notification
// is not tracked, so it is processed again when processing resumes.
type ProcessingError struct {
	Follower       string
	Upstream       string
	NotificationID int64
	Err            error
}

func (e *ProcessingError) Error() string {
	return fmt.Sprintf("%s processing notification %d of %s: %v", e.Follower, e.NotificationID, e.Upstream, e.Err)
}

// Unwrap returns the underlying error.
func (e *ProcessingError) Unwrap() error { return e.Err }

// upstream is a leader as one follower sees it.
type upstream struct {
	name      string
	reader    *NotificationLogReader
	mapper    *persistence.Mapper
	attrs     attribute.Set // the follower's and the upstream's names
	spanAttrs []attribute.KeyValue

	// next is the batch that follows the last one recorded whole, of
	// tenant nextTenant: its loads start from the aggregates the last
	// batch recorded (see application.Batch.Next), so that a follower
	// that keeps up does not reload every aggregate from its snapshot at
	// each batch. Guarded by the follower's mu.
	next       *application.Batch
	nextTenant string
}

// visibilityTimeout bounds how long the single-threaded runner waits for a
// save to become visible to readers (see [upstream.awaitVisible]).
const visibilityTimeout = 10 * time.Second

// awaitVisible waits until notification id of up's log is visible to
// readers. It is at once, except on PostgreSQL, where a save becomes
// visible only when the transactions older than it, in any database of the
// cluster, have ended: perhaps just after it returned. Past
// visibilityTimeout it gives up, leaving the notification to be processed
// later.
func (up *upstream) awaitVisible(ctx context.Context, id int64) error {
	wait := time.Millisecond
	deadline := time.Now().Add(visibilityTimeout)
	for {
		// A notification at or after id is visible only if id is.
		items, err := up.reader.log.Select(ctx, id, 1)
		if err != nil {
			return fmt.Errorf("wait for notification %d of %s: %w", id, up.name, err)
		}
		if len(items) > 0 || time.Now().After(deadline) {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, 50*time.Millisecond)
	}
}

// follower processes the notifications of a process application's
// leaders. One pull runs at a time per follower.
type follower struct {
	name      string
	node      Processor
	app       *application.Application
	recorder  persistence.ProcessRecorder
	upstreams []*upstream
	logger    *slog.Logger
	poison    PoisonPolicy
	batchSize int                             // notifications per transaction; 1 for none
	nodes     func(name string) (Node, error) // the runner's applications
	tel       *observe.Telemetry
	mu        sync.Mutex

	// Guarded by mu:
	stopped error  // the poison notification it stopped at, under StopAtPoison
	failing string // the last temporary failure logged, so that it is logged once
}

func newFollower(name string, node Node, logger *slog.Logger, tel *observe.Telemetry) (*follower, error) {
	p, ok := node.(Processor)
	if !ok {
		return nil, fmt.Errorf("%w: %s (%T) follows other applications but has no Policy method", ErrSystem, name, node)
	}
	rec, ok := node.App().Recorder().(persistence.ProcessRecorder)
	if !ok {
		return nil, fmt.Errorf("%w: %s has no process recorder", ErrSystem, name)
	}
	return &follower{name: name, node: p, app: node.App(), recorder: rec, logger: logger.With(observe.KeyFollower, name), tel: tel}, nil
}

func (f *follower) follow(name string, log application.NotificationLog, mapper *persistence.Mapper, opts []ReaderOption) {
	attrs := []attribute.KeyValue{attribute.String(observe.KeyFollower, f.name), attribute.String(observe.KeyUpstream, name)}
	f.upstreams = append(f.upstreams, &upstream{name: name, reader: NewNotificationLogReader(log, opts...), mapper: mapper,
		spanAttrs: attrs, attrs: attribute.NewSet(attrs...)})
}

func (f *follower) upstream(name string) *upstream {
	for _, up := range f.upstreams {
		if up.name == name {
			return up
		}
	}
	return nil
}

// resume lets a follower stopped at a poison notification try it again.
func (f *follower) resume() {
	f.mu.Lock()
	f.stopped = nil
	f.mu.Unlock()
}

// pullAll pulls from every upstream and returns how many notifications it
// processed and the errors.
func (f *follower) pullAll(ctx context.Context, stopping func() bool) (int, error) {
	total := 0
	var errs []error
	for _, up := range f.upstreams {
		n, err := f.pull(ctx, up, stopping)
		total += n
		if err != nil {
			errs = append(errs, err)
		}
	}
	return total, errors.Join(errs...)
}

// pull processes the notifications of up after the last one tracked, in
// order, stopping at the first failure or when stopping says so (between
// notifications: the one in hand is finished).
//
// A temporary failure (a lost connection, a policy's [Temporary] error)
// leaves the notification to be processed again later; it is logged when
// it first happens, not at every attempt. A poison notification is parked
// or stops the follower, as its [PoisonPolicy] says; a stopped follower
// pulls nothing until it is resumed, and its stop is reported once.
func (f *follower) pull(ctx context.Context, up *upstream, stopping func() bool) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped != nil {
		return 0, nil
	}
	n, err := f.pullLocked(ctx, up, stopping)
	switch {
	case err == nil:
		if f.failing != "" {
			f.logger.InfoContext(ctx, "processing works again", observe.KeyUpstream, up.name)
			f.failing = ""
		}
	case ctx.Err() != nil:
		// Stopping: the notification in hand is processed next time.
	case isTemporary(err):
		if msg := err.Error(); msg != f.failing {
			f.logger.WarnContext(ctx, "processing failed; it will be tried again", observe.KeyUpstream, up.name, "error", err)
			f.failing = msg
		}
	default:
		f.stopped = err
		f.logger.ErrorContext(ctx, "follower stopped at a poison notification: fix the cause and resume it, or park it (system.ParkPoison)",
			observe.KeyUpstream, up.name, "error", err)
		err = fmt.Errorf("%w: %w", ErrStopped, err)
	}
	return n, err
}

// pullLocked processes what it pulls from up, traced as one span from its
// first notification on (a pull that finds nothing new, as most polls do,
// leaves no span), recording the results in transactions of up to
// f.batchSize notifications of one tenant each (see [BatchSize]).
func (f *follower) pullLocked(ctx context.Context, up *upstream, stopping func() bool) (n int, err error) {
	last, err := f.recorder.MaxTrackingID(ctx, up.name)
	if err != nil {
		f.tel.Error(ctx, observe.OpFollower, observe.ErrorKind(err), metric.WithAttributeSet(up.attrs))
		return 0, fmt.Errorf("%s: position in %s: %w", f.name, up.name, err)
	}
	var op *observe.Op
	var first, at int64
	pctx := ctx
	defer func() {
		f.tel.Processed(ctx, n, up.attrs)
		if op == nil {
			if err != nil && ctx.Err() == nil {
				f.tel.Error(ctx, observe.OpFollower, observe.ErrorKind(err), metric.WithAttributeSet(up.attrs))
			}
			return
		}
		op.End(pctx, err, attribute.Int(observe.KeyEventCount, n),
			attribute.Int64(observe.KeyFirstNotificationID, first), attribute.Int64(observe.KeyLastNotificationID, at))
	}()
	var b *pending
	if f.batchSize > 1 {
		b = &pending{}
	}
	for note, err := range up.reader.Select(ctx, last+1) {
		if err != nil {
			done, ferr := f.flush(pctx, ctx, up, b)
			n += done
			if ferr != nil {
				return n, ferr
			}
			return n, fmt.Errorf("%s: read %s from notification %d: %w", f.name, up.name, last+1, err)
		}
		if stopping != nil && stopping() {
			break
		}
		if op == nil {
			var o observe.Op
			pctx, o = f.tel.Begin(ctx, observe.SpanFollowerBatch, observe.OpFollower, observe.MetricFollowerBatch, up.attrs, up.spanAttrs...)
			op, first = &o, note.ID
		}
		at = note.ID
		if b != nil {
			if b.batch != nil && (note.Tenant != b.tenant || b.batch.Len() >= f.batchSize) {
				done, err := f.flush(pctx, ctx, up, b)
				n += done
				if err != nil {
					return n, err
				}
			}
			ok, perr := f.batched(pctx, up, note, b)
			if ok {
				continue
			}
			// The policy failed, or the notification cannot be batched:
			// what the batch holds is recorded first, then the
			// notification alone, as without batches. If the policy
			// failed because the work in hand is being cancelled (Stop
			// with a context that ended), the notifications before it,
			// which were processed whole, are recorded all the same, as
			// they would have been one by one, and it is not tried again.
			fctx := pctx
			if perr != nil && ctx.Err() != nil {
				var cancel context.CancelFunc
				fctx, cancel = context.WithTimeout(context.WithoutCancel(pctx), visibilityTimeout)
				defer cancel()
			}
			done, err := f.flush(fctx, ctx, up, b)
			n += done
			if err != nil {
				return n, err
			}
			if perr != nil && ctx.Err() != nil {
				return n, &ProcessingError{Follower: f.name, Upstream: up.name, NotificationID: note.ID, Err: fmt.Errorf("policy: %w", perr)}
			}
		}
		if err := f.processAlone(pctx, ctx, up, note); err != nil {
			return n, err
		}
		n++
	}
	done, err := f.flush(pctx, ctx, up, b)
	return n + done, err
}

// pending is the batch a pull is filling: the results of the
// notifications processed since the last flush, all of one tenant.
type pending struct {
	batch  *application.Batch
	tenant string
	notes  []persistence.Notification
}

// batched runs the policy on note with the batch's working copy and adds
// its results to the batch. It reports false, leaving the batch as it was,
// if the notification is to be processed alone: its policy failed (with
// the policy's error), or it cannot be decoded, or its tenant cannot be
// opened.
func (f *follower) batched(ctx context.Context, up *upstream, note persistence.Notification, b *pending) (bool, error) {
	app, err := f.app.ForTenant(note.Tenant)
	if err != nil {
		return false, nil
	}
	event, err := up.mapper.ToEvent(note.StoredEvent)
	erased := errors.Is(err, persistence.ErrErased)
	if err != nil && !erased {
		return false, nil
	}
	if b.batch == nil {
		b.batch, b.tenant = app.NewBatch(), note.Tenant
		if up.next != nil && up.nextTenant == note.Tenant {
			b.batch = up.next
		}
		up.next = nil
	}
	tracking := persistence.Tracking{ApplicationName: up.name, NotificationID: note.ID}
	p := &Processing{Upstream: up.name, Tracking: tracking, Notification: note, Tenant: note.Tenant, App: app, Commit: causedBy(note), nodes: f.nodes}
	if !erased && !isParkingEvent(event.Data) {
		if err := f.node.Policy(b.batch.Context(ctx), event, p); err != nil {
			return false, err
		}
	}
	if err := b.batch.Add(tracking, p.Commit, p.aggregates...); err != nil {
		return false, nil
	}
	b.notes = append(b.notes, note)
	return true, nil
}

// flush records the batch in hand, if any, and returns how many
// notifications it recorded. If the batch fails, its notifications that
// were not recorded are processed again one by one, from fresh loads, as
// without batches: those before a poison notification are recorded, and
// the poison one is reported (or parked) alone.
func (f *follower) flush(pctx, ctx context.Context, up *upstream, b *pending) (int, error) {
	if b == nil || b.batch == nil {
		return 0, nil
	}
	notes := b.notes
	batch := b.batch
	b.batch, b.notes = nil, nil
	_, err := batch.Save(pctx)
	if err == nil {
		up.next, up.nextTenant = batch.Next(), b.tenant
		return len(notes), nil
	}
	recorded := 0
	var be *persistence.BatchError
	if errors.As(err, &be) {
		recorded = be.Recorded
	}
	f.tel.Retry(ctx, observe.OpFollower, up.attrs)
	n := recorded
	for _, note := range notes[recorded:] {
		if err := f.processAlone(pctx, ctx, up, note); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// processAlone processes one notification in a transaction of its own,
// parking it if it is poison and the follower parks.
func (f *follower) processAlone(pctx, ctx context.Context, up *upstream, note persistence.Notification) error {
	err := f.process(pctx, up, note)
	var poison *PoisonError
	if errors.As(err, &poison) && f.poison == ParkPoison {
		err = f.park(ctx, up, note, poison.Err)
	}
	return err
}

// causedBy returns the commit of what processing note produced: the
// upstream event's correlation ID, or its own ID if it has none, and its
// ID as the causation ID.
func causedBy(note persistence.Notification) application.Commit {
	id := persistence.EventID(note.Tenant, note.OriginatorID, note.OriginatorVersion).String()
	correlation := note.Headers[persistence.HeaderCorrelationID]
	if correlation == "" {
		correlation = id
	}
	return application.Commit{Headers: persistence.Headers{persistence.HeaderCorrelationID: correlation, persistence.HeaderCausationID: id}}
}

// process runs the policy on one notification and records the result with
// its tracking record. A failure that is not temporary is a *PoisonError.
func (f *follower) process(ctx context.Context, up *upstream, note persistence.Notification) error {
	fail := func(err error) error {
		if isTemporary(err) {
			return &ProcessingError{Follower: f.name, Upstream: up.name, NotificationID: note.ID, Err: err}
		}
		return &PoisonError{Follower: f.name, Upstream: up.name, NotificationID: note.ID, Topic: note.Topic, Err: err}
	}
	app, err := f.app.ForTenant(note.Tenant)
	if err != nil {
		return fail(err)
	}
	tracking := persistence.Tracking{ApplicationName: up.name, NotificationID: note.ID}
	event, err := up.mapper.ToEvent(note.StoredEvent)
	// An erased event (its data key was shredded) can never be decoded:
	// it is tracked without its policy, so followers go on past it.
	erased := errors.Is(err, persistence.ErrErased)
	if err != nil && !erased {
		return fail(fmt.Errorf("decode: %w", err))
	}
	const attempts = 5
	for attempt := 1; ; attempt++ {
		p := &Processing{Upstream: up.name, Tracking: tracking, Notification: note, Tenant: note.Tenant, App: app, Commit: causedBy(note), nodes: f.nodes}
		// A leader's parked notifications are its own business.
		if !erased && !isParkingEvent(event.Data) {
			if err := f.node.Policy(ctx, event, p); err != nil {
				return fail(fmt.Errorf("policy: %w", err))
			}
		}
		_, err := app.SaveTrackedCommit(ctx, tracking, p.Commit, p.aggregates...)
		if err == nil {
			return nil
		}
		if errors.Is(err, persistence.ErrIntegrity) {
			done, herr := f.recorder.HasTrackingID(ctx, up.name, note.ID)
			if herr == nil && done {
				return nil // another instance processed it first
			}
			if attempt < attempts {
				f.tel.Retry(ctx, observe.OpFollower, up.attrs)
				continue // an aggregate changed under the policy: run it again
			}
		}
		return fail(err)
	}
}

// lags measures how far the follower is behind each of its upstreams.
func (f *follower) lags(ctx context.Context) ([]observe.Lag, error) {
	var out []observe.Lag
	var errs []error
	for _, up := range f.upstreams {
		last, err := f.recorder.MaxTrackingID(ctx, up.name)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: position in %s: %w", f.name, up.name, err))
			continue
		}
		var opts []application.SelectOption
		if len(up.reader.topics) > 0 {
			opts = append(opts, application.Topics(up.reader.topics...))
		}
		l, err := application.MeasureLag(ctx, up.reader.log, up.mapper, last, opts...)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.name, err))
			continue
		}
		l.Kind, l.Reader, l.Upstream = observe.FollowerLag, f.name, up.name
		f.mu.Lock()
		l.Stopped = f.stopped
		f.mu.Unlock()
		out = append(out, l)
	}
	return out, errors.Join(errs...)
}

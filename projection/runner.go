package projection

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/observe"
	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/system"
)

// Source is an upstream notification log a projection reads.
type Source struct {
	// Name names the upstream application; positions are kept by it.
	Name string
	// Log is the log read, usually every tenant's (app.AllTenants()).
	Log application.NotificationLog
	// Mapper decodes the log's events.
	Mapper *persistence.Mapper
	// Topics, if not empty, are the only topics read.
	Topics []string
	// Prompts, if not nil, receives a value soon after the upstream saves,
	// so that the runner reads at once instead of at its next poll.
	Prompts <-chan struct{}
}

// FromApplication returns the source of app's log, every tenant's,
// prompted by the application's saves in this process (and, on
// PostgreSQL, by other processes' saves through LISTEN, until ctx ends).
// Only the topics given are read, if any.
func FromApplication(ctx context.Context, app *application.Application, topics ...string) Source {
	prompts := make(chan struct{}, 1)
	poke := func() {
		select {
		case prompts <- struct{}{}:
		default:
		}
	}
	app.AddListener(func(context.Context, []application.Recording) { poke() })
	if l, ok := app.Factory().(system.Listener); ok {
		if remote, err := l.Listen(ctx); err == nil {
			go func() {
				for range remote {
					poke()
				}
			}()
		}
	}
	return Source{Name: app.Name(), Log: app.AllTenants(), Mapper: app.Mapper(), Topics: topics, Prompts: prompts}
}

// Option configures a [Runner].
type Option func(*runnerConfig)

type runnerConfig struct {
	batch  int
	linger time.Duration
	poll   time.Duration
	poison system.PoisonPolicy
	logger *slog.Logger
	tel    *observe.Telemetry
}

// BatchSize sets how many events one transaction processes at most when
// the runner follows its sources (default 100). Catching up, a runner
// doubles its batches while they come full, up to 8 times as many (and at
// most application.MaxLimit), so that a rebuild overtakes writers that
// keep the live version busy; it returns to n at the head or after a
// failure.
func BatchSize(n int) Option { return func(c *runnerConfig) { c.batch = max(n, 1) } }

// Linger sets how long a runner at the head, having just processed
// events, waits before its next batch (default 10ms): while writers keep
// saving, each transaction then carries the events of several saves
// instead of one, which halves the writers' throughput on a database with
// one writer at a time (SQLite) and costs a commit per save on any. It
// adds up to d to the time an event takes to reach the model; 0 reads
// again at once.
func Linger(d time.Duration) Option { return func(c *runnerConfig) { c.linger = max(d, 0) } }

// PollInterval sets how often the runner looks for new events when it is
// not prompted (default 500ms).
func PollInterval(d time.Duration) Option { return func(c *runnerConfig) { c.poll = d } }

// WithPoisonPolicy sets what the runner does with an event it cannot
// decode or process (default system.StopAtPoison: it stops, reporting the
// event once; system.ParkPoison records it in the store's parked events and
// goes on).
func WithPoisonPolicy(p system.PoisonPolicy) Option { return func(c *runnerConfig) { c.poison = p } }

// WithLogger sets the logger of the runner's failures.
func WithLogger(l *slog.Logger) Option { return func(c *runnerConfig) { c.logger = l } }

// Runner runs a projection: it reads its sources' events after the
// positions it recorded, and processes them in batches, each batch and the
// positions it reaches in one transaction of the store, so that each event
// is applied once however the runner is stopped or killed. It catches up,
// then follows live, prompted by the sources and polling.
//
// A runner of the live version keeps the live model up to date. A runner
// of a newer version rebuilds: it builds its version's tables beside the
// live ones, catches up from the start of the logs, and, in one
// transaction, switches readers' views to its tables once it is as far as
// the live version, dropping the old version's tables. Readers never see
// an empty or half-built model, and a runner of the old version stops
// (with ErrSuperseded) at its next batch.
type Runner[Tx any] struct {
	store   Store[Tx]
	proj    Projection[Tx]
	sources []Source
	cfg     runnerConfig
	model   Model
	logger  *slog.Logger
	sub     *Subscription
	size    int // the size of the next batch
	// positions are those the last batch recorded; nil when unknown.
	positions map[string]int64

	mu       sync.Mutex
	err      error // the error that stopped it, or the last temporary one
	live     bool  // its version is the live one
	caughtUp bool
	started  int64 // batches begun
	atHead   int64 // the number of the last batch begun that reached the head
	cancel   context.CancelFunc
	done     chan struct{}

	// reached holds the positions of the last batch recorded, for Lags.
	reached map[string]int64
}

// NewRunner returns the runner of proj over store, reading sources.
func NewRunner[Tx any](store Store[Tx], proj Projection[Tx], sources []Source, opts ...Option) (*Runner[Tx], error) {
	if err := checkNames(proj.Name(), proj.Version(), proj.Tables()); err != nil {
		return nil, err
	}
	names := map[string]bool{}
	for _, s := range sources {
		if s.Name == "" || s.Log == nil || s.Mapper == nil || names[s.Name] {
			return nil, fmt.Errorf("%w: projection %s: a source needs a unique name, a log and a mapper", persistence.ErrConfig, proj.Name())
		}
		names[s.Name] = true
	}
	c := runnerConfig{batch: 100, linger: 10 * time.Millisecond, poll: 500 * time.Millisecond, logger: slog.Default()}
	for _, o := range opts {
		o(&c)
	}
	m := Model{Name: proj.Name(), Version: proj.Version()}
	return &Runner[Tx]{store: store, proj: proj, sources: sources, cfg: c, model: m,
		logger: c.logger.With(observe.KeyProjection, m.Name, observe.KeyProjectionVersion, m.Version),
		sub:    &Subscription{sources: sources, poll: c.poll, kick: make(chan struct{}, 1)}, size: c.batch}, nil
}

// Model returns the model the runner builds.
func (r *Runner[Tx]) Model() Model { return r.model }

// Start prepares the store and the model's tables and starts processing in
// a goroutine of its own. A runner of a version older than the live one is
// refused with ErrSuperseded.
func (r *Runner[Tx]) Start(ctx context.Context) error {
	if err := r.store.Prepare(ctx); err != nil {
		return fmt.Errorf("projection %s: %w", r.model.Name, err)
	}
	err := r.store.Transact(ctx, func(ctx context.Context, tx Tx) error {
		live, err := r.store.Live(ctx, tx, r.model.Name)
		if err != nil {
			return err
		}
		if live > r.model.Version {
			return fmt.Errorf("projection %s version %d: %w (version %d)", r.model.Name, r.model.Version, ErrSuperseded, live)
		}
		r.mu.Lock()
		r.live = live == r.model.Version
		r.mu.Unlock()
		if err := r.store.Register(ctx, tx, r.model, slices.Clone(r.proj.Tables())); err != nil {
			return err
		}
		return r.proj.Setup(ctx, tx, r.model)
	})
	if err != nil {
		return fmt.Errorf("start projection %s: %w", r.model.Name, err)
	}
	loop, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.cancel, r.done = cancel, make(chan struct{})
	go r.run(loop)
	return nil
}

// Stop stops processing after the batch in hand, or at once (cancelling
// the batch, which records nothing) when ctx ends.
func (r *Runner[Tx]) Stop(ctx context.Context) error {
	if r.cancel == nil {
		return nil
	}
	r.cancel()
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Err returns the error that stopped the runner (a poison event,
// ErrSuperseded), or the last temporary failure, or nil.
func (r *Runner[Tx]) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Live reports whether the runner's version is the live one.
func (r *Runner[Tx]) Live() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.live
}

// CaughtUp reports whether the runner's last batch reached the end of
// every source, and its version is live.
func (r *Runner[Tx]) CaughtUp() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.live && r.caughtUp
}

func (r *Runner[Tx]) set(f func()) {
	r.mu.Lock()
	f()
	r.mu.Unlock()
}

func (r *Runner[Tx]) run(ctx context.Context) {
	defer close(r.done)
	failing := ""
	for {
		var batchNo int64
		r.set(func() { r.started++; batchNo = r.started })
		n, atHead, err := r.batch(ctx)
		switch {
		case err != nil || atHead:
			r.size = r.cfg.batch
		case n >= r.size:
			r.size = min(r.size*2, r.cfg.batch*8, application.MaxLimit)
		}
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, ErrSuperseded):
			r.logger.InfoContext(ctx, "projection superseded by a newer version; stopping")
			r.set(func() { r.err, r.live = err, false })
			return
		case errors.Is(err, ErrMoved):
			continue // another runner moved on: read from where it is
		case errors.Is(err, errHeld):
			// A newer version is drawing level to replace this one.
			select {
			case <-ctx.Done():
				return
			case <-time.After(heldPause):
			}
			continue
		case err != nil && isTemporary(err):
			if err.Error() != failing {
				r.logger.WarnContext(ctx, "projection failed; it will be tried again", "error", err)
				failing = err.Error()
			}
			r.set(func() { r.err = err })
		case err != nil:
			r.logger.ErrorContext(ctx, "projection stopped at a poison event", "error", err)
			r.set(func() { r.err = err })
			return
		default:
			if failing != "" {
				r.logger.InfoContext(ctx, "projection works again")
				failing = ""
				r.set(func() { r.err = nil })
			}
			if atHead && !r.Live() {
				if err := r.trySwitch(ctx); err != nil && ctx.Err() == nil {
					r.set(func() { r.err = err })
				}
			}
			r.set(func() {
				r.caughtUp = atHead
				if atHead {
					r.atHead = batchNo
				}
			})
			if n > 0 && !atHead {
				continue
			}
			if n > 0 && r.cfg.linger > 0 {
				// At the head, with writers saving: let a few more
				// saves arrive, so that each transaction carries several
				// events rather than competing with every save.
				select {
				case <-ctx.Done():
					return
				case <-time.After(r.cfg.linger):
				}
				continue
			}
		}
		if r.sub.wait(ctx) != nil {
			return
		}
	}
}

// batch reads up to a batch of events after the recorded positions and
// processes them with the positions they reach in one transaction. It
// returns how many it processed and whether it reached the end of every
// source.
func (r *Runner[Tx]) batch(ctx context.Context) (int, bool, error) {
	// The positions are those the runner's last batch recorded, read again
	// after a failure: if another runner of the version moved them since,
	// SetPosition fails with ErrMoved and the next batch reads them.
	positions := r.positions
	if positions == nil {
		err := r.store.Transact(ctx, func(ctx context.Context, tx Tx) error {
			var err error
			positions, err = r.store.Positions(ctx, tx, r.model)
			return err
		})
		if err != nil {
			return 0, false, err
		}
	}
	// Read outside the transaction, which then holds its locks only for
	// the writes.
	r.sub.Seek(positions)
	events, atHead, err := r.sub.Poll(ctx, r.size)
	if err != nil {
		return 0, false, fmt.Errorf("projection %s: %w", r.model.Name, err)
	}
	reached := r.sub.Positions()
	ctx, observed := r.observeBatch(ctx, events, reached)
	var switched bool
	err = r.store.Transact(ctx, func(ctx context.Context, tx Tx) error {
		live, err := r.store.Live(ctx, tx, r.model.Name)
		if err != nil {
			return err
		}
		if live > r.model.Version {
			return fmt.Errorf("projection %s version %d: %w (version %d)", r.model.Name, r.model.Version, ErrSuperseded, live)
		}
		if live == r.model.Version {
			held, err := r.store.Held(ctx, tx, r.model.Name)
			if err != nil {
				return err
			}
			if held > r.model.Version {
				return errHeld
			}
		}
		for _, e := range events {
			if err := r.process(ctx, tx, e); err != nil {
				return err
			}
		}
		for _, s := range r.sources {
			if reached[s.Name] == positions[s.Name] {
				continue
			}
			if err := r.store.SetPosition(ctx, tx, r.model, s.Name, positions[s.Name], reached[s.Name]); err != nil {
				return err
			}
		}
		// A rebuild switches in the batch that brings it level with the
		// live version: waiting for the head could wait forever while
		// writers keep the live version busy.
		switched = live == r.model.Version // perhaps by another runner of it
		if live > 0 && live < r.model.Version {
			switched, err = r.switchIfLevel(ctx, tx, live, reached)
			if err == nil && !switched && atHead {
				// At the head but behind the live version, which moved
				// on while this batch was read: stop it, so that the
				// next batch draws level.
				err = r.store.Hold(ctx, tx, r.model, holdFor)
			}
		}
		return err
	})
	observed(err)
	if errors.Is(err, errHeld) {
		return 0, false, err // nothing written: the positions stand
	}
	if err != nil {
		r.positions = nil
		return 0, false, err
	}
	r.positions = reached
	if switched && !r.Live() {
		r.logger.InfoContext(ctx, "projection version is live")
		r.set(func() { r.live = true })
	}
	return len(events), atHead, nil
}

// switchIfLevel switches to the runner's version in tx if its positions
// (mine) are as far as those of the live version in every source.
func (r *Runner[Tx]) switchIfLevel(ctx context.Context, tx Tx, live int, mine map[string]int64) (bool, error) {
	theirs, err := r.store.Positions(ctx, tx, Model{Name: r.model.Name, Version: live})
	if err != nil {
		return false, err
	}
	for s, p := range theirs {
		if mine[s] < p {
			return false, nil
		}
	}
	if err := r.store.Switch(ctx, tx, r.model, live); err != nil {
		return false, err
	}
	return true, nil
}

// process applies one event, or parks it if it is poison and the policy
// says so.
func (r *Runner[Tx]) process(ctx context.Context, tx Tx, e Event) error {
	if isErased(e) {
		return nil
	}
	var err error
	if e.DecodeErr != nil {
		err = fmt.Errorf("decode: %w", e.DecodeErr)
	} else if err = r.proj.Process(ctx, tx, r.model, e); err != nil {
		err = fmt.Errorf("process: %w", err)
	}
	if err == nil || isTemporary(err) {
		return err
	}
	note := e.Notification
	if r.cfg.poison == system.ParkPoison {
		r.logger.WarnContext(ctx, "event parked", observe.KeyUpstream, e.Upstream, observe.KeyNotificationID, note.ID, observe.KeyTopic, note.Topic, "error", err)
		return r.store.Park(ctx, tx, r.model, e, err)
	}
	return &system.PoisonError{Follower: "projection " + r.model.Name, Upstream: e.Upstream, NotificationID: note.ID, Topic: note.Topic, Err: err}
}

// trySwitch makes the runner's version live if it is as far as the live
// version in every source, in one transaction with the switch.
func (r *Runner[Tx]) trySwitch(ctx context.Context) error {
	switched := false
	err := r.store.Transact(ctx, func(ctx context.Context, tx Tx) error {
		live, err := r.store.Live(ctx, tx, r.model.Name)
		if err != nil {
			return err
		}
		if live > r.model.Version {
			return fmt.Errorf("projection %s version %d: %w (version %d)", r.model.Name, r.model.Version, ErrSuperseded, live)
		}
		if live == r.model.Version {
			switched = true
			return nil
		}
		if live > 0 {
			mine, err := r.store.Positions(ctx, tx, r.model)
			if err != nil {
				return err
			}
			if switched, err = r.switchIfLevel(ctx, tx, live, mine); err == nil && !switched {
				err = r.store.Hold(ctx, tx, r.model, holdFor)
			}
			return err
		}
		if err := r.store.Switch(ctx, tx, r.model, live); err != nil {
			return err
		}
		switched = true
		return nil
	})
	if err != nil {
		return err
	}
	if switched {
		r.logger.InfoContext(ctx, "projection version is live")
		r.set(func() { r.live = true })
	}
	return nil
}

// errHeld means the batch of a live version was not recorded because a
// newer version holds the projection to draw level with it.
var errHeld = errors.New("a newer version of the projection holds it to draw level")

const (
	// holdFor is how long a rebuild at the head stops the live version.
	// It lasts a few batches, so that a hold lapses soon if its rebuild
	// dies, and is renewed while the rebuild is still behind.
	holdFor = 2 * time.Second
	// heldPause is how long a held live version waits between looks at
	// whether the hold has ended.
	heldPause = 10 * time.Millisecond
)

func isTemporary(err error) bool {
	return errors.Is(err, system.ErrTemporary) || errors.Is(err, persistence.ErrOperational) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// DropVersion drops the tables and positions of version m of a projection
// that is not live: a rebuild given up. Stop its runner first. Dropping
// the live version is refused.
func DropVersion[Tx any](ctx context.Context, store Store[Tx], m Model) error {
	return store.Transact(ctx, func(ctx context.Context, tx Tx) error {
		live, err := store.Live(ctx, tx, m.Name)
		if err != nil {
			return err
		}
		if live == m.Version {
			return fmt.Errorf("%w: projection %s version %d is live; a newer version replaces it", persistence.ErrConfig, m.Name, m.Version)
		}
		return store.Drop(ctx, tx, m)
	})
}

// Wait waits until the runner's version is live and it has processed
// every event its sources let readers see when Wait was called, or until
// the runner stops: it then returns the error that stopped it. It is for
// tests and for programs that serve a model only once it is built.
//
// On PostgreSQL a save becomes visible to readers once every transaction
// that began before it ended has ended, anywhere in the cluster (see
// docs/postgres.md): to wait for saves of one's own, use [Runner.WaitFor]
// with their notification IDs.
func (r *Runner[Tx]) Wait(ctx context.Context) error {
	return r.waitBatch(ctx)
}

// WaitFor waits until the runner's version is live and it has processed
// the upstream notifications up to the given IDs, by source name (for
// example the NotificationID of the last [application.Recording] a save
// returned), whatever their topics, or until the runner stops: it then
// returns the error that stopped it.
func (r *Runner[Tx]) WaitFor(ctx context.Context, positions map[string]int64) error {
	for name, id := range positions {
		i := slices.IndexFunc(r.sources, func(s Source) bool { return s.Name == name })
		if i < 0 {
			return fmt.Errorf("%w: projection %s has no source %q", persistence.ErrConfig, r.model.Name, name)
		}
		// Wait until the notification is visible to readers of its log:
		// a batch begun after that has then read past it, even if the
		// runner's topics skip it.
		for {
			ns, err := r.sources[i].Log.Select(ctx, max(id, 1), 1)
			if err != nil {
				return fmt.Errorf("projection %s waiting for notification %d of %s: %w", r.model.Name, id, name, err)
			}
			if len(ns) > 0 {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("projection %s waiting for notification %d of %s to be visible: %w", r.model.Name, id, name, ctx.Err())
			case <-time.After(2 * time.Millisecond):
			}
		}
	}
	return r.waitBatch(ctx)
}

// waitBatch waits until a batch begun after the call has reached the head
// of every source with the runner's version live.
func (r *Runner[Tx]) waitBatch(ctx context.Context) error {
	var after int64
	r.set(func() { after = r.started })
	select {
	case r.sub.kick <- struct{}{}:
	default:
	}
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		var ok bool
		r.set(func() { ok = r.live && r.atHead > after })
		if ok {
			return nil
		}
		if r.done != nil {
			select {
			case <-r.done:
				if err := r.Err(); err != nil {
					return err
				}
				return fmt.Errorf("projection %s: the runner stopped", r.model.Name)
			default:
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("projection %s version %d waiting to catch up: %w (last error: %v)", r.model.Name, r.model.Version, ctx.Err(), r.Err())
		case <-tick.C:
		}
	}
}

package system

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/domain"
	"github.com/strata-go/strata/observe"
	"github.com/strata-go/strata/persistence"
)

// Runner runs a system: it builds the applications, makes followers
// follow their leaders, and processes notifications until stopped.
type Runner interface {
	// Start builds the applications and starts processing, beginning with
	// whatever the followers have not processed yet.
	Start(ctx context.Context) error
	// Stop stops processing gracefully: the notification in hand is
	// finished (its result saved, or not at all), then the applications
	// are closed. If ctx ends first, the work in hand is cancelled, which
	// records nothing of it.
	Stop(ctx context.Context) error
	// Get returns the named application.
	Get(name string) (Node, error)
	// Err returns the processing errors since the last call, joined, or
	// nil. An error that repeats is reported once.
	Err() error
	// Resume makes the named follower, stopped at a poison notification
	// (see [StopAtPoison]), try it again.
	Resume(follower string) error
	// RetryParked processes again a notification of upstream that the
	// named follower parked (see [ParkPoison]): if its policy succeeds,
	// the results are saved atomically with the parked record's change,
	// and the notification is no longer parked. Errors wrap [ErrNotParked]
	// if it is not parked.
	RetryParked(ctx context.Context, follower, upstream string, notificationID int64) error
	// SkipParked marks a parked notification skipped, with a reason.
	SkipParked(ctx context.Context, follower, upstream string, notificationID int64, reason string) error
}

// Errors of runners.
var (
	// ErrStarted means Start was called on a runner already started.
	ErrStarted = errors.New("runner is already started")
	// ErrNotStarted means the runner was not started (or was stopped).
	ErrNotStarted = errors.New("runner is not started")
	// ErrUnknownApplication means a name that is not in the system.
	ErrUnknownApplication = errors.New("unknown application")
)

// Get returns the application named name as type T.
func Get[T Node](r Runner, name string) (T, error) {
	var zero T
	n, err := r.Get(name)
	if err != nil {
		return zero, err
	}
	t, ok := n.(T)
	if !ok {
		return zero, fmt.Errorf("%s is a %T, not a %T", name, n, zero)
	}
	return t, nil
}

// Option configures a runner.
type Option func(*config)

type config struct {
	poison     map[string]PoisonPolicy // by follower; "" for the default
	env        []map[string]string
	appOpts    map[string][]application.Option
	logger     *slog.Logger
	poll       time.Duration
	hosting    []string
	remote     map[string]application.NotificationLog
	readerOpts []ReaderOption
	listen     bool
	processEnv bool
	telemetry  *observe.Telemetry
	batchSize  int
	batchWait  time.Duration
}

func newRunnerConfig(opts []Option) *config {
	c := &config{appOpts: map[string][]application.Option{}, remote: map[string]application.NotificationLog{}, poison: map[string]PoisonPolicy{},
		logger: slog.Default(), poll: 500 * time.Millisecond, listen: true, processEnv: true, batchSize: DefaultBatchSize, batchWait: DefaultBatchWait}
	for _, o := range opts {
		o(c)
	}
	return c
}

// WithPoisonPolicy sets what the named followers (all of them, if none is
// named) do with a poison notification (default [StopAtPoison]).
func WithPoisonPolicy(p PoisonPolicy, followers ...string) Option {
	return func(c *config) {
		if len(followers) == 0 {
			c.poison[""] = p
		}
		for _, f := range followers {
			c.poison[f] = p
		}
	}
}

func (c *config) poisonPolicy(follower string) PoisonPolicy {
	if p, ok := c.poison[follower]; ok {
		return p
	}
	return c.poison[""]
}

// DefaultBatchSize is how many notifications a follower processes at most
// in one transaction unless [BatchSize] says otherwise.
const DefaultBatchSize = 100

// BatchSize sets how many upstream notifications a follower processes at
// most in one transaction (default [DefaultBatchSize]; 1 processes each in
// its own). A batch holds the notifications that are there to be read, so
// a follower that keeps up records each as it comes, and one that falls
// behind records many per commit: their results and tracking records are
// recorded together, exactly once (see application.Batch), and a policy's
// loads of an aggregate already in the batch are served from the batch.
// If a batch fails (a poison notification, a conflict), its
// notifications are processed again one by one, so that those before the
// failing one are recorded and it alone is reported or parked. A
// processor whose policies act outside its application before their
// results are recorded processes alone (see [AloneProcessor]).
func BatchSize(n int) Option {
	return func(c *config) { c.batchSize = max(n, 1) }
}

// DefaultBatchWait is how long a concurrent runner's follower waits after
// a pull that processed something unless [BatchWait] says otherwise.
const DefaultBatchWait = 20 * time.Millisecond

// BatchWait makes a concurrent runner's follower, after a pull that
// processed something, wait d before it pulls again (default
// [DefaultBatchWait]; 0 pulls at once), so that
// a follower that keeps up commits a batch every d rather than a
// transaction for each of its leaders' saves: fewer commits that compete
// with the leaders' for the database, at the cost of up to d of lag. A
// follower that is behind is not held up: a pull processes everything
// there is, a batch at a time. A notification saved after a quiet spell is
// processed at once; only a steady stream is gathered.
func BatchWait(d time.Duration) Option {
	return func(c *config) { c.batchWait = max(d, 0) }
}

// WithEnv gives every application these environment variables (see
// application.WithEnv).
func WithEnv(vars map[string]string) Option {
	return func(c *config) { c.env = append(c.env, vars) }
}

// WithAppOptions gives the named application more options.
func WithAppOptions(name string, opts ...application.Option) Option {
	return func(c *config) { c.appOpts[name] = append(c.appOpts[name], opts...) }
}

// WithTelemetry makes the runner's followers and the applications it
// builds trace and measure their work with t (default: observe.Default(),
// OpenTelemetry's global providers).
func WithTelemetry(t *observe.Telemetry) Option { return func(c *config) { c.telemetry = t } }

// WithLogger sets the logger of processing errors (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// PollInterval sets how often a concurrent runner's followers look for
// new notifications without being prompted (default 500ms), so that a lost
// prompt delays processing but never stalls it.
func PollInterval(d time.Duration) Option { return func(c *config) { c.poll = d } }

// Hosting makes a concurrent runner process only the named followers. The
// other applications are built only so that their logs can be read (from
// the shared database), or come from [WithRemoteLog]. Each process of a
// system spread over processes hosts its own share.
func Hosting(names ...string) Option {
	return func(c *config) { c.hosting = append(c.hosting, names...) }
}

// WithRemoteLog makes followers read the named leader's notifications from
// log, such as an httpapi.Client, instead of building the leader. Its
// events are decoded with a mapper configured by the environment under the
// leader's name (its CIPHER_KEY, COMPRESSOR_TOPIC) and its system types.
func WithRemoteLog(name string, log application.NotificationLog) Option {
	return func(c *config) { c.remote[name] = log }
}

// WithReaderOptions configures the followers' notification log readers.
func WithReaderOptions(opts ...ReaderOption) Option {
	return func(c *config) { c.readerOpts = append(c.readerOpts, opts...) }
}

// WithoutListening stops a concurrent runner from subscribing to
// notifications of saves in other processes (PostgreSQL LISTEN).
func WithoutListening() Option { return func(c *config) { c.listen = false } }

// Listener is implemented by persistence factories that can announce saves
// made by other processes, such as PostgreSQL's with LISTEN/NOTIFY.
type Listener interface {
	Listen(ctx context.Context) (<-chan struct{}, error)
}

// base is what both runners share.
type base struct {
	sys       *System
	cfg       *config
	mu        sync.Mutex
	nodes     map[string]Node
	followers map[string]*follower
	order     []string // followers in system order
	started   bool
	errs      []error
	wakeup    func(follower string) // prompts a follower, for runners that can
}

func (b *base) Get(name string) (Node, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.started {
		return nil, ErrNotStarted
	}
	n, ok := b.nodes[name]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownApplication, name)
	}
	return n, nil
}

// node returns a built application without the runner's lock, which a
// pull may hold: nodes do not change while the runner runs.
func (b *base) node(name string) (Node, error) {
	if n, ok := b.nodes[name]; ok {
		return n, nil
	}
	return nil, fmt.Errorf("%w %q: not built in this process", ErrUnknownApplication, name)
}

func (b *base) Err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	err := errors.Join(b.errs...)
	b.errs = nil
	return err
}

func (b *base) fail(err error) {
	if err == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	// A failure that repeats at every poll is reported once until read.
	for _, e := range b.errs {
		if e.Error() == err.Error() {
			return
		}
	}
	b.errs = append(b.errs, err)
}

func (b *base) follower(name string) (*follower, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.started {
		return nil, ErrNotStarted
	}
	f := b.followers[name]
	if f == nil {
		if _, ok := b.sys.defs[name]; !ok {
			return nil, fmt.Errorf("%w %q", ErrUnknownApplication, name)
		}
		return nil, fmt.Errorf("%w: %s is not a follower this runner hosts", ErrUnknownApplication, name)
	}
	return f, nil
}

// Lags measures how far each follower the runner hosts is behind each of
// its upstream logs (see application.MeasureLag), so that a runner is an
// observe.LagSource for metrics (observe.Telemetry.ObserveLags) and health
// checks. A runner that is not started has none.
func (b *base) Lags(ctx context.Context) ([]observe.Lag, error) {
	b.mu.Lock()
	var followers []*follower
	if b.started {
		for _, name := range b.order {
			followers = append(followers, b.followers[name])
		}
	}
	b.mu.Unlock()
	var out []observe.Lag
	var errs []error
	for _, f := range followers {
		lags, err := f.lags(ctx)
		out = append(out, lags...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return out, errors.Join(errs...)
}

// Resume makes a follower stopped at a poison notification try it again;
// a concurrent runner's follower does so at once.
func (b *base) Resume(name string) error {
	f, err := b.follower(name)
	if err != nil {
		return err
	}
	f.resume()
	if b.wakeup != nil {
		b.wakeup(name)
	}
	return nil
}

// RetryParked processes a parked notification again (see Runner).
func (b *base) RetryParked(ctx context.Context, follower, upstream string, id int64) error {
	f, err := b.follower(follower)
	if err != nil {
		return err
	}
	return f.retryParked(ctx, upstream, id)
}

// SkipParked marks a parked notification skipped (see Runner).
func (b *base) SkipParked(ctx context.Context, follower, upstream string, id int64, reason string) error {
	f, err := b.follower(follower)
	if err != nil {
		return err
	}
	if f.upstream(upstream) == nil {
		return fmt.Errorf("skip notification %d: %w %q: %s does not follow it", id, ErrUnknownApplication, upstream, follower)
	}
	return skipParked(ctx, f.app, follower, upstream, id, reason)
}

func (b *base) hosted(name string) bool {
	return len(b.cfg.hosting) == 0 || slices.Contains(b.cfg.hosting, name)
}

// build constructs the applications and followers. Applications that are
// remote are not built; others are built if they are hosted or lead a
// hosted follower.
func (b *base) build(ctx context.Context) error {
	for _, h := range b.cfg.hosting {
		if _, ok := b.sys.defs[h]; !ok {
			return fmt.Errorf("hosting: %w %q", ErrUnknownApplication, h)
		}
	}
	needed := map[string]bool{}
	for _, name := range b.sys.order {
		if b.hosted(name) {
			needed[name] = true
			for _, l := range b.sys.leaders[name] {
				needed[l] = true
			}
		}
	}
	b.nodes = map[string]Node{}
	b.followers = map[string]*follower{}
	b.order = nil // a runner started again builds its followers afresh
	for _, name := range b.sys.order {
		if !needed[name] || b.cfg.remote[name] != nil {
			continue
		}
		opts := []application.Option{}
		for _, e := range b.cfg.env {
			opts = append(opts, application.WithEnv(e))
		}
		if b.cfg.logger != nil {
			opts = append(opts, application.WithLogger(b.cfg.logger))
		}
		if b.cfg.telemetry != nil {
			opts = append(opts, application.WithTelemetry(b.cfg.telemetry))
		}
		opts = append(opts, b.cfg.appOpts[name]...)
		n, err := b.sys.build(ctx, name, opts)
		if err != nil {
			b.closeNodes()
			return err
		}
		b.nodes[name] = n
	}
	for _, name := range b.sys.order {
		if !b.hosted(name) || !b.sys.IsFollower(name) {
			continue
		}
		f, err := newFollower(name, b.nodes[name], b.cfg.logger, observe.Or(b.cfg.telemetry))
		if err != nil {
			b.closeNodes()
			return err
		}
		f.poison = b.cfg.poisonPolicy(name)
		f.batchSize = b.cfg.batchSize
		if a, ok := b.nodes[name].(AloneProcessor); ok && a.ProcessAlone() {
			f.batchSize = 1
		}
		f.nodes = b.node
		for _, l := range b.sys.leaders[name] {
			log, mapper, err := b.upstreamOf(l, f.app)
			if err != nil {
				b.closeNodes()
				return err
			}
			f.follow(l, log, mapper, b.cfg.readerOpts)
		}
		b.followers[name] = f
		b.order = append(b.order, name)
	}
	return nil
}

// upstreamOf returns the log of leader and the mapper that decodes its
// events for the follower app. The leader's types are those of its
// definition (and of parked notifications), not whatever its constructor
// registered: a process that hosts only followers builds a leader only to
// read its log.
func (b *base) upstreamOf(leader string, app *application.Application) (application.NotificationLog, *persistence.Mapper, error) {
	types, err := domain.NewRegistry(b.sys.defs[leader].Types, ParkingTypes)
	if err != nil {
		return nil, nil, fmt.Errorf("types of %s: %w", leader, err)
	}
	if log := b.cfg.remote[leader]; log != nil {
		layers := []map[string]string{}
		if b.cfg.processEnv {
			layers = append(layers, persistence.ProcessEnv())
		}
		layers = append(layers, b.cfg.env...)
		mapper, err := persistence.NewMapperFromEnv(persistence.NewEnv(leader, layers...), types)
		if err != nil {
			return nil, nil, fmt.Errorf("mapper of %s: %w", leader, err)
		}
		return log, mapper, nil
	}
	l := b.nodes[leader].App()
	log := application.NewLocalNotificationLog(l.Recorder(), types).AcrossTenants()
	return log, l.Mapper().WithTypes(types), nil
}

func (b *base) closeNodes() {
	for _, n := range b.nodes {
		n.App().Close()
	}
}

// SingleThreadedRunner runs a system in the goroutine that saves: when a
// leader saves, its followers process the new notifications before the
// save returns, then their followers, and so on. It is deterministic,
// which makes it the runner for tests.
type SingleThreadedRunner struct {
	base
	queue      []prompt
	processing bool
	ctx        context.Context
}

// prompt is a save of a leader: its followers are to process up to the
// last notification it recorded.
type prompt struct {
	leader string
	last   int64
}

// NewSingleThreadedRunner returns a runner of sys.
func NewSingleThreadedRunner(sys *System, opts ...Option) *SingleThreadedRunner {
	return &SingleThreadedRunner{base: base{sys: sys, cfg: newRunnerConfig(opts)}}
}

// Start builds the applications and processes what followers have not.
func (r *SingleThreadedRunner) Start(ctx context.Context) error {
	r.mu.Lock()
	if r.started {
		r.mu.Unlock()
		return ErrStarted
	}
	if err := r.build(ctx); err != nil {
		r.mu.Unlock()
		return err
	}
	r.started = true
	r.ctx = context.WithoutCancel(ctx)
	r.mu.Unlock()
	for name, n := range r.nodes {
		if len(r.sys.follows[name]) > 0 {
			name := name
			n.App().AddListener(func(ctx context.Context, recorded []application.Recording) {
				r.prompt(ctx, prompt{name, recorded[len(recorded)-1].NotificationID})
			})
		}
	}
	// What the followers could not process is reported by Err and logged;
	// the runner is started all the same.
	_ = r.Process(ctx)
	return nil
}

// Process makes every follower process what it has not processed yet, and
// returns the errors. Call it to resume after fixing what made a policy
// fail: followers stopped at a poison notification try it again.
func (r *SingleThreadedRunner) Process(ctx context.Context) error {
	var errs []error
	for _, name := range r.order {
		r.followers[name].resume()
		if _, err := r.followers[name].pullAll(ctx, nil); err != nil {
			errs = append(errs, err)
			r.fail(err)
		}
	}
	return errors.Join(errs...)
}

// prompt queues the followers of the prompting leader and, unless a prompt
// is already being handled further up the stack, handles the queue.
func (r *SingleThreadedRunner) prompt(ctx context.Context, p prompt) {
	r.mu.Lock()
	r.queue = append(r.queue, p)
	if r.processing || !r.started {
		r.mu.Unlock()
		return
	}
	r.processing = true
	r.mu.Unlock()
	for {
		r.mu.Lock()
		if len(r.queue) == 0 {
			r.processing = false
			r.mu.Unlock()
			return
		}
		next := r.queue[0]
		r.queue = r.queue[1:]
		r.mu.Unlock()
		for _, name := range r.sys.follows[next.leader] {
			f := r.followers[name]
			if f == nil {
				continue
			}
			for _, up := range f.upstreams {
				if up.name == next.leader {
					if err := up.awaitVisible(ctx, next.last); err != nil {
						r.fail(fmt.Errorf("%s: %w", f.name, err))
					}
					if _, err := f.pull(ctx, up, nil); err != nil {
						r.fail(err)
					}
				}
			}
		}
	}
}

// Stop waits for the notifications being processed in other goroutines,
// then closes the applications.
func (r *SingleThreadedRunner) Stop(context.Context) error {
	r.mu.Lock()
	if !r.started {
		r.mu.Unlock()
		return ErrNotStarted
	}
	r.started = false
	r.mu.Unlock()
	for _, name := range r.order {
		// A follower's lock is held while it pulls: taking it waits for
		// the pull in hand, and keeping it stops new ones.
		r.followers[name].mu.Lock()
		defer r.followers[name].mu.Unlock()
	}
	r.closeNodes()
	return nil
}

// ConcurrentRunner runs each hosted follower in a goroutine of its own.
// Followers are prompted when a leader in this process saves, when a
// leader in another process saves (if the leader's store can announce
// saves, as PostgreSQL's does with LISTEN/NOTIFY), and on a poll interval,
// so that a lost prompt never stalls them.
type ConcurrentRunner struct {
	base
	wakes    map[string]chan struct{}
	stopping atomic.Bool
	loop     context.CancelFunc
	work     context.CancelFunc
	wg       *sync.WaitGroup // of this start's goroutines
}

// NewConcurrentRunner returns a runner of sys.
func NewConcurrentRunner(sys *System, opts ...Option) *ConcurrentRunner {
	return &ConcurrentRunner{base: base{sys: sys, cfg: newRunnerConfig(opts)}}
}

// Start builds the applications and starts a goroutine per hosted
// follower.
func (r *ConcurrentRunner) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		return ErrStarted
	}
	if err := r.build(ctx); err != nil {
		return err
	}
	loopCtx, loop := context.WithCancel(context.WithoutCancel(ctx))
	workCtx, work := context.WithCancel(context.WithoutCancel(ctx))
	r.loop, r.work = loop, work
	r.wg = new(sync.WaitGroup)
	wg := r.wg
	r.stopping.Store(false)
	r.wakes = map[string]chan struct{}{}
	for _, name := range r.order {
		r.wakes[name] = make(chan struct{}, 1)
	}
	// Prompts from leaders in this process.
	for name, n := range r.nodes {
		followers := r.localFollowers(name)
		if len(followers) > 0 {
			n.App().AddListener(func(context.Context, []application.Recording) { r.wake(followers) })
		}
	}
	// Prompts from other processes.
	if r.cfg.listen {
		for leader, n := range r.nodes {
			followers := r.localFollowers(leader)
			l, ok := n.App().Factory().(Listener)
			if len(followers) == 0 || !ok {
				continue
			}
			prompts, err := l.Listen(loopCtx)
			if err != nil {
				r.cfg.logger.WarnContext(ctx, "cannot listen for saves; polling instead", observe.KeyUpstream, leader, "error", err)
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range prompts {
					r.wake(followers)
				}
			}()
		}
	}
	for _, name := range r.order {
		wg.Add(1)
		go r.run(loopCtx, workCtx, wg, r.followers[name], r.wakes[name])
	}
	wakes := r.wakes
	r.wakeup = func(name string) {
		select {
		case wakes[name] <- struct{}{}:
		default:
		}
	}
	r.started = true
	return nil
}

func (r *ConcurrentRunner) localFollowers(leader string) []string {
	var out []string
	for _, f := range r.sys.follows[leader] {
		if r.followers[f] != nil {
			out = append(out, f)
		}
	}
	return out
}

func (r *ConcurrentRunner) wake(followers []string) {
	for _, f := range followers {
		select {
		case r.wakes[f] <- struct{}{}:
		default:
		}
	}
}

// run is a follower's goroutine. After a prompt it looks again a few times
// at growing intervals: in PostgreSQL a new event becomes visible to
// readers only when older transactions have ended, which may be just after
// the prompt.
func (r *ConcurrentRunner) run(loopCtx, workCtx context.Context, wg *sync.WaitGroup, f *follower, wake <-chan struct{}) {
	defer wg.Done()
	poll := time.NewTimer(0) // catch up at once
	defer poll.Stop()
	recheck := time.Duration(0)
	for {
		select {
		case <-loopCtx.Done():
			return
		case <-wake:
			recheck = time.Millisecond
		case <-poll.C:
		}
		processed, err := f.pullAll(workCtx, r.stopping.Load)
		r.fail(err)
		if r.stopping.Load() {
			return
		}
		if processed > 0 && r.cfg.batchWait > 0 && f.batchSize > 1 {
			// Let the next batch gather, rather than commit as often as
			// the leaders do (see BatchWait); prompts meanwhile wait in
			// the wake channel.
			t := time.NewTimer(r.cfg.batchWait)
			select {
			case <-loopCtx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		next := r.cfg.poll
		switch {
		case err != nil:
			recheck = 0 // retry at the poll interval, not in a tight loop
		case recheck > 0 && recheck < r.cfg.poll:
			// Even after a pull that processed something: the prompting
			// save itself may not have been visible yet.
			next = recheck
			recheck *= 4
		default:
			recheck = 0
		}
		if !poll.Stop() {
			select {
			case <-poll.C:
			default:
			}
		}
		poll.Reset(next)
	}
}

// Stop stops the followers after the notifications in hand and closes the
// applications. If ctx ends first, the work in hand is cancelled (it
// records nothing) and Stop returns ctx's error at once, even if a policy
// ignores its context: the applications are then closed when the last
// policy returns.
func (r *ConcurrentRunner) Stop(ctx context.Context) error {
	r.mu.Lock()
	if !r.started {
		r.mu.Unlock()
		return ErrNotStarted
	}
	r.started = false
	wg, nodes := r.wg, r.nodes
	r.mu.Unlock()
	r.stopping.Store(true)
	r.loop()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	closeNodes := func() {
		for _, n := range nodes {
			n.App().Close()
		}
	}
	select {
	case <-done:
		r.work()
		closeNodes()
		return nil
	case <-ctx.Done():
		r.work() // give up the work in hand: it records nothing
		go func() { <-done; closeNodes() }()
		return ctx.Err()
	}
}

package application

import (
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"strconv"

	"github.com/strata-go/strata/domain"
	"github.com/strata-go/strata/observe"
	"github.com/strata-go/strata/persistence"
)

// Option configures an application. Options are settings in code: the
// environment variables they correspond to override them.
type Option func(*config)

type config struct {
	settings      map[string]string
	env           []map[string]string
	processEnv    bool
	types         []domain.Def
	transcodings  []persistence.Transcoding
	mapperOpts    []persistence.MapperOption
	factory       persistence.Factory
	tracking      bool
	snapshotStore bool
	sectionSize   int
	detector      *ConflictDetector
	logger        *slog.Logger
	telemetry     *observe.Telemetry
	intervals     map[reflect.Type]int64
	err           error
}

func newConfig() *config {
	return &config{settings: map[string]string{}, processEnv: true, intervals: map[reflect.Type]int64{}}
}

// WithTypes registers the domain's persisted types: its aggregates and
// events (and those of the applications it follows).
func WithTypes(defs ...domain.Def) Option {
	return func(c *config) { c.types = append(c.types, defs...) }
}

// WithEnv gives environment variables that override the process
// environment, as the reference design's env argument does. Several maps
// may be given; later ones win.
func WithEnv(vars map[string]string) Option {
	return func(c *config) { c.env = append(c.env, maps.Clone(vars)) }
}

// WithSettings gives default values of environment variables, overridden
// by the process environment and by [WithEnv], like the class attributes of
// the reference design.
func WithSettings(vars map[string]string) Option {
	return func(c *config) { maps.Copy(c.settings, vars) }
}

// WithoutProcessEnv makes the application ignore the process environment,
// so that only options and [WithEnv] configure it.
func WithoutProcessEnv() Option {
	return func(c *config) { c.processEnv = false }
}

// WithSnapshotting enables or disables the snapshot store, like
// IS_SNAPSHOTTING_ENABLED (which overrides it).
func WithSnapshotting(enabled bool) Option {
	return func(c *config) { c.settings["IS_SNAPSHOTTING_ENABLED"] = strconv.FormatBool(enabled) }
}

// WithSnapshotThreshold enables automatic snapshots by threshold: after a
// save, an aggregate is snapshotted when it has at least n events since its
// last snapshot (n <= 0 means the default, 10). SNAPSHOT_THRESHOLD
// overrides it.
func WithSnapshotThreshold(n int) Option {
	return func(c *config) {
		if n <= 0 {
			n = DefaultSnapshotThreshold
		}
		c.settings["SNAPSHOT_THRESHOLD"] = strconv.Itoa(n)
	}
}

// SnapshotInterval enables automatic snapshots of aggregates of type T
// every n versions: when a save takes an aggregate to or past a multiple of
// n, it is snapshotted.
func SnapshotInterval[T any, PT interface {
	*T
	domain.Root
}](n int64) Option {
	return func(c *config) {
		if n <= 0 {
			c.err = fmt.Errorf("%w: snapshot interval %d of %s is not positive", persistence.ErrConfig, n, reflect.TypeFor[T]())
			return
		}
		c.intervals[reflect.TypeFor[PT]()] = n
	}
}

// WithSnapshotStore opens the snapshot store whatever
// IS_SNAPSHOTTING_ENABLED says, so that snapshots can be taken on demand
// and are used when loading; automatic snapshots still follow the
// environment. Operators' tools, which snapshot on demand, use it. The
// variable's value is checked all the same.
func WithSnapshotStore() Option {
	return func(c *config) { c.snapshotStore = true }
}

// WithConflictDetector makes every save of the application resolve version
// conflicts with d: when another writer recorded versions first, the
// commits this writer had not seen are compared with the save's events by
// d, and if none conflicts, the save's events are applied again on top of
// them (so that the aggregate's rules are checked again) and saved, up to
// d's attempts. See [ConflictDetector].
func WithConflictDetector(d *ConflictDetector) Option {
	return func(c *config) { c.detector = d }
}

// WithSectionSize sets the most notifications one section of the
// application's log holds (default [DefaultSectionSize]), as the reference
// design's section_size does. A section asked for as "1,10" holds at most
// ten either way.
func WithSectionSize(n int) Option {
	return func(c *config) {
		if n < 1 || n > MaxLimit {
			c.err = fmt.Errorf("%w: section size %d is not between 1 and %d", persistence.ErrConfig, n, MaxLimit)
			return
		}
		c.sectionSize = n
	}
}

// WithTranscodings registers transcodings for value types in the
// application's events.
func WithTranscodings(ts ...persistence.Transcoding) Option {
	return func(c *config) { c.transcodings = append(c.transcodings, ts...) }
}

// WithMapperOptions adds mapper options (a cipher, a compressor, another
// transcoder) after those the environment configures.
func WithMapperOptions(opts ...persistence.MapperOption) Option {
	return func(c *config) { c.mapperOpts = append(c.mapperOpts, opts...) }
}

// WithFactory makes the application use an open persistence factory
// instead of opening one from the environment. The caller keeps ownership:
// closing the application does not close it.
func WithFactory(f persistence.Factory) Option {
	return func(c *config) { c.factory = f }
}

// WithTracking makes the application record its events with a process
// recorder, so that it can save tracking records with [Application.SaveTracked].
// Process applications in a system need it.
func WithTracking() Option {
	return func(c *config) { c.tracking = true }
}

// WithLogger sets the logger of the application's background failures,
// such as automatic snapshots that could not be taken (default:
// slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger = l }
}

// WithTelemetry makes the application trace and measure its saves, gets
// and selects with t (default: observe.Default(), OpenTelemetry's global
// providers, which record nothing until a program sets them).
func WithTelemetry(t *observe.Telemetry) Option {
	return func(c *config) { c.telemetry = t }
}

// DefaultSnapshotThreshold is the snapshot threshold when threshold
// snapshotting is enabled without a number.
const DefaultSnapshotThreshold = 10

func (c *config) snapshotPolicy(env persistence.Env, types *domain.Registry) (*snapshotPolicy, error) {
	p := &snapshotPolicy{intervals: c.intervals}
	threshold, err := env.Int("SNAPSHOT_THRESHOLD", 0, 0)
	if err != nil {
		return p, err
	}
	p.threshold = int64(threshold)
	// Intervals and a threshold imply snapshotting, unless the environment
	// turns it off.
	p.enabled, err = env.Bool("IS_SNAPSHOTTING_ENABLED", len(p.intervals) > 0 || p.threshold > 0)
	if err != nil {
		return p, err
	}
	if !p.enabled {
		p.threshold, p.intervals = 0, nil
	}
	p.enabled = p.enabled || c.snapshotStore
	for t := range p.intervals {
		if _, err := types.LookupType(t); err != nil {
			return p, fmt.Errorf("snapshot interval: %w", err)
		}
	}
	return p, nil
}

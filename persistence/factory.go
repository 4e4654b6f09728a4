package persistence

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/google/uuid"

	"github.com/strata-go/strata/domain"
)

// Factory builds the recorders of one application on one datastore. Open
// one with [OpenFactory]; close it when the application is done with it.
type Factory interface {
	// AggregateRecorder returns a recorder for the named purpose, such as
	// "snapshots", stored apart from the application's events.
	AggregateRecorder(ctx context.Context, purpose string) (AggregateRecorder, error)
	// ApplicationRecorder returns the recorder of the application's events.
	ApplicationRecorder(ctx context.Context) (ApplicationRecorder, error)
	// ProcessRecorder returns the recorder of the application's events and
	// tracking records.
	ProcessRecorder(ctx context.Context) (ProcessRecorder, error)
	// Tenant returns a factory of the same store whose recorders keep the
	// data of tenant id (see [CheckTenant]) apart from every other
	// tenant's: they read, overwrite and detect only its aggregates,
	// snapshots and notifications. The factory itself is the default
	// tenant's. Closing a tenant's factory does nothing; closing the
	// factory closes them all.
	Tenant(id string) (Factory, error)
	// Close releases the datastore's resources.
	Close() error
}

// Eraser is implemented by factories that can delete data: one aggregate's
// stream, or all of a tenant's data. Both are atomic.
type Eraser interface {
	// DeleteAggregate deletes the events, the commit records and the
	// recorded aggregates of every purpose (snapshots) of the aggregate id
	// in the factory's tenant, and reports whether there was any. Its
	// notifications leave the log; their IDs are never given again, so a
	// reader that had not read them never will.
	DeleteAggregate(ctx context.Context, id uuid.UUID) (bool, error)
	// PurgeTenant deletes everything of the factory's tenant: events,
	// commit records, tracking records, and the recorded aggregates of
	// every purpose. It is refused for the default tenant.
	PurgeTenant(ctx context.Context) error
}

// Truncater is implemented by factories that can truncate an aggregate's
// stream: delete its oldest events, which a snapshot makes unnecessary for
// loading it, to keep a long-lived aggregate's history small.
type Truncater interface {
	// TruncateAggregate deletes the events of the aggregate id in the
	// factory's tenant whose versions are below before, atomically, and
	// returns how many it deleted. Their notifications leave the log and
	// their IDs are never given again, as with a deleted aggregate; the
	// commit records stay, so that a save retried with the commit ID of a
	// truncated event is still reported as committed; and the truncated
	// versions stay taken: an insert at one fails with [ErrIntegrity], as
	// at a recorded version, so that a writer holding a stale copy of the
	// aggregate gets a conflict, not a gap. Snapshots are not touched.
	//
	// It keeps at least the aggregate's last event: a before above the
	// last version, or an aggregate without events, is refused with an
	// error wrapping [ErrProgramming] and nothing is deleted. Deciding that
	// a snapshot covers the truncated versions is the caller's part (see
	// the application package's Truncate).
	TruncateAggregate(ctx context.Context, id uuid.UUID, before int64) (int, error)
	// TruncationPoint returns the version the aggregate id of the
	// factory's tenant was truncated before (the highest, if it was
	// truncated more than once), or 0 if it never was: what tells a
	// truncated stream from one whose first events are missing. It works
	// on a read-only store.
	TruncationPoint(ctx context.Context, id uuid.UUID) (int64, error)
}

// OpenFunc opens a factory for the application whose environment is env.
// Adapters read their settings from env and return errors wrapping
// [ErrConfig] for bad values.
type OpenFunc func(ctx context.Context, env Env) (Factory, error)

// Module describes a persistence module: a datastore adapter that can be
// chosen by the PERSISTENCE_MODULE environment variable.
type Module struct {
	// Name is the value of PERSISTENCE_MODULE that selects the module.
	Name string
	// Aliases are other accepted values, such as the reference design's
	// factory topics.
	Aliases []string
	// Open opens a factory.
	Open OpenFunc
	// Variables lists the environment variables the module reads, for
	// documentation and command-line help.
	Variables []string
}

var modules struct {
	sync.RWMutex
	byName map[string]*Module
}

// RegisterModule makes a module selectable by name. Adapters call it from
// an init function, so that importing an adapter package (for its side
// effect, if need be) is enough to select it. Registering a name twice
// panics, as it is a programming error.
func RegisterModule(m Module) {
	modules.Lock()
	defer modules.Unlock()
	if modules.byName == nil {
		modules.byName = map[string]*Module{}
	}
	for _, n := range append([]string{m.Name}, m.Aliases...) {
		if _, dup := modules.byName[n]; dup {
			panic("persistence: module " + n + " registered twice")
		}
		modules.byName[n] = &m
	}
}

// Modules returns the names of the registered modules, sorted.
func Modules() []string {
	modules.RLock()
	defer modules.RUnlock()
	var names []string
	for n, m := range modules.byName {
		if n == m.Name {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// LookupModule returns the registered module with the given name or alias.
func LookupModule(name string) (Module, bool) {
	modules.RLock()
	defer modules.RUnlock()
	m, ok := modules.byName[name]
	if !ok {
		return Module{}, false
	}
	return *m, true
}

// DefaultModule is the module used when neither PERSISTENCE_MODULE nor
// INFRASTRUCTURE_FACTORY is set.
const DefaultModule = "memory"

// ModuleName returns the module the environment selects: PERSISTENCE_MODULE,
// or its alias INFRASTRUCTURE_FACTORY, or def. Setting both to different
// modules is an error.
func ModuleName(env Env, def string) (string, error) {
	a, aName, aOK := env.Lookup("PERSISTENCE_MODULE")
	b, bName, bOK := env.Lookup("INFRASTRUCTURE_FACTORY")
	a, b = strings.TrimSpace(a), strings.TrimSpace(b)
	switch {
	case aOK && a != "" && bOK && b != "":
		ma, okA := LookupModule(a)
		mb, okB := LookupModule(b)
		if !okA || !okB || ma.Name != mb.Name {
			return "", fmt.Errorf("%w: %s=%q and %s=%q select different modules", ErrConfig, aName, a, bName, b)
		}
		return a, nil
	case aOK && a != "":
		return a, nil
	case bOK && b != "":
		return b, nil
	}
	return def, nil
}

// OpenFactory opens the factory of the module the environment selects
// (see [ModuleName]; the default is [DefaultModule]). An unknown module is
// an error that names the variable, the value and the known modules.
func OpenFactory(ctx context.Context, env Env) (Factory, error) {
	name, err := ModuleName(env, DefaultModule)
	if err != nil {
		return nil, err
	}
	m, ok := LookupModule(name)
	if !ok && name == DefaultModule {
		return nil, fmt.Errorf("%w: no persistence module is selected and the default, %s, is not imported: import github.com/strata-go/strata/persistence/memory (or the adapter of a database, and set PERSISTENCE_MODULE)",
			ErrConfig, DefaultModule)
	}
	if !ok {
		_, varName, set := env.Lookup("PERSISTENCE_MODULE")
		if !set || env.Get("PERSISTENCE_MODULE") == "" {
			_, varName, _ = env.Lookup("INFRASTRUCTURE_FACTORY")
		}
		return nil, fmt.Errorf("%w: %s=%q: unknown persistence module (known: %s; import an adapter package to register it)",
			ErrConfig, varName, name, strings.Join(Modules(), ", "))
	}
	f, err := m.Open(ctx, env)
	if err != nil {
		return nil, fmt.Errorf("open persistence module %s: %w", m.Name, err)
	}
	return f, nil
}

// CipherFunc makes a cipher from the CIPHER_KEY value and the environment.
type CipherFunc func(key string, env Env) (Cipher, error)

var codecs struct {
	sync.RWMutex
	ciphers     map[string]CipherFunc
	compressors map[string]CompressorFunc
}

// CompressorFunc makes a compressor that decompresses a state to at most
// maxSize bytes (COMPRESSOR_MAX_SIZE; 0 for the compressor's default).
type CompressorFunc func(maxSize int) Compressor

// RegisterCipher makes a cipher selectable by CIPHER_TOPIC.
func RegisterCipher(names []string, f CipherFunc) {
	codecs.Lock()
	defer codecs.Unlock()
	if codecs.ciphers == nil {
		codecs.ciphers = map[string]CipherFunc{}
	}
	for _, n := range names {
		codecs.ciphers[n] = f
	}
}

// RegisterCompressor makes a compressor selectable by COMPRESSOR_TOPIC.
func RegisterCompressor(names []string, f CompressorFunc) {
	codecs.Lock()
	defer codecs.Unlock()
	if codecs.compressors == nil {
		codecs.compressors = map[string]CompressorFunc{}
	}
	for _, n := range names {
		codecs.compressors[n] = f
	}
}

// Cipher and compressor names, as CIPHER_TOPIC and COMPRESSOR_TOPIC accept
// them. The reference design's class topics are accepted too.
var (
	AESCipherNames      = []string{"aes-gcm", "aes", "AESCipher", "eventsourcing.cipher:AESCipher"}
	ZlibCompressorNames = []string{"zlib", "ZlibCompressor", "eventsourcing.compressor:ZlibCompressor"}
)

func init() {
	RegisterCipher(AESCipherNames, func(key string, env Env) (Cipher, error) {
		var previous []string
		if v, name, _ := env.Lookup("CIPHER_PREVIOUS_KEYS"); strings.TrimSpace(v) != "" {
			for p := range strings.SplitSeq(v, ",") {
				if p = strings.TrimSpace(p); p == "" {
					return nil, fmt.Errorf("%w: %s has an empty key", ErrConfig, name)
				}
				previous = append(previous, p)
			}
		}
		c, err := NewAESCipherFromString(key, previous...)
		if err != nil && len(previous) > 0 {
			return nil, fmt.Errorf("CIPHER_KEY or CIPHER_PREVIOUS_KEYS: %w", err)
		}
		return c, err
	})
	RegisterCompressor(ZlibCompressorNames, func(maxSize int) Compressor { return &ZlibCompressor{MaxSize: maxSize} })
}

// NewMapperFromEnv returns a mapper for the types configured by the
// environment:
//
//   - CIPHER_TOPIC selects a cipher ("aes-gcm"; the default when only
//     CIPHER_KEY is set) and CIPHER_KEY gives its key (for AES, 16, 24 or
//     32 bytes in standard base64, see [CreateKey]); CIPHER_PREVIOUS_KEYS,
//     comma-separated, are earlier keys it still decrypts with, so that
//     the key can be rotated;
//   - COMPRESSOR_TOPIC selects a compressor ("zlib"), and
//     COMPRESSOR_MAX_SIZE the most bytes one state may decompress to
//     (default [DefaultMaxDecompressed]).
//
// Options given here apply after the environment's.
func NewMapperFromEnv(env Env, types *domain.Registry, opts ...MapperOption) (*Mapper, error) {
	var envOpts []MapperOption
	topic, topicVar, _ := env.Lookup("CIPHER_TOPIC")
	key, keyVar, _ := env.Lookup("CIPHER_KEY")
	topic, key = strings.TrimSpace(topic), strings.TrimSpace(key)
	if topic != "" || key != "" {
		if topic == "" {
			topic = AESCipherNames[0]
		}
		if key == "" {
			return nil, fmt.Errorf("%w: %s=%q but CIPHER_KEY is not set", ErrConfig, topicVar, topic)
		}
		codecs.RLock()
		f := codecs.ciphers[topic]
		codecs.RUnlock()
		if f == nil {
			return nil, fmt.Errorf("%w: %s=%q: unknown cipher (known: %s)", ErrConfig, topicVar, topic, strings.Join(AESCipherNames, ", "))
		}
		c, err := f(key, env)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", keyVar, err)
		}
		envOpts = append(envOpts, WithCipher(c))
	}
	// Checked even without a compressor, so that a bad value is never
	// silently ignored.
	maxSize, err := env.Int("COMPRESSOR_MAX_SIZE", 0, 1)
	if err != nil {
		return nil, err
	}
	if name, nameVar, _ := env.Lookup("COMPRESSOR_TOPIC"); strings.TrimSpace(name) != "" {
		name = strings.TrimSpace(name)
		codecs.RLock()
		f := codecs.compressors[name]
		var known []string
		for n := range codecs.compressors {
			known = append(known, n)
		}
		codecs.RUnlock()
		if f == nil {
			slices.Sort(known)
			return nil, fmt.Errorf("%w: %s=%q: unknown compressor (known: %s)", ErrConfig, nameVar, name, strings.Join(known, ", "))
		}
		envOpts = append(envOpts, WithCompressor(f(maxSize)))
	}
	return NewMapper(types, append(envOpts, opts...)...), nil
}

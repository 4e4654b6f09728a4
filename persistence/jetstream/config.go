package jetstream

import (
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/strata-go/strata/persistence"
)

// Variables lists the environment variables the module reads.
var Variables = []string{
	"NATS_URL", "NATS_STREAM", "NATS_STREAM_PREFIX", "NATS_SUBJECT_PREFIX", "NATS_REPLICAS", "NATS_STORAGE", "NATS_MAX_AGE",
	"NATS_RECORDS_STREAM", "NATS_SNAPSHOT_MAX_AGE", "NATS_DUPLICATE_WINDOW", "NATS_TIMEOUT", "NATS_CREDS", "CREATE_TABLE",
}

// Defaults of the settings.
const (
	DefaultURL             = "nats://127.0.0.1:4222"
	DefaultReplicas        = 3
	DefaultDuplicateWindow = 2 * time.Minute
	DefaultTimeout         = 10 * time.Second
)

// Config configures the JetStream module.
type Config struct {
	// URL is one server's URL or several, comma-separated
	// ("nats://a:4222,nats://b:4222,nats://c:4222"): the client connects
	// to one and fails over to the others.
	URL string
	// Credentials is the path of a NATS credentials file, or "".
	Credentials string
	// AppName names the application, whose stream and subjects are named
	// after it.
	AppName string
	// Stream is the name of the application's stream of events and
	// tracking records (NATS_STREAM; default StreamPrefix_<APP>).
	Stream string
	// RecordsStream is the name of the stream of the application's
	// aggregate recorders: snapshots and data keys (NATS_RECORDS_STREAM;
	// default Stream_RECORDS). It has retention of its own: NATS_MAX_AGE
	// does not apply to it.
	RecordsStream string
	// StreamPrefix begins the names of streams not named by Stream
	// (NATS_STREAM_PREFIX, default STRATA), so that the applications of
	// one system, or of several environments, keep apart.
	StreamPrefix string
	// SubjectPrefix is the prefix of every subject of the streams: the
	// events stream holds <SubjectPrefix>.e.> and <SubjectPrefix>.k.>,
	// the records stream <SubjectPrefix>.a.>. NATS_SUBJECT_PREFIX (default
	// "strata") gives its first tokens, which the application's name
	// follows ("strata.worlds").
	SubjectPrefix string
	// Replicas is the number of servers that keep each stream (default 3).
	Replicas int
	// Memory keeps the streams in memory instead of files
	// (NATS_STORAGE=memory): faster, and lost when the servers restart.
	Memory bool
	// MaxAge, if positive, makes the servers delete events and tracking
	// records older than it (NATS_MAX_AGE); snapshots and data keys are in
	// the records stream, which it does not truncate (see
	// docs/jetstream.md).
	MaxAge time.Duration
	// SnapshotMaxAge, if positive, makes the servers delete each snapshot
	// when it is that old (NATS_SNAPSHOT_MAX_AGE, whole seconds, at least
	// one; default 0, kept for ever). It is a time to live that every
	// snapshot carries from when it is written, so a change applies to
	// the snapshots written after it. It applies to the records of purpose
	// "snapshots" only: data keys and other purposes are kept.
	SnapshotMaxAge time.Duration
	// DuplicateWindow is how long the servers remember commit IDs
	// (Nats-Msg-Id) to drop a save sent twice (default 2 minutes; in the
	// events stream at most MaxAge: the servers cannot remember a message
	// longer than they keep it).
	DuplicateWindow time.Duration
	// Timeout bounds each request to the servers that the caller's context
	// does not bound more tightly (default 10s).
	Timeout time.Duration
	// CreateStreams creates the stream if it does not exist (CREATE_TABLE,
	// default true).
	CreateStreams bool
}

// ConfigFromEnv reads the module's variables. Values that cannot be
// parsed are errors that name the variable.
func ConfigFromEnv(env persistence.Env) (Config, error) {
	c := Config{
		URL:           env.String("NATS_URL", DefaultURL),
		Credentials:   strings.TrimSpace(env.Get("NATS_CREDS")),
		AppName:       env.Name(),
		Stream:        strings.TrimSpace(env.Get("NATS_STREAM")),
		RecordsStream: strings.TrimSpace(env.Get("NATS_RECORDS_STREAM")),
		StreamPrefix:  env.String("NATS_STREAM_PREFIX", "STRATA"),
		SubjectPrefix: env.String("NATS_SUBJECT_PREFIX", "strata"),
	}
	if c.AppName != "" {
		c.SubjectPrefix += "." + token(c.AppName, unicode.ToLower)
	}
	var err error
	if c.Replicas, err = env.Int("NATS_REPLICAS", DefaultReplicas, 1); err != nil {
		return c, err
	}
	if c.Replicas > 5 {
		_, name, _ := env.Lookup("NATS_REPLICAS")
		return c, fmt.Errorf("%w: %s=%d: JetStream keeps at most 5 replicas", persistence.ErrConfig, name, c.Replicas)
	}
	switch v, name, _ := env.Lookup("NATS_STORAGE"); strings.ToLower(strings.TrimSpace(v)) {
	case "", "file":
	case "memory":
		c.Memory = true
	default:
		return c, fmt.Errorf("%w: %s=%q: want file or memory", persistence.ErrConfig, name, v)
	}
	if c.MaxAge, err = env.Seconds("NATS_MAX_AGE", 0); err != nil {
		return c, err
	}
	if c.SnapshotMaxAge, err = env.Seconds("NATS_SNAPSHOT_MAX_AGE", 0); err != nil {
		return c, err
	}
	if c.DuplicateWindow, err = env.Seconds("NATS_DUPLICATE_WINDOW", DefaultDuplicateWindow); err != nil {
		return c, err
	}
	if v, name, ok := env.Lookup("NATS_DUPLICATE_WINDOW"); ok && strings.TrimSpace(v) != "" && c.MaxAge > 0 && c.DuplicateWindow > c.MaxAge {
		return c, fmt.Errorf("%w: %s=%v is longer than NATS_MAX_AGE=%v: the servers cannot remember a commit longer than they keep its events", persistence.ErrConfig, name, c.DuplicateWindow, c.MaxAge)
	}
	if c.Timeout, err = env.Seconds("NATS_TIMEOUT", DefaultTimeout); err != nil {
		return c, err
	}
	if c.CreateStreams, err = env.Bool("CREATE_TABLE", true); err != nil {
		return c, err
	}
	return c, c.check()
}

// check fills in defaults and checks names.
func (c *Config) check() error {
	if strings.TrimSpace(c.URL) == "" {
		c.URL = DefaultURL
	}
	if c.Stream == "" {
		c.Stream = c.StreamPrefix
		if c.Stream == "" {
			c.Stream = "STRATA"
		}
		if c.AppName != "" {
			c.Stream += "_" + token(c.AppName, unicode.ToUpper)
		}
	}
	if c.RecordsStream == "" {
		c.RecordsStream = c.Stream + "_RECORDS"
	}
	if c.SubjectPrefix == "" {
		c.SubjectPrefix = "strata"
	}
	if c.Replicas == 0 {
		c.Replicas = DefaultReplicas
	}
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = DefaultDuplicateWindow
	}
	if c.SnapshotMaxAge < 0 || c.SnapshotMaxAge > 0 && (c.SnapshotMaxAge < time.Second || c.SnapshotMaxAge%time.Second != 0) {
		return fmt.Errorf("%w: NATS_SNAPSHOT_MAX_AGE=%v: a snapshot's time to live is whole seconds, at least 1", persistence.ErrConfig, c.SnapshotMaxAge)
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	for _, s := range []struct{ vars, name string }{
		{"NATS_STREAM or NATS_STREAM_PREFIX", c.Stream},
		{"NATS_RECORDS_STREAM, NATS_STREAM or NATS_STREAM_PREFIX", c.RecordsStream},
	} {
		if strings.ContainsFunc(s.name, func(r rune) bool {
			return !(r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r)) || r == '-' || r == '_')
		}) || len(s.name) > 255 {
			return fmt.Errorf("%w: %s: stream name %q: a stream name is letters, digits, - and _", persistence.ErrConfig, s.vars, s.name)
		}
	}
	if c.RecordsStream == c.Stream {
		return fmt.Errorf("%w: NATS_RECORDS_STREAM: the records stream %q is the events stream", persistence.ErrConfig, c.RecordsStream)
	}
	for _, tok := range strings.Split(c.SubjectPrefix, ".") {
		if tok == "" || strings.ContainsAny(tok, " \t\r\n*>") {
			return fmt.Errorf("%w: NATS_SUBJECT_PREFIX: subject prefix %q is not literal tokens", persistence.ErrConfig, c.SubjectPrefix)
		}
	}
	return nil
}

// token turns a name into letters, digits and underscores.
func token(name string, caser func(rune) rune) string {
	var b strings.Builder
	for _, r := range name {
		if r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			b.WriteRune(caser(r))
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

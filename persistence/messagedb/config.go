package messagedb

import (
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-go/strata/internal/sqlstore"
	"github.com/strata-go/strata/persistence"
)

// Variables lists the environment variables the module reads.
var Variables = []string{
	"MESSAGEDB_URL", "MESSAGEDB_CATEGORY", "MESSAGEDB_INITIAL_VERSION", "MESSAGEDB_SNAPSHOT_TOPIC",
	"MESSAGEDB_TYPE_NAMES", "MESSAGEDB_SCHEMA", "MESSAGEDB_POOL_SIZE", "MESSAGEDB_LOCK_TIMEOUT",
	"MESSAGEDB_CONSUMER_GROUP_MEMBER", "MESSAGEDB_CONSUMER_GROUP_SIZE",
	"CREATE_TABLE", "READ_ONLY",
}

// Config configures the Message DB module.
type Config struct {
	// URL locates the PostgreSQL database where Message DB is installed
	// ("postgres://postgres@127.0.0.1:5432/message_store"). Any role that
	// may call Message DB's functions will do; the connection sets
	// search_path to message_store, public, without which the functions'
	// bodies do not resolve for roles other than message_store.
	URL string
	// Category is the Message DB category of the application's
	// aggregates: their events are in streams <Category>-<ID> and their
	// snapshots in <Category>:snapshot-<ID>. The default is the
	// application's name in snake case ("BankAccounts" → bank_accounts).
	// It must not contain '-' (Message DB's category ends at the first
	// one), '+' or spaces; Protean's "my_domain::user" is a valid one.
	Category string
	// InitialVersion is the Strata version of the first message (position
	// 0) of a stream whose first message was not written by Strata (by
	// Protean or Eventide, say): the initial version of the aggregate type
	// that reads it (default 1). Streams that Strata started record their
	// own.
	InitialVersion int64
	// SnapshotTopic is the topic of the aggregate type whose snapshots
	// other programs (Protean) write, as SNAPSHOT messages without Strata's
	// metadata, in the category's snapshot streams. Without it such
	// snapshots are not used: aggregates load from their events.
	SnapshotTopic string
	// TypeNames maps Strata topics to Message DB message types, for events
	// whose type in the store is a short name ("Deposited") rather than the
	// topic. A type that is not mapped is its topic. Messages read with a
	// mapped type get its topic back.
	TypeNames map[string]string
	// GroupMember and GroupSize, if GroupSize is positive, say that the
	// application is one member of a consumer group of GroupSize followers
	// sharing their leaders' categories (see [Factory.GroupMember]): its
	// process recorder keeps its own position in each leader
	// (MaxTrackingID sees only its member's tracking records), while a
	// notification recorded by any member is recorded for all
	// (HasTrackingID and the uniqueness of tracking records).
	GroupMember, GroupSize int
	// Schema holds Strata's own table, of tracking records (default
	// "strata").
	Schema string
	// AppName names the application; the default category is made of it.
	AppName string
	// PoolSize is the most connections the pool opens (default 10).
	PoolSize int
	// LockTimeout bounds waits for locks, Message DB's category lock
	// among them (0: no bound). A write that times out records nothing.
	LockTimeout time.Duration
	// CreateTables creates Strata's tracking table if it does not exist.
	// Message DB itself is never installed by Strata.
	CreateTables bool
	// ReadOnly refuses writes with an error wrapping
	// persistence.ErrReadOnly; sessions are read-only too.
	ReadOnly bool
}

// ConfigFromEnv reads the module's variables. Values that cannot be
// parsed are errors that name the variable.
func ConfigFromEnv(env persistence.Env) (Config, error) {
	c := Config{
		URL:           strings.TrimSpace(env.Get("MESSAGEDB_URL")),
		AppName:       env.Name(),
		Category:      env.String("MESSAGEDB_CATEGORY", ""),
		SnapshotTopic: env.String("MESSAGEDB_SNAPSHOT_TOPIC", ""),
		Schema:        env.String("MESSAGEDB_SCHEMA", "strata"),
	}
	if c.URL == "" {
		_, name, _ := env.Lookup("MESSAGEDB_URL")
		return c, fmt.Errorf("%w: %s is not set: give the URL of the PostgreSQL database where Message DB is installed", persistence.ErrConfig, name)
	}
	initial, err := env.Int("MESSAGEDB_INITIAL_VERSION", 1, 0)
	if err != nil {
		return c, err
	}
	c.InitialVersion = int64(initial)
	if c.PoolSize, err = env.Int("MESSAGEDB_POOL_SIZE", 10, 1); err != nil {
		return c, err
	}
	if c.GroupMember, err = env.Int("MESSAGEDB_CONSUMER_GROUP_MEMBER", 0, 0); err != nil {
		return c, err
	}
	if c.GroupSize, err = env.Int("MESSAGEDB_CONSUMER_GROUP_SIZE", 0, 0); err != nil {
		return c, err
	}
	if _, name, set := env.Lookup("MESSAGEDB_CONSUMER_GROUP_MEMBER"); set && c.GroupSize == 0 {
		return c, fmt.Errorf("%w: %s is set but MESSAGEDB_CONSUMER_GROUP_SIZE is not", persistence.ErrConfig, name)
	}
	if c.LockTimeout, err = env.Seconds("MESSAGEDB_LOCK_TIMEOUT", 0); err != nil {
		return c, err
	}
	if c.CreateTables, err = env.Bool("CREATE_TABLE", true); err != nil {
		return c, err
	}
	if c.ReadOnly, err = env.Bool("READ_ONLY", false); err != nil {
		return c, err
	}
	if v, name, _ := env.Lookup("MESSAGEDB_TYPE_NAMES"); strings.TrimSpace(v) != "" {
		c.TypeNames = map[string]string{}
		for pair := range strings.SplitSeq(v, ",") {
			topic, typ, ok := strings.Cut(strings.TrimSpace(pair), "=")
			topic, typ = strings.TrimSpace(topic), strings.TrimSpace(typ)
			if !ok || topic == "" || typ == "" {
				return c, fmt.Errorf("%w: %s=%q: %q is not topic=type", persistence.ErrConfig, name, v, pair)
			}
			c.TypeNames[topic] = typ
		}
	}
	if err := c.check(); err != nil {
		return c, err
	}
	return c, nil
}

// check validates what can be validated without the database.
func (c *Config) check() error {
	if c.Category == "" {
		c.Category = DefaultCategory(c.AppName)
	}
	if err := CheckCategory(c.Category); err != nil {
		return fmt.Errorf("MESSAGEDB_CATEGORY: %w", err)
	}
	if c.Schema == "" {
		c.Schema = "strata"
	}
	if err := sqlstore.CheckIdentifier("MESSAGEDB_SCHEMA", c.Schema); err != nil {
		return err
	}
	if c.GroupSize > MaxGroupSize || c.GroupSize > 0 && (c.GroupMember < 0 || c.GroupMember >= c.GroupSize) || c.GroupSize < 0 {
		return fmt.Errorf("%w: MESSAGEDB_CONSUMER_GROUP_MEMBER=%d and MESSAGEDB_CONSUMER_GROUP_SIZE=%d: want 0 <= member < size <= %d",
			persistence.ErrConfig, c.GroupMember, c.GroupSize, MaxGroupSize)
	}
	if c.InitialVersion < 0 {
		return fmt.Errorf("%w: MESSAGEDB_INITIAL_VERSION=%d is negative", persistence.ErrConfig, c.InitialVersion)
	}
	types := map[string]string{}
	for topic, typ := range c.TypeNames {
		if other, dup := types[typ]; dup {
			return fmt.Errorf("%w: MESSAGEDB_TYPE_NAMES: topics %s and %s have the same message type %q", persistence.ErrConfig, min(other, topic), max(other, topic), typ)
		}
		types[typ] = topic
	}
	return nil
}

// CheckCategory checks a category name: not empty, at most 100 bytes,
// printable, without '-' (where Message DB ends a category), '+' (where it
// ends a cardinal ID) or spaces, and not ending in ":snapshot". Colons are
// allowed: Protean's categories are <domain>::<aggregate>.
func CheckCategory(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty category", persistence.ErrConfig)
	case len(name) > 100:
		return fmt.Errorf("%w: category %.20q... is longer than 100 bytes", persistence.ErrConfig, name)
	case strings.ContainsAny(name, "-+"):
		return fmt.Errorf("%w: category %q contains '-' or '+', which Message DB's stream names give a meaning", persistence.ErrConfig, name)
	case strings.HasSuffix(name, ":snapshot"):
		return fmt.Errorf("%w: category %q ends in :snapshot, the suffix of snapshot categories", persistence.ErrConfig, name)
	case strings.ContainsFunc(name, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || r == unicode.ReplacementChar }):
		return fmt.Errorf("%w: category %q contains spaces or control characters", persistence.ErrConfig, name)
	}
	return nil
}

// DefaultCategory returns the category of an application's aggregates
// unless one is configured: its name in snake case, as Protean names its
// categories ("BankAccounts" → "bank_accounts"), or "strata" for an
// application without a name.
func DefaultCategory(appName string) string {
	var b strings.Builder
	runes := []rune(appName)
	for i, r := range runes {
		switch {
		case unicode.IsUpper(r):
			if i > 0 && (unicode.IsLower(runes[i-1]) || unicode.IsDigit(runes[i-1]) || i+1 < len(runes) && unicode.IsLower(runes[i+1]) && unicode.IsUpper(runes[i-1])) {
				b.WriteByte('_')
			}
			b.WriteRune(unicode.ToLower(r))
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		default:
			if s := b.String(); s != "" && !strings.HasSuffix(s, "_") {
				b.WriteByte('_')
			}
		}
	}
	name := strings.Trim(b.String(), "_")
	if name == "" {
		return "strata"
	}
	return name
}

// poolConfig builds the pgx pool configuration.
func (c Config) poolConfig() (*pgxpool.Config, error) {
	pc, err := pgxpool.ParseConfig(c.URL)
	if err != nil {
		// The error may quote the URL with its password.
		return nil, fmt.Errorf("%w: cannot parse MESSAGEDB_URL as a PostgreSQL connection URL", persistence.ErrConfig)
	}
	if c.PoolSize <= 0 {
		c.PoolSize = 10
	}
	pc.MaxConns = int32(c.PoolSize)
	params := pc.ConnConfig.RuntimeParams
	// Message DB's functions call each other and name their table
	// unqualified: they resolve only with its schema on the path.
	params["search_path"] = "message_store, public"
	if c.LockTimeout > 0 {
		params["lock_timeout"] = fmt.Sprint(c.LockTimeout.Milliseconds())
	}
	if c.ReadOnly {
		params["default_transaction_read_only"] = "on"
	}
	if _, ok := params["application_name"]; !ok {
		params["application_name"] = "strata"
	}
	return pc, nil
}

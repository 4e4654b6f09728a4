package postgres

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-go/strata/internal/sqlstore"
	"github.com/strata-go/strata/persistence"
)

// Variables lists the environment variables the module reads.
var Variables = []string{
	"POSTGRES_URL", "POSTGRES_DBNAME", "POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_USER", "POSTGRES_PASSWORD",
	"POSTGRES_SCHEMA", "POSTGRES_POOL_SIZE", "POSTGRES_CONN_MAX_AGE", "POSTGRES_PRE_PING", "POSTGRES_LOCK_TIMEOUT",
	"POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT", "POSTGRES_NOTIFY", "POSTGRES_READ_RETRY", "CREATE_TABLE", "READ_ONLY",
}

// DefaultReadRetry is how long reads retry on broken connections unless
// POSTGRES_READ_RETRY says otherwise.
const DefaultReadRetry = 10 * time.Second

// Config configures the PostgreSQL module.
type Config struct {
	// URL is a connection URL or keyword/value string
	// ("postgres://user:pass@host:5432/db?sslmode=disable"). If it is
	// empty, the connection is made of the fields below.
	URL string
	// DBName, Host, Port, User and Password locate the database.
	DBName, Host, User, Password string
	Port                         int
	// AppName names the application, whose tables are named after it.
	AppName string
	// Schema holds the tables (default "public"); it is created with the
	// tables.
	Schema string
	// PoolSize is the most connections the pool opens (default 10).
	PoolSize int
	// ConnMaxAge closes connections this old when they are idle. Zero uses
	// each connection for one operation only; a negative value (the
	// default) keeps connections for as long as they work.
	ConnMaxAge time.Duration
	// PrePing checks each connection before use.
	PrePing bool
	// LockTimeout bounds waits for locks (0: no bound).
	LockTimeout time.Duration
	// IdleInTransactionSessionTimeout ends sessions idle in a transaction
	// for longer (0: never).
	IdleInTransactionSessionTimeout time.Duration
	// Notify sends a notification on the channel of the events table after
	// each save, so that followers in other processes wake up without
	// polling (see [Factory.Listen]).
	Notify bool
	// CreateTables creates the schema and tables if they do not exist.
	CreateTables bool
	// ReadOnly creates nothing and refuses writes with an error wrapping
	// persistence.ErrReadOnly; sessions are read-only too.
	ReadOnly bool
	// ReadRetry is how long a read keeps retrying on broken connections,
	// with growing waits, before it fails: a server that restarts within
	// it costs readers a delay, not an error (default 10s; negative: one
	// attempt).
	ReadRetry time.Duration
}

// ConfigFromEnv reads the module's variables. Values that cannot be
// parsed are errors that name the variable.
func ConfigFromEnv(env persistence.Env) (Config, error) {
	c := Config{
		AppName:  env.Name(),
		URL:      strings.TrimSpace(env.Get("POSTGRES_URL")),
		DBName:   env.String("POSTGRES_DBNAME", ""),
		Host:     env.String("POSTGRES_HOST", ""),
		User:     env.String("POSTGRES_USER", ""),
		Password: env.Get("POSTGRES_PASSWORD"),
		Schema:   env.String("POSTGRES_SCHEMA", "public"),
	}
	var err error
	if c.Port, err = env.Int("POSTGRES_PORT", 0, 0); err != nil {
		return c, err
	}
	if c.Port > 65535 {
		return c, fmt.Errorf("%w: POSTGRES_PORT=%d is not a port", persistence.ErrConfig, c.Port)
	}
	if c.PoolSize, err = env.Int("POSTGRES_POOL_SIZE", 10, 1); err != nil {
		return c, err
	}
	c.ConnMaxAge = -1
	if v := strings.TrimSpace(env.Get("POSTGRES_CONN_MAX_AGE")); v != "" {
		if c.ConnMaxAge, err = env.Seconds("POSTGRES_CONN_MAX_AGE", 0); err != nil {
			return c, err
		}
	}
	for _, b := range []struct {
		key string
		def bool
		dst *bool
	}{{"POSTGRES_PRE_PING", false, &c.PrePing}, {"POSTGRES_NOTIFY", true, &c.Notify}, {"CREATE_TABLE", true, &c.CreateTables}, {"READ_ONLY", false, &c.ReadOnly}} {
		if *b.dst, err = env.Bool(b.key, b.def); err != nil {
			return c, err
		}
	}
	if c.LockTimeout, err = env.Seconds("POSTGRES_LOCK_TIMEOUT", 0); err != nil {
		return c, err
	}
	if c.IdleInTransactionSessionTimeout, err = env.Seconds("POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT", 0); err != nil {
		return c, err
	}
	if c.ReadRetry, err = env.Seconds("POSTGRES_READ_RETRY", DefaultReadRetry); err != nil {
		return c, err
	}
	if err := sqlstore.CheckIdentifier("POSTGRES_SCHEMA", c.Schema); err != nil {
		return c, err
	}
	if c.URL == "" && c.DBName == "" {
		_, name, _ := env.Lookup("POSTGRES_DBNAME")
		return c, fmt.Errorf("%w: %s is not set (or give POSTGRES_URL)", persistence.ErrConfig, name)
	}
	return c, nil
}

// poolConfig builds the pgx pool configuration.
func (c Config) poolConfig() (*pgxpool.Config, error) {
	connString := c.URL
	if connString == "" {
		u := url.URL{Scheme: "postgres", Path: "/" + c.DBName}
		host := c.Host
		if host == "" {
			host = "127.0.0.1"
		}
		if c.Port != 0 {
			host = net.JoinHostPort(host, strconv.Itoa(c.Port))
		}
		u.Host = host
		if c.User != "" {
			if c.Password != "" {
				u.User = url.UserPassword(c.User, c.Password)
			} else {
				u.User = url.User(c.User)
			}
		}
		u.RawQuery = "sslmode=prefer"
		connString = u.String()
	}
	pc, err := pgxpool.ParseConfig(connString)
	if err != nil {
		// The error may quote the URL with its password: say only what
		// kind of value is wrong.
		return nil, fmt.Errorf("%w: cannot parse the PostgreSQL connection settings (POSTGRES_URL or POSTGRES_HOST/PORT/DBNAME)", persistence.ErrConfig)
	}
	if c.URL == "" && c.User == "" && pc.ConnConfig.User == "" {
		pc.ConnConfig.User = "postgres"
	}
	pc.MaxConns = int32(c.PoolSize)
	switch {
	case c.ConnMaxAge == 0:
		pc.AfterRelease = func(*pgx.Conn) bool { return false }
	case c.ConnMaxAge > 0:
		pc.MaxConnLifetime = c.ConnMaxAge
	default:
		pc.MaxConnLifetime = 0
	}
	if c.PrePing {
		pc.ShouldPing = func(context.Context, pgxpool.ShouldPingParams) bool { return true }
	}
	params := pc.ConnConfig.RuntimeParams
	if c.LockTimeout > 0 {
		params["lock_timeout"] = strconv.FormatInt(c.LockTimeout.Milliseconds(), 10)
	}
	if c.IdleInTransactionSessionTimeout > 0 {
		params["idle_in_transaction_session_timeout"] = strconv.FormatInt(c.IdleInTransactionSessionTimeout.Milliseconds(), 10)
	}
	if c.ReadOnly {
		params["default_transaction_read_only"] = "on"
	}
	if _, ok := params["application_name"]; !ok {
		params["application_name"] = "strata"
	}
	return pc, nil
}

package mysql

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/strata-go/strata/persistence"
)

// Variables lists the environment variables the module reads.
var Variables = []string{
	"MYSQL_DSN", "MYSQL_DBNAME", "MYSQL_HOST", "MYSQL_PORT", "MYSQL_USER", "MYSQL_PASSWORD",
	"MYSQL_POOL_SIZE", "MYSQL_LOCK_WAIT_TIMEOUT", "MYSQL_POLL_INTERVAL", "CREATE_TABLE", "READ_ONLY",
}

// DefaultPollInterval is how often [Factory.Listen] looks for new saves
// unless MYSQL_POLL_INTERVAL says otherwise.
const DefaultPollInterval = 100 * time.Millisecond

// Config configures the MySQL module.
type Config struct {
	// DSN is a data source name in go-sql-driver's form
	// ("user:password@tcp(host:3306)/dbname?param=value"). If it is empty,
	// the connection is made of the fields below.
	DSN string
	// DBName, Host, Port, User and Password locate the database.
	DBName, Host, User, Password string
	Port                         int
	// AppName names the application, whose tables are named after it.
	AppName string
	// PoolSize is the most connections the pool opens (default 10).
	PoolSize int
	// LockWaitTimeout bounds a statement's wait for a row lock
	// (innodb_lock_wait_timeout, in whole seconds); 0 keeps the server's
	// setting (50 s unless configured).
	LockWaitTimeout time.Duration
	// PollInterval is how often [Factory.Listen] looks for saves made by
	// other processes (default 100 ms).
	PollInterval time.Duration
	// CreateTables creates the tables if they do not exist.
	CreateTables bool
	// ReadOnly creates nothing and refuses writes with an error wrapping
	// persistence.ErrReadOnly.
	ReadOnly bool
}

// ConfigFromEnv reads the module's variables. Values that cannot be
// parsed are errors that name the variable.
func ConfigFromEnv(env persistence.Env) (Config, error) {
	c := Config{
		AppName:  env.Name(),
		DSN:      strings.TrimSpace(env.Get("MYSQL_DSN")),
		DBName:   env.String("MYSQL_DBNAME", ""),
		Host:     env.String("MYSQL_HOST", ""),
		User:     env.String("MYSQL_USER", ""),
		Password: env.Get("MYSQL_PASSWORD"),
	}
	var err error
	if c.Port, err = env.Int("MYSQL_PORT", 0, 0); err != nil {
		return c, err
	}
	if c.Port > 65535 {
		_, name, _ := env.Lookup("MYSQL_PORT")
		return c, fmt.Errorf("%w: %s=%d is not a port", persistence.ErrConfig, name, c.Port)
	}
	if c.PoolSize, err = env.Int("MYSQL_POOL_SIZE", 10, 1); err != nil {
		return c, err
	}
	if c.LockWaitTimeout, err = env.Seconds("MYSQL_LOCK_WAIT_TIMEOUT", 0); err != nil {
		return c, err
	}
	if c.LockWaitTimeout > 0 && c.LockWaitTimeout < time.Second {
		v, name, _ := env.Lookup("MYSQL_LOCK_WAIT_TIMEOUT")
		return c, fmt.Errorf("%w: %s=%q: the server counts whole seconds, at least 1", persistence.ErrConfig, name, v)
	}
	if c.PollInterval, err = env.Seconds("MYSQL_POLL_INTERVAL", DefaultPollInterval); err != nil {
		return c, err
	}
	if c.PollInterval <= 0 {
		v, name, _ := env.Lookup("MYSQL_POLL_INTERVAL")
		return c, fmt.Errorf("%w: %s=%q: must be more than 0", persistence.ErrConfig, name, v)
	}
	if c.CreateTables, err = env.Bool("CREATE_TABLE", true); err != nil {
		return c, err
	}
	if c.ReadOnly, err = env.Bool("READ_ONLY", false); err != nil {
		return c, err
	}
	if c.DSN == "" && c.DBName == "" {
		_, name, _ := env.Lookup("MYSQL_DBNAME")
		return c, fmt.Errorf("%w: %s is not set (or give MYSQL_DSN)", persistence.ErrConfig, name)
	}
	return c, nil
}

// driverConfig builds the driver's configuration: the DSN's or the
// fields', with the settings the recorders rely on.
func (c Config) driverConfig() (*mysql.Config, error) {
	var mc *mysql.Config
	if c.DSN != "" {
		var err error
		if mc, err = mysql.ParseDSN(c.DSN); err != nil {
			// The error may quote the DSN with its password: say only what
			// kind of value is wrong.
			return nil, fmt.Errorf("%w: cannot parse MYSQL_DSN: want user:password@tcp(host:port)/dbname?param=value", persistence.ErrConfig)
		}
		if mc.DBName == "" {
			return nil, fmt.Errorf("%w: MYSQL_DSN names no database (…/dbname)", persistence.ErrConfig)
		}
	} else {
		mc = mysql.NewConfig()
		mc.Net = "tcp"
		host, port := c.Host, c.Port
		if host == "" {
			host = "127.0.0.1"
		}
		if port == 0 {
			port = 3306
		}
		mc.Addr = net.JoinHostPort(host, strconv.Itoa(port))
		mc.User = c.User
		if mc.User == "" {
			mc.User = "root"
		}
		mc.Passwd = c.Password
		mc.DBName = c.DBName
	}
	// One round trip per statement instead of prepare, execute and close:
	// the values are escaped by the driver for the connection's character
	// set, utf8mb4, which it knows how to escape.
	mc.InterpolateParams = true
	// A save is one request: its statements and COMMIT (see save).
	mc.MultiStatements = true
	if mc.Params == nil {
		mc.Params = map[string]string{}
	}
	if c.LockWaitTimeout > 0 {
		mc.Params["innodb_lock_wait_timeout"] = strconv.Itoa(int(c.LockWaitTimeout / time.Second))
	}
	// Strict mode: a value that does not fit is an error, never silently
	// cut.
	if _, ok := mc.Params["sql_mode"]; !ok {
		mc.Params["sql_mode"] = "'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'"
	}
	return mc, nil
}

package cli

import (
	"net/url"
	"os"
	"strings"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/persistence"
)

// Option configures the command tree that [NewCommand] builds.
type Option func(*root)

// WithDefaultStore gives the environment variables of the store that the
// commands use when the environment chooses none (neither
// PERSISTENCE_MODULE nor INFRASTRUCTURE_FACTORY is set, for all
// applications or for one). The strata command defaults to a SQLite file:
//
//	cli.NewCommand(domains, cli.WithDefaultStore(cli.SQLiteFile("strata.db")))
//
// The module the variables select must be imported by the program (for
// SQLite, github.com/strata-go/strata/persistence/sqlite). Without a default
// store, a command whose environment chooses none keeps its data in
// memory, which is gone when it exits.
func WithDefaultStore(vars map[string]string) Option {
	return func(r *root) { r.defaults = vars }
}

// SQLiteFile returns the environment variables of the SQLite file path,
// for [WithDefaultStore].
func SQLiteFile(path string) map[string]string {
	return map[string]string{"PERSISTENCE_MODULE": "sqlite", "SQLITE_DBNAME": path}
}

// storeOptions returns the options that give the applications the
// command's store: the SQLite file of --db if it is given; otherwise the
// environment's store, or the default store if the environment chooses
// none. The default store's other variables are settings, the lowest
// precedence, so that SQLITE_DBNAME in the environment still wins.
func (r *root) storeOptions() []application.Option {
	if r.db != "" {
		return []application.Option{application.WithEnv(map[string]string{
			"PERSISTENCE_MODULE": "sqlite", "INFRASTRUCTURE_FACTORY": "", "SQLITE_DBNAME": r.db,
		})}
	}
	if len(r.defaults) == 0 {
		return nil
	}
	settings := map[string]string{}
	chosen := storeChosen(os.Environ())
	for k, v := range r.defaults {
		if chosen && (k == "PERSISTENCE_MODULE" || k == "INFRASTRUCTURE_FACTORY") {
			continue
		}
		settings[k] = v
	}
	return []application.Option{application.WithSettings(settings)}
}

// defaultStore describes the default store for the help: "the SQLite file
// strata.db in the working directory".
func (r *root) defaultStore() string {
	if len(r.defaults) == 0 {
		return "memory (gone when the command exits)"
	}
	d := describeStore(persistence.NewEnv("", r.defaults))
	if name := r.defaults["SQLITE_DBNAME"]; r.defaults["PERSISTENCE_MODULE"] == "sqlite" && !strings.ContainsRune(name, os.PathSeparator) && name != ":memory:" {
		d += " in the working directory"
	}
	return d
}

// storeChosen reports whether the environment chooses a persistence
// module, for all applications or for one.
func storeChosen(environ []string) bool {
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		if strings.TrimSpace(v) == "" {
			continue
		}
		for _, name := range []string{"PERSISTENCE_MODULE", "INFRASTRUCTURE_FACTORY"} {
			if k == name || strings.HasSuffix(k, "_"+name) {
				return true
			}
		}
	}
	return false
}

// describeStore says where an application's events are, for people:
// "SQLite database strata.db". It never shows a password.
func describeStore(env persistence.Env) string {
	name, err := persistence.ModuleName(env, persistence.DefaultModule)
	if err != nil {
		return "an invalid store (" + err.Error() + ")"
	}
	if m, ok := persistence.LookupModule(name); ok {
		name = m.Name
	}
	switch name {
	case "memory":
		return "memory (gone when the command exits)"
	case "sqlite":
		db := env.Get("SQLITE_DBNAME")
		if db == ":memory:" {
			return "an in-memory SQLite database (gone when the command exits)"
		}
		return "SQLite database " + db
	case "postgres":
		return describePostgres(env)
	case "messagedb":
		return describeMessageDB(env)
	case "mongodb", "mongo":
		return "MongoDB database " + env.String("MONGODB_DATABASE", "strata") + " on " + mongoHosts(env.String("MONGODB_URI", "mongodb://127.0.0.1:27017"))
	case "mysql":
		return describeMySQL(env)
	case "jetstream", "nats":
		return "NATS JetStream at " + env.String("NATS_URL", "nats://127.0.0.1:4222")
	}
	return "persistence module " + name
}

// describeMessageDB names the database and the category of Message DB
// (MESSAGEDB_CATEGORY, or the application's name in snake case).
func describeMessageDB(env persistence.Env) string {
	where := "the database of MESSAGEDB_URL"
	if u, err := url.Parse(strings.TrimSpace(env.Get("MESSAGEDB_URL"))); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		where = "database " + strings.TrimPrefix(u.Path, "/") + " on " + u.Host
	}
	if c := env.Get("MESSAGEDB_CATEGORY"); c != "" {
		return "Message DB in " + where + ", category " + c
	}
	return "Message DB in " + where
}

// mongoHosts returns the hosts of a MongoDB URI, without its credentials
// and options.
func mongoHosts(uri string) string {
	rest, ok := strings.CutPrefix(uri, "mongodb://")
	if !ok {
		if rest, ok = strings.CutPrefix(uri, "mongodb+srv://"); !ok {
			return "the server of MONGODB_URI"
		}
	}
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		rest = rest[i+1:]
	}
	host, _, _ := strings.Cut(rest, "/")
	host, _, _ = strings.Cut(host, "?")
	return host
}

// describeMySQL names the database without its password; a DSN is not
// parsed here, so that the cli package does not import the driver.
func describeMySQL(env persistence.Env) string {
	if dsn := strings.TrimSpace(env.Get("MYSQL_DSN")); dsn != "" {
		if i := strings.LastIndex(dsn, "/"); i >= 0 {
			db, _, _ := strings.Cut(dsn[i+1:], "?")
			return "MySQL database " + db + " of MYSQL_DSN"
		}
		return "MySQL database of MYSQL_DSN"
	}
	host := env.String("MYSQL_HOST", "127.0.0.1")
	if port := env.Get("MYSQL_PORT"); port != "" {
		host += ":" + port
	}
	return "MySQL database " + env.Get("MYSQL_DBNAME") + " on " + host
}

func describePostgres(env persistence.Env) string {
	host, db := env.String("POSTGRES_HOST", "127.0.0.1"), env.Get("POSTGRES_DBNAME")
	if port := env.Get("POSTGRES_PORT"); port != "" {
		host += ":" + port
	}
	if raw := strings.TrimSpace(env.Get("POSTGRES_URL")); raw != "" {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return "PostgreSQL database of POSTGRES_URL, schema " + env.String("POSTGRES_SCHEMA", "public")
		}
		host, db = u.Host, strings.TrimPrefix(u.Path, "/")
	}
	return "PostgreSQL database " + db + " on " + host + ", schema " + env.String("POSTGRES_SCHEMA", "public")
}

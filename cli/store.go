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
	case "jetstream", "nats":
		return "NATS JetStream at " + env.String("NATS_URL", "nats://127.0.0.1:4222")
	}
	return "persistence module " + name
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

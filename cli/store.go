package cli

import (
	"net/url"
	"os"
	"strings"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/persistence"
	_ "github.com/strata-go/strata/persistence/sqlite" // the command's default store
)

// DefaultDBName is the SQLite database file of the command when the
// environment chooses no store: strata.db in the working directory.
const DefaultDBName = "strata.db"

// storeOptions returns the options that give the applications the
// command's store: the SQLite file db if it is not empty; otherwise the
// environment's store, or DefaultDBName if the environment chooses none.
func storeOptions(db string) []application.Option {
	if db != "" {
		return []application.Option{application.WithEnv(map[string]string{
			"PERSISTENCE_MODULE": "sqlite", "INFRASTRUCTURE_FACTORY": "", "SQLITE_DBNAME": db,
		})}
	}
	defaults := map[string]string{"SQLITE_DBNAME": DefaultDBName}
	if !storeChosen(os.Environ()) {
		defaults["PERSISTENCE_MODULE"] = "sqlite"
	}
	// Settings: the lowest precedence, below the process environment.
	return []application.Option{application.WithSettings(defaults)}
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

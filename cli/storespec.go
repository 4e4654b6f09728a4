package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/strata-go/strata/application"
)

// storeSpecHelp says what a store argument (--from, --to, --archive) may be.
const storeSpecHelp = `A store is given as one of:
  FILE                       a SQLite file (a path without '=')
  postgres://...             a PostgreSQL URL (POSTGRES_URL); POSTGRES_SCHEMA
                             and the other variables come from the environment
  VAR=VALUE[,VAR=VALUE...]   the variables of any store, as the environment
                             gives them: PERSISTENCE_MODULE=mysql,MYSQL_DSN=...
The variables given override the process environment's (but not variables
prefixed with an application's name, such as WORLDS_SQLITE_DBNAME, which
still apply to that application).`

// ParseStore returns the environment variables of a store given as a
// command-line argument: a SQLite file, a PostgreSQL URL, or VAR=VALUE
// pairs separated by commas (see the help of strata copy).
func ParseStore(spec string) (map[string]string, error) {
	spec = strings.TrimSpace(spec)
	switch {
	case spec == "":
		return nil, errors.New("an empty store: give a SQLite file, a postgres:// URL or VAR=VALUE pairs")
	case strings.HasPrefix(spec, "postgres://") || strings.HasPrefix(spec, "postgresql://"):
		return map[string]string{"PERSISTENCE_MODULE": "postgres", "INFRASTRUCTURE_FACTORY": "", "POSTGRES_URL": spec}, nil
	case strings.Contains(spec, "="):
		vars := map[string]string{}
		for kv := range strings.SplitSeq(spec, ",") {
			k, v, ok := strings.Cut(kv, "=")
			k = strings.TrimSpace(k)
			if !ok || k == "" || strings.ContainsAny(k, " \t") {
				return nil, fmt.Errorf("store %q: %q is not VAR=VALUE", spec, kv)
			}
			vars[k] = v
		}
		if vars["PERSISTENCE_MODULE"] != "" && vars["INFRASTRUCTURE_FACTORY"] == "" {
			vars["INFRASTRUCTURE_FACTORY"] = ""
		}
		return vars, nil
	}
	return map[string]string{"PERSISTENCE_MODULE": "sqlite", "INFRASTRUCTURE_FACTORY": "", "SQLITE_DBNAME": spec}, nil
}

// loadStore opens the selected domain (as load does) on the store of
// vars instead of the command's.
func (r *root) loadStore(flag, spec string, mode access) (*Admin, error) {
	vars, err := ParseStore(spec)
	if err != nil {
		return nil, usageError{fmt.Errorf("%s: %w", flag, err)}
	}
	if mode == reading {
		vars["READ_ONLY"] = "y"
		if db := vars["SQLITE_DBNAME"]; vars["PERSISTENCE_MODULE"] == "sqlite" && db != "" {
			if _, err := os.Stat(db); err != nil {
				return nil, fmt.Errorf("%s: the SQLite file %s: %w", flag, db, err)
			}
		}
	}
	if r.invalid != nil {
		return nil, loadError{r.invalid}
	}
	name := r.domain
	if name == "" {
		name = os.Getenv("STRATA_DOMAIN")
	}
	d, err := Lookup(r.domains, name)
	if err != nil {
		return nil, loadError{err}
	}
	a, err := Open(d, application.WithEnv(vars))
	if err != nil {
		return nil, loadError{err}
	}
	return a, nil
}

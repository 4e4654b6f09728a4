package mongodb

import (
	"fmt"
	"strings"
	"time"

	"github.com/strata-go/strata/internal/sqlstore"
	"github.com/strata-go/strata/persistence"
)

// Variables lists the environment variables the module reads.
var Variables = []string{"MONGODB_URI", "MONGODB_DATABASE", "MONGODB_COLLECTION_PREFIX", "MONGODB_TIMEOUT", "CREATE_TABLE", "READ_ONLY"}

// DefaultURI is the server used when MONGODB_URI is not set.
const DefaultURI = "mongodb://127.0.0.1:27017"

// DefaultTimeout bounds connecting and each round trip unless
// MONGODB_TIMEOUT says otherwise.
const DefaultTimeout = 30 * time.Second

// Config configures the MongoDB module.
type Config struct {
	// URI is the connection string ("mongodb://host:27017/?replicaSet=rs0").
	// Its options win over the module's defaults (read and write concern
	// "majority").
	URI string
	// Database holds the application's collection (default "strata").
	Database string
	// CollectionPrefix is put before the collection's name, so that
	// several deployments can share a database.
	CollectionPrefix string
	// AppName names the application, whose collection is named after it
	// ("worlds_log" for Worlds).
	AppName string
	// Timeout bounds server selection and connecting (default 30s).
	Timeout time.Duration
	// CreateTables creates the collection's indexes if they do not exist
	// (the collection itself is created by the first write).
	CreateTables bool
	// ReadOnly creates nothing and refuses writes with an error wrapping
	// persistence.ErrReadOnly.
	ReadOnly bool
}

// ConfigFromEnv reads the module's variables. Values that cannot be
// parsed are errors that name the variable.
func ConfigFromEnv(env persistence.Env) (Config, error) {
	c := Config{
		AppName:          env.Name(),
		URI:              strings.TrimSpace(env.String("MONGODB_URI", DefaultURI)),
		Database:         strings.TrimSpace(env.String("MONGODB_DATABASE", "strata")),
		CollectionPrefix: strings.TrimSpace(env.Get("MONGODB_COLLECTION_PREFIX")),
	}
	var err error
	if c.Timeout, err = env.Seconds("MONGODB_TIMEOUT", DefaultTimeout); err != nil {
		return c, err
	}
	if c.CreateTables, err = env.Bool("CREATE_TABLE", true); err != nil {
		return c, err
	}
	if c.ReadOnly, err = env.Bool("READ_ONLY", false); err != nil {
		return c, err
	}
	_, uriVar, _ := env.Lookup("MONGODB_URI")
	_, dbVar, _ := env.Lookup("MONGODB_DATABASE")
	_, prefixVar, _ := env.Lookup("MONGODB_COLLECTION_PREFIX")
	if err := c.checkNamed(uriVar, dbVar, prefixVar); err != nil {
		return c, err
	}
	return c, nil
}

// check refuses names MongoDB would refuse.
func (c Config) check() error {
	return c.checkNamed("MONGODB_URI", "MONGODB_DATABASE", "MONGODB_COLLECTION_PREFIX")
}

// checkNamed is check with the names of the variables the values came
// from, which the errors name.
func (c Config) checkNamed(uriVar, dbVar, prefixVar string) error {
	if !strings.HasPrefix(c.URI, "mongodb://") && !strings.HasPrefix(c.URI, "mongodb+srv://") {
		return fmt.Errorf("%w: %s does not start with mongodb:// or mongodb+srv://", persistence.ErrConfig, uriVar)
	}
	if c.Database == "" || len(c.Database) > 63 || strings.ContainsAny(c.Database, "/\\. \"$*<>:|?\x00") {
		return fmt.Errorf("%w: %s=%q is not a MongoDB database name (at most 63 characters, none of /\\. \"$*<>:|?)", persistence.ErrConfig, dbVar, c.Database)
	}
	if c.CollectionPrefix != "" {
		if err := sqlstore.CheckIdentifier(prefixVar, c.CollectionPrefix); err != nil {
			return err
		}
	}
	return nil
}

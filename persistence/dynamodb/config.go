package dynamodb

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"

	"github.com/strata-go/strata/internal/awsconf"
	"github.com/strata-go/strata/persistence"
)

// Variables lists the environment variables the module reads.
var Variables = append([]string{"DYNAMODB_TABLE", "DYNAMODB_TABLE_PREFIX", "CREATE_TABLE", "READ_ONLY"}, awsconf.Variables("DYNAMODB")...)

// DefaultTablePrefix starts the name of an application's table unless
// DYNAMODB_TABLE names it.
const DefaultTablePrefix = "strata_"

// Config configures the DynamoDB module.
type Config struct {
	// Table is the table that holds everything of the application: its
	// events, notification log, commits, tracking records and the records
	// of every purpose (snapshots). Required.
	Table string
	// AWS locates the service and gives the credentials.
	AWS awsconf.Settings
	// CreateTable creates the table (on-demand capacity) if it does not
	// exist.
	CreateTable bool
	// ReadOnly creates nothing and refuses writes with an error wrapping
	// persistence.ErrReadOnly.
	ReadOnly bool
}

var tableName = regexp.MustCompile(`^[a-zA-Z0-9_.-]{3,255}$`)

// ConfigFromEnv reads the module's variables. Values that cannot be
// parsed are errors that name the variable.
func ConfigFromEnv(env persistence.Env) (Config, error) {
	var c Config
	var err error
	if c.AWS, err = awsconf.FromEnv(env, "DYNAMODB"); err != nil {
		return c, err
	}
	if c.CreateTable, err = env.Bool("CREATE_TABLE", true); err != nil {
		return c, err
	}
	if c.ReadOnly, err = env.Bool("READ_ONLY", false); err != nil {
		return c, err
	}
	c.Table = strings.TrimSpace(env.Get("DYNAMODB_TABLE"))
	_, name, _ := env.Lookup("DYNAMODB_TABLE")
	if c.Table == "" {
		prefix := env.String("DYNAMODB_TABLE_PREFIX", DefaultTablePrefix)
		c.Table = prefix + tableSuffix(env.Name())
		_, name, _ = env.Lookup("DYNAMODB_TABLE_PREFIX")
	}
	if !tableName.MatchString(c.Table) {
		return c, fmt.Errorf("%w: %s: table name %q is not 3 to 255 letters, digits, '_', '-' or '.'", persistence.ErrConfig, name, c.Table)
	}
	return c, nil
}

// tableSuffix is the application's name as a table name: lower case,
// other characters than letters and digits turned into underscores.
func tableSuffix(app string) string {
	if app == "" {
		return "events"
	}
	var b strings.Builder
	for _, r := range strings.ToLower(app) {
		if r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

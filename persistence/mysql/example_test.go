package mysql_test

import (
	"errors"
	"fmt"

	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/persistence/mysql"
)

// Settings come from the environment; a value that cannot be used names
// its variable.
func ExampleConfigFromEnv() {
	c, err := mysql.ConfigFromEnv(persistence.NewEnv("Worlds", map[string]string{
		"MYSQL_DBNAME": "shop", "MYSQL_HOST": "db.internal", "MYSQL_POOL_SIZE": "16", "MYSQL_LOCK_WAIT_TIMEOUT": "5",
	}))
	fmt.Println(c.DBName, c.Host, c.PoolSize, c.LockWaitTimeout, err)

	_, err = mysql.ConfigFromEnv(persistence.NewEnv("Worlds", map[string]string{"MYSQL_DBNAME": "shop", "MYSQL_PORT": "http"}))
	fmt.Println(errors.Is(err, persistence.ErrConfig), err)
	// Output:
	// shop db.internal 16 5s <nil>
	// true invalid configuration: MYSQL_PORT="http": not an integer
}

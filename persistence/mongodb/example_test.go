package mongodb_test

import (
	"fmt"

	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/persistence/mongodb"
)

// The module's settings come from the environment of the application, its
// own variables (WORLDS_...) first.
func ExampleConfigFromEnv() {
	env := persistence.NewEnv("Worlds", map[string]string{
		"PERSISTENCE_MODULE":        "mongodb",
		"MONGODB_URI":               "mongodb://db1:27017,db2:27017/?replicaSet=rs0",
		"WORLDS_MONGODB_DATABASE":   "worlds",
		"MONGODB_COLLECTION_PREFIX": "prod_",
	})
	c, err := mongodb.ConfigFromEnv(env)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.Database, c.CollectionPrefix, c.CreateTables, c.Timeout)

	_, err = mongodb.ConfigFromEnv(persistence.NewEnv("Worlds", map[string]string{"WORLDS_MONGODB_DATABASE": "a/b"}))
	fmt.Println(err)
	// Output:
	// worlds prod_ true 30s
	// invalid configuration: WORLDS_MONGODB_DATABASE="a/b" is not a MongoDB database name (at most 63 characters, none of /\. "$*<>:|?)
}

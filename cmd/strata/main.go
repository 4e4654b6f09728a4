// Command strata is Strata's command line built with the project's example
// domains (worlds with counters, wiki, bank accounts, cargo shipping), so
// that it works out of the box, and the project's benchmark command:
//
//	strata demo                               fill strata.db with worlds and counters
//	strata snapshot create                    snapshot every World and Counter
//	strata events --aggregate World --identifier ID
//	strata log --follow
//	strata serve
//	strata console                            the web console (docs/console.md)
//	strata bench --store all
//
// Run strata --help for the commands, flags and environment variables, and
// see README.md beside this file. A program that registers its own domains
// is built the same way; see package cli.
package main

import (
	"github.com/spf13/cobra"

	"github.com/strata-go/strata/cli"
	_ "github.com/strata-go/strata/persistence/dynamodb"  // PERSISTENCE_MODULE=dynamodb
	_ "github.com/strata-go/strata/persistence/jetstream" // PERSISTENCE_MODULE=jetstream
	_ "github.com/strata-go/strata/persistence/memory"    // PERSISTENCE_MODULE=memory
	_ "github.com/strata-go/strata/persistence/messagedb" // PERSISTENCE_MODULE=messagedb
	_ "github.com/strata-go/strata/persistence/mongodb"   // PERSISTENCE_MODULE=mongodb
	_ "github.com/strata-go/strata/persistence/mysql"     // PERSISTENCE_MODULE=mysql
	_ "github.com/strata-go/strata/persistence/postgres"  // PERSISTENCE_MODULE=postgres
	_ "github.com/strata-go/strata/persistence/s3"        // PERSISTENCE_MODULE=s3
	_ "github.com/strata-go/strata/persistence/sqlite"    // PERSISTENCE_MODULE=sqlite, the default
)

// defaultDBName is the SQLite file of the command when the environment
// chooses no store.
const defaultDBName = "strata.db"

// newCommand returns the command tree: the example domains, a SQLite file
// as the default store, and the benchmark command.
func newCommand() *cobra.Command {
	cmd := cli.NewCommand(domains(), cli.WithDefaultStore(cli.SQLiteFile(defaultDBName)))
	cmd.Long += benchEnvironment + benchMySQLEnvironment + benchMongoEnvironment + benchNATSEnvironment
	cmd.AddCommand(benchCommand())
	return cmd
}

func main() { cli.Execute(newCommand()) }

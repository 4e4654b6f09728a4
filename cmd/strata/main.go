// Command strata is Strata's command line built with the project's example
// domains (worlds with counters, wiki, bank accounts, cargo shipping), so
// that it works out of the box, and the project's benchmark command:
//
//	strata demo                               fill strata.db with worlds and counters
//	strata snapshot create                    snapshot every World and Counter
//	strata events --aggregate World --identifier ID
//	strata log --follow
//	strata serve
//	strata bench --store all
//
// Run strata --help for the commands, flags and environment variables, and
// see README.md beside this file. A program that registers its own domains
// is built the same way; see package cli.
package main

import (
	"github.com/strata-go/strata/cli"
	_ "github.com/strata-go/strata/persistence/postgres" // PERSISTENCE_MODULE=postgres
)

func main() {
	cmd := cli.New(domains()...)
	cmd.Long += benchEnvironment
	cmd.AddCommand(benchCommand())
	cli.Execute(cmd)
}

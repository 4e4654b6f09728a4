// Command memoryonly is a program built on package cli whose store is
// memory: what it links is what every such program pays for.
package main

import (
	"github.com/strata-go/strata/cli"
	"github.com/strata-go/strata/examples/worlds"
	_ "github.com/strata-go/strata/persistence/memory"
	"github.com/strata-go/strata/system"
)

func main() {
	cli.Main(cli.Domain{Name: "worlds", Applications: []system.Def{system.Define(worlds.Name, worlds.Types, worlds.New)}})
}

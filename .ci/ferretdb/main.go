// Command ferretdb runs FerretDB v1 with its SQLite backend on a loopback
// address, for the tests of persistence/mongodb. It is a module of its own
// so that Strata's module does not depend on FerretDB; it embeds FerretDB's
// library rather than installing its command, whose build from the module
// proxy lacks the version file it checks at start.
//
//	ferretdb -listen 127.0.0.1:17017 -dir /tmp/strata-ferretdb
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:17017", "TCP address to listen on (loopback only)")
	dir := flag.String("dir", filepath.Join(os.TempDir(), "strata-ferretdb"), "directory of the SQLite databases")
	flag.Parse()
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: *listen},
		Handler:  "sqlite",
		// The databases are the tests', thrown away afterwards: without
		// syncing to disk, each write costs a fraction of what it would on
		// a loaded machine. Durability is the server's business, not what
		// the tests check.
		SQLiteURL: "file:" + filepath.ToSlash(*dir) + "/?_pragma=synchronous(OFF)",
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintln(os.Stderr, "ferretdb: listening on", *listen, "with SQLite databases in", *dir)
	if err := f.Run(ctx); err != nil && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

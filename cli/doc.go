// Package cli is Strata's command line: the operator's tools for
// event-sourced domains, built as a command tree (with
// github.com/spf13/cobra) for the domains a program registers.
//
// Python's event-sourcing tools load a user's domain module at run time.
// Go cannot, so the command is built the other way round: a user's own
// main registers the user's domains and runs the command,
//
//	func main() { cli.Main(shop.Domain) }
//
// and the strata binary (cmd/strata) is that command built with Strata's
// example domains, so that it works out of the box. A [Domain] is what the
// command needs to know of one: its applications, defined as for a
// system with system.Define (and the pipes between them, if it is a
// system), the other types it registers, and a demo.
//
// The commands are:
//
//	demo             run the domain's demo: fill the store and say what happened
//	snapshot create  create snapshots of one aggregate, all of a type, or all
//	events           print one aggregate's events, decoded, as text or JSON
//	log              print an application's notification log; --follow tails it
//	serve            serve an application's notification log over HTTP
//	console          serve the web console of the domain (package console)
//	verify           read the stores end to end and report damage
//	copy             copy every application to another store, resumably, and verify it
//	truncate         delete or archive the events a type's snapshots make unnecessary
//
// --domain selects a domain by name, else STRATA_DOMAIN, else the first
// domain registered. The applications' stores come from the same
// environment variables as any application's (PERSISTENCE_MODULE and the
// variables of the module; see package application); if the environment
// chooses no store, the command uses the SQLite file strata.db in the
// working directory, and --db chooses another file. The command can use
// the persistence modules the program registers: sqlite always, postgres
// if the main imports github.com/strata-go/strata/persistence/postgres.
//
// The same operations are library calls on an [Admin], the handle that
// [Open] returns for a domain:
//
//	admin, err := cli.Open(shop.Domain, application.WithEnv(env))
//	defer admin.Close()
//	snap, err := admin.CreateSnapshot(ctx, "Cart", id)   // forced refresh of one
//	n, err := admin.CreateSnapshots(ctx, "Cart")         // every Cart
//	counts, err := admin.CreateAllSnapshots(ctx)         // {"Cart": 42, "Order": 15}
//	report, err := admin.Verify(ctx)                     // report.Problems, empty if sound
//	copied, err := admin.CopyTo(ctx, target)             // target: cli.Open on another store
//	done, err := admin.Truncate(ctx, "Cart", cli.TruncateConfig{MaxAge: 90 * 24 * time.Hour})
//
// Their errors wrap [ErrAggregateNotFound], [ErrNotEventSourced] and
// [ErrInstanceNotFound]; [Lookup] finds a domain by name or fails with
// [ErrUnknownDomain].
//
// Snapshots are rebuilt from all of an aggregate's events, even if it has
// a snapshot, and replace a snapshot at the same version. Runs over every
// instance find them in the notification log by the topics of the events
// that create the type (domain.CreatedBy), a page at a time, so that
// memory does not grow with the number of instances. Each snapshot is
// written atomically, and a run stops between two snapshots when its
// context ends (Ctrl-C for the command), so none is ever half-written.
//
// The command exits with 0 when done, 1 when it failed, 2 for a wrong
// command line, and 130 when Ctrl-C or SIGTERM stopped a run before its end
// (serve and log --follow, which run until stopped, exit with 0). Errors
// are written to stderr as "Error: ..." lines, and a domain that cannot be
// loaded as "Error loading domain: ...".
package cli

package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/persistence"
)

// Exit codes of the command.
const (
	// ExitOK means the command did what it was asked.
	ExitOK = 0
	// ExitError means it failed; stderr says why.
	ExitError = 1
	// ExitUsage means the command line was wrong: an unknown command or
	// flag, a bad flag value, a missing flag.
	ExitUsage = 2
	// ExitInterrupted means Ctrl-C (SIGINT) or SIGTERM stopped a run that
	// had not finished. Commands that run until stopped (serve, log
	// --follow) exit with ExitOK instead.
	ExitInterrupted = 130
)

// Main runs the command of the domains with the process's arguments and
// exits with its exit code. The first domain is the default. A user's
// main is one line:
//
//	func main() { cli.Main(shop.Domain) }
func Main(domains ...Domain) {
	Execute(New(domains...))
}

// Execute runs cmd, a command made by [New] with more commands added if
// need be, with the process's arguments until it ends or Ctrl-C or
// SIGTERM interrupts it, and exits with its exit code. A second Ctrl-C
// kills the process.
func Execute(cmd *cobra.Command) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal, the default behaviour returns.
	context.AfterFunc(ctx, stop)
	code := Run(ctx, cmd, os.Args[1:])
	stop()
	os.Exit(code)
}

// Run runs cmd with args, writing to cmd's output and error streams
// (stdout and stderr unless set), and returns the exit code: [ExitOK],
// [ExitError], [ExitUsage] or [ExitInterrupted]. Errors are written as
// "Error: ..." lines, and a domain that cannot be loaded as "Error loading
// domain: ...". Flags keep their values after a run: make a new command
// with [New] for each run.
func Run(ctx context.Context, cmd *cobra.Command, args []string) int {
	if args == nil {
		args = []string{}
	}
	cmd.SetArgs(args)
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	markErrors(cmd)
	executed, err := cmd.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	stderr := cmd.ErrOrStderr()
	var (
		usage       usageError
		interrupted interruptedError
		load        loadError
		failed      commandError
	)
	// Errors that no command returned are cobra's: the command line is
	// wrong.
	ours := errors.As(err, &failed)
	switch {
	case errors.As(err, &interrupted):
		fmt.Fprintln(stderr, interrupted.msg)
		return ExitInterrupted
	case errors.As(err, &usage) || !ours:
		fmt.Fprintf(stderr, "Error: %v\n", err)
		if executed == nil {
			executed = cmd
		}
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", executed.CommandPath())
		return ExitUsage
	case ctx.Err() != nil:
		fmt.Fprintln(stderr, "Interrupted.")
		return ExitInterrupted
	case errors.As(err, &load):
		fmt.Fprintf(stderr, "Error loading domain: %v\n", load.err)
		return ExitError
	default:
		fmt.Fprintf(stderr, "Error: %v\n", failed.err)
		return ExitError
	}
}

// commandError is an error that a command returned, as opposed to one of
// cobra's.
type commandError struct{ err error }

func (e commandError) Error() string { return e.err.Error() }
func (e commandError) Unwrap() error { return e.err }

// usageError is a wrong command line found by a command.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// loadError is a domain that cannot be loaded.
type loadError struct{ err error }

func (e loadError) Error() string { return "loading domain: " + e.err.Error() }
func (e loadError) Unwrap() error { return e.err }

// interruptedError is a run that a signal stopped; msg says what it had
// done.
type interruptedError struct {
	msg string
	err error
}

func (e interruptedError) Error() string { return e.msg }
func (e interruptedError) Unwrap() error { return e.err }

// UsageError marks err as a wrong command line, for commands added to the
// tree: Run writes it with a pointer to the help and exits with
// [ExitUsage].
func UsageError(err error) error { return usageError{err} }

// markErrors makes the RunE functions of cmd and its subcommands mark
// their errors as the commands' own, so that Run tells them from cobra's
// errors about the command line.
func markErrors(cmd *cobra.Command) {
	if f := cmd.RunE; f != nil {
		cmd.RunE = func(cmd *cobra.Command, args []string) error {
			err := f(cmd, args)
			var marked commandError
			if err == nil || errors.As(err, &marked) {
				return err
			}
			return commandError{err}
		}
	}
	for _, sub := range cmd.Commands() {
		markErrors(sub)
	}
}

// root is the state of one run of the command tree.
type root struct {
	domains []Domain
	// invalid is an error of the domains' definitions as a whole.
	invalid error
	domain  string
	db      string
	tenant  string
	// defaults are the variables of the store when the environment
	// chooses none (see WithDefaultStore).
	defaults map[string]string

	// For the help's examples: the program's name, and names from the
	// default domain.
	name, otherDomain, aggregate, application, topic string
}

// sampleID is the identifier in the help's examples.
const sampleID = "0b9ab1a2-3c4d-4e5f-8a6b-7c8d9e0f1a2b"

// samples takes the names of the help's examples from the default domain.
func (r *root) samples() {
	r.name, r.aggregate, r.application, r.topic = filepath.Base(os.Args[0]), "User", "Users", "User.Registered"
	if len(r.domains) > 1 {
		r.otherDomain = " --domain " + r.domains[1].Name
	}
	if len(r.domains) == 0 {
		return
	}
	a, err := Open(r.domains[0])
	if err != nil {
		return
	}
	if apps := a.Applications(); len(apps) > 0 {
		r.application = apps[len(apps)-1]
	}
	if len(a.aggs) > 0 {
		r.aggregate = a.aggs[0].name
		if created := a.aggs[0].created; len(created) > 0 {
			r.topic = created[0]
		}
	}
}

// examples returns a command's examples: command lines without the
// program's name.
func (r *root) examples(lines ...string) string {
	for i, l := range lines {
		lines[i] = "  " + r.name + " " + l
	}
	return strings.Join(lines, "\n")
}

// New returns the command tree for the domains; the first is the default
// domain. Add commands to it with AddCommand, and run it with [Execute]
// (or [Run]). Its name is the program's; set Use to change it. Its store
// is the environment's; use [NewCommand] to give it a default store.
func New(domains ...Domain) *cobra.Command { return NewCommand(domains) }

// NewCommand is [New] with options, such as [WithDefaultStore].
func NewCommand(domains []Domain, opts ...Option) *cobra.Command {
	r := &root{domains: domains, invalid: checkDomains(domains)}
	for _, o := range opts {
		o(r)
	}
	r.samples()
	cmd := &cobra.Command{
		Use:   r.name,
		Short: "Operate event-sourced domains: demo, events, notification logs, snapshots, HTTP",
		Long:  r.long(),
		// Errors and usage are printed by Run, once.
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	cmd.CompletionOptions.DisableDefaultCmd = true
	defaultName := "none"
	if len(domains) > 0 {
		defaultName = domains[0].Name
	}
	cmd.PersistentFlags().StringVar(&r.domain, "domain", "", "the domain to use (default $STRATA_DOMAIN, else "+defaultName+")")
	cmd.PersistentFlags().StringVar(&r.tenant, "tenant", "", "work on this tenant's data (default: the default tenant; log and serve: every tenant)")
	cmd.PersistentFlags().StringVar(&r.db, "db", "", "use this SQLite database file, whatever PERSISTENCE_MODULE says\n(default: the environment's store, else "+r.defaultStore()+")")
	cmd.AddCommand(r.demoCommand(), r.snapshotCommand(), r.eventsCommand(), r.logCommand(), r.serveCommand(), r.parkedCommand(),
		r.deleteCommand(), r.purgeCommand(), r.eraseCommand(), r.rotateKeysCommand(), r.healthCommand())
	cmd.AddCommand(r.verifyCommand(), r.copyCommand(), r.truncateCommand(), r.consoleCommand())
	return cmd
}

// access says whether a command writes to the stores.
type access bool

const (
	reading access = false
	writing access = true
)

// load opens the selected domain: --domain, else STRATA_DOMAIN, else the
// default. A command that only reads opens its stores with READ_ONLY, so
// that it creates nothing and works on a read-only file or mount.
func (r *root) load(mode access) (*Admin, error) {
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
	opts := r.storeOptions()
	if mode == reading {
		opts = append(opts, application.WithEnv(map[string]string{"READ_ONLY": "y"}))
	}
	a, err := Open(d, opts...)
	if err != nil {
		return nil, loadError{err}
	}
	if err := a.SetTenant(r.tenant); err != nil {
		return nil, usageError{fmt.Errorf("--tenant: %w", err)}
	}
	return a, nil
}

// domainFlag returns " --domain NAME" if the selected domain is not the
// default, for the commands a message suggests.
func (r *root) domainFlag(name string) string {
	if len(r.domains) > 0 && r.domains[0].Name == name && r.domain == "" && os.Getenv("STRATA_DOMAIN") == "" {
		return ""
	}
	return " --domain " + name
}

func (r *root) long() string {
	var b strings.Builder
	b.WriteString(`Operate the event-sourced domains built into this command: fill a store with
a demo, print an aggregate's events or an application's notification log,
create snapshots, serve a notification log over HTTP, and serve a web console.

Domains (select one with --domain or STRATA_DOMAIN; the first is the default):
`)
	if r.invalid != nil {
		fmt.Fprintf(&b, "  (%v)\n", r.invalid)
	}
	for i, d := range r.domains {
		name := d.Name
		if i == 0 {
			name += " (default)"
		}
		fmt.Fprintf(&b, "  %-20s %s\n", name, d.Description)
		if a, err := Open(d); err != nil {
			fmt.Fprintf(&b, "  %-20s (%v)\n", "", err)
		} else {
			line := "applications: " + strings.Join(a.Applications(), ", ")
			if aggs := a.Aggregates(); len(aggs) > 0 {
				line += "; aggregates: " + strings.Join(aggs, ", ")
			}
			fmt.Fprintf(&b, "  %-20s %s\n", "", line)
		}
	}
	b.WriteString(`
Storage: the applications' stores come from the same environment variables as
in any Strata application. If neither PERSISTENCE_MODULE nor
INFRASTRUCTURE_FACTORY is set, the command uses ` + r.defaultStore() + `;
--db FILE chooses a SQLite file. The commands that only read (log, events,
serve, verify) open stores read-only: they create nothing, and a missing table is an
error rather than an empty result.

Exit status: 0 done, 1 failed, 2 wrong command line, 130 interrupted
(Ctrl-C or SIGTERM) before the end.

Environment (give a variable for one application only by prefixing it with the
application's name in upper case: WORLDS_SQLITE_DBNAME):
`)
	rows := [][2]string{
		{"STRATA_DOMAIN", "the domain when --domain is not given"},
		{"PERSISTENCE_MODULE", "the store: " + strings.Join(persistence.Modules(), ", ")},
		{"INFRASTRUCTURE_FACTORY", "another name for PERSISTENCE_MODULE"},
	}
	for _, name := range persistence.Modules() {
		if m, _ := persistence.LookupModule(name); len(m.Variables) > 0 {
			rows = append(rows, [2]string{name + " reads", strings.Join(m.Variables, " ")})
		}
	}
	if db := r.defaults["SQLITE_DBNAME"]; db != "" {
		rows = append(rows, [2]string{"SQLITE_DBNAME", "defaults to " + db})
	}
	rows = append(rows,
		[2]string{"READ_ONLY", "open the stores for reading only (log, events, serve and verify always do)"},
		[2]string{"CIPHER_TOPIC, CIPHER_KEY", "encryption of stored events (aes-gcm); the commands decode events with the key"},
		[2]string{"CIPHER_PREVIOUS_KEYS", "earlier cipher keys, comma-separated, that still decrypt"},
		[2]string{"CIPHER_DATA_KEYS", "tenant or aggregate: encrypt with a data key per tenant or aggregate, wrapped by CIPHER_KEY, which erase can shred"},
		[2]string{"COMPRESSOR_TOPIC", "compression of stored events (zlib)"},
		[2]string{"COMPRESSOR_MAX_SIZE", "the most bytes one stored state may decompress to (default 16 MiB)"},
		[2]string{"IS_SNAPSHOTTING_ENABLED", "snapshots as demo saves (snapshot create always can)"},
		[2]string{"SNAPSHOT_THRESHOLD", "snapshot when an aggregate has this many new events, as demo saves"},
		[2]string{"STRATA_TOKEN", "the bearer token of serve"},
		[2]string{"STRATA_CONSOLE_TOKEN", "the bearer token of console"},
		[2]string{"STRATA_CONSOLE_USER, STRATA_CONSOLE_PASSWORD", "the user and password of console (basic authentication)"},
	)
	for _, row := range rows {
		b.WriteString(EnvHelp(row[0], row[1]))
	}
	return b.String()
}

// EnvHelp formats an environment variable and its description as the
// root command's help lists them, for commands added to the tree that read
// more variables:
//
//	cmd.Long += cli.EnvHelp("SHOP_API_KEY", "the key of the shop's API")
func EnvHelp(name, description string) string {
	const column, width = 28, 80 // descriptions start at column
	var b strings.Builder
	line := "  " + name
	if len(line) >= column {
		b.WriteString(line + "\n")
		line = ""
	}
	line += strings.Repeat(" ", column-1-len(line))
	first := true
	for _, word := range strings.Fields(description) {
		if !first && len(line)+1+len(word) > width {
			b.WriteString(line + "\n")
			line = strings.Repeat(" ", column-1)
		}
		line += " " + word
		first = false
	}
	b.WriteString(line + "\n")
	return b.String()
}

// identifierFlag is the help of --identifier.
const identifierFlag = "the aggregate's identifier, a UUID"

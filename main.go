// Command fieldsync is the after-sales service server: `fieldsync serve` runs it; the other
// subcommands manage accounts, back up the database, render documents and measure speed.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	_ "net/http/pprof" // profiles for --pprof
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"fieldsync/schema"
	"fieldsync/server"
	syncer "fieldsync/sync"
)

// Version is the release; set with -ldflags "-X main.Version=...".
var Version = "dev"

type command struct {
	name, usage string
	run         func(args []string) error
}

// allCommands lists the subcommands; other files of this package add theirs to
// extraCommands in their init functions.
func allCommands() []command {
	base := []command{
		{"serve", "serve [--addr HOST:PORT] [--data DIR] [--db URL] [--demo] [--tls-cert F --tls-key F] [--metrics HOST:PORT]   run the server", cmdServe},
		{"user", "user add|passwd|list|disable ...                 manage accounts", cmdUser},
		{"backup", "backup --data DIR --out FILE                     consistent copy of the live database", cmdBackup},
		{"migrate", "migrate --data DIR                               bring the database to this version", cmdMigrate},
		{"settings", "settings list|set --data DIR [KEY VALUE]        show or change settings offline", cmdSettings},
		{"version", "version                                          print the version", func([]string) error {
			fmt.Println("fieldsync", Version)
			return nil
		}},
	}
	return append(base, extraCommands...)
}

// extraCommands are registered by other files of this package (pdf, report, bench).
var extraCommands []command

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: fieldsync COMMAND [flags]   (fieldsync COMMAND --help for its flags)")
	for _, c := range allCommands() {
		fmt.Fprintln(w, "  "+c.usage)
	}
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage(os.Stdout)
		return
	}
	for _, c := range allCommands() {
		if c.name == os.Args[1] {
			if err := c.run(os.Args[2:]); err != nil {
				if errors.Is(err, flag.ErrHelp) {
					return
				}
				fmt.Fprintln(os.Stderr, "fieldsync "+c.name+": "+err.Error())
				os.Exit(1)
			}
			return
		}
	}
	fmt.Fprintf(os.Stderr, "fieldsync: unknown command %q\n", os.Args[1])
	usage(os.Stderr)
	os.Exit(2)
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func newFlags(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: fieldsync %s\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// store is where a command finds the company: the data folder (--data: the SQLite
// database, the seal key, the blobs) and the store (--db: "" for SQLite in the data folder,
// or a postgres:// URL). Every command that opens the store takes both, through storeFlags.
type store struct{ data, db *string }

func storeFlags(fs *flag.FlagSet) store {
	return store{
		data: fs.String("data", envOr("FIELDSYNC_DATA", "./data"), "data folder: the SQLite database, seal key, blobs (env FIELDSYNC_DATA)"),
		db:   fs.String("db", os.Getenv("FIELDSYNC_DB"), "the store: empty for SQLite in --data, or a postgres:// URL that several instances share (env FIELDSYNC_DB)"),
	}
}

// postgres reports whether the store is PostgreSQL.
func (s store) postgres() bool { return *s.db != "" }

// open opens the store of an existing company for a command-line tool; it refuses a data
// folder without a fieldsync database, or a PostgreSQL database without fieldsync's
// tables, rather than create one.
func (s store) open() (*schema.DB, error) {
	return schema.OpenExistingStore(context.Background(), *s.data, *s.db)
}

// openEngine opens the existing company (see open) and its write path.
func (s store) openEngine() (*schema.DB, *syncer.Engine, error) {
	db, err := s.open()
	if err != nil {
		return nil, nil, err
	}
	e, err := syncer.New(db, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, e, nil
}

func cmdServe(args []string) error {
	fs := newFlags("serve", "serve [--addr HOST:PORT] [--data DIR] [--db URL] [--demo] [--tls-cert FILE --tls-key FILE] [--metrics HOST:PORT]")
	addr := fs.String("addr", envOr("FIELDSYNC_ADDR", ":8080"), "listen address (env FIELDSYNC_ADDR)")
	st := storeFlags(fs)
	demo := fs.Bool("demo", os.Getenv("FIELDSYNC_DEMO") == "1", "seed a demo company into an empty database (env FIELDSYNC_DEMO=1)")
	pprofAddr := fs.String("pprof", os.Getenv("FIELDSYNC_PPROF"), "serve Go's profiler (net/http/pprof) on this address, e.g. 127.0.0.1:6060; off when empty (env FIELDSYNC_PPROF)")
	tlsCert := fs.String("tls-cert", os.Getenv("FIELDSYNC_TLS_CERT"), "PEM certificate (chain) file: serve HTTPS and wss only; needs --tls-key (env FIELDSYNC_TLS_CERT)")
	tlsKey := fs.String("tls-key", os.Getenv("FIELDSYNC_TLS_KEY"), "PEM private key file of --tls-cert (env FIELDSYNC_TLS_KEY)")
	metricsAddr := fs.String("metrics", os.Getenv("FIELDSYNC_METRICS"), "serve Prometheus metrics at /metrics on this address, e.g. 127.0.0.1:9090; off when empty (env FIELDSYNC_METRICS)")
	sealKey := fs.String("seal-key", os.Getenv("FIELDSYNC_SEAL_KEY_FILE"), "the file of the key sealing feedback sheets, the same for every instance on one database (env FIELDSYNC_SEAL_KEY_FILE, or the key's text in FIELDSYNC_SEAL_KEY); default: seal.key in --data, made at the first start")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *pprofAddr != "" {
		go func() {
			// The default mux holds only the profiler's handlers (imported for them).
			if err := http.ListenAndServe(*pprofAddr, nil); err != nil {
				fmt.Fprintln(os.Stderr, "fieldsync: pprof:", err)
			}
		}()
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := server.New(ctx, server.Config{Addr: *addr, DataDir: *st.data, DB: *st.db, Demo: *demo, Log: log,
		TLSCert: *tlsCert, TLSKey: *tlsKey, MetricsAddr: *metricsAddr, SealKeyFile: *sealKey, SealKey: os.Getenv("FIELDSYNC_SEAL_KEY"),
		Out: func(s string) { fmt.Println(s) }})
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	ln, err := srv.Bind()
	if err != nil {
		srv.Shutdown(context.Background())
		return err
	}
	go func() { errc <- srv.Serve(ln) }()
	fmt.Printf("fieldsync %s listening on %s, data in %s\n", Version, ln.Addr(), *st.data)
	select {
	case err := <-errc:
		srv.Shutdown(context.Background())
		return err
	case <-ctx.Done():
	}
	fmt.Println("fieldsync: shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", errors.New("no password on standard input")
	}
	return pw, nil
}

// cliActor is who the command line acts as in the change log.
var cliActor = schema.Actor{UserID: "cli", Role: schema.RoleAdmin, Name: "command line"}

func cmdUser(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: fieldsync user add|passwd|list|disable --help")
	}
	sub, args := args[0], args[1:]
	fs := newFlags("user "+sub, "user "+sub+" --data DIR ...")
	st := storeFlags(fs)
	username := fs.String("username", "", "the account's username")
	var name, role *string
	var probation, nonDedicated, fromStdin *bool
	switch sub {
	case "add":
		fs.Usage = func() {
			fmt.Fprintln(fs.Output(), "usage: fieldsync user add --data DIR --username U --name N --role R [--probation] [--non-dedicated] --password-stdin")
			fs.PrintDefaults()
		}
		name = fs.String("name", "", "display name")
		role = fs.String("role", "", "admin, coordinator, technician, manager or leader")
		probation = fs.Bool("probation", false, "on probation (no complaint bonus)")
		nonDedicated = fs.Bool("non-dedicated", false, "not dedicated after-sales staff (paid per visit)")
		fromStdin = fs.Bool("password-stdin", false, "read the password from standard input")
	case "passwd":
		fromStdin = fs.Bool("password-stdin", false, "read the new password from standard input")
	case "list", "disable", "enable":
	default:
		return fmt.Errorf("unknown user command %q (add, passwd, list, disable, enable)", sub)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	db, e, err := st.openEngine()
	if err != nil {
		return err
	}
	defer db.Close()
	defer e.Close()
	ctx := context.Background()
	switch sub {
	case "add", "passwd":
		if *username == "" {
			return errors.New("--username is required")
		}
		if !*fromStdin {
			return errors.New("pass the password on standard input with --password-stdin")
		}
		pw, err := readPassword(os.Stdin)
		if err != nil {
			return err
		}
		if sub == "passwd" {
			if err := e.SetPassword(ctx, *username, pw); err != nil {
				return err
			}
			fmt.Println("password changed for", *username)
			return nil
		}
		u, err := e.CreateUser(ctx, cliActor, syncer.NewUser{Username: *username, Name: *name, Role: *role,
			Dedicated: !*nonDedicated, Probation: *probation, Password: pw})
		if err != nil {
			return err
		}
		fmt.Printf("created %s (%s) id %s\n", *username, *role, u.Str("id"))
	case "disable", "enable":
		if *username == "" {
			return errors.New("--username is required")
		}
		if err := e.SetActive(ctx, cliActor, *username, sub == "enable"); err != nil {
			return err
		}
		fmt.Printf("%sd %s\n", sub, *username)
	case "list":
		users, err := e.Users(ctx)
		if err != nil {
			return err
		}
		fmt.Printf("%-16s %-12s %-8s %-10s %-10s %s\n", "USERNAME", "ROLE", "ACTIVE", "DEDICATED", "PROBATION", "NAME")
		for _, u := range users {
			fmt.Printf("%-16s %-12s %-8v %-10v %-10v %s\n", u.Str("username"), u.Str("role"), u.Bool("active"), u.Bool("dedicated"), u.Bool("probation"), u.Str("name"))
		}
	}
	return nil
}

func cmdBackup(args []string) error {
	fs := newFlags("backup", "backup --data DIR [--db URL] --out FILE")
	st := storeFlags(fs)
	out := fs.String("out", "", "the backup file to write (must not exist)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" && !st.postgres() {
		return errors.New("--out is required")
	}
	db, err := st.open()
	if err != nil {
		return err
	}
	defer db.Close()
	if db.Postgres {
		return pgDumpAdvice(*st.db, *out, *st.data)
	}
	if err := db.Backup(context.Background(), *out); err != nil {
		return err
	}
	fmt.Printf("backup written to %s and verified (integrity_check ok); keep %s/%s with it\n", *out, *st.data, schema.SealKeyFile)
	return nil
}

// pgDumpAdvice is backup's answer on PostgreSQL: the database is backed up with
// PostgreSQL's own tool, pg_dump, whose version must match the server's; fieldsync does
// not run it for the operator. The message gives the command line (the URL without its
// password: pg_dump takes that from PGPASSWORD, ~/.pgpass or its prompt).
func pgDumpAdvice(dbURL, out, data string) error {
	if out == "" {
		out = "FILE.dump"
	}
	u, err := url.Parse(dbURL)
	if err == nil && u.User != nil {
		u.User = url.User(u.User.Username())
		dbURL = u.String()
	}
	return fmt.Errorf(`the store is PostgreSQL (--db): back it up with PostgreSQL's pg_dump, of the same major version as the server, e.g.
  pg_dump --format=custom --file %s %s
(the password from PGPASSWORD, ~/.pgpass or the prompt); restore with
  pg_restore --dbname 'URL of an empty database' %s
and keep %s and %s (the data folder's seal key and blobs) with it; docs/operations.md, "Backup and restore"`,
		shellQuote(out), shellQuote(dbURL), shellQuote(out), filepath.Join(data, schema.SealKeyFile), filepath.Join(data, "blobs"))
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func cmdMigrate(args []string) error {
	fs := newFlags("migrate", "migrate --data DIR [--db URL]")
	st := storeFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	db, err := schema.OpenStore(context.Background(), *st.data, *st.db)
	if err != nil {
		return err
	}
	defer db.Close()
	v, err := db.Version(context.Background())
	if err != nil {
		return err
	}
	fmt.Printf("database at schema version %d\n", v)
	return nil
}
